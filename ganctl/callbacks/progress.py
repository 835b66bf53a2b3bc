"""The progress display as a callback: it drives a :class:`Reporter` (the CLI's bars or lines)."""

from __future__ import annotations

from typing import Protocol

from ganctl.engine import Callback, Loop


class Reporter(Protocol):
    def start(self, cfg, rt, batches: int, start_epoch: int, start_batch: int) -> None: ...
    def step(self, epoch: int, batch: int, metrics: dict[str, float]) -> None: ...
    def epoch_end(self, epoch: int, summary: dict[str, float]) -> None: ...
    def message(self, text: str) -> None: ...
    def finish(self) -> None: ...


class NullReporter:
    def start(self, *a, **k) -> None: ...
    def step(self, *a, **k) -> None: ...
    def epoch_end(self, *a, **k) -> None: ...
    def message(self, *a, **k) -> None: ...
    def finish(self) -> None: ...


class Progress(Callback):
    """Shows counts every step and the losses as the metrics log last read them back (a step
    never waits for the device to show a number); the epoch's summary at its end."""

    def __init__(self, reporter: Reporter, cfg, rt, metrics):
        self.reporter, self.cfg, self.rt, self.metrics = reporter, cfg, rt, metrics

    def on_fit_start(self, loop: Loop) -> None:
        self.reporter.start(self.cfg, self.rt, loop.batches, loop.position.epoch, loop.position.batch)

    def on_step_end(self, loop: Loop, metrics: dict) -> None:
        self.reporter.step(loop.position.epoch, loop.position.batch, self.metrics.latest)

    def on_epoch_end(self, loop: Loop) -> None:
        self.reporter.epoch_end(loop.position.epoch - 1, loop.logs.get("summary", {}))

    def on_fit_end(self, loop: Loop) -> None:
        self.reporter.finish()
