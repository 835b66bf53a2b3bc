"""Paired images for pix2pix: A|B pairs decoded once at the load size, and their shared jitter.

A dataset is a catalog name (``facades``, ``maps``, ``edges2shoes``, ``edges2handbags``,
``night2day``: downloaded; ``synthetic-facades``: generated here) or a folder in one of two layouts:

- aligned, the official pix2pix layout: ``train/``, ``val/``, ``test/`` of side-by-side A|B images;
  A is the left half, split at ``width // 2`` as the official ``AlignedDataset`` does;
- ``A/`` and ``B/`` sub-folders whose files pair up by name (optionally ``A/train``, ``B/train``...).

Both halves are resized to ``load_size`` x ``load_size`` with PIL's bicubic filter, as the official
``transforms.Resize([286, 286], BICUBIC)`` (not aspect-preserving). A pair that does not match, in
name or in size, is an error that names its files: the official ``combine_A_and_B.py`` drops such
pairs silently, and users then find empty or short datasets (pytorch-CycleGAN-and-pix2pix #1121,
#1515, #1576).

Sets that fit the memory budget are decoded once, in threads (PIL releases the GIL), and kept in
memory as uint8; larger ones (edges2shoes, edges2handbags, night2day at 286) are decoded per batch.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ganctl import seeds
from ganctl.data import catalog
from ganctl.data.datasets import IMAGE_SUFFIXES, is_path_like
from ganctl.errors import DatasetError, did_you_mean

WarnFn = Callable[[str], None]

SPLITS = ("train", "val", "test")
# a missing split may be served by another: maps has no test/, and the official cityscapes script
# writes its val pairs to test/
_STAND_INS = {"val": ("test",), "test": ("val",)}

# decoded pairs above this many bytes are decoded per batch instead of kept in memory
MEMORY_BUDGET = 3 * 10**9

_MAX_NAMED = 10  # files named in one error message


# ---------------------------------------------------------------- the data


@dataclass
class PairedData:
    """Image pairs as uint8 (N, C, L, L) tensors at the load size: ``a`` and ``b`` as stored
    (A = left half / ``A/`` folder), whatever the direction of training.

    ``files`` are the pairs' names relative to their split folder, in order.
    """

    name: str
    a: torch.Tensor
    b: torch.Tensor
    files: list[str]
    source: str
    default_direction: str  # "AtoB" or "BtoA"
    split: str

    lazy = False

    def __len__(self) -> int:
        return len(self.files)

    @property
    def load_size(self) -> int:
        return self.a.shape[-1]

    @property
    def channels(self) -> int:
        return self.a.shape[1]

    def batch(self, indices: torch.Tensor | Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """The pairs at ``indices``: two uint8 (n, C, L, L) tensors."""
        return self.a[indices], self.b[indices]


@dataclass
class LazyPairedData(PairedData):
    """Pairs decoded on demand by :meth:`batch` (in a thread pool); ``a`` and ``b`` are None.

    Used when the decoded set would exceed the memory budget. A file that cannot be read is an
    error when its batch is decoded, naming the file.
    """

    pairs: list[_Pair] = field(default_factory=list, repr=False)
    size: int = 286
    root: Path = Path(".")
    _pool: ThreadPoolExecutor | None = field(default=None, repr=False, compare=False)

    lazy = True

    @property
    def load_size(self) -> int:
        return self.size

    @property
    def channels(self) -> int:
        return 3

    def batch(self, indices: torch.Tensor | Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        idx = indices.tolist() if isinstance(indices, torch.Tensor) else list(indices)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=_workers(), thread_name_prefix="ganctl-pairs")
        return _decode_pairs([self.pairs[i] for i in idx], self.size, self.root, self._pool)

    def __del__(self):
        if self._pool is not None:
            self._pool.shutdown(wait=False)


# ---------------------------------------------------------------- finding pairs


@dataclass(frozen=True)
class _Pair:
    name: str  # relative to the split folder (the A folder's, for A/B layouts)
    a: Path  # the A|B image (aligned), or the A image
    b: Path | None  # the B image; None for aligned pairs


def _natural(text: str) -> list:
    """'2.jpg' before '10.jpg' (the official archives number their files)."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", text)]


def _image_files(folder: Path) -> list[Path]:
    """Images below ``folder`` (recursive), skipping hidden files and folders (.ipynb_checkpoints)."""
    found = []
    for p in folder.rglob("*"):
        rel = p.relative_to(folder)
        if p.suffix.lower() in IMAGE_SUFFIXES and not any(part.startswith(".") for part in rel.parts) and p.is_file():
            found.append((_natural(rel.as_posix()), p))
    return [p for _, p in sorted(found, key=lambda t: t[0])]


