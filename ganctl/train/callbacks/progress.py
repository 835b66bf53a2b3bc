"""The progress display as a callback: it drives a :class:`Reporter` (the CLI's bars or lines)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ganctl.train.engine import Callback, Loop


@dataclass(frozen=True)
class Plan:
    """A run's length in optimizer steps. A step is one batch: one discriminator (critic) update,
    and a generator update after every ``n_critic``-th one (the engine's order; ``metrics.jsonl``
    has one row per step). ``start_*`` is where this fit starts (0 unless it resumes)."""

    epochs: int
    batches: int  # per epoch
    batch_size: int
    start_epoch: int = 0
    start_batch: int = 0
    start_step: int = 0
    n_critic: int = 1

    @property
    def steps_left(self) -> int:
        return max((self.epochs - self.start_epoch) * self.batches - self.start_batch, 0)

    @property
    def total_steps(self) -> int:
        return self.start_step + self.steps_left

    def generator_steps(self, upto: int, after: int = 0) -> int:
        """Generator updates among steps ``after + 1 .. upto`` (the engine's n-th step has one when
        ``n % n_critic == 0``, counted over the whole run, so a resume keeps the rhythm)."""
        return upto // self.n_critic - after // self.n_critic

    def done(self, epoch: int, batch: int) -> int:
        """Steps this fit has done when it is at ``batch`` batches into epoch ``epoch``."""
        return (epoch - self.start_epoch) * self.batches + batch - self.start_batch


class Reporter(Protocol):
    def start(self, cfg, rt, plan: Plan) -> None: ...
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
        pos = loop.position
        plan = Plan(loop.epochs, loop.batches, loop.batch_size, pos.epoch, pos.batch, pos.step, loop.n_critic)
        self.reporter.start(self.cfg, self.rt, plan)

    def on_step_end(self, loop: Loop, metrics: dict) -> None:
        self.reporter.step(loop.position.epoch, loop.position.batch, self.metrics.latest)

    def on_epoch_end(self, loop: Loop) -> None:
        self.reporter.epoch_end(loop.position.epoch - 1, loop.logs.get("summary", {}))

    def on_fit_end(self, loop: Loop) -> None:
        self.reporter.finish()
