"""What a report shows of a run, read from its folder without torch: the config, the metrics log,
the training sessions (``runtime.json``), the epoch pictures and the checkpoints."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from ganctl.core import storedirs
from ganctl.core.errors import GanctlError
from ganctl.store import layout

SAMPLES = "samples"
PICTURE_RE = re.compile(r"epoch_(\d{4,})\.png\Z")
PROGRESS_GIF = "progress.gif"
RUNTIME = "runtime.json"
EPOCH_PREFIXES = ("val_", "eval_")  # numbers recorded once an epoch, in a row of their own


class NotARunError(GanctlError):
    """A folder or name that is not a sound ganctl run."""


def resolve(ref: str) -> layout.RunInfo:
    """The run ``ref`` names (NAME, FAMILY/NAME or a run folder), refused with one line when it is
    not one: a folder without config.json (:func:`ganctl.store.layout.find_run` says so), or one whose
    config.json is not a run's."""
    info = layout.find_run(ref)
    if info.damage and not layout.in_runs_dir(info.path):
        raise NotARunError(f"{info.path} is not a ganctl run folder: {info.damage}")
    return info.check()


def epoch_pictures(run_dir: Path) -> list[tuple[int, Path]]:
    """``samples/epoch_NNNN.png`` of the run, by epoch."""
    folder = Path(run_dir) / SAMPLES
    if not folder.is_dir():
        return []
    found = ((PICTURE_RE.match(p.name), p) for p in folder.iterdir())
    return sorted((int(m.group(1)), p) for m, p in found if m and p.is_file())


def read_metrics(path: Path) -> list[dict]:
    """The rows of ``metrics.jsonl`` (damaged lines, such as a torn last line from a crash, skipped)."""
    return read_metrics_counted(path)[0]


def read_metrics_counted(path: Path) -> tuple[list[dict], int]:
    """The rows of ``metrics.jsonl`` and how many lines were damaged and skipped: a torn line,
    bytes that are not UTF-8 or not JSON, or a row without its integer step and epoch. Each line
    is decoded on its own, so damage in one costs that line only."""
    rows: list[dict] = []
    damaged = 0
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return rows, 0
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line.decode("utf-8"))
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            row = None
        if isinstance(row, dict) and isinstance(row.get("step"), int) and isinstance(row.get("epoch"), int):
            rows.append(row)
        else:
            damaged += 1
    return rows, damaged


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def is_epoch_key(key: str) -> bool:
    return key.startswith(EPOCH_PREFIXES)


@dataclass
class Checkpoint:
    path: Path
    epoch: int | None
    step: int | None
    latest: bool
    size: int


@dataclass
class EpochRow:
    epoch: int
    first_step: int
    last_step: int
    means: dict[str, float]  # of the step metrics
    numbers: dict[str, float]  # validation / evaluation
    complete: bool  # its picture exists (an interrupted epoch has none)


@dataclass
class RunData:
    id: str
    path: Path
    config: dict
    rows: list[dict]
    sessions: list[dict]
    pictures: list[tuple[int, Path]]
    checkpoints: list[Checkpoint]
    paired: bool
    gif: Path | None
    epochs: list[EpochRow] = field(default_factory=list)
    damaged_rows: int = 0  # lines of metrics.jsonl that could not be read, left out
    columns: tuple[tuple[str, ...], ...] = ()  # heads of the epoch pictures' columns, a row of them per band (data kind)
    slug: str = ""  # the run's anchor and picture folder in a page: its id, numbered when two runs share it

    @property
    def step_keys(self) -> list[str]:
        """Every per-step series of the log, in the order they first appear."""
        return list(dict.fromkeys(k for r in self.rows for k in r if k not in ("step", "epoch") and not is_epoch_key(k)))

    @property
    def epoch_keys(self) -> list[str]:
        return list(dict.fromkeys(k for r in self.rows for k in r if is_epoch_key(k)))

    def series(self, key: str) -> list[tuple[float, float]]:
        """(step, value) of ``key``, finite values only."""
        return [(r["step"], float(r[key])) for r in self.rows
                if key in r and _is_number(r[key]) and math.isfinite(r[key])]

    def final(self) -> dict[str, float]:
        """The numbers of the last epoch: its means of the step metrics, the newest
        validation/evaluation numbers, and how far the run got."""
        out: dict[str, float] = {}
        if self.epochs:
            last = self.epochs[-1]
            out.update(last.means)
        for e in self.epochs:
            out.update(e.numbers)
        return out

    @property
    def epochs_done(self) -> int:
        done = [e.epoch for e in self.epochs if e.complete]
        return max(done) if done else 0

    @property
    def steps(self) -> int:
        return max((r["step"] for r in self.rows), default=0)


