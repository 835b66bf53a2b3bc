"""synthetic-facades-unpaired: the synthetic facades as two unpaired domains, with aligned test pairs.

Domain A is label maps, domain B renderings, both drawn by :mod:`ganctl.data.synthetic_facades`.
The training images of A and B are different facades (facade ``i`` depends only on ``(seed, i)``:
A takes indices 0..nA-1, B the next nB), so no training label map has its rendering in trainB,
as with real unpaired data. The test split takes further indices and keeps both sides of each
facade under the same name (``testA/3.png`` is the label map of ``testB/3.png``), so a trained
A -> B generator can be scored against the truth (L1, PSNR, SSIM): see
:func:`ganctl.data.unpaired.alignment`. Needs no network; generated into the store on first use.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from ganctl.data import catalog
from ganctl.data.pair_decoding import workers
from ganctl.data.synthetic_facades import _one_thread, synthetic_facades

# not synthetic-facades' seed 0: none of these facades is one of its pairs
SEED = 1


def _plan(counts: dict[str, int]) -> list[tuple[str, int, int, bool]]:
    """(folder, first facade index, how many, label maps?) for each folder; test pairs share indices."""
    n_a, n_b = counts["trainA"], counts["trainB"]
    n_test = counts.get("testA", 0)
    if counts.get("testB", 0) != n_test:
        raise ValueError(f"testA and testB hold the same facades: their counts must match, not {n_test} and {counts.get('testB', 0)}")
    plan = [("trainA", 0, n_a, True), ("trainB", n_a, n_b, False)]
    if n_test:
        plan += [("testA", n_a + n_b, n_test, True), ("testB", n_a + n_b, n_test, False)]
    return plan


def write_synthetic_unpaired(dest: Path, counts: dict[str, int], size: int = 256, seed: int = SEED) -> Path:
    """Write trainA/ (label maps), trainB/ (renderings of other facades), testA/ and testB/ (the two
    sides of the same facades) as ``N.png`` to the new folder ``dest``, atomically; return ``dest``."""
    from PIL import Image

    from ganctl.core.atomic import atomic_dir

    def save(path: Path, pixels: bytes) -> None:
        Image.frombytes("RGB", (size, size), pixels).save(path, compress_level=1)

    with atomic_dir(dest) as tmp, ThreadPoolExecutor(max_workers=workers()) as pool:
        pending = []
        for folder, start, n, labels in _plan(counts):
            (tmp / folder).mkdir()
            for i0 in range(0, n, 8):  # PNGs are encoded in threads while the next facades are drawn
                photos, label_maps = synthetic_facades(min(8, n - i0), size, seed, start + i0)
                with _one_thread():
                    images = (label_maps if labels else photos).permute(0, 2, 3, 1).contiguous()
                for k in range(images.shape[0]):
                    pending.append(pool.submit(save, tmp / folder / f"{i0 + k + 1}.png", images[k].numpy().tobytes()))
        for job in pending:
            job.result()
    return dest


def ensure_synthetic_unpaired(entry: catalog.CatalogEntry) -> Path:
    """The set's folder (trainA/...) in the store, generated on first use."""
    dest = entry.data_dir()
    if dest.is_dir():
        return dest
    from ganctl.core.storedirs import datasets_dir, ensure_cache_dir

    ensure_cache_dir(datasets_dir())
    try:
        write_synthetic_unpaired(dest, entry.expected_counts, entry.native_size)
    except OSError:
        if not dest.is_dir():  # else another process generated it at the same time
            raise
    return dest


def facade(index: int, size: int, seed: int = SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """(label map, rendering) of facade ``index``, uint8 (3, size, size): what the set's files hold."""
    photos, labels = synthetic_facades(1, size, seed, index)
    return labels[0], photos[0]
