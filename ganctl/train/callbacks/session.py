"""``runtime.json``: one entry per training session of a run (a ``--resume`` adds one).

At the session's start: where it started, the device, the precision, the fast paths, the torch and
ganctl versions. At its end, ``timings``: where its wall time went. Before the first step (the
trainer's :class:`~ganctl.core.timing.Stopwatch`): imports, runtime, data, networks, resume, and
``other`` (the interpreter, the CLI, the run folder). In the loop (:attr:`ganctl.train.engine.Loop.timings`):
the first step (warm-up), the other steps, waiting for batches, and each callback by class name
(validation and grids, the metrics log, the loss chart, checkpoints, progress). ``ganctl report``
shows the entries; ``benchmarks/speed.py`` splits a run's time with them.
"""

from __future__ import annotations

import datetime as _dt
import time
from pathlib import Path

import torch

from ganctl import __version__
from ganctl.core import timing
from ganctl.core.atomic import atomic_write_json
from ganctl.report.rundata import RUNTIME, read_sessions
from ganctl.runtime import distributed
from ganctl.runtime.runtime import Runtime, device_name
from ganctl.train.engine import Callback, Loop


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class SessionLog(Callback):
    def __init__(self, run_dir: Path, rt: Runtime, convolutional: bool, watch: timing.Stopwatch | None = None,
                 augment: str = "none"):
        self.path = Path(run_dir) / RUNTIME
        self.rt, self.convolutional, self.augment = rt, convolutional, augment
        self.watch = watch or timing.Stopwatch()

    def on_fit_start(self, loop: Loop) -> None:
        self.t0, self.before_fit = time.perf_counter(), timing.since_process_start()
        pos = loop.position
        self.sessions = read_sessions(self.path.parent) if pos.step else []  # a new run starts its own list
        self.sessions.append({
            "started": _now(),
            "epoch": pos.epoch,
            "step": pos.step,
            "device": device_name(self.rt.device),
            "precision": self.rt.precision,
            "processes": distributed.world().size,
            "fast_paths": self.rt.fast_paths(self.convolutional),
            "augment": self.augment,  # what the discriminators saw (ganctl.augment_spec.describe)
            "torch": torch.__version__,
            "ganctl": __version__,
        })
        atomic_write_json(self.path, {"sessions": self.sessions})

    def on_fit_end(self, loop: Loop) -> None:
        if not hasattr(self, "sessions"):  # a callback before this one failed to start: nothing to add to
            return
        fit = time.perf_counter() - self.t0
        in_loop = {k: round(v, 4) for k, v in loop.timings.items() if k != type(self).__name__}
        before = dict(self.watch.seconds)
        before["other"] = max(0.0, self.before_fit - sum(before.values()))
        self.sessions[-1].update({
            "ended": _now(),
            "end_epoch": loop.position.epoch,
            "end_step": loop.position.step,
            "timings": {
                "before_fit_s": {k: round(v, 4) for k, v in before.items()},
                "fit_s": round(fit, 4),
                "loop_s": in_loop,
                "loop_other_s": round(max(0.0, fit - sum(in_loop.values())), 4),
            },
        })
        atomic_write_json(self.path, {"sessions": self.sessions})
