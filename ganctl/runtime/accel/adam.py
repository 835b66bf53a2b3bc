"""Adam whose update kernel sees channels_last weights as the dense blocks they are.

Adam's update is elementwise. A channels_last weight, its gradient and its two moments (created
with the weight's strides) are each one dense block of memory in the same order, so the update can
run over the permuted views in which they are row-major, without moving a byte. PyTorch's fused CPU
kernel does not look for that: it copies every non-contiguous tensor to contiguous memory and back.
For the pix2pix U-Net's 54M channels_last parameters that made one G update 42-48 ms instead of
16-22 ms (``python benchmarks/profile_step.py pix2pix --adam torch`` shows the difference).

:class:`CopyFreeAdam` is ``torch.optim.Adam`` with that one change: the tensors handed to the update are
those views wherever every tensor of a parameter shares the parameter's strides. The parameters,
the optimizer state and its state_dict are untouched, and the results are bit-identical.
"""

from __future__ import annotations

import torch

from ganctl.runtime.accel.eager import Eager


def dense_view(t: torch.Tensor) -> torch.Tensor:
    """``t`` permuted so that it is contiguous, or ``t`` itself when no permutation makes it so
    (it is already contiguous, or it has gaps or overlaps in memory)."""
    if t.dim() < 2 or t.is_contiguous():
        return t
    order = sorted(range(t.dim()), key=lambda d: -t.stride(d))
    view = t.permute(order)
    return view if view.is_contiguous() else t


def _same_layout(tensors: list[torch.Tensor]) -> bool:
    """The tensors (of one shape) lie in memory in the same order."""
    return all(t.stride() == tensors[0].stride() for t in tensors[1:])


class CopyFreeAdam(Eager, torch.optim.Adam):
    """``torch.optim.Adam`` that updates channels_last parameters without copying them (see the
    module doc), and does not import ``torch._dynamo`` (:mod:`ganctl.runtime.accel.eager`). Everything
    else, including the state_dict, is Adam's own."""

    def _init_group(self, group, params_with_grad, *lists):
        has_complex = super()._init_group(group, params_with_grad, *lists)
        n = len(params_with_grad)
        # The per-parameter lists (gradients, moments, max moments with amsgrad) are those of the
        # parameters' length whose tensors have the parameters' shapes; state_steps are scalars.
        per_param, others = [params_with_grad], []
        for lst in lists:
            if not isinstance(lst, list) or len(lst) != n or n == 0:
                continue
            if all(isinstance(t, torch.Tensor) and t.shape == p.shape for t, p in zip(lst, params_with_grad, strict=True)) \
                    and any(t.dim() > 0 for t in lst):
                per_param.append(lst)
            else:
                others.append(lst)
        # Anything else of the parameters' length must be the scalar step counts; a list this code
        # does not know (a later PyTorch's) would be paired by flat index with permuted tensors,
        # so then nothing is permuted.
        if any(not all(isinstance(t, torch.Tensor) and t.dim() == 0 for t in lst) for lst in others):
            return has_complex
        for i, p in enumerate(params_with_grad):
            if dense_view(p) is not p and _same_layout([lst[i] for lst in per_param]):
                for lst in per_param:
                    lst[i] = dense_view(lst[i])
        return has_complex
