"""What ``--dataset`` means for a family that trains on unpaired data (CycleGAN), read without torch.

Three forms:

- a catalog name of an unpaired set (``horse2zebra``...; ``maps`` and ``facades`` mean their
  CycleGAN archives, ``maps-unpaired`` and ``facades-unpaired``: :func:`catalog.unpaired_name`);
- a folder in the official layout (``data/unaligned_dataset.py`` of the CycleGAN repository):
  ``ROOT/trainA`` and ``ROOT/trainB``, with ``ROOT/testA`` and ``ROOT/testB`` optional;
- two folders of images, one per domain, joined by a colon: ``A_DIR:B_DIR`` (the ``SRC:DST`` form
  of ``docker -v`` and ``scp``). Both are the train split; there is no test split. A colon can
  also be part of a path (``C:\\photos`` on Windows, a folder named ``a:b``): the spec is split at
  the one colon that leaves two existing folders, and a spec that names an existing path is that
  path. Folders of different sizes are fine: the domains are not paired.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ganctl.core.errors import DatasetError, did_you_mean
from ganctl.data import catalog

SPLITS = ("train", "test")


@dataclass(frozen=True)
class UnpairedSource:
    """Where the two domains of each split are; nothing is read from the images."""

    name: str  # the catalog name, the folder's name, or "A_NAME:B_NAME"
    spec: str  # as given, after unpaired_name
    splits: dict[str, tuple[Path, Path]]  # split -> (A folder, B folder)
    source: str  # the resolved folder(s), for the run's record
    entry: catalog.CatalogEntry | None = None


def _both_folders(spec: str) -> list[tuple[Path, Path]]:
    found = []
    for i, ch in enumerate(spec):
        if ch == ":" and 0 < i < len(spec) - 1:
            a, b = Path(spec[:i]).expanduser(), Path(spec[i + 1 :]).expanduser()
            if a.is_dir() and b.is_dir():
                found.append((a, b))
    return found


def _is_drive_colon(spec: str, i: int) -> bool:
    """``C:`` + separator at the start of the spec or of its second part: part of a Windows path."""
    return spec[i - 1 : i].isalpha() and (i == 1 or spec[i - 2] == ":") and spec[i + 1 : i + 2] in ("/", "\\")


def two_folders(spec: str) -> tuple[Path, Path] | None:
    """(A_DIR, B_DIR) for a spec ``A_DIR:B_DIR``; None when ``spec`` is not of that form (no colon
    outside a drive letter, a catalog name, or an existing path). A spec of that form whose folders
    do not both exist, or that splits into two folders in more than one way, is an error."""
    if spec in catalog.CATALOG or Path(spec).expanduser().exists():
        return None
    cuts = [i for i, ch in enumerate(spec) if ch == ":" and not _is_drive_colon(spec, i)]
    if not cuts:
        return None
    found = _both_folders(spec)
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        ways = " or ".join(f"{a} + {b}" for a, b in found)
        raise DatasetError(f"--dataset {spec} splits into two folders in more than one way ({ways}): "
                           "rename a folder so that the colon between A_DIR and B_DIR is the only one")
    a, b = spec[: cuts[0]], spec[cuts[0] + 1 :]
    if not a or not b:
        raise DatasetError(f"--dataset {spec}: give two folders of images as A_DIR:B_DIR")
    # no cut gives two folders, so the first one's sides are not both folders: name the one that is not
    side, part = next((side, part) for side, part in (("A", a), ("B", b)) if not Path(part).expanduser().is_dir())
    what = "is a file" if Path(part).expanduser().exists() else "does not exist"
    raise DatasetError(f"--dataset {spec}: the domain {side} folder {part} {what}; give two folders of images as A_DIR:B_DIR")


def canonical_spec(spec: str) -> str:
    """A run's record of its dataset: absolute folders (``A:B`` for two), or the catalog name."""
    pair = two_folders(spec)
    if pair is not None:
        return f"{pair[0].resolve()}:{pair[1].resolve()}"
    if catalog.is_path_like(spec):
        return str(Path(spec).expanduser().resolve())
    return catalog.unpaired_name(spec)


