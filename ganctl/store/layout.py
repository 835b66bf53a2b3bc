"""The store: where datasets, training runs and pretrained weights live.

The root is ``GANCTL_HOME`` if set, else platformdirs' user data dir (:func:`ganctl.core.paths.home`,
which ``store.home`` is). It is resolved at call time, never at import, so tests and users can
point it elsewhere per process. Every write goes through :mod:`ganctl.core.atomic` (temp + rename), so a
crash never leaves a half-written file under its final name; a run folder is written by one
process at a time (:func:`run_lock`, on :mod:`ganctl.core.locks`).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from ganctl.core.errors import StoreError, UnknownNameError
from ganctl.core.locks import LockBusyError, LockGone, acquire, holder_pid, try_lock
from ganctl.core.paths import home
from ganctl.core.storedirs import (
    datasets_dir,
    dir_size,
    evaluators_dir,
    folder_cache_dir,
    pretrained_dir,
    remove_if_empty,
    runs_dir,
)

# \Z, not $: '$' also matches before a trailing newline, which would let "run\n" through
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}\Z")
_NAME_MAX = 100


def check_name(name: str, what: str = "name") -> str:
    """Refuse names that could leave the store or confuse the shell ('../x', 'a/b', '.hidden')."""
    if not _NAME_RE.match(name) or ".." in name:
        raise StoreError(
            f"invalid {what} {name!r}: use letters, digits, '.', '_' and '-' "
            "(starting with a letter or digit), at most 100 characters"
        )
    return name


# ---------------------------------------------------------------- run locks


RUN_LOCK = ".lock"


def _busy_message(run_id: str, pid: int | None, then: str) -> str:
    who = f"another process (pid {pid})" if pid else "another process"
    return f"run {run_id} is being trained by {who}: wait for it to finish, {then}"


@contextlib.contextmanager
def run_lock(path: Path, run_id: str, *, new: bool = False, then: str = "or use another --name") -> Iterator[None]:
    """Be the one process writing the run folder ``path`` for the block (train, resume, rm).

    ``new``: the folder is created if missing, and refused if it already holds a run (another
    process may have started one under the same name since the name was checked). Otherwise the
    folder must still be there once locked: ``rm`` may have removed it meanwhile.
    """
    path = Path(path)
    created = new and not path.exists()
    if new:
        path.mkdir(parents=True, exist_ok=True)
    try:
        fd = acquire(path / RUN_LOCK, False, None)
    except LockBusyError as e:
        raise LockBusyError(_busy_message(run_id, e.pid, then), e.pid) from None
    except LockGone:
        raise StoreError(f"run {run_id} no longer exists in {path.parent} (was it deleted?)") from None
    try:
        if new and (path / "config.json").exists():
            raise StoreError(
                f"run {run_id} already exists: pass --resume to continue it, choose another --name, "
                "or delete it with 'ganctl rm'"
            )
        yield
    except BaseException:
        if created and not (path / "config.json").exists():  # failed before it became a run: free the name
            shutil.rmtree(path, ignore_errors=True)
        raise
    finally:
        os.close(fd)


def check_run_idle(path: Path, run_id: str, then: str = "or use another --name") -> None:
    """Refuse at once when a process is training the run at ``path`` (an early, lock-free check)."""
    try:
        fd = os.open(Path(path) / RUN_LOCK, os.O_RDWR)
    except OSError:
        return  # no lock file: nobody has trained it since locks exist
    try:
        if not try_lock(fd):
            pid = holder_pid(fd)
            raise LockBusyError(_busy_message(run_id, pid, then), pid)
    finally:
        os.close(fd)


# ---------------------------------------------------------------- disk use and caches


CLASSIFIER_FILE = "classifier.safetensors"


@dataclass(frozen=True)
class CacheFile:
    """A file of the store that ganctl makes again when it is missing (``ganctl rm --cache``)."""

    path: Path
    what: str
    size: int


def cache_files() -> list[CacheFile]:
    """The complete cache files: decoded image folders, evaluate's classifiers and real features (never the
    temporary file of a write in progress, which its writer renames into place)."""
    found = [*((p, "decoded image folder") for p in sorted(folder_cache_dir().glob("folder-*.safetensors"))),
             *((p, "evaluate's classifier") for p in sorted(evaluators_dir().glob(f"*/{CLASSIFIER_FILE}"))),
             *((p, "evaluate's real features") for p in sorted(evaluators_dir().glob("references/*.safetensors")))]
    return [CacheFile(p, what, dir_size(p)) for p, what in found if p.is_file() and not p.is_symlink()]


def delete_cache_files(files: list[CacheFile]) -> list[CacheFile]:
    """Delete cache files (each unlink is atomic; a process reading one keeps its open copy) and
    the classifier folders they leave empty. Returns those deleted (not those already gone)."""
    gone = []
    for f in files:
        try:
            f.path.unlink()
        except FileNotFoundError:
            continue
        gone.append(f)
        if f.path.parent.parent == evaluators_dir():
            remove_if_empty(f.path.parent)
    return gone


def disk_use() -> dict[str, int]:
    """Bytes in the store by kind: ``datasets`` (downloaded or generated; not their caches),
    ``caches`` (:func:`cache_files` and what their writers left), ``runs``, ``pretrained``, and
    ``total``: everything under the store, lock files and stray files included."""
    caches = dir_size(folder_cache_dir()) + dir_size(evaluators_dir())
    return {
        "datasets": dir_size(datasets_dir()) - dir_size(folder_cache_dir()),
        "caches": caches,
        "runs": dir_size(runs_dir()),
        "pretrained": dir_size(pretrained_dir()),
        "total": dir_size(home()),
    }


# ---------------------------------------------------------------- runs


# what a damaged config.json calls for: the fault is named (the field and what it should hold),
# and deleting the run, as this once advised, would throw away every good checkpoint with it
REPAIR_CONFIG = "correct that in the file and the run works again (its checkpoints are not affected)"


@dataclass(frozen=True)
class RunInfo:
    family: str
    name: str
    path: Path

    @property
    def id(self) -> str:
        return f"{self.family}/{self.name}"

    @cached_property
    def _checked(self) -> tuple[dict, str | None]:
        from ganctl.config import read_json

        path = self.path / "config.json"
        try:
            return read_json(path), None
        except ValueError as e:
            return {}, f"{path}: {e}"
        except OSError as e:
            return {}, f"{path} cannot be read ({e.strerror or e})"

    def config(self) -> dict:
        """The run's config.json, checked field by field; {} when it is damaged (see :attr:`damage`)."""
        return self._checked[0]

    @property
    def damage(self) -> str | None:
        """Why the run's config.json cannot be used (naming the file), or None when it is sound."""
        return self._checked[1]

    def check(self) -> RunInfo:
        """This run, or a StoreError if its config.json is damaged (it can still be listed and removed)."""
        if self.damage:
            raise StoreError(f"run {self.id} is damaged: {self.damage}; {REPAIR_CONFIG}")
        return self


