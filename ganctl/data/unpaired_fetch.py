"""Bring a CycleGAN archive into the store: NAME.zip -> datasets/KEY/NAME/{trainA,trainB,testA,testB}/.

KEY is the catalog name (``maps-unpaired`` for the archive ``maps.zip``, so that it never shares
a folder with the pix2pix ``maps``). The steps are the pix2pix archives' (:mod:`ganctl.data.fetch`):
the archive is downloaded next to where it is extracted (``NAME.zip.incomplete`` while in flight,
resumed by the next run; the published host first, then the mirror, or ``--mirror``), read to its
end (every entry's CRC) and extracted safely (no entry may land outside the staging folder) into a
staging folder, its layout checked, and only then renamed into place. The publisher gives no
checksums: the sha256 and the image counts of what was installed are recorded in ``download.json``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from ganctl.core.errors import DatasetError
from ganctl.data import catalog
from ganctl.data.download import ProgressFn
from ganctl.data.install import DOWNLOAD_RECORD, install_archive

FOLDERS = ("trainA", "trainB", "testA", "testB")


def _dataset_folder(staging: Path, entry: catalog.CatalogEntry) -> Path | None:
    """NAME/ inside the archive (the official layout), or the archive's root if the folders lie there."""
    for folder in (staging / entry.image_folder, staging):
        if any((folder / f).is_dir() for f in FOLDERS):
            return folder
    return None


def image_counts(folder: Path) -> dict[str, int]:
    """Images in each of trainA/, trainB/, testA/, testB/ that ``folder`` has (listed, not decoded)."""
    from ganctl.data.pair_layouts import _image_files  # imports torch (through datasets): only when needed

    return {f: len(_image_files(folder / f)) for f in FOLDERS if (folder / f).is_dir()}


def _check_layout(entry: catalog.CatalogEntry, inner: Path | None, archive: Path) -> dict[str, int]:
    """The archive's image counts; an error for one that cannot be the dataset: no split folders,
    or the training folders the catalog lists missing or empty (for a set without listed counts,
    no folder with images)."""
    found = image_counts(inner) if inner is not None else {}
    required = [f for f in ("trainA", "trainB") if f in entry.expected_counts]
    if all(found.get(f) for f in required) if required else any(found.values()):
        return found
    missing = [f + "/" for f in required if not found.get(f)] or ["any of " + ", ".join(f + "/" for f in FOLDERS)]
    have = f" (found {', '.join(f'{f}/ {n:,}' for f, n in found.items())})" if found else ""
    raise DatasetError(f"{archive.name} holds no {entry.image_folder}/ folder with images in {', '.join(missing)}{have}: "
                       f"it is not the {entry.name} archive. It was deleted: run the same command again, or pass --mirror URL")


def fetch_cyclegan(
    entry: catalog.CatalogEntry,
    mirror: str | None,
    progress_for: Callable[[str], ProgressFn] | None,
) -> Path:
    """The entry's folder of trainA/... in the store, downloaded, checked and installed if missing.
    The caller holds the dataset's lock (:func:`ganctl.data.fetch.fetch`)."""
    def inspect(staging: Path, archive: Path) -> tuple[Path, dict]:
        inner = _dataset_folder(staging, entry)
        try:
            found = _check_layout(entry, inner, archive)
        except DatasetError:
            archive.unlink(missing_ok=True)
            raise
        fields: dict = {"images": found}
        differ = {f: n for f, n in entry.expected_counts.items() if found.get(f) != n}
        if differ:
            # the catalog's counts are not the publisher's (none are published): report, keep the data
            fields["expected_images"] = dict(entry.expected_counts)
            shown = ", ".join(f"{f}/ {found.get(f, 0):,} (listed {n:,})" for f, n in differ.items())
            print(f"note: {entry.name} holds other image counts than the catalog lists: {shown}; installed as "
                  f"downloaded, counts recorded in {entry.data_dir() / DOWNLOAD_RECORD}", file=sys.stderr, flush=True)
        return inner or staging, fields  # not None: _check_layout found its folders

    return install_archive(entry, mirror, progress_for, inspect)
