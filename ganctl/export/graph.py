"""One ``torch.export`` trace of a generator, in eval or paper mode, and the inputs it is checked on.

The trace has a dynamic batch size for every family and, for image-to-image generators (those of a
family whose data kind translates: pix2pix, CycleGAN), a dynamic height and width, each a multiple
of the network's ``size_multiple`` (the U-Net's ``2**num_downs``, the ResNet's 4; written as ``Dim *
multiple``, so the ExportedProgram and the ONNX input shape ``256*height_blocks`` both say which
sizes it takes) and at least its ``min_size`` (the ResNet's 8 pixels).

Modes (docs/export.md says the same to users):

- ``eval``: the network as ``net.eval()`` runs it: batch norm with the running statistics stored
  in the file, dropout off.
- ``paper`` (image-to-image generators): what pix2pix does at test time (Isola et al. 2017, section 3.3; the
  official test.py without --eval) for batch norm: every batch norm layer normalises with the
  mean and biased variance of the input it is given (over batch, height and width), then applies
  its learnt scale and shift; the stored running statistics are not used. Dropout cannot be random
  in a file that is checked against PyTorch (ONNX has no random generator that matches PyTorch's),
  so it is folded into its expectation: PyTorch's dropout scales the units it keeps by 1/(1-p)
  during training, so its expected output is its input, and the layer becomes the identity. A
  CycleGAN's instance norm keeps no running statistics, so both modes give its one network.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ganctl.core.errors import GanctlError
from ganctl.export.options import image_to_image
from ganctl.use import inference

MAX_SIDE = 65536  # pixels: the largest height or width an image-to-image trace allows
MAX_BATCH = 65536


@dataclass
class Traced:
    """A generator ready for ``torch.export``: the module, an example input and the dynamic shapes."""

    model: nn.Module
    example: tuple[torch.Tensor, ...]
    dynamic_shapes: dict
    meta: dict  # the generator's spec
    input_names: list[str]
    output_names: list[str]
    checks: list[tuple[torch.Tensor, ...]]  # fixed inputs the exported file must reproduce
    expected: list[torch.Tensor]  # what the PyTorch generator gives for each
    size_multiple: int = 1  # image-to-image: the sides it takes are multiples of this,
    min_size: int = 0  # and at least this


class BatchStatisticsNorm(nn.Module):
    """Batch norm normalising with the input's own statistics, as PyTorch's batch norm in training
    mode computes them (mean and biased variance over every axis but the channels), written out in
    plain operations so every runtime runs it; the running statistics are neither used nor changed."""

    def __init__(self, bn: nn.modules.batchnorm._BatchNorm):
        super().__init__()
        self.eps = bn.eps
        self.weight, self.bias = bn.weight, bn.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dims = [0, *range(2, x.dim())]
        mean = x.mean(dims, keepdim=True)
        centred = x - mean
        y = centred * torch.rsqrt(centred.pow(2).mean(dims, keepdim=True) + self.eps)
        if self.weight is None:
            return y
        shape = [1, -1] + [1] * (x.dim() - 2)
        return y * self.weight.view(shape) + self.bias.view(shape)


def paper_network(net: nn.Module) -> nn.Module:
    """A copy of ``net`` computing the paper mode (module docstring); ``net`` is left as it is."""
    out = copy.deepcopy(net).eval()
    for name, module in list(out.named_modules()):
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            swap = BatchStatisticsNorm(module)
        elif isinstance(module, nn.modules.dropout._DropoutNd):
            swap = nn.Identity()
        else:
            continue
        parent_name, _, attr = name.rpartition(".")
        setattr(out.get_submodule(parent_name) if parent_name else out, attr, swap)
    return out


@torch.no_grad()
def paper_reference(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The paper mode computed the way ganctl translate computes it (inference.paper_mode: batch
    norm without running statistics), with dropout in eval mode: the check for :func:`paper_network`."""
    with inference.paper_mode(net):
        for m in net.modules():
            if isinstance(m, nn.modules.dropout._DropoutNd):
                m.eval()  # paper_mode restores every dropout layer's own flag afterwards
        return net(x)


def _no_small_size_specialisation():
    """torch.export specialises a size it sees as 0 or 1, and guards its derived sizes against them:
    traced at 2 blocks, the program then refuses a 1-block (one multiple) image, and traced at 1
    block it is not dynamic at all. Size-oblivious tracing (a private torch config flag, present in
    torch 2.14) keeps those sizes symbolic; a torch without it is still checked, at one multiple,
    before anything is written."""
    try:
        from torch.fx.experimental import _config
    except ImportError:
        return contextlib.nullcontext()
    if not hasattr(_config, "backed_size_oblivious"):
        return contextlib.nullcontext()
    return _config.patch(backed_size_oblivious=True)


