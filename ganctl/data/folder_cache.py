"""The decoded copy of a large image folder: one safetensors file in the store, read back memory-mapped.

A folder of thousands of images is decoded once into ``datasets/.cache/folder-KEY.safetensors``
(the key covers the folder, every file's size and modification time, the training size and the
decoder's version). Reading it back maps the file instead of copying it: the images tensor is a
view of the page cache, so the processes of a multi-process job on one machine, and runs that
follow one another, share one copy of the decoded set in RAM rather than holding one each. The
mapping is private (copy-on-write): a process that wrote into its tensor would get its own pages,
never change the file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

# the decoder's version is in the key: a cache from before EXIF orientation and 16-bit scaling is not used
DECODER_VERSION = 2
META_KEY = "ganctl"


class CacheError(ValueError):
    """The file is not a cache this version wrote (truncated, another layout): decode again."""


def path_for(cache_dir: Path, root: Path, files: list[Path], image_size: int) -> Path:
    listing = [(str(p.relative_to(root)), st.st_size, st.st_mtime_ns) for p in files for st in [p.stat()]]
    key = hashlib.sha256(json.dumps([str(root.resolve()), image_size, listing, DECODER_VERSION]).encode()).hexdigest()[:32]
    return cache_dir / f"folder-{key}.safetensors"


def save(path: Path, images: torch.Tensor, labels: torch.Tensor | None, meta: dict) -> None:
    """Write the cache atomically (a reader sees the old file, the new one, or none)."""
    from safetensors.torch import save_file

    from ganctl.core.atomic import atomic_path

    tensors = {"images": images.contiguous()} | ({"labels": labels.contiguous()} if labels is not None else {})
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={META_KEY: json.dumps(meta)})


def load(path: Path) -> tuple[torch.Tensor, torch.Tensor | None, dict]:
    """(images, labels, the metadata saved with them), the tensors mapped from the file.

    safetensors maps the file through ``torch.UntypedStorage.from_file`` (private, copy-on-write),
    so nothing is read until used and the pages are the page cache's (tests/data/test_datasets.py
    checks that this stays so). Raises :class:`CacheError` for a file that is not a whole cache,
    ``OSError`` for one that cannot be read."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    try:
        tensors = load_file(str(path))
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {})[META_KEY])
        images, labels = tensors["images"], tensors.get("labels")
    except (SafetensorError, KeyError, TypeError, ValueError) as e:
        raise CacheError(f"{path}: {e}") from e
    if images.dim() != 4 or images.dtype != torch.uint8 or (labels is not None and labels.shape != (images.shape[0],)):
        raise CacheError(f"{path}: images {tuple(images.shape)}, labels {None if labels is None else tuple(labels.shape)}")
    return images, labels, meta
