"""The labelled real data a score is measured against: a dataset's train and test splits.

Catalog datasets have their own test split; a class-folder dataset holds out every 10th image of
each class (in file order) as its test split, and records a fingerprint of its training images so
that an edited folder retrains the classifier.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ganctl.core.errors import DatasetError
from ganctl.data import catalog, datasets
from ganctl.data.datasets import ImageData

ProgressFn = Callable[[str], None]

HOLDOUT_EVERY = 10  # folders: every 10th image of each class is held out as the test split

UNLABELLED = (
    "evaluate needs a labelled dataset to train its classifier on, and {what} has no class labels: "
    "it works for runs trained on digits, mnist, fashion-mnist or a folder with one sub-folder per class"
)


@dataclass
class RealSplits:
    dataset: str
    train: ImageData
    test: ImageData
    classes: tuple[str, ...]
    fingerprint: str | None  # folders: a hash of the training images, so an edited folder retrains


def dataset_key(dataset: str) -> str:
    """A file-name-safe cache key: the catalog name, or the folder name plus a hash of its path."""
    if not catalog.is_path_like(dataset):
        return dataset
    path = str(Path(dataset).expanduser().resolve())
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(path).name).strip("-.")[:40] or "folder"
    return f"{slug}-{hashlib.sha256(path.encode()).hexdigest()[:10]}"


def holdout(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """A test mask: every 10th image of each class in file order, at least one per class that
    has two or more images (a class of one image stays in training)."""
    mask = torch.zeros(len(labels), dtype=torch.bool)
    for c in range(num_classes):
        idx = (labels == c).nonzero().flatten()
        if len(idx) < 2:
            continue
        pick = idx[HOLDOUT_EVERY - 1 :: HOLDOUT_EVERY]
        mask[pick if len(pick) else idx[-1:]] = True
    return mask


def _subset(data: ImageData, mask: torch.Tensor) -> ImageData:
    labels = data.labels[mask] if data.labels is not None else None
    return ImageData(data.name, data.images[mask].contiguous(), labels, data.classes, data.source)


def _fingerprint(data: ImageData) -> str:
    h = hashlib.sha256()
    h.update(data.images.contiguous().numpy().tobytes())
    h.update(data.labels.numpy().tobytes())
    h.update(json.dumps(list(data.classes)).encode())
    return h.hexdigest()[:16]


def load_splits(dataset: str, image_size: int, channels: int, progress: ProgressFn | None = None) -> RealSplits:
    """The labelled train and test splits of a catalog dataset or a class-folder dataset."""
    if catalog.is_path_like(dataset):
        data = datasets.load(dataset, image_size, channels, warn=progress)
        if data.labels is None or not data.classes:
            raise DatasetError(UNLABELLED.format(what=f"the folder {dataset} (its images are not sorted into two or more class sub-folders)"))
        test = holdout(data.labels, len(data.classes))
        if int(test.sum()) < 2:
            raise DatasetError(
                f"{dataset} has too few images to hold some out for testing: "
                "evaluate needs at least two images in some class sub-folders"
            )
        train = _subset(data, ~test)
        return RealSplits(dataset, train, _subset(data, test), data.classes, _fingerprint(train))
    entry = catalog.CATALOG.get(dataset)
    if entry is not None and not entry.classes:
        raise DatasetError(UNLABELLED.format(what=dataset))
    train = datasets.load(dataset, image_size, channels, split="train", warn=progress)
    test = datasets.load(dataset, image_size, channels, split="test", warn=progress)
    return RealSplits(dataset, train, test, tuple(train.classes), None)


def check_classes(splits: RealSplits, classes) -> None:
    """Refuse a dataset whose class names are not ``classes`` (a generator's metadata's)."""
    if classes and tuple(classes) != splits.classes:
        raise DatasetError(
            f"the classes of {splits.dataset} ({', '.join(splits.classes)}) are not the ones the model was "
            f"trained with ({', '.join(classes)}): restore the dataset as it was, or train the model again"
        )
