"""The experiment trackers ``ganctl train --log NAME`` sends a run to, as plain data (no torch).

Each tracker is an engine callback in :mod:`ganctl.train.callbacks.trackers` (one module per library).
This table names it, the library it needs and the pip extra that installs it, so ``--log`` is
checked (a known name, an installed library) before torch is imported. Adding a tracker is its
module there and one line here.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterable
from dataclasses import dataclass

from ganctl.core.errors import GanctlError, did_you_mean


class TrackerError(GanctlError):
    """A tracker that is not installed, or whose library refused to start a run."""


class TrackerStartError(TrackerError):
    """A tracker that could not start, before the run's first step (the trainer then removes the
    folder a new run made: nothing was trained in it)."""


@dataclass(frozen=True)
class Tracker:
    name: str  # --log NAME
    library: str  # the module it imports
    extra: str  # pip install 'ganctl[EXTRA]'
    ref: str  # "module:Class" of its callback
    summary: str

    @property
    def install(self) -> str:
        return f"pip install 'ganctl[{self.extra}]'"


TRACKERS = {t.name: t for t in (
    Tracker("tensorboard", "tensorboard", "tensorboard", "ganctl.train.callbacks.trackers.tensorboard:TensorBoardTracker",
            "TensorBoard event files in the run folder (RUN/tensorboard)"),
    Tracker("wandb", "wandb", "wandb", "ganctl.train.callbacks.trackers.wandb:WandbTracker",
            "Weights & Biases (offline unless you are logged in or WANDB_MODE says otherwise)"),
    Tracker("mlflow", "mlflow", "mlflow", "ganctl.train.callbacks.trackers.mlflow:MlflowTracker",
            "MLflow, at MLFLOW_TRACKING_URI or MLflow's own default store"),
)}


def installed(library: str) -> bool:
    """Whether ``library`` can be imported, without importing it (a None in sys.modules, as a test
    or an ``import`` blocker leaves it, counts as missing)."""
    if library in sys.modules:
        return sys.modules[library] is not None
    try:
        return importlib.util.find_spec(library) is not None
    except (ImportError, ValueError):
        return False


def check(names: Iterable[str] | None) -> tuple[str, ...]:
    """The ``--log`` names given, lower-cased, each once, in order; an unknown name or a library
    that is not installed is one error line naming the pip command."""
    out: list[str] = []
    for given in names or ():
        name = given.strip().lower()
        if name not in TRACKERS:
            raise did_you_mean("--log tracker", given, tuple(TRACKERS))
        tracker = TRACKERS[name]
        if not installed(tracker.library):
            raise TrackerError(f"--log {name} needs the {tracker.library} library: {tracker.install}")
        if name not in out:
            out.append(name)
    return tuple(out)
