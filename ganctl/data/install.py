"""Installing a dataset's archive into the store: one way for every kind of set (pix2pix pairs,
CycleGAN's unpaired sets), each checking what it extracted in its own way."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

from ganctl.core.atomic import atomic_write_json
from ganctl.core.errors import DatasetError
from ganctl.core.storedirs import remove_if_empty
from ganctl.data import catalog
from ganctl.data.archives import extract
from ganctl.data.download import ProgressFn, download, file_digest

DOWNLOAD_RECORD = "download.json"  # what was downloaded, from where, with its sha256


def install_archive(
    entry: catalog.CatalogEntry,
    mirror: str | None,
    progress_for: Callable[[str], ProgressFn] | None,
    inspect: Callable[[Path, Path], tuple[Path, dict]],
) -> Path:
    """The entry's one archive downloaded (resuming, from its mirrors), read to its end and extracted
    safely into a staging folder, ``inspect(staging, archive) -> (dataset folder, fields for
    download.json)`` checked (it deletes the archive and raises DatasetError when it is not the
    set), then renamed into place with ``download.json``; the archive is deleted once installed.
    The caller holds the dataset's lock."""
    target = entry.local_dir()
    final = entry.data_dir()
    (remote,) = entry.files
    archive = target / remote.name
    if final.is_dir():
        archive.unlink(missing_ok=True)  # left by a run stopped between install and clean-up
        return final
    target.mkdir(parents=True, exist_ok=True)
    staging = target / ".extracting"
    shutil.rmtree(staging, ignore_errors=True)
    bases = catalog.mirrors_for(entry, mirror, remote)
    try:
        if not archive.is_file():
            download(remote, bases, archive, progress=progress_for(remote.name) if progress_for else None)
        try:
            extract(archive, staging, progress_for(f"{remote.name} (extracting)") if progress_for else None)
        except DatasetError as e:  # damaged, or entries that would land outside the folder
            archive.unlink(missing_ok=True)
            why = str(e).removesuffix(": delete it and download again")
            raise DatasetError(f"{why}. The archive was deleted: run the same command again to download it afresh, "
                               "or pass --mirror URL") from e
        inner, fields = inspect(staging, archive)
        atomic_write_json(inner / DOWNLOAD_RECORD, {
            "dataset": entry.name,
            "file": remote.name,
            "size": archive.stat().st_size,
            "sha256": file_digest(archive),
            "sources": bases,
            **fields,
            "installed": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        })
        inner.rename(final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if not final.is_dir():
            remove_if_empty(target)
    archive.unlink()  # extracted and checked; it can be downloaded again
    return final
