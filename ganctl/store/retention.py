"""The checkpoint folders of a run, without torch: which is the newest, which are kept, and deleting
the others so that a kill at any moment leaves no half-deleted checkpoint (``ganctl prune`` and
``ganctl list`` use this without importing torch; :mod:`ganctl.store.checkpoint` writes and loads them).

A run keeps, after every save and after ``ganctl prune``:

- the newest checkpoint (the one ``checkpoints/latest`` names): an exact resume needs it and only it;
- the ``keep - 1`` newest epoch checkpoints before it (``--keep K``, default 1: the newest alone);
- every epoch the user marked with ``--keep-epochs``.

Everything else goes: older epoch checkpoints, and interrupt checkpoints (``step_``) that a later
save superseded. Folders of other names are not checkpoints; of the hidden ones, :func:`clean`
deletes what killed saves and prunes left (``.old-``, ``.prune-``, ``.*.tmp``) and ``ganctl prune``
also the ``.broken-`` ones a resume moved aside.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from ganctl.config import KEEP, SAVE_EVERY  # noqa: F401  (retention.KEEP: the default where it applies)
from ganctl.core.atomic import atomic_write
from ganctl.core.errors import CheckpointError, GanctlError

TRAINER = "trainer.pt"
POSITION = "position.json"
# hidden names a save or prune moves folders to; clean() deletes them (not .broken-*: kept for the user)
OLD, PRUNED, BROKEN = ".old-", ".prune-", ".broken-"

_EPOCH = re.compile(r"epoch_(\d+)\Z")
_STEP = re.compile(r"step_(\d+)\Z")


def epoch_of(folder: Path | str) -> int | None:
    """The epoch number of an ``epoch_NNNN`` folder (epochs completed when it was saved), else None."""
    m = _EPOCH.match(Path(folder).name)
    return int(m.group(1)) if m else None


def is_checkpoint(name: str) -> bool:
    """``epoch_NNNN`` or ``step_NNNNNNNN``: the names a save gives."""
    return bool(_EPOCH.match(name) or _STEP.match(name))


def due(epoch: int, total: int, save_every: int, marked: Collection[int] = ()) -> bool:
    """Whether the end of epoch ``epoch`` (1-based, of ``total``) saves a checkpoint."""
    return epoch % save_every == 0 or epoch >= total or epoch in marked


def to_prune(folders: Iterable[Path], newest: Path, keep: int = KEEP, marked: Collection[int] = ()) -> list[Path]:
    """The checkpoint folders among ``folders`` (one run's) that go: all but ``newest``, the
    ``keep - 1`` newest epoch checkpoints before it and the ``marked`` epochs. Oldest first."""
    if keep < 1:
        raise ValueError(f"keep must be at least 1, got {keep}")
    folders = [Path(f) for f in folders if is_checkpoint(Path(f).name)]
    older = sorted((f for f in folders if f != newest and epoch_of(f) is not None), key=epoch_of, reverse=True)
    kept = {newest, *older[: keep - 1], *(f for f in older if epoch_of(f) in marked)}
    gone = [f for f in folders if f not in kept]
    return sorted(gone, key=lambda f: (epoch_of(f) is None, epoch_of(f) or 0, f.name))


def parse_epochs(text: str | None) -> tuple[int, ...] | None:
    """``--keep-epochs "10,20"`` as ``(10, 20)`` (sorted, without repeats); None for None; a
    one-line error for anything that is not positive whole numbers separated by commas."""
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts or not all(p.isdigit() and int(p) >= 1 for p in parts):
        raise GanctlError(f"--keep-epochs takes epoch numbers (1 or more) separated by commas, like 10,20 (got {text!r})")
    return tuple(sorted({int(p) for p in parts}))


# ---------------------------------------------------------------- reading


def read_position(ckpt: Path) -> dict:
    """``{"epoch", "batch", "step"}`` of a checkpoint without loading its optimizer states: from
    ``position.json``, or for checkpoints saved before it existed, from ``trainer.pt`` memory-mapped
    (its tensors are then never read). Raises CheckpointError when neither is readable."""
    try:
        pos = json.loads((ckpt / POSITION).read_text())
        return {k: int(pos[k]) for k in ("epoch", "batch", "step")}
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{ckpt / POSITION} is unreadable ({e})") from e
    import torch  # only for checkpoints older than position.json

    try:
        data = torch.load(ckpt / TRAINER, map_location="cpu", weights_only=True, mmap=True)
        return {k: int(data[k]) for k in ("epoch", "batch", "step")}
    except Exception as e:
        raise CheckpointError(f"{ckpt / TRAINER} cannot be read ({type(e).__name__})") from e


def _position(p: Path) -> tuple[int, int]:
    try:
        return (read_position(p)["step"], 1 if p.name.startswith("step_") else 0)
    except CheckpointError:  # unreadable ones sort last; load_trainer reports why
        return (-1, 0)


def _folders(root: Path) -> list[Path]:
    return [p for p in root.glob("*_*") if p.is_dir() and not p.name.startswith(".")]


def candidates(run_dir: Path) -> list[Path]:
    """Checkpoint folders, the one ``latest`` names first, then the others newest first."""
    root = run_dir / "checkpoints"
    found = sorted(_folders(root), key=_position, reverse=True)
    pointer = root / "latest"
    try:
        named = root / pointer.read_text().strip() if pointer.is_file() else None
    except (OSError, UnicodeDecodeError):  # a damaged pointer names nothing: the newest comes first
        named = None
    if named is not None:
        if named in found:
            found.remove(named)
            found.insert(0, named)
    return found


def newest(root: Path) -> Path | None:
    """The checkpoint under ``root`` (a run's ``checkpoints/``) that a resume starts from: the one
    ``latest`` names, unless a save killed before its ``latest`` write left a newer complete one
    (every folder under a final name is complete: it was fsynced before its rename)."""
    folders = _folders(root)
    if not folders:
        return None
    ahead = max(folders, key=_position)
    pointer = root / "latest"
    try:
        named = root / pointer.read_text().strip() if pointer.is_file() else None
    except (OSError, UnicodeDecodeError):
        named = None
    if named is not None and named.is_dir() and _position(named) >= _position(ahead):
        return named
    return ahead


# ---------------------------------------------------------------- deleting


def _remove(ckpt_root: Path, folder: Path, prefix: str) -> None:
    """Rename ``folder`` aside, then delete it: a kill in between or during the deletion leaves
    a hidden folder for :func:`clean`, never a half-deleted one under a checkpoint's name."""
    aside = ckpt_root / f"{prefix}{folder.name}"
    shutil.rmtree(aside, ignore_errors=True)
    os.rename(folder, aside)
    shutil.rmtree(aside, ignore_errors=True)


def prune(ckpt_root: Path, newest: Path, keep: int = KEEP, marked: Collection[int] = ()) -> list[Path]:
    """Delete the checkpoints of ``ckpt_root`` that :func:`to_prune` lets go, each renamed aside
    first (a kill mid-prune leaves a hidden folder for :func:`clean`, never a half-deleted
    checkpoint). Returns them."""
    folders = [p for p in ckpt_root.iterdir() if p.is_dir() and not p.is_symlink()]
    gone = to_prune(folders, newest, keep, marked)
    for folder in gone:
        _remove(ckpt_root, folder, PRUNED)
    return gone


def leftovers(run_dir: Path) -> list[Path]:
    """What killed saves and prunes left under ``checkpoints/``: temporary folders and files, and
    folders moved aside (not ``.broken-*``)."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir()
                  if (p.name.startswith(".") and p.name.endswith(".tmp")) or p.name.startswith((OLD, PRUNED)))


def clean(run_dir: Path) -> list[Path]:
    """Delete :func:`leftovers` and point ``latest`` at :func:`newest`. Only a process holding the
    run's lock may call this. Returns what went."""
    gone = leftovers(run_dir)
    for p in gone:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    root = Path(run_dir) / "checkpoints"
    best = newest(root) if root.is_dir() else None
    pointer = root / "latest"
    try:
        current = pointer.read_text().strip() if pointer.is_file() else None
    except (OSError, UnicodeDecodeError):  # damaged: rewritten below
        current = None
    if best is not None and current != best.name:
        atomic_write(pointer, (best.name + "\n").encode())
    return gone


def move_aside(ckpt: Path) -> Path:
    """Rename a checkpoint that does not load to ``.broken-<tag>`` (replacing an older one of that
    name): it stops being a candidate, and a later save of its tag starts afresh."""
    aside = ckpt.parent / f"{BROKEN}{ckpt.name}"
    shutil.rmtree(aside, ignore_errors=True)
    os.rename(ckpt, aside)
    return aside


# ---------------------------------------------------------------- ganctl prune


@dataclass(frozen=True)
class Plan:
    """What ``ganctl prune`` deletes in one run: checkpoints beyond ``keep`` (never the newest or a
    marked epoch), checkpoints a resume found damaged (``.broken-*``), and leftovers of killed
    saves. ``newest`` is None when the run has no checkpoint."""

    newest: Path | None
    kept: list[Path]
    checkpoints: list[Path]
    broken: list[Path]
    leftovers: list[Path]

    @property
    def gone(self) -> list[Path]:
        return [*self.checkpoints, *self.broken, *self.leftovers]


def plan(run_dir: Path, keep: int = KEEP, marked: Collection[int] = ()) -> Plan:
    """What :func:`prune_run` would delete in ``run_dir``, deleting nothing."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return Plan(None, [], [], [], [])
    best = newest(root)
    folders = [p for p in root.iterdir() if p.is_dir() and not p.is_symlink()]
    gone = to_prune(folders, best, keep, marked) if best is not None else []
    kept = sorted((f for f in folders if is_checkpoint(f.name) and f not in gone), key=_position)
    broken = sorted(p for p in folders if p.name.startswith(BROKEN))
    return Plan(best, kept, gone, broken, leftovers(run_dir))


def prune_run(run_dir: Path, keep: int = KEEP, marked: Collection[int] = ()) -> Plan:
    """Delete what :func:`plan` lists: the leftovers first (:func:`clean`, which also repoints
    ``latest``), then each checkpoint and damaged one renamed aside before it is deleted. The
    caller holds the run's lock (no save runs meanwhile). Returns the plan carried out."""
    left = leftovers(run_dir)
    clean(run_dir)
    done = plan(run_dir, keep, marked)
    root = Path(run_dir) / "checkpoints"
    for folder in [*done.checkpoints, *done.broken]:
        _remove(root, folder, PRUNED)
    return replace(done, leftovers=left)
