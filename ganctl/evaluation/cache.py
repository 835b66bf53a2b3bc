"""The trained classifiers kept in the store: one per (dataset, image size, channels), retrained
when it is unreadable, of another version, or was made for other data."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from ganctl.core import storedirs
from ganctl.core.errors import CheckpointError
from ganctl.data import catalog
from ganctl.evaluation import classifier, splits
from ganctl.evaluation.classifier import DatasetClassifier
from ganctl.evaluation.splits import RealSplits
from ganctl.store import checkpoint

ProgressFn = Callable[[str], None]

CLASSIFIER_FILE = "classifier.safetensors"


def classifier_dir(dataset: str, image_size: int, channels: int) -> Path:
    return storedirs.evaluators_dir() / f"{splits.dataset_key(dataset)}-{image_size}px-{channels}ch"


def _load_cached(path: Path, real: RealSplits, device: torch.device) -> tuple[DatasetClassifier, dict] | None:
    """The cached classifier if it is readable and made for exactly these data; else None."""
    meta = checkpoint.read_meta(path)  # CheckpointError when unreadable
    expected = {
        "image_size": real.train.image_size,
        "channels": real.train.channels,
        "classes": list(real.classes),
        "fingerprint": real.fingerprint,
        "classifier_version": classifier.CLASSIFIER_VERSION,
    }
    if any(meta.get(k) != v for k, v in expected.items()):
        return None
    model = classifier.new_classifier(real.train.channels, len(real.classes))
    checkpoint.load_weights(path, model)
    return classifier.on_device(model, device).eval(), meta


def classifier_for(real: RealSplits, device: torch.device, progress: ProgressFn | None) -> tuple[DatasetClassifier, dict]:
    """The classifier for ``real``: from the cache, or trained on its training split and cached."""
    path = classifier_dir(real.dataset, real.train.image_size, real.train.channels) / CLASSIFIER_FILE
    if path.is_file():
        try:
            found = _load_cached(path, real, device)
        except CheckpointError as e:
            found = None
            if progress:
                progress(f"the cached classifier is unreadable ({e}): training it again")
        if found is not None:
            model, meta = found
            return model, {**meta, "path": str(path), "cached": True}
        if progress and path.is_file():
            progress(f"the cached classifier {path} was made for other data: training it again")
    if progress:
        name = Path(real.dataset).name if catalog.is_path_like(real.dataset) else real.dataset
        progress(
            f"training the {name} classifier at {real.train.image_size}px on {len(real.train):,} images "
            "(cached for next time)..."
        )
    model, meta = classifier.train_classifier(real, device, progress)
    storedirs.ensure_cache_dir(path.parent.parent)  # re-creatable: tagged for backup tools to skip
    checkpoint.save_weights(path, model, meta)  # atomic: temp file, then rename
    if progress:
        progress(f"classifier trained in {meta['seconds']:.1f}s: test accuracy {meta['test_accuracy']:.3f}")
    return model, {**meta, "path": str(path), "cached": False}


def get_classifier(
    dataset: str,
    image_size: int,
    channels: int,
    classes: tuple[str, ...] | None,
    device: torch.device | str,
    progress: ProgressFn | None = None,
) -> tuple[DatasetClassifier, dict]:
    """The classifier for (dataset, size, channels): from the store's cache, or trained and cached.

    ``classes``, when given, must be the dataset's class names (as a generator's metadata holds
    them); a dataset whose classes changed since is refused.
    """
    real = splits.load_splits(dataset, image_size, channels, progress)
    splits.check_classes(real, classes)
    return classifier_for(real, torch.device(device), progress)
