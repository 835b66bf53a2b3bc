"""Bring a catalog dataset into the store (download what is missing, verified)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ganctl.data import catalog
from ganctl.data.archives import extract
from ganctl.data.download import ProgressFn, download
from ganctl.errors import DatasetError
from ganctl.store import datasets_dir, ensure_cache_dir


def fetch(
    entry: catalog.CatalogEntry,
    mirror: str | None = None,
    progress_for: Callable[[str], ProgressFn] | None = None,
) -> Path:
    """Download every missing file of ``entry``; return its folder in the store."""
    if not entry.downloadable:
        if entry.layout == "embedded":
            return entry.local_dir()
        raise DatasetError(f"dataset {entry.name!r} cannot be downloaded")
    ensure_cache_dir(datasets_dir())
    target = entry.local_dir()
    if entry.is_present():
        return target
    bases = catalog.mirrors_for(entry, mirror)
    for remote in entry.files:
        dest = target / remote.name
        if dest.is_file():
            continue
        download(remote, bases, dest, progress=progress_for(remote.name) if progress_for else None)
    if entry.layout == "zip":
        _unpack(entry, target)
    return target


def _unpack(entry: catalog.CatalogEntry, target: Path) -> None:
    """Extract the (verified) archive, move its image folder into place, drop the archive."""
    import shutil

    archive = target / entry.files[0].name
    staging = target / ".extracting"
    shutil.rmtree(staging, ignore_errors=True)
    extract(archive, staging)
    inner = staging / entry.image_folder
    if not inner.is_dir():
        shutil.rmtree(staging, ignore_errors=True)
        raise DatasetError(f"{archive.name} holds no folder {entry.image_folder!r}: it is not the {entry.name} archive")
    inner.rename(target / entry.image_folder)
    shutil.rmtree(staging, ignore_errors=True)
    archive.unlink()  # verified and extracted; it can be downloaded again
