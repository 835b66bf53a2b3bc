"""What the training loop trains on: feeders turn an epoch's batch order into tensors on the device.

- :class:`ImageFeeder`: single images (and labels, for conditional models), decoded in memory
  (moved to the GPU once when there is one).
- :class:`PairFeeder`: (input, target) pairs with the pix2pix paper's jitter (resize, the same
  random crop and flip on both sides); a set too large to hold decoded is read a batch ahead.
- :class:`UnpairedFeeder`: an A image and a B image per row (CycleGAN), B drawn at random, each
  cropped and flipped on its own.

Randomness that decides batches (order, crops, flips) comes from generators seeded with
(seed, epoch) and (seed, epoch, batch), so it never needs saving for an exact resume.

In a multi-process run (:mod:`ganctl.runtime.distributed`) ``batch_size`` is the global batch: every rank
walks the same order and takes its own equal part of each batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait

import torch

from ganctl.core import seeds
from ganctl.data.pair_jitter import crop_flip, paired_jitter
from ganctl.runtime import distributed
from ganctl.runtime.runtime import Runtime


def epoch_permutation(seed: int, epoch: int, n: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seeds.derive(seed, epoch))
    return torch.randperm(n, generator=g)


def batch_generator(seed: int, epoch: int, batch: int) -> torch.Generator:
    w = distributed.world()
    if w.active:  # each rank jitters its own part of the batch: a stream of its own
        return torch.Generator().manual_seed(seeds.derive(seed, epoch, batch, "rank", w.rank))
    return torch.Generator().manual_seed(seeds.derive(seed, epoch, batch))


def to_unit(x: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    """uint8 images -> float in [-1, 1] on ``device``."""
    x = x.to(device, non_blocking=True).float().div_(127.5).sub_(1.0)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def orient(a: torch.Tensor, b: torch.Tensor, direction: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(input, target) from the stored (A, B) sides."""
    return (a, b) if direction == "AtoB" else (b, a)


class _Feeder:
    """Epochs of ``n // batch_size`` batches in a seeded order (the last partial batch is dropped:
    tiny batches upset batch norm); subclasses make the tensors."""

    # where the data a batch is indexed from lives: the epoch's order goes there once, so that no
    # batch copies its indices to the GPU (a copy from pageable memory makes the host wait)
    index_device: torch.device | None = None

    def __init__(self, n: int, batch_size: int, seed: int):
        self.n, self.seed = n, seed
        self.batch_size = min(batch_size, n)

    def __len__(self) -> int:
        return self.n

    def batches_per_epoch(self) -> int:
        return self.n // self.batch_size

    def epoch(self, epoch: int, first: int = 0) -> Iterator[dict]:
        perm, bs, batches = epoch_permutation(self.seed, epoch, self.n), self.batch_size, self.batches_per_epoch()
        if self.index_device is not None:  # on a GPU from pinned memory, so the host does not wait for the copy
            cuda = self.index_device.type == "cuda"
            perm = (perm.pin_memory() if cuda else perm).to(self.index_device, non_blocking=cuda)
        mine = distributed.local_rows  # this rank's part of each global batch (all of it in one process)
        for b in range(first, batches):
            batch = self.batch(mine(perm[b * bs : (b + 1) * bs]), epoch, b)
            if b + 1 < batches:  # the next batch is prepared while this one trains
                self.prefetch(mine(perm[(b + 1) * bs : (b + 2) * bs]), epoch, b + 1)
            yield batch

    def prefetch(self, idx: torch.Tensor, epoch: int, b: int) -> None:
        """Start preparing batch ``b`` of ``epoch`` (nothing to do by default)."""

    def batch(self, idx: torch.Tensor, epoch: int, b: int) -> dict:
        raise NotImplementedError


