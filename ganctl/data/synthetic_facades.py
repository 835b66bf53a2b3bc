"""synthetic-facades: CMP-Facades-like label maps and their shaded renderings, drawn here.

A stand-in for the facades archive that needs no download: label maps in the CMP Facades colours
and renderings derived from them deterministically, so a pix2pix generator can learn the mapping.
Pair ``i`` depends only on ``(seed, i)``, the same on every platform.
"""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from ganctl.core import seeds
from ganctl.data import catalog
from ganctl.data.pair_decoding import workers

# The 12 CMP Facades classes and their label colours: MATLAB's jet(12), one colour per class in
# the CMP label order, the colour map of the facades label maps (the order is not checked against
# the real archive, which cannot be downloaded here).
FACADES_CLASSES = (
    "background", "facade", "window", "door", "cornice", "sill",
    "balcony", "blind", "deco", "molding", "pillar", "shop",
)
FACADES_PALETTE = (
    (0, 0, 170), (0, 0, 255), (0, 85, 255), (0, 170, 255), (0, 255, 255), (85, 255, 170),
    (170, 255, 85), (255, 255, 0), (255, 170, 0), (255, 85, 0), (255, 0, 0), (170, 0, 0),
)
_C = {name: i for i, name in enumerate(FACADES_CLASSES)}

# what each class looks like in a rendering (RGB, 0..1); the wall colour varies per image
_MATERIAL = {
    "window": (0.16, 0.22, 0.30), "door": (0.38, 0.22, 0.12), "cornice": (0.86, 0.84, 0.78),
    "sill": (0.80, 0.78, 0.72), "balcony": (0.22, 0.22, 0.24), "blind": (0.24, 0.40, 0.26),
    "deco": (0.78, 0.66, 0.42), "molding": (0.84, 0.80, 0.72), "pillar": (0.74, 0.72, 0.68),
    "shop": (0.10, 0.12, 0.14),
}
_SKY = (0.45, 0.62, 0.95)
_WALLS = ((0.62, 0.30, 0.22), (0.86, 0.78, 0.62), (0.60, 0.60, 0.58), (0.80, 0.64, 0.34), (0.72, 0.52, 0.46))


