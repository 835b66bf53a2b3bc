"""Does bf16 train as well as fp32? Short fixed-seed runs in both precisions, compared with the
run-to-run noise between seeds.

For each model: train with seeds 0 to 3 (``--seeds``) in fp32 and in bf16 (same data, same
settings), then compare the quality numbers (Frechet distance from `ganctl evaluate` for image
GANs; validation L1/PSNR for pix2pix) and the per-epoch mean losses. bf16 "agrees" when its mean
quality is within two standard errors of fp32's (the runs of a precision are a sample: after a few
epochs a run has drifted from the other precision's run of its seed as far as from another seed's),
and its loss curves are no further from fp32's, seed for seed, than two seeds' curves are from each
other (allowing 10%). If bf16 is worse beyond that, ganctl's `--precision auto` should stay fp32 for
that model.

    python benchmarks/precision.py --write
    python benchmarks/precision.py --models dcgan --epochs 3 --seeds 4
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
sys.path.insert(0, str(ROOT / "benchmarks"))

from report import epoch_seconds, machine, write_section  # noqa: E402

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
    secs = epoch_seconds(proc.stderr)
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


def _pairs(xs: list) -> list[tuple]:
    return [(a, b) for i, a in enumerate(xs) for b in xs[i + 1:]]


def quality_verdict(fp32: list[float], bf16: list[float], lower_better: bool) -> tuple[float, float, str]:
    """(bf16 mean - fp32 mean, twice its standard error, verdict). After a few epochs a GAN run in
    one precision has diverged from the same seed's run in the other as far as from another seed's,
    so the two precisions are compared as two samples of runs: their means differ "within the
    noise" when by at most two standard errors (Welch; about a 95% two-sided test)."""
    diff = _mean(bf16) - _mean(fp32)
    two_se = 2 * math.sqrt(statistics.variance(fp32) / len(fp32) + statistics.variance(bf16) / len(bf16))
    if abs(diff) <= two_se + 1e-12:
        return diff, two_se, "within"
    return diff, two_se, "better" if (diff < 0) == lower_better else "worse"


def compare(model: str, epochs: int, seeds: list[int]) -> tuple[list[str], str]:
    """One table row per quality number and one for the loss curves; the model's verdict: "worse"
    when bf16 is worse than fp32 beyond the noise in any number, "differs" when its loss curves
    are further from fp32's than the seeds' are from each other, else "better" or "within"."""
    r = {(p, s): run(model, p, s, epochs) for p in ("fp32", "bf16") for s in seeds}
    lines, verdicts = [], []
    for key, lower_better in MODELS[model][1].items():
        vals = {p: [r[(p, s)]["quality"][key] for s in seeds] for p in ("fp32", "bf16")}
        diff, two_se, verdict = quality_verdict(vals["fp32"], vals["bf16"], lower_better)
        verdicts.append(verdict)
        cells = [f"{' / '.join(f'{v:.4g}' for v in vals[p])} (mean {_mean(vals[p]):.4g})" for p in ("fp32", "bf16")]
        lines.append(
            f"| {model} | {key} ({'lower' if lower_better else 'higher'} is better) | {cells[0]} | {cells[1]} | "
            f"{diff:+.3g} | {two_se:.3g} | {VERDICT_CELLS[verdict]} |"
        )
    # Loss curves, per epoch, stay close for a seed across precisions: compared pairwise
    prec_c = _mean([curve_gap(r[("fp32", s)]["curve"], r[("bf16", s)]["curve"]) for s in seeds])
    seed_c = _mean([curve_gap(r[(p, a)]["curve"], r[(p, b)]["curve"]) for p in ("fp32", "bf16") for a, b in _pairs(seeds)])
    curves = "within" if prec_c <= 1.1 * seed_c + 1e-9 else "differs"
    verdicts.append(curves)
    lines.append(
        f"| {model} | loss curves: mean relative gap per epoch, same seed across precisions (seed to seed) | - | - | "
        f"{prec_c:.3f} | ({seed_c:.3f}) | {VERDICT_CELLS[curves]} |"
    )
    t32 = _mean([r[("fp32", s)]["sec_per_epoch"] for s in seeds])
    t16 = _mean([r[("bf16", s)]["sec_per_epoch"] for s in seeds])
    lines.append(f"| {model} | seconds per epoch | {t32:.2f} | {t16:.2f} | {t32 / t16:.2f}x faster in bf16 | | |")
    verdict = next((v for v in ("worse", "differs", "better") if v in verdicts), "within")
    return lines, verdict


VERDICT_CELLS = {"within": "yes", "better": "no: bf16 better", "worse": "**no: bf16 worse**", "differs": "**no**"}
VERDICTS = {
    "within": "bf16 agrees with fp32",
    "better": "bf16 better than fp32 beyond the noise (no quality lost): keep bf16",
    "worse": "bf16 worse than fp32: keep fp32",
    "differs": "bf16's loss curves differ from fp32's: keep fp32",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, of {', '.join(MODELS)}")
    ap.add_argument("--epochs", type=int, default=None, help="for every model (default: per model, 5 or 30)")
    ap.add_argument("--seeds", type=int, default=4, help="seeds per precision (default 4: 0 to 3)")
    ap.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = ap.parse_args()
    models = args.models.split(",")
    unknown = set(models) - set(MODELS)
    if unknown:
        ap.error(f"unknown model(s) {', '.join(sorted(unknown))}: use {', '.join(MODELS)}")
    epochs = {m: args.epochs or MODELS[m][2] for m in models}
    if args.seeds < 2:
        ap.error("--seeds: at least 2 (the noise is the difference between seeds)")
    seeds = list(range(args.seeds))
    rows, verdicts = [], {}
    for model in models:
        print(f"{model}: {2 * len(seeds)} runs of {epochs[model]} epochs ...", file=sys.stderr, flush=True)
        lines, verdict = compare(model, epochs[model], seeds)
        rows += lines
        verdicts[model] = verdict
    spans = ", ".join(f"{m} {e}" for m, e in epochs.items())
    command = ["python", "benchmarks/precision.py", *sys.argv[1:]]
    section = "\n".join(
        [
            f"Machine: {machine()}. Command: `{' '.join(command)}` "
            f"(each model trained {2 * len(seeds)} times: fp32 and bf16, seeds {', '.join(map(str, seeds))}; epochs: {spans}; "
            "image GANs scored with `ganctl evaluate -n 2000`, pix2pix by its validation numbers after the last epoch). "
            "Quality numbers: the runs of each precision are a sample; bf16 is within the noise when its mean differs "
            "from fp32's by at most two standard errors of the difference (Welch). Loss curves: the mean relative "
            "gap between the two precisions' runs of a seed, within the noise when at most 1.1 times the gap "
            "between two seeds' runs of one precision.",
            "",
            f"| model | number | fp32 (seed {' / '.join(map(str, seeds))}) | bf16 (seed {' / '.join(map(str, seeds))}) "
            "| bf16 - fp32 | noise (2 standard errors) | bf16 within the noise |",
            "|---|---|---|---|---|---|---|",
            *rows,
            "",
            "Verdict: " + "; ".join(f"{m}: {VERDICTS[v]}" for m, v in verdicts.items()) + ".",
        ]
    )
    print(section)
    if args.write:
        write_section("precision", "## Quality in bf16 against fp32", section)

if __name__ == "__main__":
    main()
