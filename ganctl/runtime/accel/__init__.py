"""CPU fast paths, in one opt-in place.

ganctl's networks are plain ``nn`` modules and its optimizers PyTorch's own. On the CPU, where a
:class:`~ganctl.runtime.runtime.Runtime` has ``accel`` on (the default; ``ganctl train --no-accel`` turns
it off), five measured speed-ups are laid over them:

- ``convs``: convolutions on small feature maps as matrix products, where oneDNN is slow (bf16
  only, so ``--precision fp32`` turns this one off too). :func:`apply` switches a built network's
  layers to it; the parameters and state_dict keys stay those of ``nn``.
- ``norms``: batch norm's backward handed its gradient channels_last-dense, as its input is,
  where a concatenation's backward made it a strided slice (the U-Net's skip connections), which
  sends PyTorch's kernel down a slow path. :func:`apply` switches the layers, as for ``convs``;
  and instance norm run per image on batch norm's channels_last kernel, where PyTorch's own
  copies a channels_last map to NCHW and back (CycleGAN).
- ``adam``: Adam that hands channels_last weights to PyTorch's fused update as the dense blocks
  they are, instead of letting it copy each one to contiguous memory and back (bit-identical).
  :func:`adam_class` picks it for :func:`ganctl.train.objectives.make_optimizer`.
- ``eager``: optimizers that do not import ``torch._dynamo`` while nothing is compiled (1.1-1.3 s
  of start-up on a 2-core CPU; :func:`adam_class`, :func:`rmsprop_class`).
- ``memory``: glibc's malloc keeps freed memory for the next step instead of unmapping it
  (:func:`tune_memory`, called by :func:`ganctl.runtime.runtime.resolve`).

What each contributes, measured one at a time: docs/benchmarks.md ("Each CPU fast path").
Nothing here runs on a GPU or in fp16, and nothing changes what is computed beyond bf16 rounding.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import nn


class Runtime(Protocol):
    """What the fast paths read of :class:`ganctl.runtime.runtime.Runtime` (which imports this package:
    naming the class here would make the two import each other)."""

    device: torch.device
    precision: str
    accel: bool

    def channels_last(self, convolutional: bool = True) -> bool: ...

# the names shown on the start-of-training line and by `ganctl env`
GEMM_CONVS = "small-map convs as GEMMs"
COPY_FREE_ADAM = "copy-free channels_last Adam"
MALLOC = "malloc keeps freed memory"
EAGER_OPTIMIZERS = "optimizers without torch._dynamo"
DENSE_NORM_GRADS = "dense batch-norm gradients"
CHANNELS_LAST_INSTANCE_NORMS = "channels_last instance norms"


def on_cpu(rt: Runtime) -> bool:
    """The runtime wants the CPU fast paths: ``accel`` on, and the device a CPU."""
    return rt.accel and rt.device.type == "cpu"


def gemm_convs(rt: Runtime) -> bool:
    """The matrix route applies: CPU fast paths on, in bf16 (its rule was measured in bf16 only)."""
    return on_cpu(rt) and rt.precision == "bf16"


def dense_norm_grads(rt: Runtime) -> bool:
    """Batch norm gets channels_last-dense gradients: CPU fast paths on, with channels_last maps."""
    return on_cpu(rt) and rt.channels_last(True)


def apply(rt: Runtime, *modules: nn.Module) -> list[str]:
    """Switch the built networks' eligible convolutions to the matrix route, their batch norms to
    dense gradients and their instance norms to channels_last ones, where ``rt`` wants it (call after ``.to(device)`` and channels_last); a
    no-op elsewhere. Returns the names of what it turned on (empty when nothing)."""
    on = []
    if gemm_convs(rt):
        from ganctl.runtime.accel import convs

        if sum(convs.accelerate(m) for m in modules):
            on.append(GEMM_CONVS)
    if dense_norm_grads(rt):
        from ganctl.runtime.accel import norms

        if sum(norms.accelerate(m) for m in modules):
            on.append(DENSE_NORM_GRADS)
        if sum(norms.accelerate_instance_norms(m) for m in modules):
            on.append(CHANNELS_LAST_INSTANCE_NORMS)
    return on


def adam_class(rt: Runtime) -> type[torch.optim.Adam]:
    """The Adam to build: the copy-free one where ``rt`` wants the CPU fast paths, else PyTorch's."""
    if on_cpu(rt):
        from ganctl.runtime.accel.adam import CopyFreeAdam

        return CopyFreeAdam
    return torch.optim.Adam


def rmsprop_class(rt: Runtime) -> type[torch.optim.RMSprop]:
    """The RMSprop to build: one that does not import torch._dynamo where ``rt`` wants the CPU
    fast paths, else PyTorch's."""
    if on_cpu(rt):
        from ganctl.runtime.accel.eager import EagerRMSprop

        return EagerRMSprop
    return torch.optim.RMSprop


def tune_memory(rt: Runtime) -> bool:
    """Tell glibc to keep freed memory where ``rt`` wants the CPU fast paths; True where it now does."""
    if not on_cpu(rt):
        return False
    from ganctl.runtime.accel import memory

    return memory.keep_freed_memory()


def fast_paths(rt: Runtime, convolutional: bool) -> list[str]:
    """The names of the fast paths of this module that are in effect for a model trained with ``rt``."""
    from ganctl.runtime.accel import memory

    paths = []
    if convolutional and gemm_convs(rt):
        paths.append(GEMM_CONVS)
    if convolutional and on_cpu(rt) and rt.channels_last(convolutional):
        paths.append(COPY_FREE_ADAM)  # it only differs from torch's Adam on channels_last weights
        paths.append(DENSE_NORM_GRADS)
    if on_cpu(rt):
        paths.append(EAGER_OPTIMIZERS)
    if rt.device.type == "cpu" and memory.tuned():  # process-wide: on once any runtime asked for it
        paths.append(MALLOC)
    return paths
