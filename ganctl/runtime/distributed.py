"""Multi-process training on ``torch.distributed``: the world a process is part of, and the few
collectives training needs.

A process is a rank of a job when torchrun (or ``ganctl train --nproc-per-node``, which calls
torchrun's own machinery) set ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` in its environment;
otherwise it is the single process of a world of one, and every function here does nothing.

Design (see docs/distributed.md):

- **One random stream for every rank.** All ranks seed alike, so their parameters start identical
  (they are broadcast from rank 0 anyway) and every draw a step makes is drawn for the *global*
  batch, of which each rank keeps its rows (:func:`local_rows`). N processes then compute what one
  process computes on the global batch, up to the order of float additions, and rank 0's RNG state
  is every rank's: the checkpoint it saves resumes every rank.
- **Gradients are averaged by hand**, one flattened all-reduce per optimizer step, as stylegan3
  does, not by DDP wrappers: the generator step runs the discriminator frozen (its parameters have
  no gradient) and WGAN-GP differentiates twice, neither of which DDP supports as such.
- **Batch statistics are global** (:func:`sync_batch_norm`): torch's own SyncBatchNorm refuses CPU
  tensors, so gloo runs could not use it.
- **Dropout masks are global too** (:func:`global_dropout`): a plain dropout layer draws its mask
  for the rows it is given from the stream every rank shares, so every rank would drop the same
  units of its rows; the mask is drawn for the global batch instead, and each rank keeps its rows.

This module imports torch only inside its functions: the CLI reads the world before torch loads.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ganctl.core.errors import GanctlError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from ganctl.runtime.runtime import Runtime

DEFAULT_TIMEOUT_S = 60  # a collective that waits longer than this ends every rank of the job
# what the other ranks wait at an epoch's end for rank 0's pictures, evaluation and checkpoint
# (evaluating a large set takes minutes; a rank 0 that dies ends the job sooner, through torchrun)
EPOCH_END_WAIT_S = 3600


@dataclass(frozen=True)
class World:
    """Where this process stands in its job: ``rank`` of ``size`` in all, ``local_rank`` of
    ``local_size`` on this machine."""

    rank: int = 0
    local_rank: int = 0
    size: int = 1
    local_size: int = 1

    @property
    def main(self) -> bool:
        """Rank 0: the one process that writes the run."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.size > 1


_world = World()
_control = None  # a gloo group for flags: on GPUs, agreeing on a Ctrl-C needs no device sync


def _env_int(environ, key: str, default: int) -> int:
    value = environ.get(key)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise GanctlError(f"the environment variable {key}={value!r} is not a whole number (torchrun sets it)") from None


def from_env(environ=None) -> World:
    """The world torchrun's variables describe (a world of one without them). Torch-free."""
    environ = os.environ if environ is None else environ
    size = _env_int(environ, "WORLD_SIZE", 1)
    rank = _env_int(environ, "RANK", 0)
    local_rank = _env_int(environ, "LOCAL_RANK", rank)
    local_size = _env_int(environ, "LOCAL_WORLD_SIZE", size)
    if size < 1 or not 0 <= rank < size or not 0 <= local_rank < local_size:
        raise GanctlError(f"inconsistent torchrun environment: RANK={rank}, LOCAL_RANK={local_rank}, WORLD_SIZE={size}, "
                          f"LOCAL_WORLD_SIZE={local_size}")
    return World(rank, local_rank, size, local_size)


def world() -> World:
    """The world of this process once :func:`start` joined it (a world of one before, and after :func:`stop`)."""
    return _world


def is_main() -> bool:
    return _world.main


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def check_batch(batch_size: int, size: int, what: str = "--batch-size") -> None:
    """The global batch must split evenly over the ranks."""
    if size > 1 and batch_size % size:
        lower, upper = batch_size // size * size, -(-batch_size // size) * size
        near = f"{lower} or {upper}" if lower else f"{upper}"
        raise GanctlError(f"{what} {batch_size} is the global batch and must divide by the {size} processes: use {near}")


