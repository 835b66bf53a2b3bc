"""Bring a catalog dataset into the store (download what is missing, verified)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ganctl.data import catalog
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
    bases = catalog.mirrors_for(entry, mirror)
    for remote in entry.files:
        dest = target / remote.name
        if dest.is_file():
            continue
        download(remote, bases, dest, progress=progress_for(remote.name) if progress_for else None)
    return target