def _facade_labels(rng: random.Random, s: int) -> torch.Tensor:
    """A label map (s, s) of class ids: sky, a building of floors and window columns, a door..."""

    def pick(lo: float, hi: float) -> int:  # an int in [lo*s, hi*s]; only rng.random(), stable across Pythons
        return int(s * (lo + (hi - lo) * rng.random()))

    lab = torch.full((s, s), _C["background"], dtype=torch.uint8)
    left, right, top = pick(0.0, 0.1), s - pick(0.0, 0.1), pick(0.0, 0.16)
    lab[top:, left:right] = _C["facade"]
    cornice = max(3, pick(0.02, 0.045))
    lab[top : top + cornice, max(0, left - 2) : min(s, right + 2)] = _C["cornice"]
    if rng.random() < 0.5:  # pillars at the building's edges
        pw = max(3, pick(0.015, 0.03))
        lab[top + cornice :, left : left + pw] = _C["pillar"]
        lab[top + cornice :, right - pw : right] = _C["pillar"]
    floors = 3 + int(rng.random() * 4)
    cols = 3 + int(rng.random() * 4)
    y0 = top + cornice
    ground = (s - y0) * 1.3 / (floors + 0.3)  # the ground floor is taller
    fh = (s - y0 - ground) / (floors - 1)
    cw = (right - left) / cols
    win_w, win_h = 0.38 + 0.2 * rng.random(), 0.5 + 0.15 * rng.random()
    blinds, deco, shop = rng.random() < 0.4, rng.random() < 0.35, rng.random() < 0.5
    balcony_floors = {f for f in range(floors - 1) if rng.random() < 0.3}
    door_col = int(rng.random() * cols)
    for f in range(floors - 1):
        fy = y0 + f * fh
        if f and rng.random() < 0.4:  # a molding band between floors
            lab[int(fy) : int(fy) + max(2, s // 100), left:right] = _C["molding"]
        wy0, wy1 = int(fy + fh * (1 - win_h) * 0.6), int(fy + fh * (1 - win_h) * 0.6 + fh * win_h)
        for c in range(cols):
            cx = left + (c + 0.5) * cw
            wx0, wx1 = int(cx - cw * win_w / 2), int(cx + cw * win_w / 2)
            lab[wy0:wy1, wx0:wx1] = _C["window"]
            lab[wy1 : wy1 + max(2, s // 80), wx0 - 1 : wx1 + 1] = _C["sill"]
            if blinds:
                bw = max(2, int(cw * 0.08))
                lab[wy0:wy1, max(0, wx0 - bw) : wx0] = _C["blind"]
                lab[wy0:wy1, wx1 : wx1 + bw] = _C["blind"]
            if deco:
                lab[max(0, wy0 - max(3, s // 50)) : wy0 - 1, wx0:wx1] = _C["deco"]
        if f in balcony_floors:
            by0 = int(wy0 + (wy1 - wy0) * 0.6)
            lab[by0 : wy1 + max(2, s // 80), int(left + cw * 0.15) : int(right - cw * 0.15)] = _C["balcony"]
    gy = int(y0 + (floors - 1) * fh)
    for c in range(cols):
        cx = left + (c + 0.5) * cw
        if c == door_col:
            dx0, dx1 = int(cx - cw * 0.22), int(cx + cw * 0.22)
            lab[int(gy + (s - gy) * 0.2) :, dx0:dx1] = _C["door"]
        elif shop:
            lab[int(gy + (s - gy) * 0.15) : s - max(2, s // 40), int(cx - cw * 0.42) : int(cx + cw * 0.42)] = _C["shop"]
        else:
            wx0, wx1 = int(cx - cw * win_w / 2), int(cx + cw * win_w / 2)
            lab[int(gy + (s - gy) * 0.25) : int(gy + (s - gy) * 0.75), wx0:wx1] = _C["window"]
    return lab


def _hash_noise(h: int, w: int, seed: int) -> torch.Tensor:
    """Per-pixel noise in [-1, 1) from an integer hash of (x, y, seed): the same on every platform."""
    y = torch.arange(h, dtype=torch.int64)[:, None]
    x = torch.arange(w, dtype=torch.int64)[None, :]
    # only the low 32 bits count: reduce the seed's term first so any seed fits int64
    v = (x * 374761393 + y * 668265263 + ((seed * 1442695041) & 0xFFFFFFFF)) & 0xFFFFFFFF
    v = ((v ^ (v >> 13)) * 1274126177) & 0xFFFFFFFF
    v = v ^ (v >> 16)
    return (v & 0xFFFF).float() / 32768.0 - 1.0


def _shifted(mask: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """A batch of masks (N, H, W) moved down by dy and right by dx (False shifted in)."""
    out = torch.zeros_like(mask)
    h, w = mask.shape[-2:]
    out[:, dy:, dx:] = mask[:, : h - dy, : w - dx]
    return out


def _render(lab: torch.Tensor, walls: torch.Tensor, grain: torch.Tensor) -> torch.Tensor:
    """Shaded renderings (N, 3, s, s) uint8 of label maps (N, s, s): materials, textures, shadows, light."""
    n, s, _ = lab.shape
    c = _C
    y = torch.arange(s, dtype=torch.float32).view(1, s, 1) / s
    x = torch.arange(s, dtype=torch.float32).view(1, 1, s) / s
    yi = torch.arange(s).view(1, s, 1)
    xi = torch.arange(s).view(1, 1, s)
    # per-image material table (N, 12, 3), in 0..255: the wall colour varies, the rest is fixed
    table = torch.zeros(n, len(FACADES_CLASSES), 3)
    for name, rgb in {**_MATERIAL, "background": _SKY}.items():
        table[:, c[name]] = torch.tensor(rgb)
    table[:, c["facade"]] = torch.tensor(_WALLS)[walls]
    table *= 255
    is_ = [lab == k for k in range(len(FACADES_CLASSES))]

    # textures from the pixel grid, so a generator can learn them from the labels alone
    brick = ((yi % 8) == 0) | (((xi + 8 * ((yi // 8) % 2)) % 16) == 0)
    reflect = ((xi + yi) % 24) < 5
    shade = torch.ones(n, s, s)
    for cls, where, value in (
        ("facade", brick, 0.82),
        ("window", reflect, 1.2),
        ("window", ~reflect, 0.85),
        ("shop", ((xi + yi) % 32) < 4, 1.5),
        ("door", (xi % 6) == 0, 0.7),  # planks
        ("blind", (yi % 3) == 0, 0.65),  # slats
        ("balcony", (xi % 5) < 2, 0.55),  # bars
    ):
        shade.masked_fill_(is_[c[cls]] & where, value)
    shade = torch.where(is_[c["pillar"]], 1.1 - 0.25 * (xi % 12) / 12, shade)
    shade = torch.where(is_[c["background"]], 0.6 + 0.45 * y, shade)  # sky: lighter towards the horizon

    # shadows cast down-right by what sticks out, and inside the top of each opening
    reach = max(2, s // 64)
    sticks_out = is_[c["cornice"]] | is_[c["sill"]] | is_[c["balcony"]] | is_[c["molding"]] | is_[c["deco"]]
    opening = is_[c["window"]] | is_[c["door"]] | is_[c["shop"]]
    cast, inner = torch.zeros_like(sticks_out), torch.zeros_like(opening)
    for d in range(1, reach + 1):
        cast |= _shifted(sticks_out, d, d // 2)
        inner |= _shifted(~opening, d, 0)
    shade[cast & (is_[c["facade"]] | is_[c["pillar"]])] *= 0.62
    shade[opening & inner] *= 0.55

    # daylight from the top left, and a fine grain
    shade *= 1.08 - 0.16 * y - 0.08 * x
    out = torch.empty(n, 3, s, s, dtype=torch.uint8)
    li = lab.long()
    for ch in range(3):
        value = torch.addcmul(grain, table[:, :, ch].gather(1, li.view(n, -1)).view(n, s, s), shade)
        out[:, ch] = value.clamp_(0, 255).add_(0.5)  # to uint8 truncates: +0.5 rounds
    return out


def synthetic_facades(n: int, size: int = 256, seed: int = 0, start: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` synthetic facades: (renderings, label maps), uint8 (n, 3, size, size).

    Label maps are flat colours of :data:`FACADES_PALETTE`; renderings are derived from them
    deterministically (per-class materials, pixel-grid textures, cast shadows, light). Pair ``i``
    depends only on ``(seed, start + i)``.
    """
    keys = [seeds.derive(seed, start + i) for i in range(n)]
    rngs = [random.Random(k) for k in keys]
    photos = torch.empty((n, 3, size, size), dtype=torch.uint8)
    labels = torch.empty_like(photos)
    palette = torch.tensor(FACADES_PALETTE, dtype=torch.uint8)
    with _one_thread():  # many small ops: a thread team only adds overhead (and stalls on busy machines)
        grain = 0.045 * 255 * _hash_noise(size, size, seed)  # a fine grain, the same tile in every image
        for i0 in range(0, n, 8):  # a few images at a time stay in the CPU cache
            chunk = rngs[i0 : i0 + 8]
            lab = torch.stack([_facade_labels(rng, size) for rng in chunk])
            walls = torch.tensor([int(rng.random() * len(_WALLS)) for rng in chunk], dtype=torch.long)
            photos[i0 : i0 + len(chunk)] = _render(lab, walls, grain)
            labels[i0 : i0 + len(chunk)] = palette[lab.long()].permute(0, 3, 1, 2)
    return photos, labels


class _one_thread:
    def __enter__(self):
        self.threads = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc):
        torch.set_num_threads(self.threads)


def write_synthetic_facades(dest: Path, counts: dict[str, int], size: int = 256, seed: int = 0) -> Path:
    """Write the pairs in the aligned layout (``split/N.png``, rendering | label map) to the new
    folder ``dest``, atomically; return ``dest``."""
    from PIL import Image

    from ganctl.core.atomic import atomic_dir

    def save(path: Path, pixels: bytes) -> None:
        Image.frombytes("RGB", (2 * size, size), pixels).save(path, compress_level=1)

    start = 0
    with atomic_dir(dest) as tmp, ThreadPoolExecutor(max_workers=workers()) as pool:
        pending = []
        for split, n in counts.items():
            (tmp / split).mkdir()
            for i0 in range(0, n, 8):  # encode PNGs in threads while the next pairs are drawn
                photos, labels = synthetic_facades(min(8, n - i0), size, seed, start + i0)
                with _one_thread():
                    ab = torch.cat([photos, labels], dim=3).permute(0, 2, 3, 1).contiguous()
                for k in range(ab.shape[0]):
                    path = tmp / split / f"{i0 + k + 1}.png"
                    pending.append(pool.submit(save, path, ab[k].numpy().tobytes()))
            start += n
        for job in pending:
            job.result()
    return dest


def ensure_synthetic_facades(entry: catalog.CatalogEntry) -> Path:
    """The synthetic-facades folder in the store, generated on first use."""
    dest = entry.data_dir()
    if dest.is_dir():
        return dest
    from ganctl.core.storedirs import datasets_dir, ensure_cache_dir

    ensure_cache_dir(datasets_dir())
    try:
        write_synthetic_facades(dest, entry.expected_counts, entry.native_size)
    except OSError:
        if not dest.is_dir():  # else another process generated it at the same time
            raise
    return dest