def _is_ab(root: Path) -> bool:
    return (root / "A").is_dir() and (root / "B").is_dir()


def _split_dirs(root: Path) -> dict[str, Path]:
    """split -> folder; a folder with no train/, val/, test/ sub-folders is all 'train'."""
    found = {s: root / s for s in SPLITS if (root / s).is_dir()}
    return found or {"train": root}


def _ab_split_dirs(root: Path) -> dict[str, tuple[Path, Path]]:
    a_splits, b_splits = _split_dirs(root / "A"), _split_dirs(root / "B")
    if a_splits.keys() != b_splits.keys():
        def show(d, side):
            return ", ".join(f"{side}/{s}" for s in d) if d != {"train": root / side} else f"{side}/ (no split folders)"

        raise DatasetError(
            f"{root}: A and B have different split folders ({show(a_splits, 'A')} vs {show(b_splits, 'B')}): "
            "give both the same train/, val/, test/ sub-folders, or none"
        )
    return {s: (a_splits[s], b_splits[s]) for s in a_splits}


def _keyed(folder: Path, root: Path) -> dict[str, Path]:
    """name without suffix -> file (so photo.jpg pairs with photo.png); duplicates are an error."""
    keyed: dict[str, Path] = {}
    for p in _image_files(folder):
        key = p.relative_to(folder).with_suffix("").as_posix()
        if key in keyed:
            raise DatasetError(
                f"{root}: {_rel(keyed[key], root)} and {_rel(p, root)} have the same name: "
                "pairs are matched by file name, so keep one of them"
            )
        keyed[key] = p
    return keyed


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _names(items: list[str]) -> str:
    more = f" and {len(items) - _MAX_NAMED} more" if len(items) > _MAX_NAMED else ""
    return ", ".join(items[:_MAX_NAMED]) + more


def _match(a_dir: Path, b_dir: Path, root: Path) -> list[_Pair]:
    a, b = _keyed(a_dir, root), _keyed(b_dir, root)
    only_a = sorted(a.keys() - b.keys(), key=_natural)
    only_b = sorted(b.keys() - a.keys(), key=_natural)
    if only_a or only_b:
        parts = []
        if only_a:
            parts.append(f"{len(only_a)} in {_rel(a_dir, root)} with no match in {_rel(b_dir, root)}: "
                         + _names([_rel(a[k], root) for k in only_a]))
        if only_b:
            parts.append(f"{len(only_b)} in {_rel(b_dir, root)} with no match in {_rel(a_dir, root)}: "
                         + _names([_rel(b[k], root) for k in only_b]))
        raise DatasetError(
            f"unpaired images in {root} ({'; '.join(parts)}). A and B files pair up by name "
            "(the extension may differ): rename or remove them"
        )
    return [_Pair(a[k].relative_to(a_dir).as_posix(), a[k], b[k]) for k in sorted(a, key=_natural)]


def _all_splits(root: Path) -> dict[str, object]:
    return _ab_split_dirs(root) if _is_ab(root) else _split_dirs(root)


def _pairs(root: Path, split_dir) -> list[_Pair]:
    if isinstance(split_dir, tuple):
        return _match(*split_dir, root)
    return [_Pair(p.relative_to(split_dir).as_posix(), p, None) for p in _image_files(split_dir)]


def pair_counts(folder: Path) -> dict[str, int]:
    """Pairs per split of a folder in either layout (files are listed, not decoded)."""
    folder = Path(folder)
    return {s: len(_pairs(folder, d)) for s, d in _all_splits(folder).items()}


def _choose_split(root: Path, split: str, warn: WarnFn | None):
    splits = _all_splits(root)
    if split in splits:
        return split, splits[split]
    for other in _STAND_INS.get(split, ()):
        if other in splits:
            if warn:
                warn(f"{root} has no {split!r} split: using {other!r}")
            return other, splits[other]
    base = root / "A" if _is_ab(root) else root
    flat = not any((base / s).is_dir() for s in SPLITS)
    note = " (a folder without train/, val/, test/ sub-folders is all 'train')" if flat else ""
    raise DatasetError(f"{root} has no {split!r} split; it has: {', '.join(splits)}{note}")


# ---------------------------------------------------------------- decoding


def _workers() -> int:
    return max(1, min(16, os.cpu_count() or 1))


def _open_rgb(path: Path):
    from ganctl import images

    # as the official loader: grayscale and palette images become RGB
    return images.open_image(path).convert("RGB")


_READ_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, SyntaxError)