def _official_splits(root: Path) -> dict[str, tuple[Path, Path]]:
    return {s: (root / f"{s}A", root / f"{s}B") for s in SPLITS if (root / f"{s}A").is_dir() and (root / f"{s}B").is_dir()}


def _layout_error(root: Path) -> DatasetError:
    has = sorted(p.name + "/" for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) if root.is_dir() else []
    seen = f" (it has {', '.join(has[:6])}{' ...' if len(has) > 6 else ''})" if has else ""
    hint = "; for pix2pix pairs use 'ganctl train pix2pix'" if any(h in ("A/", "B/", "train/") for h in has) else ""
    return DatasetError(f"{root} has no trainA/ and trainB/ folders{seen}: unpaired data is ROOT/trainA and ROOT/trainB "
                        f"(testA/, testB/ optional), or two folders given as A_DIR:B_DIR{hint}")


def _catalog_entry(spec: str) -> catalog.CatalogEntry:
    name = catalog.unpaired_name(spec)
    if name not in catalog.CATALOG:
        err = did_you_mean("dataset", spec, catalog.unpaired_names())
        raise DatasetError(f"{err} Or give a folder with trainA/ and trainB/, or two folders as A_DIR:B_DIR.")
    entry = catalog.CATALOG[name]
    if not entry.unpaired:
        what = "image pairs for pix2pix" if entry.paired else "single images"
        raise DatasetError(f"{spec} holds {what}, not two domains: CycleGAN trains on "
                           f"{', '.join(catalog.unpaired_names())}, a folder with trainA/ and trainB/, or A_DIR:B_DIR")
    return entry


def check_unpaired_spec(spec: str) -> None:
    """The checks of an unpaired ``--dataset`` that read no image (and need no torch), as
    :func:`catalog.check_spec` for the other kinds: a catalog name of an unpaired set, a folder with
    trainA/ and trainB/, or ``A_DIR:B_DIR``."""
    if two_folders(spec) is not None:
        return
    if catalog.is_path_like(spec):
        root = Path(spec).expanduser()
        if not root.exists():
            raise DatasetError(f"dataset folder {spec} does not exist")
        if not root.is_dir():
            raise DatasetError(f"--dataset {spec} is a file: give a folder with trainA/ and trainB/, or A_DIR:B_DIR")
        if "train" not in _official_splits(root):
            raise _layout_error(root)
        return
    _catalog_entry(spec)


def locate(spec: str, data_dir: Path | None = None) -> UnpairedSource:
    """The split folders of ``spec``. For a catalog name, ``data_dir`` is its folder in the store
    (where :func:`ganctl.data.fetch.fetch` put it); without one the entry must be present."""
    pair = two_folders(spec)
    if pair is not None:
        a, b = pair
        return UnpairedSource(f"{a.resolve().name}:{b.resolve().name}", spec, {"train": (a, b)},
                              f"{a.resolve()}:{b.resolve()}")
    entry = None
    if catalog.is_path_like(spec):
        root = Path(spec).expanduser()
        if not root.is_dir():
            raise DatasetError(f"dataset folder {spec} does not exist")
        name = root.resolve().name
    else:
        entry = _catalog_entry(spec)
        spec, name = entry.name, entry.name
        if data_dir is None:
            if entry.layout == "manual":
                raise DatasetError(entry.instructions)
            if not entry.is_present():
                raise DatasetError(f"dataset {entry.name!r} is not in the store: run 'ganctl download {entry.name}'")
            data_dir = entry.data_dir()
        root = data_dir
    splits = _official_splits(root)
    if not splits:
        raise _layout_error(root)
    return UnpairedSource(name, spec, splits, str(root.resolve()), entry)


def split_folders(src: UnpairedSource, split: str) -> tuple[Path, Path]:
    """(A folder, B folder) of ``split``; an error that lists the splits there are."""
    if split not in src.splits:
        there = ", ".join(src.splits)
        note = " (two folders given as A_DIR:B_DIR are the train split only)" if ":" in src.name else ""
        raise DatasetError(f"{src.name} has no {split!r} split ({split}A/ and {split}B/); it has: {there}{note}")
    return src.splits[split]