def _inputs(net: nn.Module, meta: dict) -> tuple[dict, list[str], tuple, list[tuple]]:
    """(dynamic shapes, input names, example inputs for the trace, check inputs)."""
    from torch.export import Dim

    batch = Dim("batch", min=1, max=MAX_BATCH)
    g = meta["generator"]
    if image_to_image(meta):  # an image in, the same size out
        c, multiple, least = int(g["in_channels"]), *_sides(net)
        blocks = MAX_SIDE // multiple
        h, w = Dim("height_blocks", min=least, max=blocks), Dim("width_blocks", min=least, max=blocks)
        rng = torch.Generator().manual_seed(0)
        side = least * multiple  # the smallest image it takes, then one a block wider
        checks = [(torch.rand(1, c, side, side, generator=rng) * 2 - 1,),
                  (torch.rand(2, c, side, side + multiple, generator=rng) * 2 - 1,)]
        ex = max(2, least) * multiple  # 2 blocks at least, not 1: see _no_small_size_specialisation
        example = (torch.zeros(2, c, ex, ex),)
        arg = next(iter(inspect.signature(net.forward).parameters))  # the U-Net's x, the ResNet's image
        return {arg: {0: batch, 2: multiple * h, 3: multiple * w}}, ["image"], example, checks
    z_dim = int(meta["z_dim"])
    classes = len(meta["classes"]) if meta.get("conditional") else 0
    checks = []
    for n, seed in ((3, 0), (1, 1)):
        z = inference.latents(n, z_dim, seed)
        checks.append((z, torch.arange(n) % classes) if classes else (z,))
    if classes:
        example = (torch.zeros(2, z_dim), torch.zeros(2, dtype=torch.long))
        return {"z": {0: batch}, "labels": {0: batch}}, ["z", "label"], example, checks
    # the unconditional generators take forward(z, labels=None): only z is an input of the trace
    return {"z": {0: batch}}, ["z"], (torch.zeros(2, z_dim),), checks


def _sides(net: nn.Module) -> tuple[int, int]:
    """(size multiple, fewest multiples a side) of an image-to-image generator: the U-Net takes one
    multiple of 2**num_downs; the ResNet two multiples of 4 (8 px: its blocks' reflection padding)."""
    multiple = int(getattr(net, "size_multiple", 1))
    return multiple, max(1, -(-int(getattr(net, "min_size", multiple)) // multiple))


def prepare(path: Path, mode: str = "eval") -> Traced:
    """Load the generator file ``path`` on the CPU and make it ready to trace in ``mode`` ("eval" or "paper")."""
    gen = inference.load_generator(Path(path), torch.device("cpu"))
    net, meta = gen.net.float().eval(), gen.meta
    paired = image_to_image(meta)
    if mode == "paper" and not paired:
        raise GanctlError(f"--mode paper is pix2pix's test-time behaviour; a {meta['family']} generator is "
                          "exported in eval mode (leave out --mode)")
    model = paper_network(net) if mode == "paper" else net
    dynamic, names, example, checks = _inputs(net, meta)
    if len(example) == 1 and not paired:
        model = _ZOnly(model)
    with torch.no_grad():
        expected = [paper_reference(net, *c) if mode == "paper" else net(*c) for c in checks]
    multiple, least = _sides(net) if paired else (1, 0)
    return Traced(model, example, dynamic, meta, names, ["output"], checks, expected, multiple, least * multiple)


@contextlib.contextmanager
def tracing(traced: Traced, what: str):
    """Around a torch.export trace (torch.export.export, torch.onnx.export) of ``traced``: no
    small-size specialisation, no autograd, and a failure as one line (the traceback with GANCTL_DEBUG=1)."""
    from ganctl.export.options import ExportError

    try:
        with _no_small_size_specialisation(), torch.no_grad():
            yield
    except ExportError:
        raise
    except Exception as e:  # the exporters' errors are pages long
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ExportError(f"{what} failed on this {traced.meta['arch']} generator ({first}); "
                          "set GANCTL_DEBUG=1 for the traceback and please report it") from e


def export_program(traced: Traced) -> torch.export.ExportedProgram:
    with tracing(traced, "torch.export"):
        return torch.export.export(traced.model, traced.example, dynamic_shapes=traced.dynamic_shapes, strict=False)


class _ZOnly(nn.Module):
    """An unconditional generator as a function of z alone (its forward also takes labels=None)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)
