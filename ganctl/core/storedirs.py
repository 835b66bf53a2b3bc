"""The store's folders under its root (:func:`ganctl.core.paths.home`): datasets, runs,
pretrained weights, caches, and the sizes ``ganctl list``/``prune`` show. Below every stage, so
data, the store, evaluation and the CLI all find the same folders without importing each other.
"""

from __future__ import annotations

from pathlib import Path

from ganctl.core.atomic import atomic_write
from ganctl.core.paths import home

_CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This folder holds files ganctl can download again; backup tools may skip it.\n"
)


def datasets_dir() -> Path:
    return home() / "datasets"


def runs_dir() -> Path:
    return home() / "runs"


def pretrained_dir() -> Path:
    return home() / "pretrained"


def ensure_cache_dir(path: Path) -> Path:
    """Create a folder of re-downloadable files, tagged so backup tools skip it."""
    path.mkdir(parents=True, exist_ok=True)
    tag = path / "CACHEDIR.TAG"
    if not tag.exists():
        atomic_write(tag, _CACHEDIR_TAG.encode())
    return path


def remove_if_empty(folder: Path) -> None:
    """Remove ``folder`` if it is an empty directory (left by a failed download); else leave it."""
    try:
        folder.rmdir()
    except OSError:
        pass


def dir_size(path: Path) -> int:
    """Bytes in the files under ``path`` (symlinks not followed); 0 when it does not exist. Files
    that vanish while it counts (a save or prune running meanwhile) are skipped."""
    def size(p: Path) -> int:
        try:
            return p.stat().st_size if p.is_file() and not p.is_symlink() else 0
        except OSError:
            return 0

    if not path.is_dir():
        return size(path)
    return sum(size(p) for p in path.rglob("*"))


def human_size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def folder_cache_dir() -> Path:
    """Decoded copies of large image folders (:mod:`ganctl.data.datasets`)."""
    return datasets_dir() / ".cache"


def evaluators_dir() -> Path:
    """The classifiers ``ganctl evaluate`` trains once per dataset (:mod:`ganctl.evaluation.cache`)."""
    return home() / "evaluators"