def run_path(family: str, name: str) -> Path:
    return runs_dir() / check_name(family, "model") / check_name(name, "run name")


def list_runs(family: str | None = None) -> list[RunInfo]:
    """Runs in the store, oldest first (by creation time recorded in the folder's mtime)."""
    root = runs_dir()
    if not root.is_dir():
        return []
    runs = []
    for fam_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if family is not None and fam_dir.name != family:
            continue
        for run in fam_dir.iterdir():
            if run.is_dir() and not run.name.startswith(".") and (run / "config.json").is_file():
                runs.append(RunInfo(fam_dir.name, run.name, run))
    # damaged runs have no "created": they sort first, so the newest run is a sound one if any is
    runs.sort(key=lambda r: (r.config().get("created", ""), r.path.stat().st_mtime))
    return runs


def newest_run(family: str) -> RunInfo | None:
    runs = list_runs(family)
    return runs[-1] if runs else None


def find_run(ref: str, family: str | None = None) -> RunInfo:
    """Resolve 'NAME', 'FAMILY/NAME' or a run folder path to a run (of ``family`` when given)."""
    p = Path(ref).expanduser()
    if p.is_dir() and (p / "config.json").is_file():
        return RunInfo(p.parent.name, p.name, p.resolve())
    if "/" in ref:
        fam, _, name = ref.partition("/")
        parts = (fam, name)
    else:
        fam, name, parts = "", ref, (ref,)
    if ref.count("/") > 1 or not all(_NAME_RE.match(x) and ".." not in x for x in parts):
        raise UnknownNameError(f"{_not_a_run(p, ref)}: give NAME, FAMILY/NAME or the folder of a run "
                               "('ganctl list --runs' shows them)")
    try:
        fam = _family_folder(fam) if fam else ""
    except UnknownNameError as e:
        raise UnknownNameError(f"there is no run {ref!r}: {e}") from None
    if fam and family and fam != family:
        raise UnknownNameError(f"{fam}/{name} names a {fam} run, not a {family} one")
    family = fam or family
    every = list_runs()
    candidates = [r for r in every if r.name == name and family in (None, r.family)]
    if not candidates:
        raise UnknownNameError(_no_such_run(name, family, every))
    if len(candidates) > 1:
        ids = ", ".join(r.id for r in candidates)
        raise UnknownNameError(f"run name {name!r} is ambiguous ({ids}): give it as FAMILY/NAME.")
    return candidates[0]


