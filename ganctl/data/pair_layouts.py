"""Where the pairs of a paired dataset are: the two folder layouts pix2pix reads, and their splits.

- aligned, the official pix2pix layout: ``train/``, ``val/``, ``test/`` of side-by-side A|B images;
- ``A/`` and ``B/`` sub-folders whose files pair up by name (optionally ``A/train``, ``B/train``...).

Files are listed here, not decoded. A pair that does not match by name is an error that names its
files: the official ``combine_A_and_B.py`` drops such pairs silently, and users then find empty or
short datasets (pytorch-CycleGAN-and-pix2pix #1121, #1515, #1576).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ganctl.core.errors import DatasetError
from ganctl.data.datasets import IMAGE_SUFFIXES

WarnFn = Callable[[str], None]

SPLITS = ("train", "val", "test")
# a missing split may be served by another: maps has no test/, and the official cityscapes script
# writes its val pairs to test/
_STAND_INS = {"val": ("test",), "test": ("val",)}

_MAX_NAMED = 10  # files named in one error message


@dataclass(frozen=True)
class Pair:
    name: str  # relative to the split folder (the A folder's, for A/B layouts)
    a: Path  # the A|B image (aligned), or the A image
    b: Path | None  # the B image; None for aligned pairs


def _natural(text: str) -> list:
    """'2.jpg' before '10.jpg' (the official archives number their files)."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", text)]


def _image_files(folder: Path) -> list[Path]:
    """Images below ``folder`` (recursive), skipping hidden files and folders (.ipynb_checkpoints)."""
    found = []
    for p in folder.rglob("*"):
        rel = p.relative_to(folder)
        if p.suffix.lower() in IMAGE_SUFFIXES and not any(part.startswith(".") for part in rel.parts) and p.is_file():
            found.append((_natural(rel.as_posix()), p))
    return [p for _, p in sorted(found, key=lambda t: t[0])]


def _is_ab(root: Path) -> bool:
    return (root / "A").is_dir() and (root / "B").is_dir()


def _split_dirs(root: Path) -> dict[str, Path]:
    """split -> folder; a folder with no train/, val/, test/ sub-folders is all 'train'."""
    found = {s: root / s for s in SPLITS if (root / s).is_dir()}
    return found or {"train": root}


def _ab_split_dirs(root: Path) -> dict[str, tuple[Path, Path]]:
    a_splits, b_splits = _split_dirs(root / "A"), _split_dirs(root / "B")
    if a_splits.keys() != b_splits.keys():
        def show(d, side):
            return ", ".join(f"{side}/{s}" for s in d) if d != {"train": root / side} else f"{side}/ (no split folders)"

        raise DatasetError(
            f"{root}: A and B have different split folders ({show(a_splits, 'A')} vs {show(b_splits, 'B')}): "
            "give both the same train/, val/, test/ sub-folders, or none"
        )
    return {s: (a_splits[s], b_splits[s]) for s in a_splits}


def _keyed(folder: Path, root: Path) -> dict[str, Path]:
    """name without suffix -> file (so photo.jpg pairs with photo.png); duplicates are an error."""
    keyed: dict[str, Path] = {}
    for p in _image_files(folder):
        key = p.relative_to(folder).with_suffix("").as_posix()
        if key in keyed:
            raise DatasetError(
                f"{root}: {rel_name(keyed[key], root)} and {rel_name(p, root)} have the same name: "
                "pairs are matched by file name, so keep one of them"
            )
        keyed[key] = p
    return keyed


def rel_name(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` for messages (as given when it lies elsewhere)."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def some_names(items: list[str]) -> str:
    """The first few of ``items`` for an error message, and how many more there are."""
    more = f" and {len(items) - _MAX_NAMED} more" if len(items) > _MAX_NAMED else ""
    return ", ".join(items[:_MAX_NAMED]) + more


def _match(a_dir: Path, b_dir: Path, root: Path) -> list[Pair]:
    a, b = _keyed(a_dir, root), _keyed(b_dir, root)
    only_a = sorted(a.keys() - b.keys(), key=_natural)
    only_b = sorted(b.keys() - a.keys(), key=_natural)
    if only_a or only_b:
        parts = []
        if only_a:
            parts.append(f"{len(only_a)} in {rel_name(a_dir, root)} with no match in {rel_name(b_dir, root)}: "
                         + some_names([rel_name(a[k], root) for k in only_a]))
        if only_b:
            parts.append(f"{len(only_b)} in {rel_name(b_dir, root)} with no match in {rel_name(a_dir, root)}: "
                         + some_names([rel_name(b[k], root) for k in only_b]))
        raise DatasetError(
            f"unpaired images in {root} ({'; '.join(parts)}). A and B files pair up by name "
            "(the extension may differ): rename or remove them"
        )
    return [Pair(a[k].relative_to(a_dir).as_posix(), a[k], b[k]) for k in sorted(a, key=_natural)]


def _all_splits(root: Path) -> dict[str, object]:
    return _ab_split_dirs(root) if _is_ab(root) else _split_dirs(root)


def list_pairs(root: Path, split_dir) -> list[Pair]:
    """The pairs of one split folder (aligned), or of one (A, B) folder pair, in natural order."""
    if isinstance(split_dir, tuple):
        return _match(*split_dir, root)
    return [Pair(p.relative_to(split_dir).as_posix(), p, None) for p in _image_files(split_dir)]


def pair_counts(folder: Path) -> dict[str, int]:
    """Pairs per split of a folder in either layout (files are listed, not decoded)."""
    folder = Path(folder)
    return {s: len(list_pairs(folder, d)) for s, d in _all_splits(folder).items()}


def choose_split(root: Path, split: str, warn: WarnFn | None):
    """(split, its folder) for ``split``, or its stand-in (val <-> test) with a warning."""
    splits = _all_splits(root)
    if split in splits:
        return split, splits[split]
    for other in _STAND_INS.get(split, ()):
        if other in splits:
            if warn:
                warn(f"{root} has no {split!r} split: using {other!r}")
            return other, splits[other]
    base = root / "A" if _is_ab(root) else root
    flat = not any((base / s).is_dir() for s in SPLITS)
    note = " (a folder without train/, val/, test/ sub-folders is all 'train')" if flat else ""
    raise DatasetError(f"{root} has no {split!r} split; it has: {', '.join(splits)}{note}")
