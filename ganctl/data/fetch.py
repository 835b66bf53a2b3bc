"""Bring a catalog dataset into the store (download what is missing, verified)."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from ganctl.core.errors import DatasetError
from ganctl.core.locks import lock_file
from ganctl.core.paths import home
from ganctl.core.storedirs import datasets_dir, ensure_cache_dir, remove_if_empty
from ganctl.data import catalog
from ganctl.data.archives import extract
from ganctl.data.download import ProgressFn, download
from ganctl.data.install import install_archive


def fetch(
    entry: catalog.CatalogEntry,
    mirror: str | None = None,
    progress_for: Callable[[str], ProgressFn] | None = None,
) -> Path:
    """Download every missing file of ``entry``; return its folder in the store.

    For pix2pix datasets and ``synthetic-facades`` that is the folder of split folders (train/...)
    that ``load_paired`` reads. One process at a time fetches a dataset: a second one waits for the
    first (they would write the same partial files and staging folder) and then finds it present.
    """
    if entry.layout in ("manual", "embedded") or (entry.layout != "generated" and not entry.downloadable):
        return _fetch(entry, mirror, progress_for)
    locks = home() / ".locks"  # outside datasets/, whose listing is the datasets themselves
    locks.mkdir(parents=True, exist_ok=True)

    def waiting(pid: int | None) -> None:
        who = f" (pid {pid})" if pid else ""
        print(f"waiting for another ganctl{who} to finish downloading {entry.name}", file=sys.stderr, flush=True)

    with lock_file(locks / f"dataset-{entry.name}.lock", wait=True, on_wait=waiting):
        return _fetch(entry, mirror, progress_for)


def _fetch(
    entry: catalog.CatalogEntry,
    mirror: str | None,
    progress_for: Callable[[str], ProgressFn] | None,
) -> Path:
    if entry.layout == "manual":
        raise DatasetError(entry.instructions)
    if entry.layout == "generated":
        if entry.unpaired:
            from ganctl.data.synthetic_unpaired import ensure_synthetic_unpaired  # torch: imported when needed

            return ensure_synthetic_unpaired(entry)
        from ganctl.data.synthetic_facades import ensure_synthetic_facades  # torch: imported when needed

        return ensure_synthetic_facades(entry)
    if not entry.downloadable:
        if entry.layout == "embedded":
            return entry.local_dir()
        raise DatasetError(f"dataset {entry.name!r} cannot be downloaded")
    ensure_cache_dir(datasets_dir())
    if entry.layout == "pix2pix":
        return _fetch_pix2pix(entry, mirror, progress_for)
    if entry.layout == "cyclegan":
        from ganctl.data.unpaired_fetch import fetch_cyclegan

        return fetch_cyclegan(entry, mirror, progress_for)
    target = entry.local_dir()
    if entry.is_present():
        return target
    for remote in entry.files:
        dest = target / remote.name
        if dest.is_file():
            continue
        bases = catalog.mirrors_for(entry, mirror, remote)
        download(remote, bases, dest, progress=progress_for(remote.name) if progress_for else None)
    if entry.layout == "zip":
        _unpack(entry, target)
    return target


def _unpack(entry: catalog.CatalogEntry, target: Path) -> None:
    """Extract the (verified) archive, move its image folder into place, drop the archive."""
    archive = target / entry.files[0].name
    staging = target / ".extracting"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        extract(archive, staging)
    except DatasetError as e:  # damaged, unsafe or too big: kept, it would fail the same way on every run
        archive.unlink(missing_ok=True)
        remove_if_empty(target)
        why = str(e).removesuffix(": delete it and download again")
        raise DatasetError(f"{why}. The archive was deleted: run the same command again to download it afresh, "
                           "or pass --mirror URL") from e
    inner = staging / entry.image_folder
    if not inner.is_dir():
        shutil.rmtree(staging, ignore_errors=True)
        raise DatasetError(f"{archive.name} holds no folder {entry.image_folder!r}: it is not the {entry.name} archive")
    inner.rename(target / entry.image_folder)
    shutil.rmtree(staging, ignore_errors=True)
    archive.unlink()  # verified and extracted; it can be downloaded again


# ---------------------------------------------------------------- pix2pix archives


def _fetch_pix2pix(
    entry: catalog.CatalogEntry,
    mirror: str | None,
    progress_for: Callable[[str], ProgressFn] | None,
) -> Path:
    """NAME.tar.gz -> datasets/NAME/NAME/{train,val,test}/ with download.json, or an error and no dataset.

    The archive is downloaded next to where it is extracted (``NAME.tar.gz.incomplete`` while in
    flight, so an interrupted transfer resumes on the next run), read to its end and extracted
    safely into a staging folder, its split folders counted against the catalog, and only then
    renamed into place. An archive that is damaged or unsafe is deleted (the next run downloads it
    again); one whose image counts differ is kept, since downloading it again would give the same
    file: the error says where it is.
    """
    def inspect(staging: Path, archive: Path) -> tuple[Path, dict]:
        inner = _dataset_folder(staging, entry)
        if inner is None:
            archive.unlink(missing_ok=True)
            raise DatasetError(
                f"{archive.name} holds no {entry.image_folder}/ folder with "
                f"{' or '.join(s + '/' for s in entry.expected_counts)}: it is not the {entry.name} archive. "
                "It was deleted: run the same command again, or pass --mirror URL"
            )
        _verify_counts(entry, inner, archive)
        return inner, {"pairs": dict(entry.expected_counts)}

    return install_archive(entry, mirror, progress_for, inspect)




def _dataset_folder(staging: Path, entry: catalog.CatalogEntry) -> Path | None:
    """NAME/ inside the archive (the official layout), or the archive's root if the splits lie there."""
    for folder in (staging / entry.image_folder, staging):
        if any((folder / s).is_dir() for s in entry.expected_counts):
            return folder
    return None


def _verify_counts(entry: catalog.CatalogEntry, inner: Path, archive: Path) -> None:
    from ganctl.data.pair_layouts import pair_counts  # imports torch (through datasets): only when needed

    found = pair_counts(inner)
    expected = entry.expected_counts
    if any(found.get(s) != n for s, n in expected.items()):
        def show(counts):
            return ", ".join(f"{s} {counts[s]:,}" if s in counts else f"no {s}/" for s in expected)

        raise DatasetError(
            f"{archive.name} does not hold the expected {entry.name} images: expected {show(expected)}; "
            f"found {show(found)}. Nothing was installed; the archive is kept as {archive} (downloading it again "
            "would give the same file): extract it and pass the folder with --dataset PATH, or delete it and "
            "run the command again with --mirror URL"
        )

