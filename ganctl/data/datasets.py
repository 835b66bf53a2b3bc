"""Load a dataset into memory as one uint8 tensor, already at the training size.

The datasets GANs are trained on here are small (MNIST is 47 MB at 28x28; CelebA is 2.5 GB at
64x64), so they are decoded once and held whole: no per-sample PIL transforms or worker processes
in the training loop. Large folders are held as a memory-mapped decoded cache (folder_cache), which
the processes of a multi-process job on one machine share.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ganctl.core.errors import DatasetError
from ganctl.data import catalog
from ganctl.data.catalog import is_path_like

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}

# digits ships as one set; the last 297 images are held out as its test split (for evaluation)
DIGITS_TEST = 297

WarnFn = Callable[[str], None]


@dataclass
class ImageData:
    """Images (N, C, H, W) uint8, with optional integer labels and their class names."""

    name: str
    images: torch.Tensor
    labels: torch.Tensor | None
    classes: tuple[str, ...] | None
    source: str

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def channels(self) -> int:
        return self.images.shape[1]

    @property
    def image_size(self) -> int:
        return self.images.shape[-1]


# ---------------------------------------------------------------- IDX (MNIST format)


def read_idx(path: Path) -> torch.Tensor:
    """Read a (gzipped) IDX file of unsigned bytes: labels (N,) or images (N, H, W)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
        zero, dtype, ndim = struct.unpack(">HBB", data[:4])
        if zero != 0 or dtype != 0x08 or ndim not in (1, 3):
            raise ValueError(f"magic {data[:4].hex()} is not an unsigned-byte IDX file")
        dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
        body = data[4 + 4 * ndim :]
        count = 1
        for d in dims:
            count *= d
        if len(body) != count:
            raise ValueError(f"holds {len(body)} bytes of data, its header promises {count}")
    except (OSError, EOFError, ValueError, struct.error, zlib.error) as e:
        raise DatasetError(
            f"{path} is not a readable IDX file ({e}). Delete it and download the dataset again."
        ) from e
    return torch.frombuffer(bytearray(body), dtype=torch.uint8).reshape(dims)


def _load_idx_pair(directory: Path, images_file: str, labels_file: str) -> tuple[torch.Tensor, torch.Tensor]:
    images = read_idx(directory / images_file)
    labels = read_idx(directory / labels_file).long()
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise DatasetError(
            f"{directory}: {images_file} and {labels_file} do not match "
            f"({tuple(images.shape)} images, {tuple(labels.shape)} labels)"
        )
    return images.unsqueeze(1), labels


# ---------------------------------------------------------------- resizing


