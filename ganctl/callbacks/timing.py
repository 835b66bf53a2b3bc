"""Where a training command's wall time went: one line per command in ``RUN/timings.jsonl``.

Each line: the seconds from the process's start to the first step (the imports, the data and the
networks, measured by the trainer's :class:`~ganctl.timing.Stopwatch`), and the loop's own split
(:attr:`ganctl.engine.Loop.timings`: the first step, the other steps, waiting for batches, and each
callback: validation and grids, the metrics log, the loss chart, checkpoints, progress).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

from ganctl import timing
from ganctl.atomic import atomic_write
from ganctl.engine import Callback, Loop

FILE = "timings.jsonl"


class TimingLog(Callback):
    def __init__(self, run_dir: Path, watch: timing.Stopwatch | None = None):
        self.path = Path(run_dir) / FILE
        self.watch = watch or timing.Stopwatch()

    def on_fit_start(self, loop: Loop) -> None:
        self.t0 = time.perf_counter()
        self.before_fit = timing.since_process_start()
        self.start = (loop.position.epoch, loop.position.step)

    def on_fit_end(self, loop: Loop) -> None:
        fit = time.perf_counter() - self.t0
        loop_split = {k: round(v, 4) for k, v in loop.timings.items() if k != type(self).__name__}
        before = dict(self.watch.seconds)
        before["other"] = max(0.0, self.before_fit - sum(before.values()))  # interpreter, CLI, run folder, resume
        row = {
            "time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "epochs": [self.start[0], loop.position.epoch],
            "steps": [self.start[1], loop.position.step],
            "before_fit_s": {k: round(v, 4) for k, v in before.items()},
            "fit_s": round(fit, 4),
            "loop_s": loop_split,
            "loop_other_s": round(max(0.0, fit - sum(loop_split.values())), 4),
        }
        old = self.path.read_bytes() if self.path.exists() else b""
        atomic_write(self.path, old + (json.dumps(row) + "\n").encode())
