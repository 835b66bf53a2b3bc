"""Where a GPU training run makes the host wait for the device: every synchronizing CUDA call,
counted by where it came from.

Trains each family with the real CLI (in this process, a fresh store, small sizes) and, after
``--warmup`` steps, turns on ``torch.cuda.set_sync_debug_mode("warn")`` until the run ends. Each
warning is traced to the first ganctl frame that caused it and to the part of the loop it ran in:
the objective's step, the feeder's next batch, or a callback's hook (``on_step_end`` runs every
step, ``on_epoch_end`` once an epoch). A step with no host sync shows nothing under "step" or
"feeder", and per-step callbacks sync at most once per block they read back.

    python benchmarks/sync_check.py                     # dcgan, wgan-gp, cgan, pix2pix
    python benchmarks/sync_check.py --families dcgan --warmup 5
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import warnings
from collections import Counter
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ganctl.train import engine  # noqa: E402

GANCTL_DIR = str(ROOT / "ganctl")
RUNS = {  # small runs of each family's kind of work: several epochs, tens of steps each
    "dcgan": ["dcgan", "--dataset", "digits", "--batch-size", "64", "--epochs", "2"],
    "wgan-gp": ["wgan-gp", "--dataset", "digits", "--batch-size", "64", "--epochs", "2"],
    "cgan": ["cgan", "--dataset", "digits", "--batch-size", "64", "--epochs", "2"],
    "pix2pix": ["pix2pix", "--dataset", "synthetic-facades", "--image-size", "64", "--batch-size", "4",
                "--ngf", "16", "--ndf", "16", "--epochs", "3"],
}


class SyncWatch(engine.Callback):
    """First in the callback list: from step ``warmup`` on, every synchronizing CUDA call warns,
    and each warning is counted by (phase, ganctl location)."""

    def __init__(self, warmup: int):
        self.warmup = warmup
        self.found: Counter[tuple[str, str]] = Counter()
        self.watched_steps = 0
        self.epochs_seen = 0
        self._on = False
        self._previous = None

    def _record(self, message, category, filename, lineno, file=None, line=None):
        if "synchronizing" not in str(message):
            return self._previous(message, category, filename, lineno, file, line)
        where = _where(sys._getframe(1))
        if "SyncWatch" not in where[0]:  # its own synchronize before watching
            self.found[where] += 1

    def on_step_end(self, loop, metrics):
        if self._on:
            self.watched_steps += 1
        elif loop.position.step >= self.warmup:
            torch.cuda.synchronize()
            self._previous = warnings.showwarning
            warnings.showwarning = self._record
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            self._on = True

    def on_epoch_end(self, loop):
        if self._on:
            self.epochs_seen += 1

    def on_fit_end(self, loop):
        if self._on:
            torch.cuda.set_sync_debug_mode("default")
            warnings.showwarning = self._previous
            self._on = False


def _where(frame) -> tuple[str, str]:
    """(phase, location): the loop part the call ran in, and the innermost ganctl frame."""
    location, phase = "?", "fit (outside the batch loop)"
    while frame is not None:
        code = frame.f_code
        if location == "?" and code.co_filename.startswith(GANCTL_DIR) and not code.co_filename.endswith("engine.py"):
            location = f"{os.path.relpath(code.co_filename, ROOT)}:{frame.f_lineno} {code.co_name}"
        if code.co_filename.endswith("engine.py"):
            if code.co_name == "_each":
                hook = frame.f_locals.get("hook", "?")
                cb = type(frame.f_locals.get("cb")).__name__
                phase = f"{hook} ({cb})"
                break
            if code.co_name == "fit":
                phase = "step or feeder"
                break
        if code.co_name in ("d_step", "g_step") and phase.startswith("fit"):
            phase = "step"
            break
        if code.co_name == "epoch" and "feeders" in code.co_filename:
            phase = "feeder"
            break
        frame = frame.f_back
    return phase, location


def check(family: str, args: list[str], warmup: int, store: Path) -> SyncWatch:
    from typer.testing import CliRunner

    from ganctl.cli import app

    watch = SyncWatch(warmup)
    plain_fit = engine.fit

    def fit(objective, feeder, callbacks, **kw):
        return plain_fit(objective, feeder, [watch, *callbacks], **kw)

    engine.fit = fit
    home = os.environ.get("GANCTL_HOME")
    os.environ["GANCTL_HOME"] = str(store / family)
    try:
        r = CliRunner().invoke(app, ["train", *args, "--device", "cuda", "--name", "sync"])
    finally:
        engine.fit = plain_fit
        if home is None:
            os.environ.pop("GANCTL_HOME")
        else:
            os.environ["GANCTL_HOME"] = home
    if r.exit_code != 0:
        if r.exc_info and not isinstance(r.exception, SystemExit):
            import traceback

            traceback.print_exception(*r.exc_info)
        raise SystemExit(f"ganctl train {' '.join(args)} failed:\n{r.output}")
    return watch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--families", default=",".join(RUNS), help=f"comma-separated subset of {','.join(RUNS)}")
    ap.add_argument("--warmup", type=int, default=10, help="steps before watching (cuDNN autotuning syncs)")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("sync_check.py needs a CUDA GPU")
    names = [f.strip() for f in args.families.split(",") if f.strip()]
    if not names or set(names) - set(RUNS):
        ap.error(f"--families takes a comma-separated subset of {','.join(RUNS)}")
    lines = [f"Device: {torch.cuda.get_device_name()}, torch {torch.__version__}. Command: "
             f"`python benchmarks/sync_check.py {' '.join(sys.argv[1:])}`.", "",
             "| family | steps watched | epoch ends | per-step syncs (step, feeder) | where the others come from |",
             "|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory(prefix="ganctl-sync-") as tmp:
        for name in names:
            w = check(name, RUNS[name], args.warmup, Path(tmp))
            per_step = sum(n for (phase, _), n in w.found.items() if phase in ("step", "feeder", "step or feeder"))
            others = "; ".join(f"{phase} at {loc}: {n}" for (phase, loc), n in w.found.most_common()
                               if phase not in ("step", "feeder", "step or feeder")) or "none"
            lines.append(f"| {name} | {w.watched_steps} | {w.epochs_seen} | {per_step} | {others} |")
            for (phase, loc), n in w.found.items():
                if phase in ("step", "feeder", "step or feeder"):
                    lines.append(f"|  | | | {phase} at {loc}: {n} | |")
            print(lines[-1], file=sys.stderr, flush=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
