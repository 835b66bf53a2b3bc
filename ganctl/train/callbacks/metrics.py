"""The metrics log (``metrics.jsonl``: one row per step, one more per epoch with validation or
evaluation numbers) and the loss chart (``losses.png``)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from ganctl.core import images
from ganctl.core.atomic import atomic_write
from ganctl.train.engine import Callback, Loop

READ_EVERY = 50  # steps between read-backs of the device's metric tensors (and at every epoch end)


def read_rows(path: Path, upto_step: int) -> list[dict]:
    """The rows of a metrics log up to ``upto_step`` (damaged lines, such as a torn last line from a
    crash or bytes that are not UTF-8, are skipped: each line is decoded on its own)."""
    rows = []
    if path.is_file():
        for line in path.read_bytes().splitlines():
            try:
                row = json.loads(line.decode("utf-8"))
            except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
                continue
            if isinstance(row, dict) and isinstance(row.get("step", 0), int) and row.get("step", 0) <= upto_step:
                rows.append(row)
    return rows


def summarise(rows: list[dict], seconds: float, images_seen: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for key in dict.fromkeys(k for r in rows for k in r):
        if key not in ("step", "epoch"):
            vals = [r[key] for r in rows if key in r]
            out[key] = sum(vals) / len(vals)
    out["seconds"] = seconds
    out["images_per_s"] = images_seen / seconds if seconds > 0 else math.nan
    return out


class MetricsLog(Callback):
    """Appends each step's metrics to ``metrics.jsonl``.

    The objective's metrics stay tensors on the device; every :data:`READ_EVERY` steps (and at the
    end of an epoch, or on Ctrl-C) they are stacked and read back in one transfer, so a GPU never
    waits for the host at a step. ``loop.logs["epoch_numbers"]`` (validation, evaluation) becomes
    one more row at the epoch's last step; ``loop.logs["summary"]`` gets the epoch's means, time
    and rate. ``latest`` is the newest row read back (what the progress display shows).
    """

    def __init__(self, run_dir: Path, resume: bool, read_every: int = READ_EVERY):
        self.path = Path(run_dir) / "metrics.jsonl"
        self.resume, self.read_every = resume, read_every
        self.rows: list[dict] = []
        self.latest: dict = {}
        self.summary: dict = {}  # of the last epoch this fit finished
        self._pending: list[tuple[int, int, dict]] = []  # (step, epoch, metrics on the device)
        self._epoch_start = 0
        self._file = None

    def on_fit_start(self, loop: Loop) -> None:
        step = loop.position.step
        self.rows = read_rows(self.path, step) if self.resume else []
        atomic_write(self.path, "".join(json.dumps(r) + "\n" for r in self.rows).encode())
        self._file = open(self.path, "a")

    def on_epoch_start(self, loop: Loop) -> None:
        self._epoch_start = len(self.rows)

    def on_step_end(self, loop: Loop, metrics: dict) -> None:
        self._pending.append((loop.position.step, loop.position.epoch + 1, metrics))
        if len(self._pending) >= self.read_every:
            self.read_back()

    def read_back(self) -> None:
        """Bring the pending metrics to the host (one transfer) and append their rows."""
        if not self._pending:
            return
        flat = [v.detach().float().reshape(()) if isinstance(v, torch.Tensor) else torch.tensor(float(v))
                for _, _, m in self._pending for v in m.values()]
        values = iter(torch.stack([v.cpu() for v in flat]).tolist() if flat else [])
        lines = []
        for step, epoch, m in self._pending:
            row = {"step": step, "epoch": epoch, **{k: round(next(values), 6) for k in m}}
            self.rows.append(row)
            lines.append(json.dumps(row) + "\n")
        self._pending = []
        self.latest = self.rows[-1]
        self._file.write("".join(lines))
        self._file.flush()

    def on_epoch_end(self, loop: Loop) -> None:
        self.read_back()
        summary = summarise(self.rows[self._epoch_start:], loop.epoch_seconds, loop.epoch_images)
        extra = {k: round(v, 6) for k, v in loop.logs.get("epoch_numbers", {}).items()}
        if extra:  # validation / evaluation numbers: one more row, at this step
            row = {"step": loop.position.step, "epoch": loop.position.epoch, **extra}
            self.rows.append(row)
            self._file.write(json.dumps(row) + "\n")
            self._file.flush()
            summary.update(extra)
        loop.logs["summary"] = self.summary = summary

    def on_interrupt(self, loop: Loop) -> None:
        self.read_back()

    def on_fit_end(self, loop: Loop) -> None:
        if self._file is not None:
            try:
                self.read_back()  # steps of an epoch a crash or a second Ctrl-C cut short
            except Exception:  # noqa: BLE001 - the error that ended training is the one to report
                pass
            self._file.close()
            self._file = None


class LossChart(Callback):
    """``losses.png``: every loss of the log against the step, redrawn after each epoch."""

    def __init__(self, run_dir: Path, log: MetricsLog, title: str, not_charted: tuple[str, ...] = ()):
        self.path, self.log, self.title = Path(run_dir) / "losses.png", log, title
        self.skip = ("step", "epoch", *not_charted)

    def on_epoch_end(self, loop: Loop) -> None:
        rows = self.log.rows
        keys = dict.fromkeys(k for r in rows[-50:] for k in r if k not in self.skip and not k.startswith(("val_", "eval_")))
        series = {k: [r[k] for r in rows if k in r] for k in keys}
        images.loss_chart(series, self.path, title=self.title)
