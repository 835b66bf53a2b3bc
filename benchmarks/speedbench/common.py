"""What the speed measurements share: the work sizes, running the ganctl CLI and reading its
throughput, and the baseline's timed loop."""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from report import EPOCH_LINE  # benchmarks/ is on sys.path: the scripts run from there
from torch import nn
from torch.utils.data import DataLoader

# the console script next to this Python (what users run), else the module
_SCRIPT = Path(sys.executable).with_name("ganctl")
GANCTL = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "ganctl"]

UNET_256 = {"in_channels": 3, "out_channels": 3, "ngf": 64, "num_downs": 8, "norm": "batch"}
MNIST_EPOCH = 60_000


@dataclass(frozen=True)
class Sizes:
    """How much work each measurement does (the counts of the options of the same names)."""

    pairs: int  # (a) training pairs written (plus a few validation pairs)
    images: int  # (b) training images written
    epochs: int  # ganctl epochs in (a) and (b); the first is warm-up
    warmup: int  # baseline iterations not timed, in (a) and (b)
    iters: int  # baseline iterations timed, in (a) and (b)
    translate_runs: int  # (c)
    help_runs: int  # (d)
    e2e_pairs: int = 60  # (e), (f): pix2pix pairs trained end to end
    e2e_images: int = 1536  # (g): DCGAN images trained end to end
    extra: tuple[str, ...] = ()  # more `ganctl train` options in (a) and (b), e.g. ("--precision", "fp32")


def default_sizes(device: str, quick: bool) -> Sizes:
    if quick:  # checks that the script works, not a measurement
        return Sizes(pairs=4, images=256, epochs=2, warmup=1, iters=2, translate_runs=1, help_runs=2, e2e_pairs=4,
                     e2e_images=256)
    if device == "cuda":  # a facades-sized set and a full MNIST epoch, so each timed epoch lasts seconds
        return Sizes(pairs=400, images=MNIST_EPOCH, epochs=3, warmup=10, iters=300, translate_runs=3, help_runs=5,
                     e2e_pairs=400, e2e_images=MNIST_EPOCH)
    # a 2-core CPU (~1.3 s per fp32 pix2pix iteration, several seconds per DCGAN batch of 128): 5-8
    # minutes in all. The baseline's warmup + iters fit in one pass over the data, so no DataLoader
    # restarts its workers inside the timed span.
    return Sizes(pairs=16, images=1536, epochs=3, warmup=2, iters=10, translate_runs=3, help_runs=5)


# ---------------------------------------------------------------- helpers


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def store_env(home: Path) -> dict[str, str]:
    return {**os.environ, "GANCTL_HOME": str(home), "GANCTL_DISABLE_PROGRESS_BARS": "1"}


def run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess, float]:
    """Run ``cmd``; exit with its stderr if it fails. Returns (process, wall seconds)."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc, wall


def median_wall(cmd: list[str], runs: int, env: dict[str, str] | None = None) -> float:
    run(cmd, env)  # once untimed, so every timed run finds the files in the page cache
    return statistics.median(run(cmd, env)[1] for _ in range(runs))


def ganctl_throughput(stderr: str, run_dir: Path, skip: int = 1) -> dict:
    """Steady-state images/s of a ``ganctl train`` run: epochs after the first ``skip``.

    Images per epoch come from metrics.jsonl (distinct steps, times the batch size); seconds from
    the epoch lines on stderr (``epoch E/N ... 12.3s 45 img/s``). Both printed numbers are rounded,
    so each epoch's time is taken from whichever of them is the more precise: '12.3s' for slow
    epochs, 'N img/s' for fast ones (a 0.2 s GPU epoch at 20,000 img/s).
    """
    batch = json.loads((run_dir / "config.json").read_text())["batch_size"]
    steps: dict[int, set[int]] = {}
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        steps.setdefault(row["epoch"], set()).add(row["step"])  # validation rows repeat a step
    images = seconds = 0.0
    timed = []
    for m in EPOCH_LINE.finditer(stderr):
        epoch, secs, ips = int(m["epoch"]), float(m["seconds"]), float(m["rate"].replace(",", ""))
        if epoch <= skip:
            continue
        n = len(steps[epoch]) * batch
        # relative rounding error: rates print as integers from 100 up, else to 3 significant digits
        ips_err = 0.5 / ips if ips >= 100 else 0.005
        if ips > 0 and ips_err < 0.05 / max(secs, 1e-9):
            secs = n / ips
        images, seconds = images + n, seconds + secs
        timed.append(epoch)
    if not timed:
        raise SystemExit(f"no epoch after the first in ganctl's output (train at least 2 epochs):\n{stderr[-2000:]}")
    setup = re.search(r"^training .*? - (.+) - \d+ epochs of", stderr, re.M)
    return {
        "img_s": images / seconds,
        "timed_epochs": timed,
        "timed_images": int(images),
        "runtime": setup.group(1) if setup else "?",
    }


def ganctl_train(home: Path, args: list[str], device: torch.device, sz: Sizes) -> dict:
    """``ganctl train ARGS`` as run "bench" in the store ``home``: its steady-state throughput
    (:func:`ganctl_throughput`) and the whole run's wall seconds (``wall``)."""
    # one checkpoint, after the last epoch: a save's background write would otherwise run beside the
    # next epoch's timed batches; what saves cost a whole run is in the end-to-end rows (e)-(g)
    cmd = [*GANCTL, "train", *args, "--epochs", str(sz.epochs), "--save-every", str(sz.epochs), "--name", "bench",
           "--device", device.type, *sz.extra]
    proc, wall = run(cmd, store_env(home))
    return {**ganctl_throughput(proc.stderr, home / "runs" / args[0] / "bench"), "wall": wall}


def forever(loader: DataLoader):
    """Batches of ``loader``, epoch after epoch (a new iterator each epoch, as a training loop makes)."""
    while True:
        yield from loader


def timed_loop(loader: DataLoader, step, device: torch.device, warmup: int, iters: int, batch: int) -> float:
    """Images/s of ``step`` over ``iters`` batches after ``warmup`` untimed ones, data loading included."""
    batches = forever(loader)
    for _ in range(warmup):
        step(*next(batches))
    sync(device)
    t0 = time.perf_counter()
    for _ in range(iters):
        step(*next(batches))
    sync(device)
    return iters * batch / (time.perf_counter() - t0)


def set_requires_grad(net: nn.Module, flag: bool) -> None:
    for p in net.parameters():
        p.requires_grad = flag


def span(epochs: list[int]) -> str:
    """The timed epochs as '2-3' (or '2')."""
    return f"{epochs[0]}-{epochs[-1]}" if len(epochs) > 1 else str(epochs[0])