def _epochs(rows: list[dict], pictures: set[int]) -> list[EpochRow]:
    by_epoch: dict[int, list[dict]] = {}
    for r in rows:
        by_epoch.setdefault(r["epoch"], []).append(r)
    out = []
    for epoch in sorted(by_epoch):
        group = by_epoch[epoch]
        sums: dict[str, list[float]] = {}
        numbers: dict[str, float] = {}
        for r in group:
            for k, v in r.items():
                if k in ("step", "epoch") or not _is_number(v):
                    continue
                if is_epoch_key(k):
                    numbers[k] = float(v)
                else:
                    sums.setdefault(k, []).append(float(v))
        steps = [r["step"] for r in group]
        means = {k: sum(v) / len(v) for k, v in sums.items()}
        out.append(EpochRow(epoch, min(steps), max(steps), means, numbers, epoch in pictures))
    return out


def _checkpoints(run_dir: Path) -> list[Checkpoint]:
    root = run_dir / "checkpoints"
    if not root.is_dir():
        return []
    try:
        latest = (root / "latest").read_text().strip()
    except (OSError, UnicodeDecodeError):
        latest = ""
    found = []
    for p in sorted(root.iterdir()):
        if not p.is_dir() or p.name.startswith("."):
            continue
        try:
            pos = json.loads((p / "position.json").read_text())
            epoch, step = int(pos["epoch"]), int(pos["step"])
        except (OSError, ValueError, KeyError, TypeError):
            epoch = step = None
        found.append(Checkpoint(p, epoch, step, p.name == latest, storedirs.dir_size(p)))
    found.sort(key=lambda c: (c.step if c.step is not None else -1, c.path.name))
    return found


def read_sessions(run_dir: Path) -> list[dict]:
    """The training sessions ``runtime.json`` records (see :class:`ganctl.train.callbacks.session.SessionLog`)."""
    try:
        data = json.loads((run_dir / RUNTIME).read_text())
    except (OSError, ValueError):
        return []
    sessions = data.get("sessions") if isinstance(data, dict) else None
    return [s for s in sessions if isinstance(s, dict)] if isinstance(sessions, list) else []


def _paired(config: dict) -> bool:
    from ganctl.families import registry

    try:
        return registry.get(config["family"]).translates
    except (GanctlError, KeyError):  # a family this ganctl does not know (a plug-in's)
        return "direction" in config.get("data_args", {})


PAIR_COLUMNS = ("input", "output", "target")  # a pix2pix-like run whose family this ganctl does not know


def _columns(config: dict) -> tuple[tuple[str, ...], ...]:
    """The heads of the run's epoch pictures' columns, as its family's data kind names them."""
    from ganctl.families import registry

    try:
        return registry.get(config["family"]).kind.columns
    except (GanctlError, KeyError):
        return (PAIR_COLUMNS,) if "direction" in config.get("data_args", {}) else ()


def load(info: layout.RunInfo) -> RunData:
    """Everything a report shows of the run ``info``."""
    path = Path(info.path)
    config = info.config()
    rows, damaged = read_metrics_counted(path / "metrics.jsonl")
    pictures = epoch_pictures(path)
    gif = path / PROGRESS_GIF
    run = RunData(info.id, path, config, rows, read_sessions(path), pictures, _checkpoints(path), _paired(config),
                  gif if gif.is_file() else None)
    run.epochs = _epochs(rows, {e for e, _ in pictures})
    run.damaged_rows = damaged
    run.columns = _columns(config)
    return run
