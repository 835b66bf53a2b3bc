"""Does training with several processes reach the quality of one? cgan on digits, 1 against N.

Trains ``ganctl train cgan --dataset digits`` (its preset, or ``--epochs``) once in one process and
once with ``--nproc-per-node N``, same seed, each in a fresh store, and scores both with
``ganctl evaluate --json`` (ganctl's digit classifier: FD and KID with their real floor, and the
label accuracy: the share of samples the classifier reads as the digit asked for). With N
processes the global batch is the same and each process trains on its part of it, so the two
runs differ only in the order of float additions (and SyncBatchNorm's), not in the recipe.

    python benchmarks/distributed_quality.py                 # the preset (600 epochs), 1 against 2
    python benchmarks/distributed_quality.py --seeds 3 --write   # seeds 0, 1, 2: mean ± sd, and each seed
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))


def run(cmd: list[str], home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "GANCTL_HOME": str(home), "GANCTL_DISABLE_PROGRESS_BARS": "1"}
    proc = subprocess.run([sys.executable, "-m", "ganctl", *cmd], env=env, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"ganctl {' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


def train_and_score(processes: int, epochs: int | None, seed: int, home: Path) -> tuple[dict, float]:
    cmd = ["train", "cgan", "--dataset", "digits", "--seed", str(seed), "--name", "q", "--quiet"]
    if epochs:
        cmd += ["--epochs", str(epochs)]
    if processes > 1:
        cmd += ["--nproc-per-node", str(processes)]
    t0 = time.perf_counter()
    run(cmd, home)
    took = time.perf_counter() - t0
    return json.loads(run(["evaluate", "cgan/q", "--json"], home).stdout), took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=None, help="default: the preset's")
    ap.add_argument("--seeds", type=int, default=1, help="train with seeds 0..N-1")
    ap.add_argument("--write", action="store_true", help="record the table in docs/benchmarks.md")
    args = ap.parse_args()
    if args.processes < 2:
        ap.error("--processes must be at least 2")
    from report import machine, mean_sd, write_section

    epochs = f"--epochs {args.epochs}" if args.epochs else "its preset's epochs"
    lines = [f"{machine()}: `python benchmarks/distributed_quality.py --processes {args.processes}"
             f"{f' --epochs {args.epochs}' if args.epochs else ''} --seeds {args.seeds}` "
             f"(`ganctl train cgan --dataset digits --seed S` for S = 0..{args.seeds - 1}, {epochs}, then "
             "`ganctl evaluate --json`: ganctl's digit classifier on 2,000 samples; real floor FD "
             "{floor}).",
             "", "| processes | label accuracy | FD | KID | each seed: accuracy, FD | training took, per run |",
             "|---|---|---|---|---|---|"]
    floor = None
    with tempfile.TemporaryDirectory(prefix="ganctl-distq-") as tmp:
        for n in (1, args.processes):
            runs = []
            for seed in range(args.seeds):
                r, took = train_and_score(n, args.epochs, seed, Path(tmp) / f"p{n}s{seed}")
                runs.append((r, took))
                floor = r["real_train_vs_test_frechet_distance"]
                print(f"{n} process(es), seed {seed}: {r['label_accuracy']:.1%}, FD {r['frechet_distance']:.2f}",
                      file=sys.stderr, flush=True)
            acc = [100 * r["label_accuracy"] for r, _ in runs]
            fd = [r["frechet_distance"] for r, _ in runs]
            kid = [r["kid_mean"] for r, _ in runs]
            each = "; ".join(f"{a:.1f}%, {f:.2f}" for a, f in zip(acc, fd, strict=True))
            lines.append(f"| {n} | {mean_sd(acc, '.1f')}% | {mean_sd(fd, '.2f')} | {mean_sd(kid, '.2f')} | {each} | "
                         f"{sum(t for _, t in runs) / len(runs) / 60:.1f} min |")
            print(lines[-1], file=sys.stderr, flush=True)
    lines[0] = lines[0].replace("{floor}", f"{floor:.2f}")
    body = "\n".join(lines)
    print(body)
    if args.write:
        print(write_section("distributed_quality", "## Several processes: the same quality", body), file=sys.stderr)


if __name__ == "__main__":
    main()
