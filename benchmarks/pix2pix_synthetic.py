"""Train pix2pix on the generated synthetic-facades set and compare with the trivial baseline.

Runs ``ganctl train pix2pix --dataset synthetic-facades`` in a fresh store (the paper's recipe:
U-Net-256, PatchGAN, batch 1, lambda_L1 100), then reads the run's metrics: validation L1, PSNR
and SSIM after every epoch, against the same numbers for output = input on the same validation
pairs, and the time per training iteration. With --write, replaces its section of
docs/benchmarks.md and copies the last epoch's input | output | target picture to docs/benchmarks/.

    python benchmarks/pix2pix_synthetic.py --epochs 10 --write
    python benchmarks/pix2pix_synthetic.py --epochs 2 --extra "--precision fp32"
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from report import epoch_seconds, machine, write_section  # noqa: E402


def baseline(home: Path, image_size: int, direction: str) -> dict:
    """Scores of output = input on the validation pairs the training run scores."""
    os.environ["GANCTL_HOME"] = str(home)
    from ganctl.data import feeders, loading, paired
    from ganctl.evaluation import scores


    val = paired.load_paired("synthetic-facades", "val", image_size)
    a, b = val.batch(list(range(min(loading.VAL_PAIRS, len(val)))))
    x, y = feeders.orient(a.float() / 127.5 - 1, b.float() / 127.5 - 1, direction)
    return scores.image_scores(x, y)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=None, help="default: the preset's")
    ap.add_argument("--extra", default="", help="more train options, e.g. '--precision fp32'")
    ap.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = ap.parse_args()

    home = Path(tempfile.mkdtemp(prefix="ganctl-bench-p2p-"))
    env = {**os.environ, "GANCTL_HOME": str(home), "GANCTL_DISABLE_PROGRESS_BARS": "1"}
    cmd = [sys.executable, "-m", "ganctl", "train", "pix2pix", "--dataset", "synthetic-facades", "--name", "bench"]
    if args.epochs:
        cmd += ["--epochs", str(args.epochs)]
    cmd += args.extra.split()
    print(" ".join(cmd[2:]), file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"training failed:\n{proc.stderr}")
    run = home / "runs" / "pix2pix" / "bench"
    cfg = json.loads((run / "config.json").read_text())
    header = proc.stderr.splitlines()[[i for i, ln in enumerate(proc.stderr.splitlines()) if ln.startswith("training ")][0]]
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    val = [r for r in rows if "val_l1" in r]
    secs = epoch_seconds(proc.stderr)
    iters = len([r for r in rows if "g_l1" in r and r["epoch"] == 1])
    base = baseline(home, cfg["image_size"], cfg["data_args"]["direction"])
    scored = {}  # `ganctl evaluate` on the test split, in both of its modes
    for mode in ("paper", "eval"):
        ev = subprocess.run([sys.executable, "-m", "ganctl", "evaluate", "pix2pix/bench", "--mode", mode, "--json"],
                            env=env, capture_output=True, text=True)
        if ev.returncode != 0:
            raise SystemExit(f"evaluate --mode {mode} failed:\n{ev.stderr}")
        scored[mode] = json.loads(ev.stdout)
    pic = DOCS / "benchmarks" / "pix2pix-synthetic-facades.png"
    pic.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(sorted((run / "samples").glob("epoch_*.png"))[-1], pic)
    shutil.rmtree(home, ignore_errors=True)

    lines = [
        f"Machine: {machine()}. Command: `python benchmarks/pix2pix_synthetic.py"
        f"{f' --epochs {args.epochs}' if args.epochs else ''}{f' --extra {args.extra!r}' if args.extra else ''} --write`.",
        f"Run: `{header.strip()}`; {iters} iterations an epoch, "
        f"{sum(secs) / len(secs) / iters:.3f} s per iteration on average (epoch 1 included), {wall / 60:.1f} min in all.",
        "",
        "| epoch | val L1 (0-1) | val PSNR (dB) | val SSIM | s/epoch |",
        "|---|---|---|---|---|",
        f"| baseline: output = input | {base['l1']:.4f} | {base['psnr']:.2f} | {base['ssim']:.3f} | - |",
    ]
    for r, s in zip(val, secs, strict=False):
        lines.append(f"| {r['epoch']} | {r['val_l1']:.4f} | {r['val_psnr']:.2f} | {r['val_ssim']:.3f} | {s:.1f} |")
    lines += ["", "`ganctl evaluate pix2pix/bench --mode paper|eval --json` on the test split after training "
              "(FID only where the Inception weights are in the store):", "",
              "| mode | split | pairs | L1 (0-1) | PSNR (dB) | SSIM | FID |", "|---|---|---|---|---|---|---|"]
    for mode, r in scored.items():
        fid = f"{r['frechet_distance']:.2f}" if r.get("frechet_distance") is not None else "no Inception weights"
        lines.append(f"| {mode} | {r['split']} | {r['n']} | {r['l1']:.4f} | {r['psnr']:.2f} | {r['ssim']:.3f} | {fid} |")
    lines += ["", f"Last epoch, input | output | target: ![pix2pix]({pic.relative_to(DOCS).as_posix()})"]
    section = "\n".join(lines)
    print(section)
    if args.write:
        write_section("pix2pix_synthetic", "## pix2pix on synthetic-facades", section)

if __name__ == "__main__":
    main()
