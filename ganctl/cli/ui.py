"""Terminal output: results on stdout, everything else on stderr, progress bars only on a TTY."""

from __future__ import annotations

import os
import sys
import time
from functools import lru_cache

from rich.console import Console


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


def bars_enabled() -> bool:
    if os.environ.get("GANCTL_DISABLE_PROGRESS_BARS", "").lower() in ("1", "true", "yes"):
        return False
    return err().is_terminal


def _convolutional(arch: str) -> bool:
    from ganctl import registry

    return registry.networks(arch).convolutional


_NOT_METRICS = {"step", "epoch", "seconds", "images_per_s"}


def _rate(x: float) -> str:
    return f"{x:.0f}" if x >= 100 else f"{x:.3g}"


def fmt_metrics(m: dict) -> str:
    """Every loss the objective reports: D/G for BCE; critic, Wasserstein estimate, GP for WGANs."""
    return " ".join(f"{k}={v:.3f}" for k, v in m.items() if k not in _NOT_METRICS)


class TrainProgress:
    """Engine reporter: an epoch bar and a batch bar with live losses, or one line per epoch."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.progress = None
        self._last = 0.0

    def start(self, cfg, rt, batches, start_epoch, start_batch) -> None:
        self.cfg, self.batches = cfg, batches
        info(
            f"training {cfg.family} on {cfg.dataset} ({cfg.image_size}x{cfg.image_size}, "
            f"{cfg.channels} channel{'s' if cfg.channels > 1 else ''}) - {rt.describe(_convolutional(cfg.arch))} - "
            f"{cfg.epochs} epoch{'s' if cfg.epochs != 1 else ''} of {batches} batch{'es' if batches != 1 else ''} of {cfg.batch_size}"
        )
        if self.quiet or not bars_enabled():
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description:>6}"),
            BarColumn(bar_width=30),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[metrics]}"),
            console=err(),
            refresh_per_second=4,
        )
        self.progress.start()
        self.epoch_task = self.progress.add_task("epoch", total=cfg.epochs, completed=start_epoch, rate="", metrics="")
        self.batch_task = self.progress.add_task("batch", total=batches, completed=start_batch, rate="", metrics="")
        self._t0, self._b0 = time.perf_counter(), start_batch

    def step(self, epoch, batch, metrics) -> None:
        if self.progress is None:
            return
        now = time.perf_counter()
        if now - self._last < 0.2 and batch < self.batches:
            return
        self._last = now
        rate = (batch - self._b0) / max(now - self._t0, 1e-9)
        self.progress.update(self.batch_task, completed=batch, rate=f"{rate:5.1f} it/s", metrics=fmt_metrics(metrics))

    def epoch_end(self, epoch, summary) -> None:
        line = (
            f"epoch {epoch + 1}/{self.cfg.epochs} {fmt_metrics(summary)} "
            f"{summary['seconds']:.1f}s {_rate(summary['images_per_s'])} img/s"
        )
        if self.progress is not None:
            self.progress.console.print(line)
            self.progress.update(self.epoch_task, completed=epoch + 1)
            self.progress.reset(self.batch_task, total=self.batches)
            self._t0, self._b0 = time.perf_counter(), 0
        elif not self.quiet:
            info(line)

    def message(self, text) -> None:
        (self.progress.console.print if self.progress is not None else info)(text)

    def finish(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


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
                from ganctl.store import human_size

                secs = time.perf_counter() - self._t0
                info(f"fetched {self.name}: {human_size(self._got)} in {secs:.1f}s")


class ItemProgress:
    """A bar over N items (images to translate) on a terminal; silent otherwise."""

    def __init__(self, total: int, description: str):
        self.total, self.description, self.progress = total, description, None

    def __enter__(self) -> ItemProgress:
        if bars_enabled() and self.total > 1:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                console=err(), transient=True,
            )
            self.progress.start()
            self.task = self.progress.add_task(self.description, total=self.total)
        return self

    def advance(self) -> None:
        if self.progress is not None:
            self.progress.advance(self.task)

    def message(self, text: str) -> None:
        (self.progress.console.print if self.progress is not None else warn)(text)

    def __exit__(self, *exc) -> None:
        if self.progress is not None:
            self.progress.stop()
