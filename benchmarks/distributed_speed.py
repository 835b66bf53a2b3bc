"""Training with 1 and N processes on this machine: the global images/s and the epoch losses.

Runs ``ganctl train dcgan --dataset digits`` (fp32 on the CPU, so both runs do the same sums up to
their order) once in one process and once with ``--nproc-per-node N``, each in a fresh store, and
reads the per-epoch lines ganctl prints (the rate of the batch loop, the epoch's mean losses). The
first epoch is warm-up and not counted in the rate.

    python benchmarks/distributed_speed.py                   # 1 against 2 processes
    python benchmarks/distributed_speed.py --processes 2,4,8 # 1 against 2, 4 and 8 (a machine with the cores)
    python benchmarks/distributed_speed.py --write           # record it in docs/benchmarks.md

Scaling is the global rate of N processes over N times the rate of one (1.0: perfect).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

EPOCH_LINE = re.compile(r"^epoch (\d+)/\d+ (.*?) [0-9.]+s ([0-9,.]+) img/s")


def train(processes: int, epochs: int, home: Path) -> list[tuple[int, str, float]]:
    """(epoch, its mean losses as printed, images/s) of each epoch of one run."""
    cmd = [sys.executable, "-m", "ganctl", "train", "dcgan", "--dataset", "digits", "--epochs", str(epochs),
           "--batch-size", "64", "--device", "cpu", "--precision", "fp32"]
    if processes > 1:
        cmd += ["--nproc-per-node", str(processes)]
    env = {**os.environ, "GANCTL_HOME": str(home), "GANCTL_DISABLE_PROGRESS_BARS": "1"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    epochs_seen = []
    for line in proc.stderr.splitlines():
        m = EPOCH_LINE.match(line)
        if m:
            epochs_seen.append((int(m.group(1)), m.group(2), float(m.group(3).replace(",", ""))))
    if len(epochs_seen) != epochs:
        raise SystemExit(f"expected {epochs} epoch lines from {' '.join(cmd)}, got:\n{proc.stderr[-3000:]}")
    return epochs_seen


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--processes", default="2", help="the multi-process runs' numbers of processes, comma-separated")
    ap.add_argument("--epochs", type=int, default=3, help="epochs of each run; the first is not timed")
    ap.add_argument("--write", action="store_true", help="record the table in docs/benchmarks.md")
    ap.add_argument("--section", default="distributed_speed",
                    help="the section of docs/benchmarks.md it writes (another machine's results: another name)")
    args = ap.parse_args()
    try:
        counts = [int(n) for n in args.processes.split(",")]
    except ValueError:
        ap.error(f"--processes takes numbers separated by commas, not {args.processes!r}")
    if args.epochs < 2 or min(counts) < 2:
        ap.error("--epochs and every number of processes must be at least 2")
    from report import machine, write_section

    lines = [f"{machine()}: `python benchmarks/distributed_speed.py --processes {args.processes} --epochs {args.epochs}` "
             "(`ganctl train dcgan --dataset digits --batch-size 64 --device cpu --precision fp32`, the global batch "
             "split over the processes). Images/s is the global rate of epochs 2 on, the mean of their epoch lines.",
             "", "| processes | images/s | scaling | epoch 1 losses | last epoch losses |", "|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory(prefix="ganctl-dist-") as tmp:
        one = None
        for n in [1, *counts]:
            seen = train(n, args.epochs, Path(tmp) / f"p{n}")
            rate = statistics.mean(r for _, _, r in seen[1:])
            one = one or rate
            lines.append(f"| {n} | {rate:,.0f} | {rate / (n * one):.2f} | {seen[0][1]} | {seen[-1][1]} |")
            print(lines[-1], file=sys.stderr, flush=True)
    body = "\n".join(lines)
    print(body)
    if args.write:
        print(write_section(args.section, "## Several processes on one machine", body), file=sys.stderr)


if __name__ == "__main__":
    main()
