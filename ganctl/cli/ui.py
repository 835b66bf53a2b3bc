"""Terminal output: results on stdout, everything else on stderr, progress bars only on a TTY."""

from __future__ import annotations

import os
import sys
import time
from functools import lru_cache

from rich.console import Console

from ganctl import augment_spec
from ganctl.cli.pace import WARMUP_STEPS, Pace, clock_text, duration, speed_text, steps_text


@lru_cache(maxsize=1)
def _err_console(file_id: int) -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def err() -> Console:
    # keyed on the current sys.stderr so test runners that swap it get a fresh console
    return _err_console(id(sys.stderr))


def result(path: object) -> None:
    """The one line on stdout: the path (or value) a command produced."""
    print(str(path), flush=True)


def info(text: str) -> None:
    err().print(text)


def warn(text: str) -> None:
    err().print(f"[yellow]{text}[/yellow]")


def bars_enabled(console: Console | None = None) -> bool:
    if os.environ.get("GANCTL_DISABLE_PROGRESS_BARS", "").lower() in ("1", "true", "yes"):
        return False
    return (console or err()).is_terminal


def _convolutional(arch: str) -> bool:
    from ganctl.families import registry

    return registry.networks(arch).convolutional


_NOT_METRICS = {"step", "epoch", "seconds", "images_per_s"}


def _rate(x: float) -> str:
    return f"{x:.0f}" if x >= 100 else f"{x:.3g}"


def fmt_metrics(m: dict) -> str:
    """Every loss the objective reports: D/G for BCE; critic, Wasserstein estimate, GP for WGANs."""
    return " ".join(f"{k}={v:.3f}" for k, v in m.items() if k not in _NOT_METRICS)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 'es' if word == 'batch' else 's'}"


# the estimate waits for this many seconds (and steps) timed after the warm-up: fewer are too noisy
# on a shared machine (pix2pix's steps 3-5 ran at 6.1 s, the next ten at 3.5 s)
ESTIMATE_AFTER_S = 10.0
ESTIMATE_MIN_STEPS = 5
HEARTBEAT_S = 30.0  # without bars, a line at least this often within an epoch
BAR_WIDTH, MIN_BAR_WIDTH = 30, 10
REDRAW_S = 0.2


def _first_fields(text: str, room: int) -> str:
    """The leading space-separated fields of ``text`` that fit in ``room`` cells."""
    kept = ""
    for field in text.split():
        if len(kept) + bool(kept) + len(field) > room:
            break
        kept = f"{kept} {field}" if kept else field
    return kept


@lru_cache(maxsize=1)
def _fitting_progress():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
    from rich.text import Text

    class Losses(ProgressColumn):
        """The task's ``metrics`` field, cut to the first losses that fit in ``room`` cells."""

        room: int | None = None

        def render(self, task) -> Text:
            text = task.fields.get("metrics", "")
            return Text(text if self.room is None else _first_fields(text, self.room))

    class FittingProgress(Progress):
        """Training bars whose rows fit the console. What goes first, as the width shrinks: the
        losses (the last ones first), the elapsed time, then bar width (down to
        :data:`MIN_BAR_WIDTH`, then the bar); the counts, rate and ETA stay."""

        def __init__(self, **kwargs):
            self.bar, self.elapsed, self.losses = BarColumn(bar_width=BAR_WIDTH), TimeElapsedColumn(), Losses()
            self.every = (TextColumn("{task.description}"), self.bar, MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                          self.elapsed, TextColumn("eta {task.fields[eta]}"), self.losses)
            super().__init__(*self.every, **kwargs)

        def _width(self, columns, tasks) -> int:
            width = len(columns) - 1  # the grid puts one space between columns
            for col in columns:
                if col is self.bar:
                    width += col.bar_width
                else:
                    width += max((col(t).cell_len for t in tasks), default=0)
            return width

        def make_tasks_table(self, tasks):
            if not hasattr(self, "live"):  # Progress draws once before it has its console
                return super().make_tasks_table(tasks)
            tasks, room = [t for t in tasks if t.visible], self.console.width
            cols, self.losses.room, self.bar.bar_width = list(self.every), None, BAR_WIDTH
            over = self._width(cols, tasks) - room
            if over > 0:
                self.losses.room = max(self._width([self.losses], tasks) - over, 0)
                if self._width([self.losses], tasks) == 0:
                    cols.remove(self.losses)
                over = self._width(cols, tasks) - room
            if over > 0:
                cols.remove(self.elapsed)
                over = self._width(cols, tasks) - room
            if over > 0:
                self.bar.bar_width = BAR_WIDTH - over
                if self.bar.bar_width < MIN_BAR_WIDTH:
                    cols.remove(self.bar)
            self.columns = tuple(cols)
            return super().make_tasks_table(tasks)

    return FittingProgress