def resize_uint8(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resize a (N, C, H, W) uint8 batch to size x size (antialiased bilinear, in chunks)."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    import torch.nn.functional as F

    out = []
    for chunk in images.split(4096):
        x = F.interpolate(chunk.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out.append(x.round_().clamp_(0, 255).to(torch.uint8))
    return torch.cat(out)


def to_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    if images.shape[1] == channels:
        return images
    if images.shape[1] == 1 and channels == 3:
        return images.expand(-1, 3, -1, -1).contiguous()
    if images.shape[1] == 3 and channels == 1:  # ITU-R 601 luma, as PIL's convert("L")
        w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        return (images.float() * w).sum(1, keepdim=True).round_().clamp_(0, 255).to(torch.uint8)
    raise DatasetError(f"cannot convert {images.shape[1]}-channel images to {channels} channels")


# ---------------------------------------------------------------- folders


def _center_square(img):
    w, h = img.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    return img.crop((left, top, left + s, top + s))


def _decode(path: Path, image_size: int):
    """-> (HxWx3 uint8 tensor, is_grayscale) or (None, the reason it cannot be read)."""
    from PIL import Image

    from ganctl.core import images

    try:
        img = images.open_image(path, draft=image_size)  # JPEGs decode at a reduced scale straight away
        gray = img.mode in images.GRAY_MODES
        img = img.convert("RGBA") if img.mode in ("P", "LA", "PA") else img
        rgb = img.convert("RGB") if img.mode != "RGB" else img
        rgb = _center_square(rgb).resize((image_size, image_size), Image.Resampling.BICUBIC)
    except images.ImageReadError as e:
        return None, e.reason
    except (OSError, ValueError) as e:  # a mode PIL cannot convert to RGB
        return None, f"unsupported pixel format: {e}"
    return torch.frombuffer(bytearray(rgb.tobytes()), dtype=torch.uint8).view(image_size, image_size, 3), gray


# folders with at least this many images are decoded once and cached in the store (folder_cache)
CACHE_MIN_FILES = 1000


def _cache_path(root: Path, files: list[Path], image_size: int) -> Path:
    from ganctl.core.storedirs import datasets_dir
    from ganctl.data import folder_cache

    return folder_cache.path_for(datasets_dir() / ".cache", root, files, image_size)


def _folder_files(root: Path) -> list[Path]:
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    return [p for p in files if not any(part.startswith(".") for part in p.relative_to(root).parts)]


# images whose headers decide a folder's channel count before it is decoded
PROBE_FILES = 32


def channels_hint(spec: str) -> int | None:
    """1 or 3: the channels a dataset will load with, found without decoding it (a folder: from
    the header modes of up to PROBE_FILES images spread over it; gray only if all are), so the
    training size can be chosen first. None when it cannot tell."""
    from ganctl.core import images

    if not is_path_like(spec):
        entry = catalog.CATALOG.get(spec)
        return entry.channels if entry else None
    root = Path(spec).expanduser()
    files = _folder_files(root) if root.is_dir() else []
    modes = []
    for path in files[:: max(1, len(files) // PROBE_FILES)][:PROBE_FILES]:
        try:
            modes.append(images.read_header(path)[0])
        except images.ImageReadError:
            continue
    if not modes:
        return None
    return 1 if all(m in images.GRAY_MODES for m in modes) else 3


def load_folder(
    root: Path,
    image_size: int,
    channels: int | None = None,
    warn: WarnFn | None = None,
) -> ImageData:
    """Every image below ``root`` (recursive), centre-cropped to a square and resized.

    When every image lies inside a first-level sub-folder and there are at least two of them,
    the sub-folder names are the class labels (the torchvision ImageFolder convention).
    Files that cannot be decoded are reported by name through ``warn`` and left out. Large
    folders are decoded once (in parallel threads) and cached in the store, keyed by the file
    list with sizes and modification times, so an edited folder is decoded again; the cache is
    read memory-mapped, so the processes of a job on one machine share one copy.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder of images")
    files = _folder_files(root)
    if not files:
        raise DatasetError(
            f"no images found in {root} (looked for {', '.join(sorted(IMAGE_SUFFIXES))}, "
            "in sub-folders too). Point --dataset at a folder that holds image files."
        )
    images, labels, classes, bad, grayscale_only = _cached_or_decoded(root, files, image_size)
    if bad and warn:
        names = "; ".join(bad[:10])
        more = f"; and {len(bad) - 10} more" if len(bad) > 10 else ""
        warn(f"skipped {len(bad)} unreadable file(s) in {root}: {names}{more}")
    if channels is None:
        channels = 1 if grayscale_only else 3
    return ImageData(
        name=root.name,
        images=to_channels(images, channels),
        labels=labels,
        classes=classes,
        source=str(root.resolve()),
    )


def _cached_or_decoded(root: Path, files: list[Path], image_size: int):
    """(images, labels, classes, unreadable files, grayscale only): from the folder's cache when
    it has one, else decoded (and cached, when the folder is large)."""
    if len(files) < CACHE_MIN_FILES:
        return _decode_all(root, files, image_size)
    cache = _cache_path(root, files, image_size)
    cached = _read_cache(cache) if cache.is_file() else None
    if cached is None:
        from ganctl.data import folder_cache

        decoded = _decode_all(root, files, image_size)
        images, labels, classes, bad, grayscale_only = decoded
        meta = {"classes": list(classes) if classes else None, "bad": bad, "grayscale_only": grayscale_only}
        folder_cache.save(cache, images, labels, meta)
        # the decoded copy goes when this returns: the file's pages, shared with the job's other
        # processes, serve instead
        cached = _read_cache(cache) or decoded
    return cached


def _read_cache(cache: Path):
    from ganctl.data import folder_cache

    try:
        images, labels, meta = folder_cache.load(cache)
        classes = tuple(meta["classes"]) if meta["classes"] else None
        return images, labels, classes, list(meta["bad"]), bool(meta["grayscale_only"])
    except (folder_cache.CacheError, OSError, KeyError, TypeError):  # decoded again, and rewritten
        cache.unlink(missing_ok=True)
        return None


def _decode_all(root: Path, files: list[Path], image_size: int):
    from concurrent.futures import ThreadPoolExecutor

    from ganctl.runtime import distributed

    tops = {p.relative_to(root).parts[0] for p in files}
    labelled = all(len(p.relative_to(root).parts) > 1 for p in files) and len(tops) >= 2
    classes = tuple(sorted(tops)) if labelled else None
    # PIL releases the GIL while decoding, so threads use every core this process has: the
    # machine's, shared by the processes of a job on it
    threads = max(1, distributed.usable_cpus() // distributed.world().local_size)
    # each image is decoded straight into its row of one preallocated tensor: the set is held once
    # while it is decoded (200,000 images at 64x64: 2.3 GiB), not as a list, a stack and a transpose
    images = torch.empty((len(files), 3, image_size, image_size), dtype=torch.uint8)

    def decode_into(i: int):
        tensor, info = _decode(files[i], image_size)
        if tensor is not None:
            images[i].copy_(tensor.permute(2, 0, 1))
        return tensor is not None, info

    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = list(pool.map(decode_into, range(len(files))))
    labels, bad = [], []
    grayscale_only = True
    kept = 0
    for i, (path, (ok, info)) in enumerate(zip(files, results, strict=True)):
        if not ok:
            bad.append(f"{path.relative_to(root)} ({info})")
            continue
        grayscale_only = grayscale_only and info
        if kept != i:  # rows move up over the unreadable files' (in place: kept < i)
            images[kept] = images[i]
        kept += 1
        if classes:
            labels.append(classes.index(path.relative_to(root).parts[0]))
    if not kept:
        raise DatasetError(f"none of the {len(files)} image files in {root} could be read")
    images = images[:kept]
    return images, torch.tensor(labels, dtype=torch.long) if classes else None, classes, bad, grayscale_only


# ---------------------------------------------------------------- entry point


def load_catalog(
    entry: catalog.CatalogEntry,
    image_size: int,
    channels: int | None = None,
    split: str = "train",
    warn: WarnFn | None = None,
) -> ImageData:
    directory = entry.local_dir()
    if entry.layout == "zip":
        if not entry.is_present():
            raise DatasetError(f"dataset {entry.name!r} is not in the store: run 'ganctl download {entry.name}'")
        data = load_folder(directory / entry.image_folder, image_size, channels or entry.channels, warn)
        data.name = entry.name
        return data
    if entry.name == "digits":
        images, labels = _load_idx_pair(directory, *entry.split_files["all"])
        cut = images.shape[0] - DIGITS_TEST
        sl = slice(0, cut) if split == "train" else slice(cut, None)
        images, labels = images[sl], labels[sl]
    else:
        if not entry.is_present():
            raise DatasetError(f"dataset {entry.name!r} is not in the store: run 'ganctl download {entry.name}'")
        images, labels = _load_idx_pair(directory, *entry.split_files[split])
    images = to_channels(resize_uint8(images, image_size), channels or entry.channels)
    return ImageData(entry.name, images.contiguous(), labels, entry.classes, str(directory))


def load(spec: str, image_size: int, channels: int | None = None, split: str = "train", warn: WarnFn | None = None) -> ImageData:
    """A catalog name (must already be in the store) or a folder path."""
    catalog.check_spec(spec)
    if is_path_like(spec):
        return load_folder(Path(spec).expanduser(), image_size, channels, warn)
    return load_catalog(catalog.CATALOG[spec], image_size, channels, split, warn)
