"""Unpaired images for CycleGAN: the two domains of one split, each decoded once at the load size.

Where the images are is :mod:`ganctl.data.unpaired_spec` (a catalog name, ``ROOT/trainA trainB
testA testB``, or ``A_DIR:B_DIR``). As the official unaligned dataset (``Resize([286, 286],
BICUBIC)``, then a random 256 crop and flip in training, :func:`ganctl.data.pair_jitter.crop_flip`)
every image is converted to RGB and resized to ``load_size`` x ``load_size`` with PIL's bicubic
filter, not aspect-preserving, as the pairs kind does.

A domain is decoded in threads (PIL releases the GIL) straight into its row of one preallocated
uint8 tensor. A domain of :data:`CACHE_MIN_FILES` images or more is written once to a safetensors
file in the store and read back memory-mapped (:mod:`ganctl.data.folder_cache`), so that the
processes of a job and the runs that follow share one decoded copy (monet2photo's 6,287 photos at
286 are 1.5 GB); smaller domains are decoded each time, which takes about as long as reading a cache.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch

from ganctl.core.errors import DatasetError
from ganctl.data import catalog, folder_cache
from ganctl.data.datasets import IMAGE_SUFFIXES
from ganctl.data.pair_decoding import open_rgb, workers
from ganctl.data.pair_layouts import _image_files, rel_name, some_names
from ganctl.data.paired import PairedData
from ganctl.data.unpaired_spec import UnpairedSource, check_unpaired_spec, locate, split_folders, two_folders

WarnFn = Callable[[str], None]

CACHE_MIN_FILES = 1000
# in the cache's key folder: a cache written by another version of this decoder is not read
DECODER = "unpaired-v1"
PREVIEW_COUNT = 4  # A and B images shown each epoch


@dataclass
class UnpairedData:
    """The two domains of one split as uint8 (N, 3, L, L) tensors at the load size; the domains may
    differ in size. ``files_a`` / ``files_b``: names relative to each domain's folder, in order.

    ``len()`` is max(len(A), len(B)), the epoch length of the official unaligned dataset."""

    name: str
    a: torch.Tensor
    b: torch.Tensor
    files_a: list[str]
    files_b: list[str]
    split: str
    src: UnpairedSource

    def __len__(self) -> int:
        return max(len(self.files_a), len(self.files_b))

    @property
    def source(self) -> str:
        return self.src.source

    @property
    def load_size(self) -> int:
        return self.a.shape[-1]

    @property
    def channels(self) -> int:
        return self.a.shape[1]

    @property
    def domains(self) -> tuple[str, str]:
        d = self.src.entry.domains if self.src.entry is not None else ()
        return (d[0], d[1]) if len(d) == 2 else ("A", "B")


@dataclass
class UnpairedPreview:
    """Fixed A and B images (uint8, at the training size) shown each epoch, from the test split
    (the train split where there is none). ``aligned``: ``a[i]`` and ``b[i]`` show the same scene
    (see :func:`alignment`), so a translation of ``a[i]`` can be compared with ``b[i]``."""

    a: torch.Tensor
    b: torch.Tensor
    files_a: list[str]
    files_b: list[str]
    split: str
    aligned: bool


# ---------------------------------------------------------------- decoding


def _decode_one(path: Path, size: int):
    """-> (size, size, 3) uint8 tensor, or why ``path`` cannot be read."""
    from PIL import Image

    from ganctl.core.images import ImageReadError

    try:
        img = open_rgb(path)
    except ImageReadError as e:
        return e.reason
    except (OSError, ValueError, SyntaxError) as e:  # a mode PIL cannot convert to RGB
        return f"unsupported pixel format: {e}"
    img = img.resize((size, size), Image.Resampling.BICUBIC)
    return torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8).view(size, size, 3)


def decode_files(paths: list[Path], size: int, root: Path) -> torch.Tensor:
    """``paths`` as one uint8 (N, 3, size, size) tensor; every unreadable file named in one error."""
    out = torch.empty((len(paths), 3, size, size), dtype=torch.uint8)

    def work(i: int) -> str | None:
        got = _decode_one(paths[i], size)
        if isinstance(got, str):
            return f"{rel_name(paths[i], root)} ({got})"
        out[i].copy_(got.permute(2, 0, 1))
        return None

    with ThreadPoolExecutor(max_workers=workers(), thread_name_prefix="ganctl-unpaired") as pool:
        problems = [p for p in pool.map(work, range(len(paths))) if p]
    if problems:
        raise DatasetError(f"{len(problems)} unreadable image(s) in {root}: {some_names(problems)}. Fix or remove them")
    return out


def _domain_files(folder: Path) -> list[Path]:
    files = _image_files(folder)
    if not files:
        raise DatasetError(f"no images in {folder} (looked for {', '.join(sorted(IMAGE_SUFFIXES))}, in sub-folders "
                           "too): put the domain's images there")
    return files


def _load_domain(folder: Path, files: list[Path], size: int) -> torch.Tensor:
    """A domain decoded, through the store's cache when it is large."""
    if len(files) < CACHE_MIN_FILES:
        return decode_files(files, size, folder)
    from ganctl.core.storedirs import datasets_dir, ensure_cache_dir

    cache_dir = datasets_dir() / ".cache" / DECODER
    cache = folder_cache.path_for(cache_dir, folder, files, size)
    names = [p.relative_to(folder).as_posix() for p in files]
    if cache.is_file():
        try:
            images, _, meta = folder_cache.load(cache)
            if meta.get("files") == names and images.shape[1:] == (3, size, size):
                return images
        except (folder_cache.CacheError, OSError):
            pass
        cache.unlink(missing_ok=True)  # not this folder's: decoded again, and rewritten
    images = decode_files(files, size, folder)
    ensure_cache_dir(datasets_dir())
    cache_dir.mkdir(parents=True, exist_ok=True)
    folder_cache.save(cache, images, None, {"files": names})
    try:  # the mapped file's pages, shared with the job's other processes, serve instead of this copy
        return folder_cache.load(cache)[0]
    except (folder_cache.CacheError, OSError):
        return images


