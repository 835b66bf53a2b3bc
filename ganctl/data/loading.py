"""The data kinds' loaders, checks and dataset ids, named by their registration
(:data:`ganctl.families.familyspec.KINDS`): a catalogue dataset is fetched first when it is not in
the store yet, then read as the kind's training data and its fixed preview or validation part."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ganctl.core.errors import DatasetError
from ganctl.data import catalog, fetch

if TYPE_CHECKING:
    from ganctl.data import datasets

VAL_PAIRS = 16  # validation pairs scored after each pix2pix epoch (the pairs kind's epoch pictures)


def load_training_data(
    spec: str,
    image_size: int,
    channels: int | None,
    mirror: str | None,
    progress_for: Callable | None,
    warn: Callable[[str], None] | None,
) -> datasets.ImageData:
    """A catalog dataset (downloaded first when missing) or a folder of images."""
    from ganctl.data import datasets

    catalog.check_spec(spec, paired=False)
    if not catalog.is_path_like(spec) and spec in catalog.CATALOG:
        entry = catalog.CATALOG[spec]
        if not entry.is_present():
            if warn:
                warn(f"dataset {spec!r} is not in the store yet: downloading it")
            fetch.fetch(entry, mirror, progress_for)
    return datasets.load(spec, image_size, channels, warn=warn)


def _fetch_if_missing(spec: str, mirror, progress_for, warn) -> None:
    if not catalog.is_path_like(spec) and spec in catalog.CATALOG:
        entry = catalog.CATALOG[spec]
        if not entry.is_present():
            if warn:
                verb = "generating" if entry.layout == "generated" else "downloading"
                warn(f"dataset {spec!r} is not in the store yet: {verb} it")
            fetch.fetch(entry, mirror, progress_for)


def load_images(spec: str, image_size: int, channels: int | None, data_args: dict, mirror, progress_for, warn):
    """The images kinds' loader: (the training images, None)."""
    return load_training_data(spec, image_size, channels, mirror, progress_for, warn), None


def load_pairs(spec: str, image_size: int, channels: int | None, data_args: dict, mirror, progress_for, warn):
    """The pairs kind's loader."""
    return load_paired_data(spec, image_size, data_args["load_size"], mirror, progress_for, warn, limit=VAL_PAIRS)


def load_unpaired(spec: str, image_size: int, channels: int | None, data_args: dict, mirror, progress_for, warn):
    """The unpaired kind's loader: (the A and B training images at the jitter's load size, the
    fixed preview images at the training size)."""
    from ganctl.data.unpaired import load_unpaired_data

    return load_unpaired_data(spec, image_size, data_args["load_size"], mirror, progress_for, warn)


def check_images_spec(spec: str) -> None:
    catalog.check_spec(spec, paired=False)


def check_pairs_spec(spec: str) -> None:
    catalog.check_spec(spec, paired=True)


def dataset_id(dataset: str) -> str:
    """What a run of the images and pairs kinds records: the catalog name, or the absolute folder."""
    return str(Path(dataset).expanduser().resolve()) if catalog.is_path_like(dataset) else dataset


def load_paired_data(spec: str, image_size: int, load_size: int, mirror, progress_for, warn, limit: int | None = None):
    """pix2pix: (train pairs at the jitter's load size, validation pairs at the training size: the
    first ``limit`` (all when None) of the val split, else of test, else of train)."""
    from ganctl.data import paired

    catalog.check_spec(spec, paired=True)
    _fetch_if_missing(spec, mirror, progress_for, warn)
    train = paired.load_paired(spec, "train", load_size, warn=warn)
    val = None
    for split in ("val", "test"):  # only the pairs validation scores are decoded
        try:
            val = paired.load_paired(spec, split, image_size, warn=warn, limit=limit)
            break
        except DatasetError:
            continue
    if val is None:  # a folder with one split: score on (unjittered) training pairs
        val = paired.load_paired(spec, "train", image_size, warn=warn, limit=limit)
    return train, val