def start(rt: Runtime, timeout_s: float = DEFAULT_TIMEOUT_S) -> Runtime:
    """Join the job the environment describes: the process group (NCCL on GPUs, gloo on CPUs),
    the device ``cuda:LOCAL_RANK``, and ``cpus // local processes`` threads. Returns the runtime
    on this rank's device; a world of one returns ``rt`` as it is."""
    global _world
    w = from_env()
    if not w.active:
        return rt
    if timeout_s <= 0:
        raise GanctlError("--dist-timeout must be a positive number of seconds")
    import datetime

    import torch
    import torch.distributed as dist

    torch.set_num_threads(max(1, usable_cpus() // w.local_size))
    device_id = None
    if rt.device.type == "cuda":
        if w.local_rank >= torch.cuda.device_count():
            raise GanctlError(f"rank {w.rank} is local process {w.local_rank}, but this machine has "
                              f"{torch.cuda.device_count()} GPU(s): start at most that many processes on it")
        device_id = torch.device("cuda", w.local_rank)
        torch.cuda.set_device(device_id)
        rt = replace(rt, device=device_id)
        backend = "nccl"
    elif rt.device.type == "cpu":
        backend = "gloo"
    else:
        raise GanctlError(f"multi-process training runs on CUDA GPUs or CPUs, not on {rt.device.type}: pass --device cpu")
    dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s), device_id=device_id)
    global _control
    _control = dist.new_group(backend="gloo") if backend == "nccl" else None
    _world = w
    return rt


def stop() -> None:
    """Leave the job (after every rank reached this point)."""
    global _world
    if not _world.active:
        return
    import torch.distributed as dist

    if dist.is_initialized():
        # every rank out of its last collective before any tears the group down: rank 0 hosts the
        # group's store, and a rank still talking to it when it goes aborted in gloo's threads
        # ("terminate called without an active exception", seen once in the two-process tests)
        with contextlib.suppress(Exception):  # a peer that died: leave anyway
            dist.barrier()
        dist.destroy_process_group()
    global _control
    _world, _control = World(), None


@contextmanager
def session(rt: Runtime, timeout_s: float = DEFAULT_TIMEOUT_S) -> Iterator[Runtime]:
    """:func:`start` ... :func:`stop`."""
    rt = start(rt, timeout_s)
    try:
        yield rt
    finally:
        stop()


def barrier() -> None:
    if _world.active:
        import torch.distributed as dist

        dist.barrier()


def wait_for_main(tag: str) -> None:
    """Rank 0 says it reached ``tag``; the other ranks wait until it has (for up to
    :data:`EPOCH_END_WAIT_S`, longer than a collective may wait), through the job's key-value store."""
    if not _world.active:
        return
    import datetime

    import torch.distributed as dist

    store = dist.distributed_c10d._get_default_store()
    key = f"ganctl/{tag}"
    if _world.main:
        store.set(key, "1")
    else:
        store.wait([key], datetime.timedelta(seconds=EPOCH_END_WAIT_S))


@contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block first (a download, a decoded cache), the others after it."""
    if not _world.main:
        barrier()
    yield
    if _world.main:
        barrier()


def broadcast_object(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (a config, so every rank trains the same run)."""
    if not _world.active:
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def broadcast_modules(*modules: nn.Module) -> None:
    """Rank 0's parameters and buffers into every rank's copies."""
    if not _world.active:
        return
    import torch
    import torch.distributed as dist

    with torch.no_grad():
        for module in modules:
            for t in module.state_dict().values():
                dist.broadcast(t, src=0)


def average_gradients(params: Iterable[torch.Tensor]) -> None:
    """Every gradient becomes its mean over the ranks: one flattened all-reduce.

    Every rank runs the same code on the same networks, so the same parameters have gradients
    (a frozen network's have none, and are skipped alike on every rank)."""
    if not _world.active:
        return
    import torch
    import torch.distributed as dist

    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat.div_(_world.size)
    for g, part in zip(grads, flat.split([g.numel() for g in grads]), strict=True):
        g.copy_(part.view_as(g))


def any_rank(flag: bool) -> bool:
    """True on every rank when ``flag`` is true on any (a Ctrl-C that reached some ranks only)."""
    if not _world.active:
        return flag
    import torch
    import torch.distributed as dist

    t = torch.tensor([1.0 if flag else 0.0])  # on the CPU: gloo's group, or the control one beside NCCL
    dist.all_reduce(t, op=dist.ReduceOp.MAX, group=_control)
    return bool(t.item())


def local_rows(x: torch.Tensor) -> torch.Tensor:
    """This rank's rows of a tensor drawn for the global batch (rank ``r`` keeps the ``r``-th of
    ``size`` equal parts), so that a draw is the same whatever the number of processes."""
    if not _world.active:
        return x
    n = x.shape[0] // _world.size
    return x[_world.rank * n : (_world.rank + 1) * n]


def global_rows(n: int) -> int:
    """How many rows to draw so that this rank's ``n`` are its part of the global batch."""
    return n * _world.size


