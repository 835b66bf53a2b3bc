"""Does bf16 train as well as fp32? Short fixed-seed runs in both precisions, compared with the
run-to-run noise between two seeds.

For each model: train with seeds 0 and 1 in fp32 and in bf16 (same data, same settings), then
compare the per-epoch mean losses and the quality numbers (Frechet distance from `ganctl
evaluate` for image GANs; validation L1/PSNR for pix2pix). bf16 "agrees" when its difference from
fp32 (same seed) is within the difference between the two seeds (same precision), allowing 10%.
If it does not, ganctl's `--precision auto` should stay fp32 for that model.

    python benchmarks/precision.py --write
    python benchmarks/precision.py --models dcgan --epochs 3
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
sys.path.insert(0, str(ROOT / "benchmarks"))

from report import machine, write_section  # noqa: E402

# model -> (train arguments, the quality numbers to compare (lower is better?), default epochs).
# Epochs: enough for the numbers to mean something; the conditional WGAN-GP needs about 30 on
# digits before its samples follow their labels at all (at 5 both precisions sat at chance).
MODELS = {
    "dcgan": (["dcgan", "--dataset", "digits"], {"frechet_distance": True}, 5),
    "cgan-conv": (["cgan", "--arch", "conv", "--dataset", "digits"], {"frechet_distance": True, "label_accuracy": False}, 30),
    "pix2pix": (["pix2pix", "--dataset", "synthetic-facades", "--image-size", "128"], {"val_l1": True, "val_psnr": False}, 5),
}


def run(model: str, precision: str, seed: int, epochs: int) -> dict:
    args = MODELS[model][0]
    home = Path(tempfile.mkdtemp(prefix="ganctl-prec-"))
    env = {**os.environ, "GANCTL_HOME": str(home), "GANCTL_DISABLE_PROGRESS_BARS": "1"}
    cmd = [sys.executable, "-m", "ganctl", "train", *args, "--epochs", str(epochs), "--seed", str(seed),
           "--precision", precision, "--name", "p"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr}")
    family = args[0]
    run_dir = home / "runs" / family / "p"
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    quality = {k: v for k, v in rows[-1].items() if k.startswith("val_")}
    if family != "pix2pix":
        subprocess.run([sys.executable, "-m", "ganctl", "evaluate", f"{family}/p", "-n", "2000"], env=env,
                       capture_output=True, text=True, check=True)
        ev = json.loads((run_dir / "eval.json").read_text())
        quality = {k: ev[k] for k in ("frechet_distance", "label_accuracy") if ev.get(k) is not None}
    losses = sorted({k for r in rows for k in r if k not in ("step", "epoch") and not k.startswith(("val_", "eval_"))})
    curve = {k: [_mean([r[k] for r in rows if r["epoch"] == e and k in r]) for e in range(1, epochs + 1)] for k in losses}
    secs = [float(s) for s in re.findall(r"^epoch \d+/\d+ .* ([0-9.]+)s [0-9.]+ img/s$", proc.stderr, re.M)]
    shutil.rmtree(home, ignore_errors=True)
    return {"quality": quality, "curve": curve, "sec_per_epoch": _mean(secs[1:] or secs)}


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def curve_gap(a: dict, b: dict) -> float:
    """Mean absolute difference of the per-epoch mean losses, relative to their scale."""
    gaps = []
    for k in a:
        for x, y in zip(a[k], b[k], strict=True):
            gaps.append(abs(x - y) / max(1e-6, (abs(x) + abs(y)) / 2))
    return _mean(gaps)


def compare(model: str, epochs: int) -> tuple[list[str], bool]:
    r = {(p, s): run(model, p, s, epochs) for p in ("fp32", "bf16") for s in (0, 1)}
    lines, ok = [], True
    keys = MODELS[model][1]
    for key, lower_better in keys.items():
        vals = {ps: r[ps]["quality"][key] for ps in r}
        seed_gap = max(abs(vals[("fp32", 0)] - vals[("fp32", 1)]), abs(vals[("bf16", 0)] - vals[("bf16", 1)]))
        prec_gap = max(abs(vals[("fp32", 0)] - vals[("bf16", 0)]), abs(vals[("fp32", 1)] - vals[("bf16", 1)]))
        agree = prec_gap <= 1.1 * seed_gap + 1e-9
        ok &= agree
        lines.append(
            f"| {model} | {key} ({'lower' if lower_better else 'higher'} is better) | "
            f"{vals[('fp32', 0)]:.4g} / {vals[('fp32', 1)]:.4g} | {vals[('bf16', 0)]:.4g} / {vals[('bf16', 1)]:.4g} | "
            f"{prec_gap:.3g} | {seed_gap:.3g} | {'yes' if agree else '**no**'} |"
        )
    seed_c = max(curve_gap(r[("fp32", 0)]["curve"], r[("fp32", 1)]["curve"]), curve_gap(r[("bf16", 0)]["curve"], r[("bf16", 1)]["curve"]))
    prec_c = max(curve_gap(r[("fp32", 0)]["curve"], r[("bf16", 0)]["curve"]), curve_gap(r[("fp32", 1)]["curve"], r[("bf16", 1)]["curve"]))
    agree = prec_c <= 1.1 * seed_c + 1e-9
    ok &= agree
    lines.append(
        f"| {model} | loss curves: mean relative gap per epoch | - | - | {prec_c:.3f} | {seed_c:.3f} | {'yes' if agree else '**no**'} |"
    )
    t32 = _mean([r[("fp32", s)]["sec_per_epoch"] for s in (0, 1)])
    t16 = _mean([r[("bf16", s)]["sec_per_epoch"] for s in (0, 1)])
    lines.append(f"| {model} | seconds per epoch | {t32:.2f} | {t16:.2f} | {t32 / t16:.2f}x faster in bf16 | | |")
    return lines, ok


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, of {', '.join(MODELS)}")
    ap.add_argument("--epochs", type=int, default=None, help="for every model (default: per model, 5 or 30)")
    ap.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = ap.parse_args()
    models = args.models.split(",")
    unknown = set(models) - set(MODELS)
    if unknown:
        ap.error(f"unknown model(s) {', '.join(sorted(unknown))}: use {', '.join(MODELS)}")
    epochs = {m: args.epochs or MODELS[m][2] for m in models}
    rows, verdicts = [], {}
    for model in models:
        print(f"{model}: 4 runs of {epochs[model]} epochs ...", file=sys.stderr, flush=True)
        lines, ok = compare(model, epochs[model])
        rows += lines
        verdicts[model] = ok
    spans = ", ".join(f"{m} {e}" for m, e in epochs.items())
    command = ["python", "benchmarks/precision.py", *sys.argv[1:]]
    section = "\n".join(
        [
            f"Machine: {machine()}. Command: `{' '.join(command)}` "
            f"(each model trained 4 times: fp32 and bf16, seeds 0 and 1; epochs: {spans}; image GANs scored with "
            "`ganctl evaluate -n 2000`, pix2pix by its validation numbers after the last epoch).",
            "",
            "| model | number | fp32 (seed 0 / 1) | bf16 (seed 0 / 1) | fp32 vs bf16 gap | seed-to-seed gap | bf16 within the noise |",
            "|---|---|---|---|---|---|---|",
            *rows,
            "",
            "Verdict: " + "; ".join(f"{m}: {'bf16 agrees with fp32' if ok else 'bf16 differs: keep fp32'}" for m, ok in verdicts.items()) + ".",
        ]
    )
    print(section)
    if args.write:
        write_section("precision", "## Quality in bf16 against fp32", section)

if __name__ == "__main__":
    main()