# ---------------------------------------------------------------- loading


def prepare(spec: str, mirror: str | None = None, progress_for=None, warn: WarnFn | None = None) -> UnpairedSource:
    """The split folders of ``spec``, downloading (or generating) a catalog set first if it is not in
    the store yet."""
    if two_folders(spec) is None and not catalog.is_path_like(spec):
        entry = catalog.CATALOG.get(catalog.unpaired_name(spec))
        if entry is not None and entry.unpaired and entry.layout != "manual":
            if not entry.is_present() and warn:
                verb = "generating" if entry.layout == "generated" else "downloading"
                warn(f"dataset {entry.name!r} is not in the store yet: {verb} it")
            from ganctl.data import fetch

            return locate(spec, fetch.fetch(entry, mirror, progress_for))
    return locate(spec)


def load_unpaired(
    spec: str | UnpairedSource,
    split: str = "train",
    load_size: int = 286,
    *,
    limit: int | None = None,
) -> UnpairedData:
    """One split of an unpaired dataset (a catalog name already in the store, a folder, ``A_DIR:B_DIR``,
    or a source from :func:`prepare`), both domains decoded at ``load_size``. ``limit``: only the first
    images of each domain (in natural file order), e.g. the few shown as previews."""
    if load_size < 1:
        raise DatasetError(f"load size must be positive, not {load_size}")
    src = spec if isinstance(spec, UnpairedSource) else locate(spec)
    a_dir, b_dir = split_folders(src, split)
    a_files, b_files = _domain_files(a_dir)[:limit], _domain_files(b_dir)[:limit]
    a = _load_domain(a_dir, a_files, load_size)
    b = _load_domain(b_dir, b_files, load_size)
    return UnpairedData(src.name, a, b, [p.relative_to(a_dir).as_posix() for p in a_files],
                        [p.relative_to(b_dir).as_posix() for p in b_files], split, src)


# ---------------------------------------------------------------- aligned test pairs and previews


def _key(name: str, side: str) -> str:
    """A file's name for matching across domains: no extension, and no ``_A`` / ``_B`` (or ``A`` /
    ``B`` after a digit) naming its own side, as the CycleGAN maps and facades archives name them."""
    stem = name.rsplit(".", 1)[0] if "." in Path(name).name else name
    return re.sub(rf"(?:[_-]{side}|(?<=\d){side})$", "", stem)