def _swap(module: nn.Module, wanted: Callable[[nn.Module], bool], make: Callable[[nn.Module], nn.Module]) -> nn.Module:
    """``module`` with each sub-module that is ``wanted`` replaced by ``make(it)``, in place."""
    for name, child in list(module.named_children()):
        if wanted(child):
            setattr(module, name, make(child))
        else:
            _swap(child, wanted, make)
    return module


def sync_batch_norm(module: nn.Module) -> nn.Module:
    """``module`` with every batch norm replaced by a batch norm whose training statistics are the global batch's (same parameters,
    buffers and state-dict keys, so checkpoints load into the plain networks)."""
    from torch import nn

    synced = sync_batch_norm_class()
    return _swap(module, lambda m: isinstance(m, nn.modules.batchnorm._BatchNorm) and not isinstance(m, synced), _synced)


def _synced(bn):
    out = sync_batch_norm_class()(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
    if bn.affine:
        out.weight, out.bias = bn.weight, bn.bias
    if bn.track_running_stats:
        out.running_mean, out.running_var, out.num_batches_tracked = bn.running_mean, bn.running_var, bn.num_batches_tracked
    out.train(bn.training)
    return out


def global_dropout(module: nn.Module) -> nn.Module:
    """``module`` with every ``nn.Dropout`` replaced by one whose mask is drawn for the global batch
    (from the random stream all ranks share), of which this rank keeps its rows: N processes drop
    what one process drops training on the global batch (on the CPU, the very same units)."""
    from torch import nn

    def make(d: nn.Dropout) -> nn.Module:
        out = _build_global_dropout()(d.p, d.inplace)
        out.train(d.training)
        return out

    return _swap(module, lambda m: type(m) is nn.Dropout, make)


@functools.cache
def _build_global_dropout() -> type:
    import torch
    from torch import nn

    class GlobalDropout(nn.Dropout):
        """Dropout with its mask drawn for the global batch; plain dropout in eval mode or a world of one."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if not (self.training and _world.active and 0 < self.p < 1 and x.numel()):
                return super().forward(x)
            # as ATen's CPU dropout draws it: noise shaped like the input, bernoulli(1 - p), / (1 - p)
            layout = (torch.channels_last if x.dim() == 4 and not x.is_contiguous()
                      and x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format)
            noise = torch.empty((x.shape[0] * _world.size, *x.shape[1:]), dtype=x.dtype, device=x.device,
                                memory_format=layout)
            noise = local_rows(noise.bernoulli_(1 - self.p).div_(1 - self.p))
            return x.mul_(noise) if self.inplace else x * noise

    return GlobalDropout


def sync_batch_norm_class() -> type:
    """:class:`SyncBatchNorm`, built on first use (it needs torch)."""
    return _build_sync_batch_norm()


@functools.cache
def _build_sync_batch_norm() -> type:
    import torch
    import torch.distributed as dist
    from torch import nn

    class SumOverRanks(torch.autograd.Function):
        """The sum over the ranks; its gradient is the sum of theirs (each rank's loss depends on
        every rank's input through it)."""

        @staticmethod
        def forward(ctx, x):
            x = x.clone()
            dist.all_reduce(x)
            return x

        @staticmethod
        def backward(ctx, grad):
            grad = grad.clone()
            dist.all_reduce(grad)
            return grad

    class SyncBatchNorm(nn.modules.batchnorm._BatchNorm):
        """Batch norm whose training statistics are those of the global batch, on any device.

        The per-channel sums of x and x^2 and the count are all-reduced (differentiably, so the
        backward pass also sums over ranks); in eval mode, or in a world of one, it is plain batch
        norm. Statistics are computed in fp32 whatever autocast does."""

        def _check_input_dim(self, input):
            if input.dim() < 2:
                raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if not (self.training and _world.active):
                return super().forward(x)
            dims = [d for d in range(x.dim()) if d != 1]
            x32 = x.float()
            count = torch.full((1,), x32.numel() / x32.shape[1], device=x.device)
            stats = SumOverRanks.apply(torch.cat([x32.sum(dims), (x32 * x32).sum(dims), count]))
            c = x.shape[1]
            n = stats[-1]
            mean = stats[:c] / n
            var = (stats[c : 2 * c] / n - mean * mean).clamp_min(0)
            if self.track_running_stats:
                with torch.no_grad():
                    self.num_batches_tracked.add_(1)
                    m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                    self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                    self.running_var.mul_(1 - m).add_(var.detach() * (n / (n - 1).clamp_min(1)), alpha=m)  # n stays on the device: no sync
            shape = [1, c] + [1] * (x.dim() - 2)
            y = (x32 - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
            if self.affine:
                y = y * self.weight.float().view(shape) + self.bias.float().view(shape)
            return y.to(x.dtype)

    return SyncBatchNorm
