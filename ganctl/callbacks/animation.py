"""What a run leaves for looking at it later: ``progress.gif`` (every epoch's picture as one
animation) and ``runtime.json`` (what each training session ran on: the fast paths of the
start-of-training line). ``ganctl report`` shows both."""

from __future__ import annotations

import datetime as _dt
import sys
from pathlib import Path

import torch

from ganctl import __version__
from ganctl.atomic import atomic_write_json
from ganctl.engine import Callback, Loop
from ganctl.report import progress_gif
from ganctl.report.rundata import RUNTIME, read_sessions
from ganctl.runtime import Runtime, device_name


class ProgressAnimation(Callback):
    """``progress.gif`` from ``samples/epoch_NNNN.png``, written when training ends: at its last
    epoch, on Ctrl-C, and after an error (then quietly: the error is the one to report). A second
    Ctrl-C asks to stop at once, so it writes nothing then."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)

    def on_fit_end(self, loop: Loop) -> None:
        ending = sys.exc_info()[1]  # the engine calls this in a `finally`: the error that ends training, if any
        if isinstance(ending, KeyboardInterrupt):
            return
        try:
            progress_gif.write(self.run_dir, upto_epoch=loop.position.epoch)
        except Exception:
            if ending is None:
                raise


class RuntimeLog(Callback):
    """``runtime.json``: one entry per training session (a ``--resume`` adds one) with where it
    started, the device, the precision and the fast paths, and the torch and ganctl versions."""

    def __init__(self, run_dir: Path, rt: Runtime, convolutional: bool):
        self.run_dir, self.rt, self.convolutional = Path(run_dir), rt, convolutional

    def on_fit_start(self, loop: Loop) -> None:
        pos = loop.position
        sessions = read_sessions(self.run_dir) if pos.step else []
        sessions.append({
            "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "epoch": pos.epoch,
            "step": pos.step,
            "device": device_name(self.rt.device),
            "precision": self.rt.precision,
            "fast_paths": self.rt.fast_paths(self.convolutional),
            "torch": torch.__version__,
            "ganctl": __version__,
        })
        atomic_write_json(self.run_dir / RUNTIME, {"sessions": sessions})
