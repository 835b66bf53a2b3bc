"""Errors that the CLI shows as one line. Each message says what to do next."""

from __future__ import annotations

import errno
import os
import re


class GanctlError(Exception):
    """Base class: a problem the user can fix. The CLI prints it as one line and exits 1."""


class UnknownNameError(GanctlError):
    """A model, dataset, run or label name that does not exist."""


class DatasetError(GanctlError):
    """A dataset that is missing, empty, unreadable or of the wrong shape."""


class DownloadError(GanctlError):
    """A download that failed, was interrupted, or did not match its checksum."""


class CheckpointError(GanctlError):
    """A checkpoint that is missing, corrupt, or does not fit the model."""


class DivergedError(GanctlError):
    """Training whose losses or weights became NaN or infinite. ``epoch`` (1-based) and ``step``
    say where it was found; ``advice`` (what to try, which checkpoint is kept) is added by the
    trainer, which knows the run."""

    def __init__(self, what: str, epoch: int, step: int, advice: str = ""):
        self.what, self.epoch, self.step = what, epoch, step
        super().__init__(f"training diverged in epoch {epoch} (found at step {step}): {what}" + (f"; {advice}" if advice else ""))


class StoreError(GanctlError):
    """A store name that is refused, or a store write that failed."""


class NoSpaceError(StoreError):
    """A write that failed because the disk (or the user's quota) is full."""

    def __init__(self, path: str | os.PathLike | None):
        from pathlib import Path

        from ganctl.core.paths import home

        self.path = path
        try:
            in_store = path is not None and Path(path).resolve().is_relative_to(home())
        except (OSError, RuntimeError):
            in_store = False
        advice = "free space or set GANCTL_HOME to another disk" if in_store else "free space or write it to another disk"
        super().__init__(f"no space left on device writing {path if path is not None else 'a file'}: {advice}")


_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def is_disk_full(e: BaseException | None) -> bool:
    """Whether ``e``, or an exception it came from, is a full disk or quota: an OSError ENOSPC or
    EDQUOT, or a writer's own error that keeps only its text (torch.save raises a RuntimeError in
    the context of the file object's OSError; safetensors' error says "No space left on device")."""
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in _DISK_FULL:
            return True
        if not isinstance(e, OSError) and any(os.strerror(code) in str(e) for code in _DISK_FULL):
            return True
        e = e.__cause__ or e.__context__
    return False


def did_you_mean(kind: str, name: str, choices: list[str] | tuple[str, ...]) -> UnknownNameError:
    """Build an 'unknown X' error with the closest valid names."""
    import difflib

    folded = {str(c).lower(): c for c in choices}  # DCGANN is as close to dcgan as dcgann is
    close = [folded[c] for c in difflib.get_close_matches(str(name).lower(), list(folded), n=3, cutoff=0.5)]
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    valid = ", ".join(choices)
    return UnknownNameError(f"unknown {kind} {name!r}.{hint} Valid: {valid}.")


def cannot_read(path: str | os.PathLike) -> str | None:
    """Why ``path`` cannot be opened for reading ("Permission denied"), or None if it can. For
    readers that misreport it (safetensors says "No such file or directory" for a file it may not read)."""
    try:
        with open(path, "rb"):
            return None
    except OSError as e:
        return e.strerror or str(e)


_ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")


def load_error_reason(e: Exception) -> tuple[str, bool]:
    """Why ``torch.load(weights_only=True)`` failed, in a few words, and whether it was because the
    pickle calls code. torch's own text advises loading again with weights_only=False, which would
    run that code: none of it is kept, only the line that names what was refused."""
    msg = _ANSI_RE.sub("", str(e)).strip()
    if "Weights only load failed" not in msg:
        first = msg.splitlines()[0].strip().rstrip(".") if msg else ""
        return (f"{type(e).__name__}: {first[:200]}" if first else type(e).__name__), False
    lines = [ln.strip() for ln in msg.splitlines()[1:] if ln.strip()]
    detail = next((ln for ln in lines if "weights_only" not in ln and "torch.load" not in ln), "")
    if "global" in detail.lower():
        called = re.search(r"GLOBAL ([\w.]+)", detail)
        what = f" (it calls {called.group(1)})" if called else ""
        return f"the file contains code ganctl will not run{what}: only tensors are accepted", True
    return f"it is not a file of plain tensors ({detail.rstrip('.')[:200] or type(e).__name__})", False