def _decode_one(pair: _Pair, size: int, root: Path):
    """-> (A, B) as (size, size, 3) uint8 tensors, or a string saying what is wrong with the pair."""
    from PIL import Image

    from ganctl.images import ImageReadError

    bicubic = Image.Resampling.BICUBIC
    try:
        ab = _open_rgb(pair.a)
    except ImageReadError as e:
        return f"{_rel(pair.a, root)} cannot be read ({e.reason})"
    except _READ_ERRORS as e:
        return f"{_rel(pair.a, root)} cannot be read (unsupported pixel format: {e})"
    if pair.b is None:
        w, h = ab.size
        if w < 2:
            return f"{_rel(pair.a, root)} is {w}x{h}: too narrow to hold A and B side by side"
        a, b = ab.crop((0, 0, w // 2, h)), ab.crop((w // 2, 0, w, h))
    else:
        a = ab
        try:
            b = _open_rgb(pair.b)
        except ImageReadError as e:
            return f"{_rel(pair.b, root)} cannot be read ({e.reason})"
        except _READ_ERRORS as e:
            return f"{_rel(pair.b, root)} cannot be read (unsupported pixel format: {e})"
        if a.size != b.size:
            return (f"{_rel(pair.a, root)} is {a.size[0]}x{a.size[1]} but {_rel(pair.b, root)} is "
                    f"{b.size[0]}x{b.size[1]}")
    out = []
    for half in (a, b):
        half = half.resize((size, size), bicubic)
        out.append(torch.frombuffer(bytearray(half.tobytes()), dtype=torch.uint8).view(size, size, 3))
    return out[0], out[1]


def _decode_pairs(pairs: list[_Pair], size: int, root: Path, pool: ThreadPoolExecutor) -> tuple[torch.Tensor, torch.Tensor]:
    a = torch.empty((len(pairs), 3, size, size), dtype=torch.uint8)
    b = torch.empty_like(a)

    def work(i: int):
        got = _decode_one(pairs[i], size, root)
        if isinstance(got, str):
            return got
        a[i].copy_(got[0].permute(2, 0, 1))
        b[i].copy_(got[1].permute(2, 0, 1))
        return None

    problems = [p for p in pool.map(work, range(len(pairs))) if p]
    if problems:
        raise DatasetError(f"{len(problems)} bad pair(s) in {root}: {_names(problems)}. Fix or remove them")
    return a, b


def _check_sizes(pairs: list[_Pair], root: Path, pool: ThreadPoolExecutor) -> None:
    """A/B pairs decoded lazily: compare image sizes from the headers, up front."""
    from ganctl import images

    def work(pair: _Pair):
        sizes = []
        for path in (pair.a, pair.b):
            try:
                sizes.append(images.read_header(path)[1])
            except images.ImageReadError as e:
                return f"{_rel(path, root)} cannot be read ({e.reason})"
        if sizes[0] != sizes[1]:
            (aw, ah), (bw, bh) = sizes
            return f"{_rel(pair.a, root)} is {aw}x{ah} but {_rel(pair.b, root)} is {bw}x{bh}"
        return None

    problems = [p for p in pool.map(work, pairs, chunksize=64) if p]
    if problems:
        raise DatasetError(f"{len(problems)} bad pair(s) in {root}: {_names(problems)}. Fix or remove them")


# ---------------------------------------------------------------- entry point


def load_paired(
    spec: str,
    split: str = "train",
    load_size: int = 286,
    warn: WarnFn | None = None,
    *,
    memory_budget: int | None = None,
    limit: int | None = None,
) -> PairedData:
    """One split of a paired dataset: a catalog name (already in the store) or a folder.

    A split that is missing falls back to its stand-in (val <-> test) with a warning; otherwise
    the error lists the splits there are. Sets whose decoded size exceeds ``memory_budget``
    (default :data:`MEMORY_BUDGET`) come back as :class:`LazyPairedData`. ``limit``: only the
    first pairs (in file order) are decoded, e.g. the few that validation scores.
    """
    if load_size < 1:
        raise DatasetError(f"load size must be positive, not {load_size}")
    direction = "AtoB"
    if is_path_like(spec):
        root = Path(spec).expanduser()
        if not root.is_dir():
            raise DatasetError(f"dataset folder {spec} does not exist")
        name = root.resolve().name
    else:
        entry = _paired_entry(spec)
        root, name, direction = _catalog_folder(entry), entry.name, entry.default_direction
    chosen, split_dir = _choose_split(root, split, warn)
    pairs = _pairs(root, split_dir)
    if not pairs:
        where = _rel(split_dir[0], root) if isinstance(split_dir, tuple) else _rel(split_dir, root)
        raise DatasetError(
            f"no images in {root / where if where != '.' else root} (looked for "
            f"{', '.join(sorted(IMAGE_SUFFIXES))}, in sub-folders too)"
        )
    pairs = pairs[:limit]
    files = [p.name for p in pairs]
    source = str(root.resolve())
    budget = MEMORY_BUDGET if memory_budget is None else memory_budget
    decoded = len(pairs) * 2 * 3 * load_size * load_size
    with ThreadPoolExecutor(max_workers=_workers(), thread_name_prefix="ganctl-pairs") as pool:
        if decoded > budget:
            if warn:
                from ganctl.store import human_size

                warn(f"{name} {chosen}: {len(pairs):,} pairs would take {human_size(decoded)} decoded at "
                     f"{load_size}x{load_size}; decoding them per batch instead")
            if pairs[0].b is not None:
                _check_sizes(pairs, root, pool)
            return LazyPairedData(name, None, None, files, source, direction, chosen,  # type: ignore[arg-type]
                                  pairs=pairs, size=load_size, root=root)
        a, b = _decode_pairs(pairs, load_size, root, pool)
    return PairedData(name, a, b, files, source, direction, chosen)


def _paired_entry(spec: str) -> catalog.CatalogEntry:
    if spec not in catalog.CATALOG:
        err = did_you_mean("dataset", spec, catalog.paired_names())
        raise DatasetError(f"{err} Or give the path of a folder of A|B pairs.")
    entry = catalog.CATALOG[spec]
    if not entry.paired:
        raise DatasetError(
            f"{spec} is not a paired dataset: pix2pix needs A|B pairs, such as "
            f"{', '.join(catalog.paired_names())}, or a folder of pairs"
        )
    return entry


def _catalog_folder(entry: catalog.CatalogEntry) -> Path:
    if entry.layout in ("manual", "generated"):  # fetch explains the one and generates the other
        from ganctl.data import fetch

        return fetch.fetch(entry)
    if not entry.is_present():
        raise DatasetError(f"dataset {entry.name!r} is not in the store: run 'ganctl download {entry.name}'")
    return entry.data_dir()


# ---------------------------------------------------------------- the shared jitter


def paired_jitter(
    a: torch.Tensor, b: torch.Tensor, crop: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random crop to ``crop`` x ``crop`` and random horizontal flip, the same for A and B.

    One crop offset (x and y uniform in 0..L-crop, inclusive) and one flip decision (p = 0.5) per
    pair, as the official ``get_params``. The draws come from ``generator`` (on its device; one
    transfer to the host per batch); the crops are views copied once by ``torch.stack``, on the
    tensors' device. Works for uint8 and float batches (N, C, H, W); A and B may differ in channels.
    """
    if a.shape[0] != b.shape[0] or a.shape[-2:] != b.shape[-2:]:
        raise ValueError(f"A and B batches differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    n, _, h, w = a.shape
    if not 0 < crop <= min(h, w):
        raise ValueError(f"crop size {crop} does not fit images of {h}x{w}")
    dev = generator.device
    xs = torch.randint(0, w - crop + 1, (n,), generator=generator, device=dev)
    ys = torch.randint(0, h - crop + 1, (n,), generator=generator, device=dev)
    flips = torch.rand(n, generator=generator, device=dev) < 0.5
    params = list(zip(xs.tolist(), ys.tolist(), flips.tolist(), strict=True))

    # a loop over views: on CPU an index gather over the whole batch is an order of magnitude slower
    def jitter(x: torch.Tensor) -> torch.Tensor:
        crops = []
        for i, (x0, y0, flip) in enumerate(params):
            c = x[i, :, y0 : y0 + crop, x0 : x0 + crop]
            crops.append(c.flip(-1) if flip else c)
        return torch.stack(crops) if crops else x[:, :, :crop, :crop].clone()

    return jitter(a), jitter(b)


# ---------------------------------------------------------------- synthetic-facades

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

    from ganctl.store import atomic_dir

    def save(path: Path, pixels: bytes) -> None:
        Image.frombytes("RGB", (2 * size, size), pixels).save(path, compress_level=1)

    start = 0
    with atomic_dir(dest) as tmp, ThreadPoolExecutor(max_workers=_workers()) as pool:
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
    from ganctl.store import datasets_dir, ensure_cache_dir

    ensure_cache_dir(datasets_dir())
    try:
        write_synthetic_facades(dest, entry.expected_counts, entry.native_size)
    except OSError:
        if not dest.is_dir():  # else another process generated it at the same time
            raise
    return dest