def _not_a_run(p: Path, ref: str) -> str:
    """Why ``ref``, which is no valid run name, is not a run either as a path."""
    if p.is_dir():
        return f"{p} is a folder but not a run folder (it holds no config.json)"
    if p.exists():
        return f"{p} is a file, not a run folder"
    if "/" in ref or ref.startswith(("~", ".")) or os.sep in ref:
        return f"there is no folder {p}"
    return f"{ref!r} is not a run name (letters, digits, '.', '_' and '-') nor a folder"


def _family_folder(fam: str) -> str:
    """The runs folder name of a model family given in FAMILY/NAME: registered names are
    case-insensitive (DCGAN/x is dcgan/x); an unknown one is a did-you-mean error, unless the store
    holds runs under it (a family registered by a plug-in that is not loaded)."""
    from ganctl.families import registry

    try:
        return registry.get(fam).name
    except UnknownNameError:
        if (runs_dir() / fam).is_dir():
            return fam
        raise


def _no_such_run(name: str, family: str | None, every: list[RunInfo]) -> str:
    """The message for a run name that matches no run: what the store does hold, or how to make one."""
    kind = f"{family} " if family else ""
    head = f"there is no {kind}run named {name!r} in {runs_dir()}"
    mine = [r.id for r in every if family in (None, r.family)]
    if mine:
        return f"{head}; {kind}runs: {_some(mine)}"
    if every:
        return f"{head}; there are no {kind}runs yet (other runs: {_some([r.id for r in every])})"
    return f"{head}; there are no runs yet: train one with {train_hint(family)}"


def _some(ids: list[str], most: int = 10) -> str:
    more = f" and {len(ids) - most} more ('ganctl list --runs' shows them all)" if len(ids) > most else ""
    return ", ".join(ids[-most:]) + more


def train_hint(family: str | None = None) -> str:
    """A train command that works from a fresh install, quoted: 'ganctl train dcgan --dataset digits'."""
    from ganctl.families import registry

    fam = registry.FAMILIES.get(family or "dcgan") or next(iter(registry.FAMILIES.values()))
    # built-in, small, and downloaded in seconds; any family of its data kind trains on it
    return f"'ganctl train {fam.name} --dataset {'synthetic-facades' if fam.paired else 'digits'}'"


def next_run_name(family: str, base: str) -> str:
    """'base', then 'base-2', 'base-3', ... whichever is free; always a valid run name (a long
    base is shortened so that it fits the length limit with its suffix)."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", base)
    base = re.sub(r"\.{2,}", ".", base)  # '..' is refused in names
    base = re.sub(r"^[^A-Za-z0-9]+", "", base).rstrip("-.") or "run"
    parent = runs_dir() / family
    name, k = base[:_NAME_MAX].rstrip("-."), 1
    while (parent / name).exists():
        k += 1
        suffix = f"-{k}"
        name = base[: _NAME_MAX - len(suffix)].rstrip("-.") + suffix
    return check_name(name, "run name")


def in_runs_dir(path: Path) -> bool:
    """True when ``path``, resolved, is a ``runs/FAMILY/NAME`` folder of this store (not a look-alike
    such as ``runs-backup/...``, and not a link out of the store)."""
    root = runs_dir().resolve()
    real = Path(path).resolve()
    return real.is_relative_to(root) and len(real.relative_to(root).parts) == 2


def delete_run(run: RunInfo) -> None:
    """Remove a run: rename it out of the way first, so a half-deleted run is never listed.

    Refused for a folder outside ``runs/`` and for a run another process is training.
    """
    if not in_runs_dir(run.path):
        raise StoreError(f"{run.path} is not a run in the store ({runs_dir()}); ganctl only deletes its own runs")
    with run_lock(run.path, run.id, then="or stop it, then delete it"):
        trash = run.path.parent / f".deleting-{run.name}"
        shutil.rmtree(trash, ignore_errors=True)
        os.rename(run.path, trash)
        shutil.rmtree(trash, ignore_errors=True)