class TrainProgress:
    """Engine reporter: an epoch bar and a batch bar with live losses, or one line per epoch (and one
    at least every :data:`HEARTBEAT_S` seconds within an epoch). Both say the run's length in steps
    first, and an estimate of its time once :class:`Pace` has timed a few steps.

    ``console`` (default: stderr's), ``clock`` (seconds) and ``heartbeat_s`` are there for tests."""

    def __init__(self, quiet: bool = False, console: Console | None = None, clock=time.perf_counter,
                 heartbeat_s: float = HEARTBEAT_S):
        self.quiet, self._console, self.clock, self.heartbeat_s = quiet, console, clock, heartbeat_s
        self.progress = None
        self.estimate: float | None = None  # the seconds the estimate line said
        self._done, self._complete = 0, False

    @property
    def console(self) -> Console:
        return self._console or err()

    def start(self, cfg, rt, plan) -> None:
        self.cfg, self.plan, self.pace = cfg, plan, Pace()
        self._t0 = self._last_line = self._last_draw = self.clock()
        self._done, self._bar_epoch, self._complete, self.estimate = 0, plan.start_epoch, False, None
        self.say(
            f"training {cfg.family} on {cfg.dataset} ({cfg.image_size}x{cfg.image_size}, "
            f"{_plural(cfg.channels, 'channel')}) - {rt.describe(_convolutional(cfg.arch))} - "
            f"{_plural(cfg.epochs, 'epoch')} of {_plural(plan.batches, 'batch')} of {plan.batch_size} = {steps_text(plan)}"
            + (f" - augment: {augment_spec.describe(cfg.augment)}" if getattr(cfg, "augment", None) else "")
        )
        if self.quiet or not bars_enabled(self.console):
            return
        self.progress = _fitting_progress()(console=self.console, get_time=self.clock, refresh_per_second=4)
        self.progress.start()
        eta = clock_text(None)
        self.epoch_task = self.progress.add_task("epoch", total=plan.epochs, completed=plan.start_epoch, rate="", eta=eta, metrics="")
        self.batch_task = self.progress.add_task("batch", total=plan.batches, completed=plan.start_batch, rate="", eta=eta, metrics="")

    def say(self, text: str) -> None:
        (self.progress.console if self.progress is not None else self.console).print(text)

    def _eta_words(self) -> str:
        eta = self._eta(self.plan.steps_left - self._done)
        return "" if eta is None else f", eta {duration(eta)}"

    def _eta(self, steps: int) -> float | None:
        per_step = self.pace.per_step()
        return None if per_step is None else steps * per_step

    def step(self, epoch, batch, metrics) -> None:
        now = self.clock()
        self._done = self.plan.done(epoch, batch)
        self.pace.tick(self._done, now)
        if self.quiet:
            return
        if self.estimate is None:
            self._estimate(now)
        if self.progress is not None:
            self._draw(epoch, batch, metrics, now)
        elif now - self._last_line >= self.heartbeat_s and batch < self.plan.batches:
            self._last_line = now
            self.say(
                f"epoch {epoch + 1}/{self.plan.epochs} batch {batch}/{self.plan.batches} "
                f"{speed_text(self.pace.per_step())}{self._eta_words()} "
                f"{fmt_metrics(metrics)}".rstrip()
            )

    def _estimate(self, now: float) -> None:
        seconds, steps = self.pace.timed()
        left = self.plan.steps_left - self._done
        if steps < ESTIMATE_MIN_STEPS or seconds < ESTIMATE_AFTER_S or left <= 0:
            return
        per_step = seconds / steps
        self.estimate = now - self._t0 + left * per_step
        plan = self.plan
        what = _plural(plan.epochs, "epoch") if plan.steps_left == plan.total_steps else f"the {plan.steps_left:,} steps left"
        self._last_line = now
        self.say(
            f"estimated time: about {duration(self.estimate)} for {what} "
            f"({per_step:.3g} s/step, timed after the first {WARMUP_STEPS} steps)"
        )

    def _draw(self, epoch, batch, metrics, now) -> None:
        plan, bars = self.plan, self.progress
        new_epoch = epoch != self._bar_epoch
        if new_epoch:  # the batch bar starts again at an epoch's first step, not at the last one's end
            self._bar_epoch = epoch
            bars.reset(self.batch_task, total=plan.batches, rate="", eta=clock_text(None), metrics="")
        if now - self._last_draw < REDRAW_S and batch < plan.batches and not new_epoch:
            return
        self._last_draw = now
        bars.update(self.batch_task, completed=batch, rate=speed_text(self.pace.per_step()),
                    eta=clock_text(self._eta(plan.batches - batch)), metrics=fmt_metrics(metrics))
        bars.update(self.epoch_task, eta=clock_text(self._eta(plan.steps_left - self._done)))

    def epoch_end(self, epoch, summary) -> None:
        self._complete = epoch + 1 >= self.plan.epochs
        line = (
            f"epoch {epoch + 1}/{self.plan.epochs} {fmt_metrics(summary)} "
            f"{summary['seconds']:.1f}s {_rate(summary['images_per_s'])} img/s"
        )
        if self.progress is not None:
            self.say(line)
            eta = self._eta(self.plan.steps_left - self._done)
            self.progress.update(self.epoch_task, completed=epoch + 1, eta=clock_text(0 if self._complete else eta))
        elif not self.quiet:
            self._last_line = self.clock()
            self.say(line if self._complete else line + self._eta_words())

    def message(self, text) -> None:
        self.say(text)

    def finish(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
        if self._complete and self.estimate is not None and not self.quiet:
            self.say(
                f"trained {self._done:,} steps in {duration(self.clock() - self._t0)} "
                f"(estimated: about {duration(self.estimate)})"
            )


class DownloadProgress:
    """Downloader callback: a byte bar per file on a TTY, one line per file otherwise."""

    def __init__(self):
        self.progress = None
        self.task = None
        self.name = ""

    def for_file(self, name: str):
        self.name = name
        return self

    def __call__(self, event: str, total=None, resumed=0, n=0, complete=False) -> None:
        if event == "start":
            self._t0, self._got, self._total = time.perf_counter(), resumed, total
            if resumed:
                info(f"resuming {self.name} at {resumed:,} bytes")
            if bars_enabled():
                from rich.progress import (
                    BarColumn,
                    DownloadColumn,
                    Progress,
                    TextColumn,
                    TimeRemainingColumn,
                    TransferSpeedColumn,
                )

                self.progress = Progress(
                    TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                    TimeRemainingColumn(), console=err(), transient=True,
                )
                self.progress.start()
                self.task = self.progress.add_task(self.name, total=total, completed=resumed)
        elif event == "advance":
            self._got += n
            if self.progress is not None:
                self.progress.advance(self.task, n)
        elif event == "end":
            if self.progress is not None:
                self.progress.stop()
                self.progress = None
            if complete:
                from ganctl.core.storedirs import human_size

                secs = time.perf_counter() - self._t0
                info(f"fetched {self.name}: {human_size(self._got)} in {secs:.1f}s")


class ItemProgress:
    """A bar over N items (images, tiles or frames to translate) with the rate and ETA on a
    terminal; otherwise one line at least every :data:`HEARTBEAT_S` seconds while it runs. A total
    of 0 is unknown until :meth:`set_total` (a video's frame count, when its header has one)."""

    def __init__(self, total: int, description: str, clock=time.perf_counter, heartbeat_s: float = HEARTBEAT_S):
        self.total, self.description, self.progress = total, description, None
        self.clock, self.heartbeat_s, self.done = clock, heartbeat_s, 0

    def __enter__(self) -> ItemProgress:
        self._t0 = self._last_line = self.clock()
        if bars_enabled() and self.total != 1:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"), TextColumn("eta"), TimeRemainingColumn(),
                console=err(), transient=True,
            )
            self.progress.start()
            self.task = self.progress.add_task(self.description, total=self.total or None, rate="")
        return self

    def _rate(self) -> float | None:
        secs = self.clock() - self._t0
        return self.done / secs if secs > 0 and self.done else None

    def set_total(self, total: int) -> None:
        self.total = total
        if self.progress is not None and total:
            self.progress.update(self.task, total=total)

    def advance(self, n: int = 1) -> None:
        self.done += n
        rate = self._rate()
        rate_text = f"{_rate(rate)} {self.description}/s" if rate else ""
        if self.progress is not None:
            self.progress.update(self.task, advance=n, rate=rate_text)
        elif self.clock() - self._last_line >= self.heartbeat_s:
            self._last_line = self.clock()
            left = f", eta {duration((self.total - self.done) / rate)}" if rate and self.total > self.done else ""
            of = f"/{self.total}" if self.total else ""
            info(f"{self.description} {self.done}{of}, {rate_text}{left}")

    def message(self, text: str) -> None:
        (self.progress.console.print if self.progress is not None else warn)(text)

    def __exit__(self, *exc) -> None:
        if self.progress is not None:
            self.progress.stop()
