"""The training loop: ``fit(objective, feeder, callbacks)``.

It knows nothing about families, networks or the order of their updates, and writes nothing: it
calls the objective's one training step per batch, and owns the position (epoch, batch, step) and
the deferred Ctrl-C. Everything a run writes or shows (metrics, pictures, validation, checkpoints, progress) is
a :class:`Callback`, so a multi-process run can give those to one process alone.

The metrics an objective returns are tensors on the device; the loop hands them on as they are, and
:class:`~ganctl.train.callbacks.MetricsLog` reads them back in blocks, so no step waits for the device.

Exact resume: the batch order of epoch ``e`` is a permutation drawn from a generator seeded with
``(seed, e)`` (the feeder's), so it never needs saving; the global RNG, the optimizer states and the
position are saved in every checkpoint. Training 2 epochs, or 1 epoch then ``--resume`` for 1 more,
gives bit-identical weights on the CPU.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class Position:
    """Where training is: ``epoch`` epochs and ``batch`` batches of the next are done, ``step`` in all."""

    epoch: int = 0
    batch: int = 0
    step: int = 0


@dataclass
class Loop:
    """What callbacks see of the loop."""

    epochs: int
    batches: int  # per epoch
    batch_size: int
    position: Position
    n_critic: int = 1  # batches per generator update, as the objective says (for progress displays)
    epoch_seconds: float = 0.0  # of the batches of the epoch that just ended
    epoch_images: int = 0
    logs: dict[str, Any] = field(default_factory=dict)  # per-epoch values callbacks pass each other
    # wall seconds of this fit: "first step" (the objective's first call, warm-up included),
    # "steps" (its other calls), "batches" (waiting for the feeder), and each callback by class name.
    # On a GPU a step only queues work: the wait for it shows where something reads a result back.
    timings: dict[str, float] = field(default_factory=dict)


class Callback:
    """Hooks the loop calls, in list order. Every method is optional."""

    def on_fit_start(self, loop: Loop) -> None: ...
    def on_epoch_start(self, loop: Loop) -> None: ...
    def on_step_end(self, loop: Loop, metrics: dict) -> None: ...
    def on_epoch_end(self, loop: Loop) -> None: ...
    def on_interrupt(self, loop: Loop) -> None: ...  # Ctrl-C inside an epoch: the position is mid-epoch
    def on_fit_end(self, loop: Loop) -> None: ...  # always, also after an error


class Feeder(Protocol):
    batch_size: int

    def batches_per_epoch(self) -> int: ...
    def epoch(self, epoch: int, first: int) -> Iterator[dict]: ...


class Trainable(Protocol):
    def set_epoch(self, epoch: int) -> None: ...
    def step(self, batch: dict, index: int) -> dict: ...  # index: the run's step number, 0-based


@dataclass
class FitResult:
    position: Position
    interrupted: bool


@contextmanager
def deferred_sigint() -> Iterator[list[bool]]:
    """The first Ctrl-C sets a flag the loop checks between batches (so the checkpoint is at a
    clean position); a second one interrupts at once."""
    flag = [False]
    try:
        previous = signal.getsignal(signal.SIGINT)
    except ValueError:  # not the main thread: leave signals alone
        yield flag
        return

    def handler(signum, frame):
        if flag[0]:
            raise KeyboardInterrupt
        flag[0] = True

    try:
        signal.signal(signal.SIGINT, handler)
    except ValueError:
        yield flag
        return
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def _each(callbacks: Sequence[Callback], hook: str, loop: Loop, *args) -> None:
    timings = loop.timings
    for cb in callbacks:
        t0 = time.perf_counter()
        getattr(cb, hook)(loop, *args)
        name = type(cb).__name__
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - t0


def _add(timings: dict[str, float], key: str, seconds: float) -> None:
    timings[key] = timings.get(key, 0.0) + seconds


def fit(objective: Trainable, feeder: Feeder, callbacks: Sequence[Callback], *, epochs: int,
        start: Position | None = None, agree: Callable[[bool], bool] | None = None) -> FitResult:
    """Train from ``start`` (default: the beginning) to the end of epoch ``epochs``, or until Ctrl-C.

    ``agree`` (several processes) turns this process's Ctrl-C flag into the job's after every
    batch (true if any process has it), so all of them stop after the same batch."""
    pos = Position(**vars(start)) if start else Position()
    loop = Loop(epochs=epochs, batches=feeder.batches_per_epoch(), batch_size=feeder.batch_size,
                position=pos, n_critic=getattr(objective, "n_critic", 1))
    try:
        _each(callbacks, "on_fit_start", loop)
        with deferred_sigint() as stop:
            while pos.epoch < epochs:
                first = pos.batch
                objective.set_epoch(pos.epoch)
                loop.logs = {}
                _each(callbacks, "on_epoch_start", loop)
                t0 = t_wait = time.perf_counter()
                for batch in feeder.epoch(pos.epoch, first):
                    t_step = time.perf_counter()
                    metrics = objective.step(batch, pos.step)
                    t_done = time.perf_counter()
                    _add(loop.timings, "batches", t_step - t_wait)
                    _add(loop.timings, "first step" if "first step" not in loop.timings else "steps", t_done - t_step)
                    pos.step += 1
                    pos.batch += 1
                    _each(callbacks, "on_step_end", loop, metrics)
                    if agree is not None:
                        stop[0] = agree(stop[0])
                    if stop[0] and pos.batch < loop.batches:
                        _each(callbacks, "on_interrupt", loop)
                        return FitResult(pos, True)
                    t_wait = time.perf_counter()
                loop.epoch_seconds = time.perf_counter() - t0
                loop.epoch_images = (loop.batches - first) * loop.batch_size
                pos.epoch, pos.batch = pos.epoch + 1, 0
                _each(callbacks, "on_epoch_end", loop)
                if stop[0]:
                    return FitResult(pos, True)
    finally:
        _each(callbacks, "on_fit_end", loop)
    return FitResult(pos, False)
