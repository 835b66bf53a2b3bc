"""The real side of a score, cached in the store: the features of a dataset's reference images in
one feature space, so that a second evaluation of the same dataset costs only the generated side.

One file per dataset, split, image size, channels, feature space (with its weights' sha256),
image count and choice of images:
``<store>/evaluators/references/<dataset>-<split>-<size>px-<channels>ch-<space>-<hash>.safetensors``.
It holds the features (KID and precision/recall need them, not only FID's mean and covariance) and,
in its metadata, everything the key is made of plus a fingerprint of the images, so a class folder
whose images changed is measured again. Written atomically (:mod:`ganctl.core.atomic`); an unreadable
file is measured again, never an error.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import torch

from ganctl.core.atomic import atomic_path
from ganctl.core.storedirs import ensure_cache_dir, evaluators_dir

REFERENCE_VERSION = 1


def references_dir() -> Path:
    return evaluators_dir() / "references"


def fingerprint(images: torch.Tensor) -> str:
    """A hash of the images' bytes (which images, in which order)."""
    return hashlib.sha256(images.contiguous().numpy().tobytes()).hexdigest()[:16]


def _path(key: dict) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    stem = f"{key['dataset']}-{key['split']}-{key['image_size']}px-{key['channels']}ch-{key['space']}-{digest}"
    return references_dir() / f"{stem}.safetensors"


def cached_features(key: dict, compute: Callable[[], dict[str, torch.Tensor]]) -> tuple[dict[str, torch.Tensor], Path, bool]:
    """The features ``key`` names: from the cache, or ``compute()``d and cached.

    ``key`` holds at least dataset (a file-name-safe key), split, image_size, channels and space;
    every value in it must match for a cached file to be used. Returns (features, path, cached).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open, save_file

    key = {**key, "reference_version": REFERENCE_VERSION}
    path = _path(key)
    if path.is_file():
        try:
            with safe_open(str(path), "pt") as f:
                stored = json.loads((f.metadata() or {}).get("key", "null"))
            if stored == key:
                return load_file(str(path)), path, True
        except (SafetensorError, OSError, ValueError):
            pass  # damaged: measured again below, and replaced
    found = compute()
    ensure_cache_dir(evaluators_dir())
    references_dir().mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        save_file({k: v.contiguous().cpu() for k, v in found.items()}, str(tmp), metadata={"key": json.dumps(key, sort_keys=True)})
    return found, path, False