class ImageFeeder(_Feeder):
    """Batches ``{"real": images, "labels": labels or None}``."""

    def __init__(self, data, batch_size: int, seed: int, rt: Runtime, conditional: bool, channels_last: bool):
        super().__init__(len(data), batch_size, seed)
        self.rt, self.channels_last = rt, channels_last
        x, y = data.images, (data.labels if conditional else None)
        if rt.device.type != "cpu" and x.numel() < 2**31:  # small data: keep it on the GPU
            x = x.to(rt.device)
            y = y.to(rt.device) if y is not None else None
            self.index_device = rt.device
        self.x, self.y = x, y

    def batch(self, idx: torch.Tensor, epoch: int, b: int) -> dict:
        idx = idx.to(self.x.device)
        labels = self.y[idx].to(self.rt.device) if self.y is not None else None
        return {"real": to_unit(self.x[idx], self.rt.device, self.channels_last), "labels": labels}


class PairFeeder(_Feeder):
    """Batches ``{"input": ..., "target": ...}`` of jittered pairs cropped to ``crop``."""

    def __init__(self, data, batch_size: int, seed: int, rt: Runtime, direction: str, crop: int, channels_last: bool):
        super().__init__(len(data), batch_size, seed)
        self._jitter = paired_jitter
        self.rt, self.channels_last, self.direction, self.crop = rt, channels_last, direction, crop
        self.train_data = data
        # on a GPU, a set decoded in memory moves there once (facades at 286: 200 MB), and the
        # crops and flips run there too
        self.on_device = rt.device.type != "cpu" and not getattr(data, "lazy", False) and data.a.numel() < 2**31
        if self.on_device:
            self.a, self.b = data.a.to(rt.device), data.b.to(rt.device)
            self.index_device = rt.device
        self._ahead_pool: ThreadPoolExecutor | None = None
        self._ahead: tuple[tuple, Future] | None = None

    def prefetch(self, idx: torch.Tensor, epoch: int, b: int) -> None:
        """Start preparing batch ``b`` of ``epoch`` while the current one trains.

        Only a set too large to hold decoded (:class:`~ganctl.data.paired.LazyPairedData`) has work
        to do ahead: reading and decoding the JPEGs, the crop and flip, and on a GPU the copy into
        pinned memory, so that the copy to the device does not wait for the CPU. A DataLoader's
        workers do this for the seeds; here one thread runs a batch ahead, and the decoding inside
        it uses the set's own thread pool (sized to the machine).
        """
        if self.on_device or not getattr(self.train_data, "lazy", False):
            return
        if self._ahead_pool is None:
            self._ahead_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ganctl-prefetch")
        key = (tuple(idx.tolist()), epoch, b)
        self._ahead = (key, self._ahead_pool.submit(self._host_batch, idx.cpu(), epoch, b))

    def _host_batch(self, idx: torch.Tensor, epoch: int, b: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(input, target) uint8 on the CPU: decoded, jittered, pinned when a GPU will take them."""
        a, bb = self.train_data.batch(idx)
        a, bb = self._jitter(a, bb, self.crop, batch_generator(self.seed, epoch, b))
        x, y = orient(a, bb, self.direction)
        if self.rt.device.type == "cuda":
            x, y = x.pin_memory(), y.pin_memory()
        return x, y

    def batch(self, idx: torch.Tensor, epoch: int, b: int) -> dict:
        if self.on_device:
            idx = idx.to(self.rt.device)
            a, bb = self.a[idx], self.b[idx]
            a, bb = self._jitter(a, bb, self.crop, batch_generator(self.seed, epoch, b))
            x, y = orient(a, bb, self.direction)
        else:
            ahead, self._ahead = self._ahead, None
            if ahead is not None and ahead[0] == (tuple(idx.tolist()), epoch, b):
                x, y = ahead[1].result()  # a decoding error is raised here, for this batch
            else:
                if ahead is not None:  # not the batch asked for (never in the loop's order)
                    wait([ahead[1]])
                x, y = self._host_batch(idx.cpu(), epoch, b)
        return {"input": to_unit(x, self.rt.device, self.channels_last), "target": to_unit(y, self.rt.device, self.channels_last)}


def unpaired_order(seed: int, epoch: int, n_a: int, n_b: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(A indices, B indices) of one epoch's max(n_a, n_b) rows, from a generator seeded with (seed, epoch).

    As the official unaligned dataset with ``--serial_batches`` off (data/unaligned_dataset.py): the
    epoch walks a permutation of range(max(n_a, n_b)), row ``i`` takes A image ``i % n_a`` and a B
    image drawn uniformly at random (``random.randint(0, size_B - 1)``), so A's images come in a new
    order each epoch and meet other B images. All of it is drawn up front from one seeded generator,
    so a resumed epoch is the same, and every process of a multi-process run walks the same rows.
    """
    n = max(n_a, n_b)
    g = torch.Generator().manual_seed(seeds.derive(seed, epoch))
    perm = torch.randperm(n, generator=g)
    return perm % n_a, torch.randint(0, n_b, (n,), generator=g)


class UnpairedFeeder(_Feeder):
    """Batches ``{"A": ..., "B": ...}``: unpaired images of the two domains, each randomly cropped to
    ``crop`` and flipped on its own (the official transform_A and transform_B), in [-1, 1].

    ``data`` is a :class:`~ganctl.data.unpaired.UnpairedData` (uint8 ``a`` and ``b`` at the load
    size; the domains may differ in size). An epoch is ``max(len(A), len(B)) // batch_size`` batches
    (:func:`unpaired_order`); the crops and flips of batch ``b`` come from (seed, epoch, b).
    """

    def __init__(self, data, batch_size: int, seed: int, rt: Runtime, crop: int, channels_last: bool):
        super().__init__(len(data), batch_size, seed)
        self.rt, self.channels_last, self.crop = rt, channels_last, crop
        self.n_a, self.n_b = data.a.shape[0], data.b.shape[0]
        if not 0 < crop <= data.a.shape[-1]:
            raise ValueError(f"crop size {crop} does not fit images loaded at {data.a.shape[-1]}")
        a, b = data.a, data.b
        # on a GPU the decoded set moves there once (horse2zebra at 286: 590 MB) and is cropped there
        if rt.device.type != "cpu" and a.numel() < 2**31 and b.numel() < 2**31:
            a, b = a.to(rt.device), b.to(rt.device)
            self.index_device = rt.device
        self.a, self.b = a, b

    def epoch(self, epoch: int, first: int = 0) -> Iterator[dict]:
        ia, ib = unpaired_order(self.seed, epoch, self.n_a, self.n_b)
        rows = torch.stack([ia, ib], dim=1)  # (n, 2): this rank's part of a batch is a slice of rows
        if self.index_device is not None:
            cuda = self.index_device.type == "cuda"
            rows = (rows.pin_memory() if cuda else rows).to(self.index_device, non_blocking=cuda)
        bs = self.batch_size
        for b in range(first, self.batches_per_epoch()):
            yield self.batch(distributed.local_rows(rows[b * bs : (b + 1) * bs]), epoch, b)

    def batch(self, idx: torch.Tensor, epoch: int, b: int) -> dict:
        """``idx``: (n, 2) rows of (A index, B index)."""
        g = batch_generator(self.seed, epoch, b)
        a = crop_flip(self.a[idx[:, 0]], self.crop, g)  # A's draws first, then B's: independent crops
        bb = crop_flip(self.b[idx[:, 1]], self.crop, g)
        return {"A": to_unit(a, self.rt.device, self.channels_last), "B": to_unit(bb, self.rt.device, self.channels_last)}


# ---------------------------------------------------------------- the data kinds' feeders
# (ganctl.families.familyspec.KINDS names these: each builds its kind's feeder for a run)


def image_feeder(data, cfg, rt: Runtime, channels_last: bool) -> ImageFeeder:
    return ImageFeeder(data, cfg.batch_size, cfg.seed, rt, bool(cfg.generator.get("num_classes")), channels_last)


def pair_feeder(data, cfg, rt: Runtime, channels_last: bool) -> PairFeeder:
    return PairFeeder(data, cfg.batch_size, cfg.seed, rt, cfg.data_args["direction"], cfg.image_size, channels_last)


def unpaired_feeder(data, cfg, rt: Runtime, channels_last: bool) -> UnpairedFeeder:
    return UnpairedFeeder(data, cfg.batch_size, cfg.seed, rt, cfg.image_size, channels_last)

