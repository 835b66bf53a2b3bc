"""Experiment trackers (``ganctl train --log NAME``) as engine callbacks, one module per library.

:class:`TrackerCallback` does what they share. It sends on the rows the metrics log has read back
(it never reads a tensor itself, so no step waits for the device), the epoch's summary and its
validation or evaluation numbers, the epoch's picture (``samples/epoch_NNNN.png``), and the run's
config as hyperparameters; a library module says how each goes to its library. The names, the
libraries and the pip extras are in :mod:`ganctl.train.tracking` (torch-free, so ``--log`` is checked
before training starts). Like every callback, trackers run in the one process that writes the run.

What a tracker needs to continue its run on ``--resume`` (a W&B run id, an MLflow run id) is kept
in ``RUN/trackers.json``, written atomically.
"""

from __future__ import annotations

import importlib
import json
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ganctl.core.atomic import atomic_write_json
from ganctl.core.errors import GanctlError
from ganctl.train.engine import Callback, Loop
from ganctl.train.tracking import TRACKERS, TrackerStartError

STATE = "trackers.json"


def tag(key: str) -> str:
    """The name a metrics-log key is logged under: ``val_l1`` -> ``val/l1``, ``eval_*`` -> ``eval/*``,
    a loss -> ``train/d_loss`` (each group is one section in TensorBoard and W&B)."""
    for prefix in ("val", "eval"):
        if key.startswith(prefix + "_"):
            return f"{prefix}/{key[len(prefix) + 1:]}"
    return f"train/{key}"


def flat_config(cfg_json: dict) -> dict[str, str | int | float | bool]:
    """The run's config as flat hyperparameters: ``{"generator.ngf": 64, "betas": "[0.5, 0.999]"}``."""
    out: dict[str, str | int | float | bool] = {}

    def walk(prefix: str, value) -> None:
        if isinstance(value, dict) and value:
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, (bool, int, float, str)):
            out[prefix] = value
        else:  # lists, None, empty groups
            out[prefix] = json.dumps(value)

    walk("", cfg_json)
    return out


def read_state(run_dir: Path) -> dict:
    try:
        state = json.loads((Path(run_dir) / STATE).read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def stored(run_dir: Path, name: str) -> dict:
    """What tracker ``name`` kept in the run folder in an earlier session ({} if nothing)."""
    got = read_state(run_dir).get(name)
    return got if isinstance(got, dict) else {}


def store(run_dir: Path, name: str, value: dict) -> None:
    atomic_write_json(Path(run_dir) / STATE, {**read_state(run_dir), name: value})


def first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


class TrackerCallback(Callback):
    """Sends a run to one tracker. A library module implements :meth:`start`, :meth:`scalars`,
    :meth:`picture` and :meth:`close`.

    A tracker that cannot start stops the run before its first step (one error line). One that
    fails later is reported once, and training goes on without it: a lost dashboard is not worth
    a lost run, and everything stays in ``metrics.jsonl`` and ``samples/``.
    """

    name = ""

    def __init__(self, run_dir: Path, cfg_json: dict, metrics, resume: bool, say: Callable[[str], None]):
        self.run_dir, self.cfg_json, self.metrics = Path(run_dir), cfg_json, metrics
        self.resume, self.say = resume, say
        self._seen = 0  # rows of the metrics log already sent
        self._live = False

    # what a library module implements
    def start(self, step: int) -> None:
        """Open (or, on resume, reopen) the tracker's run at ``step``; log the hyperparameters."""
        raise NotImplementedError

    def scalars(self, rows: list[tuple[int, dict[str, float]]]) -> None:
        """Log ``(step, {tag: value})`` rows, in step order."""
        raise NotImplementedError

    def picture(self, step: int, epoch: int, path: Path) -> None:
        raise NotImplementedError

    def close(self, failed: bool) -> None:
        raise NotImplementedError

    @property
    def run_label(self) -> str:
        return f"{self.cfg_json.get('family')}/{self.cfg_json.get('run_name')}"

    def on_fit_start(self, loop: Loop) -> None:
        self._seen = len(self.metrics.rows)  # a resumed run's earlier rows were sent by its earlier sessions
        try:
            self.start(loop.position.step)
        except GanctlError as e:
            raise TrackerStartError(str(e)) from e
        except Exception as e:
            raise TrackerStartError(f"--log {self.name} could not start: {first_line(e)}") from e
        self._live = True

    def _send(self, fn, *args) -> None:
        if not self._live:
            return
        try:
            fn(*args)
        except Exception as e:  # noqa: BLE001 - see the class docstring
            self._live = False
            self.say(f"--log {self.name} stopped logging: {first_line(e)}; training goes on, "
                     "metrics.jsonl and samples/ have everything")

    def _send_rows(self) -> None:
        rows = self.metrics.rows
        if len(rows) <= self._seen:
            return
        new, self._seen = rows[self._seen:], len(rows)
        self._send(self.scalars, [(r["step"], {tag(k): v for k, v in r.items() if k not in ("step", "epoch")})
                                  for r in new])

    def on_step_end(self, loop: Loop, metrics: dict) -> None:
        self._send_rows()  # only what the metrics log has already read back

    def on_interrupt(self, loop: Loop) -> None:
        self._send_rows()

    def on_epoch_end(self, loop: Loop) -> None:
        self._send_rows()  # the epoch's last steps, and its validation or evaluation numbers
        pos = loop.position
        summary = {f"epoch/{k}": v for k, v in loop.logs.get("summary", {}).items()
                   if not k.startswith(("val_", "eval_")) and not (isinstance(v, float) and math.isnan(v))}
        self._send(self.scalars, [(pos.step, {"epoch/number": pos.epoch, **summary})])
        path = self.run_dir / "samples" / f"epoch_{pos.epoch:04d}.png"
        if path.is_file():
            self._send(self.picture, pos.step, pos.epoch, path)

    def on_fit_end(self, loop: Loop) -> None:
        if not self._live:
            return
        self._send_rows()  # steps of an epoch that a crash or a second Ctrl-C cut short
        ending = sys.exc_info()[1]  # the engine calls this in a `finally`
        failed = ending is not None and not isinstance(ending, KeyboardInterrupt)
        self._send(self.close, failed)
        self._live = False


def build(names: Sequence[str], run_dir: Path, cfg_json: dict, metrics, resume: bool,
          say: Callable[[str], None]) -> list[TrackerCallback]:
    """The callbacks of the ``--log`` names (checked by :func:`ganctl.train.tracking.check`)."""
    if resume:
        dropped = [n for n in read_state(run_dir) if n in TRACKERS and n not in names]
        for name in dropped:
            say(f"this run was logged to {name} before: pass --log {name} with --resume to go on logging it there")
    out = []
    for name in names:
        module, _, cls = TRACKERS[name].ref.partition(":")
        out.append(getattr(importlib.import_module(module), cls)(run_dir, cfg_json, metrics, resume, say))
    return out
