"""Which checkpoints of a run are kept, and which epochs are saved at all (torch-free, so ``ganctl
prune`` and ``ganctl list`` plan without importing torch).

A run keeps, after every save and after ``ganctl prune``:

- the newest checkpoint (the one ``checkpoints/latest`` names): an exact resume needs it and only it;
- the ``keep - 1`` newest epoch checkpoints before it (``--keep K``, default 1: the newest alone);
- every epoch the user marked with ``--keep-epochs``.

Everything else goes: older epoch checkpoints, and interrupt checkpoints (``step_``) that a later
save superseded. Folders of other names (``.broken-*``, anything a user put there) are not touched
here; ``ganctl prune`` lists the damaged ones separately.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from pathlib import Path

from ganctl.errors import GanctlError

SAVE_EVERY = 1  # epochs between checkpoints (the last epoch and a Ctrl-C always save)
# One checkpoint: a pix2pix one is 690 MB (weights 229 MB, Adam's two moments 458 MB), so keeping
# two made the 2-epoch quickstart 1.4 GB. Saves are atomic (a complete folder is renamed into
# place before the older one is pruned), so the newest alone is always a complete, resumable one.
KEEP = 1

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
