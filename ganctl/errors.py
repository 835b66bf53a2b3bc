"""Errors that the CLI shows as one line. Each message says what to do next."""

from __future__ import annotations


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


class StoreError(GanctlError):
    """A store name that is refused, or a store write that failed."""


def did_you_mean(kind: str, name: str, choices: list[str] | tuple[str, ...]) -> UnknownNameError:
    """Build an 'unknown X' error with the closest valid names."""
    import difflib

    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    valid = ", ".join(choices)
    return UnknownNameError(f"unknown {kind} {name!r}.{hint} Valid: {valid}.")
