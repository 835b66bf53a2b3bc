"""The generator's test-time behaviour for batches and tiles.

``ganctl translate`` runs a generator on many inputs at once (a batch of images, of video frames,
of tiles of one large image). ``paper`` mode (the official test.py without ``--eval``) normalises
with the statistics of what the network sees and keeps dropout on; done naively on a batch, each
input's result would depend on the others in the batch (batch norm over the batch) and on its place
in it (the dropout masks). :func:`batched` makes a batch compute, for each input, what a batch of
one would: per-input statistics, and dropout masks from the input's own seed.

For tiles, per-tile statistics would give neighbouring tiles different colours; :func:`gather_stats`
measures the statistics of a whole image (as if all its tiles were one batch) so that every tile
is normalised alike.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ganctl.runtime.accel.norms import per_image_norm

_BN = nn.modules.batchnorm._BatchNorm
_IN = nn.modules.instancenorm._InstanceNorm
_DROP = nn.modules.dropout._DropoutNd

Stats = dict[nn.Module, tuple[torch.Tensor, torch.Tensor]]


def adaptive_norms(net: nn.Module, mode: str) -> list[nn.Module]:
    """The norm layers that normalise by what they see in ``mode``: batch norm in paper mode (eval
    mode uses its running statistics), instance norm without running statistics in both."""
    out = []
    for m in net.modules():
        if isinstance(m, _BN) and mode == "paper":
            out.append(m)
        elif isinstance(m, _IN) and not (m.track_running_stats and m.running_mean is not None):
            out.append(m)
    return out


def _per_input_norm(m: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """Batch norm over a batch of one, for each input: instance norm with batch norm's affine
    parameters. A channels_last map on the CPU goes image by image through batch norm's own
    kernel, which keeps it channels_last (``F.instance_norm`` copies it to NCHW and back)."""
    def norm(x: torch.Tensor) -> torch.Tensor:
        if x.device.type == "cpu" and x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) \
                and not x.is_contiguous():
            return per_image_norm(x, m.weight, m.bias, m.eps)
        return F.instance_norm(x, weight=m.weight, bias=m.bias, eps=m.eps)
    return norm


def _fixed_norm(m: nn.Module, mean: torch.Tensor, var: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    mean, var = mean.to(dtype=torch.float32), var.to(dtype=torch.float32)
    return lambda x: F.batch_norm(x, mean.to(x.device), var.to(x.device), m.weight, m.bias, False, 0.0, m.eps)


class _Masks:
    """Dropout masks drawn per input from ``torch.Generator``s seeded with the input's seed, in the
    order the layers run: the masks one input gets do not depend on the batch it is in. A batch of
    one seeded ``s`` gets exactly the masks ``F.dropout`` draws after ``torch.manual_seed(s)`` on
    the CPU (both draw ``bernoulli_(1 - p)`` from a fresh Mersenne twister)."""

    def __init__(self, seeds: Sequence[int]):
        self.seeds = list(seeds)
        self.shared = len(set(self.seeds)) == 1  # one mask broadcast over the batch
        self.gens = [torch.Generator().manual_seed(s) for s in (self.seeds[:1] if self.shared else self.seeds)]

    def apply(self, m: nn.Module, x: torch.Tensor) -> torch.Tensor:
        p = float(m.p)
        if p <= 0:
            return x
        shape = (1, *x.shape[1:])
        masks = [torch.empty(shape).bernoulli_(1 - p, generator=g) for g in self.gens]
        mask = (masks[0] if self.shared else torch.cat(masks)).div_(1 - p)
        return x * mask.to(device=x.device, dtype=x.dtype)


@contextlib.contextmanager
def batched(net: nn.Module, mode: str, stats: Stats | None = None) -> Iterator[Callable[..., torch.Tensor]]:
    """Inside, ``run(x, seeds)`` computes for each input of the batch ``x`` what a batch of one
    would, in ``mode``:

    - ``paper``: dropout on, with masks from ``seeds[i]`` for input i (the same seed, the same
      masks; default 0); batch norm with the input's own statistics, or with ``stats[layer]``
      (mean, biased variance) where given;
    - ``eval``: no dropout, batch norm's running statistics.

    Instance norm layers without running statistics use ``stats`` where given. The net's modules
    are restored afterwards (their running statistics are never read or changed in paper mode)."""
    stats = stats or {}
    saved = [(m, m.training) for m in net.modules()]
    masks: list[_Masks | None] = [None]
    patched: list[nn.Module] = []
    net.eval()
    try:
        for m in adaptive_norms(net, mode):
            m.forward = _fixed_norm(m, *stats[m]) if m in stats else _per_input_norm(m)
            patched.append(m)
        if mode == "paper":
            for m in net.modules():
                if isinstance(m, _DROP):
                    m.forward = (lambda mod: lambda x: masks[0].apply(mod, x))(m)
                    patched.append(m)

        layout = _layout(net)

        def run(x: torch.Tensor, seeds: Sequence[int] | None = None) -> torch.Tensor:
            seeds = list(seeds) if seeds is not None else [0] * len(x)
            if len(seeds) != len(x):
                raise ValueError(f"{len(seeds)} seeds for a batch of {len(x)}")
            masks[0] = _Masks(seeds)
            return net(x.contiguous(memory_format=layout) if x.dim() == 4 else x)

        yield run
    finally:
        for m in patched:
            del m.forward  # the class's forward again
        for m, training in saved:
            m.training = training


def _layout(net: nn.Module) -> torch.memory_format:
    """channels_last where the net's convolution weights are (:class:`ganctl.use.translator.Translator`
    puts a CPU net there), so that its inputs match them; else NCHW."""
    for p in net.parameters():
        if p.dim() == 4:
            return torch.channels_last if p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous() \
                else torch.contiguous_format
    return torch.contiguous_format


class _Stop(Exception):
    """Raised by a hook: the statistics of one layer are gathered, the rest of the net is not run."""


def _order(layers: list[nn.Module], run: Callable[[], object]) -> list[nn.Module]:
    """``layers`` in the order a forward pass runs them (the registration order need not be it)."""
    seen: list[nn.Module] = []
    hooks = [m.register_forward_pre_hook(lambda mod, args: seen.append(mod)) for m in layers]
    try:
        run()
    finally:
        for h in hooks:
            h.remove()
    return list(dict.fromkeys(seen))


@torch.no_grad()
def gather_stats(net: nn.Module, mode: str, batches: Callable[[], Iterable[tuple[torch.Tensor, Sequence[int]]]],
                 autocast=contextlib.nullcontext) -> Stats:
    """Each adaptive norm layer's mean and biased variance over every input that ``batches()``
    yields (with the inputs' dropout seeds), as if they were all one batch: layer by layer in the
    order they run, each measured with the layers before it fixed at their gathered statistics,
    so the result is exactly batch norm's over the union (in float64 sums), whatever the chunking.
    Costs one partial forward pass per layer."""
    layers = adaptive_norms(net, mode)
    if not layers:
        return {}
    stats: Stats = {}
    first = next(iter(batches()))
    with batched(net, mode) as run, autocast():
        order = _order(layers, lambda: run(first[0][:1], list(first[1])[:1]))
    for layer in order:
        acc: list = [0.0, 0.0, 0]

        def hook(mod, args, acc=acc):
            x = args[0].double()
            acc[0] = acc[0] + x.sum(dim=(0, 2, 3))
            acc[1] = acc[1] + (x * x).sum(dim=(0, 2, 3))
            acc[2] += x.numel() // x.shape[1]
            raise _Stop

        handle = layer.register_forward_pre_hook(hook)
        try:
            with batched(net, mode, stats=stats) as run, autocast():
                for x, seeds in batches():
                    with contextlib.suppress(_Stop):
                        run(x, seeds)
        finally:
            handle.remove()
        mean = acc[0] / acc[2]
        var = (acc[1] / acc[2] - mean * mean).clamp_min(0)
        stats[layer] = (mean.float().cpu(), var.float().cpu())
    return stats