def alignment(files_a: list[str], files_b: list[str]) -> list[tuple[int, int]] | None:
    """(index in A, index in B) of each pair, in A's order, when the two lists are aligned; else None.

    Aligned means: as many files on each side, and every file's key (:func:`_key`: the name relative
    to its domain folder without the extension and without a suffix naming its side, so
    ``testA/12_A.jpg`` matches ``testB/12_B.jpg`` and ``testA/x/5.png`` matches ``testB/x/5.jpg``) on
    one side matches exactly one file's key on the other. This is how CycleGAN's ``maps`` and
    ``facades`` test folders, and ``synthetic-facades-unpaired``'s, hold the two sides of each scene;
    sets of unrelated images (horse2zebra's 120 horses and 140 zebras) are not aligned."""
    if not files_a or len(files_a) != len(files_b):
        return None
    ka = [_key(f, "A") for f in files_a]
    kb = {k: j for j, k in enumerate(_key(f, "B") for f in files_b)}
    if len(set(ka)) != len(ka) or len(kb) != len(files_b) or set(ka) != kb.keys():
        return None
    return [(i, kb[k]) for i, k in enumerate(ka)]


def _listing(src: UnpairedSource, split: str) -> tuple[Path, Path, list[Path], list[Path]]:
    a_dir, b_dir = split_folders(src, split)
    return a_dir, b_dir, _domain_files(a_dir), _domain_files(b_dir)


def aligned_test_pairs(data: UnpairedData, image_size: int, limit: int | None = None) -> PairedData | None:
    """The test split as pairs (A -> B, at ``image_size``) when it is aligned (:func:`alignment`), for
    scoring a translation against the truth (L1, PSNR, SSIM); None when the set has no test split or
    its test images are not aligned. ``limit``: the first pairs only, in A's natural file order."""
    if "test" not in data.src.splits:
        return None
    a_dir, b_dir, a_files, b_files = _listing(data.src, "test")
    rel_a = [p.relative_to(a_dir).as_posix() for p in a_files]
    match = alignment(rel_a, [p.relative_to(b_dir).as_posix() for p in b_files])
    if match is None:
        return None
    match = match[:limit]
    a = decode_files([a_files[i] for i, _ in match], image_size, a_dir)
    b = decode_files([b_files[j] for _, j in match], image_size, b_dir)
    return PairedData(data.name, a, b, [rel_a[i] for i, _ in match], data.source, "AtoB", "test")


def preview_inputs(data: UnpairedData, image_size: int, count: int = PREVIEW_COUNT,
                   warn: WarnFn | None = None) -> UnpairedPreview:
    """The first ``count`` images of each domain of the test split (the same scenes, when it is
    aligned), at ``image_size``: the same every epoch. Without a test split, the train split's first
    images are shown (``warn`` says so)."""
    if count < 1:
        raise ValueError(f"count must be positive, not {count}")
    split = "test" if "test" in data.src.splits else "train"
    if split == "train" and warn:
        warn(f"{data.name} has no test split (testA/, testB/): the pictures show training images")
    if split == "test":
        pairs = aligned_test_pairs(data, image_size, limit=count)
        if pairs is not None:
            _, b_dir, _, b_files = _listing(data.src, "test")
            keyed = {_key(p.relative_to(b_dir).as_posix(), "B"): p.relative_to(b_dir).as_posix() for p in b_files}
            files_b = [keyed[_key(f, "A")] for f in pairs.files]
            return UnpairedPreview(pairs.a, pairs.b, pairs.files, files_b, "test", True)
    a_dir, b_dir, a_files, b_files = _listing(data.src, split)
    a_files, b_files = a_files[:count], b_files[:count]
    return UnpairedPreview(decode_files(a_files, image_size, a_dir), decode_files(b_files, image_size, b_dir),
                           [p.relative_to(a_dir).as_posix() for p in a_files],
                           [p.relative_to(b_dir).as_posix() for p in b_files], split, False)


def load_unpaired_data(spec: str, image_size: int, load_size: int, mirror: str | None = None, progress_for=None,
                       warn: WarnFn | None = None) -> tuple[UnpairedData, UnpairedPreview]:
    """CycleGAN's data: (the train split at the jitter's load size, the preview images at the training
    size). A catalog set not in the store is downloaded (generated) first."""
    check_unpaired_spec(spec)
    src = prepare(spec, mirror, progress_for, warn)
    train = load_unpaired(src, "train", load_size)
    return train, preview_inputs(train, image_size, warn=warn)

