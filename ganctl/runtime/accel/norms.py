"""Batch norm's backward handed a gradient in its input's layout (CPU, channels_last).

PyTorch's CPU batch-norm backward is fast where the saved input and the incoming gradient share
one dense layout, and takes a slow generic path where they do not. In the pix2pix U-Net, every
decoder block ends in ``torch.cat([skip, x], 1)``; with channels_last maps, the gradient of each
half of that concatenation is a channel slice of a channels_last tensor, dense in neither
layout. The batch norm before it then spent 15.7 ms of a 242 ms training step on one 64x128x128
map (bf16, batch 1, 2 cores; 0.7 ms once the gradient is made channels_last-dense, which is a
copy of 2 MB). ``python benchmarks/profile_step.py pix2pix --norms native`` shows the difference.

:class:`DenseGradBatchNorm2d` is ``nn.BatchNorm2d`` with a gradient hook on its output that
makes the gradient channels_last-dense (a no-op where it already is) when its input is
channels_last. It computes exactly what ``nn.BatchNorm2d`` computes; :func:`accelerate` switches
a built network's layers to it in place, :func:`as_plain_nn` back.
"""

from __future__ import annotations

import torch
from torch import nn


def _channels_last_dense(grad: torch.Tensor) -> torch.Tensor:
    return grad.contiguous(memory_format=torch.channels_last)


class DenseGradBatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` whose backward gets its gradient in the input's channels_last layout."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        # a hook registered before an in-place op on y (the activation after it) still receives
        # the gradient of this output, which is what the backward of batch norm consumes
        if (y.requires_grad and y.device.type == "cpu" and y.dim() == 4 and not torch.compiler.is_compiling()
                and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()):
            y.register_hook(_channels_last_dense)
        return y


def accelerate(net: nn.Module) -> int:
    """Turn every ``nn.BatchNorm2d`` of ``net`` (exactly that class) into :class:`DenseGradBatchNorm2d`,
    in place; returns how many. Parameters, buffers, hooks and state_dict keys stay as they are."""
    n = 0
    for m in net.modules():
        if type(m) is nn.BatchNorm2d:
            m.__class__ = DenseGradBatchNorm2d
            n += 1
    return n


def as_plain_nn(net: nn.Module) -> nn.Module:
    """The inverse of :func:`accelerate`, in place."""
    for m in net.modules():
        if type(m) is DenseGradBatchNorm2d:
            m.__class__ = nn.BatchNorm2d
    return net
