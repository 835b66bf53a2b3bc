"""Train model families on the built-in digits set with their default settings, as a user would.

Runs ``ganctl train FAMILY --dataset digits`` in a fresh store for each family, then reports the
final epoch's losses, the time per epoch on this machine, and copies the last sample grid to
docs/benchmarks/. With --write, replaces the matching section of docs/benchmarks.md.

    python benchmarks/train_digits.py                 # every family
    python benchmarks/train_digits.py gan dcgan --write
    python benchmarks/train_digits.py --seeds 3 --write   # FD and KID as mean +- sd over seeds 0, 1, 2
                                                          # (--write keeps the rows of families not run)
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
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
sys.path.insert(0, str(ROOT / "benchmarks"))

from report import epoch_seconds, machine, mean_sd, write_section  # noqa: E402


def bench(spec: str, extra: list[str], keep_grid: bool = True) -> dict:
    family, _, arch = spec.partition(":")  # "cgan:conv" trains cgan --arch conv
    home = Path(tempfile.mkdtemp(prefix=f"ganctl-bench-{family}-"))
    env = {**os.environ, "GANCTL_HOME": str(home), "GANCTL_DISABLE_PROGRESS_BARS": "1"}
    cmd = [sys.executable, "-m", "ganctl", "train", family, "--dataset", "digits", "--name", "bench", *extra]
    cmd += ["--arch", arch] if arch else []
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr}")
    run = home / "runs" / family / "bench"
    cfg = json.loads((run / "config.json").read_text())
    # quality: Frechet distance in a digits classifier's feature space (and label accuracy for cgan)
    ev = subprocess.run([sys.executable, "-m", "ganctl", "evaluate", f"{family}/bench", "-n", "2000"], env=env,
                        capture_output=True, text=True)
    if ev.returncode != 0:
        raise SystemExit(f"evaluate {family} failed:\n{ev.stderr}")
    evaluation = json.loads((run / "eval.json").read_text())
    epoch_secs = epoch_seconds(proc.stderr)
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    last_epoch = [r for r in rows if r["epoch"] == rows[-1]["epoch"]]
    keys = [k for k in last_epoch[0] if k not in ("step", "epoch")]
    final = {k: sum(r[k] for r in last_epoch if k in r) / max(1, sum(k in r for r in last_epoch)) for k in keys}
    grid = sorted((run / "samples").glob("epoch_*.png"))[-1]
    out = DOCS / "benchmarks" / f"{family}{'-' + arch if arch else ''}-digits.png"
    if keep_grid:
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(grid, out)
    shutil.rmtree(home, ignore_errors=True)
    return {
        "family": spec,
        "epochs": cfg["epochs"],
        "batch": cfg["batch_size"],
        "size": cfg["image_size"],
        "sec_per_epoch": sum(epoch_secs) / len(epoch_secs),
        "wall": wall,
        "final": final,
        "grid": out.relative_to(DOCS).as_posix(),
        "eval": evaluation,
        "arch": cfg["arch"],
    }


def table(results: list[dict]) -> str:
    lines = [
        "| model | epochs | batch | size | s/epoch (training) | total wall time | final-epoch mean losses | Frechet distance (real floor) | label accuracy | last samples |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        losses = ", ".join(f"{k} {v:.3f}" for k, v in r["final"].items())
        ev = r["eval"]
        acc = f"{ev['label_accuracy']:.1%}" if ev.get("label_accuracy") is not None else "-"
        name = r["family"].replace(":", " --arch ")
        lines.append(
            f"| {name} | {r['epochs']} | {r['batch']} | {r['size']} | {r['sec_per_epoch']:.2f} | "
            f"{r['wall'] / 60:.1f} min | {losses} | {ev['frechet_distance']:.2f} ({ev['real_train_vs_test_frechet_distance']:.2f}) | "
            f"{acc} | ![{r['family']}]({r['grid']}) |"
        )
    return "\n".join(lines)


def seeds_table(by_family: dict[str, list[dict]]) -> str:
    lines = ["| model | epochs | seeds | FD, mean ± sd | KID, mean ± sd | real floor: FD, KID | label accuracy | wall time per run |",
             "|---|---|---|---|---|---|---|---|"]
    for spec, runs in by_family.items():
        ev = [r["eval"] for r in runs]
        acc = [e["label_accuracy"] for e in ev if e.get("label_accuracy") is not None]
        lines.append(
            f"| {spec.replace(':', ' --arch ')} | {runs[0]['epochs']} | {len(runs)} | "
            f"{mean_sd([e['frechet_distance'] for e in ev], '.2f')} | {mean_sd([e['kid_mean'] for e in ev], '.3f')} | "
            f"{ev[0]['real_train_vs_test_frechet_distance']:.2f}, {ev[0]['real_train_vs_test_kid_mean']:.3f} | "
            f"{mean_sd([100 * a for a in acc], '.1f') + '%' if acc else '-'} | "
            f"{sum(r['wall'] for r in runs) / len(runs) / 60:.1f} min |")
    return "\n".join(lines)


def main_seeds(families: list[str], seeds: int, extra: list[str], write: bool) -> None:
    by_family: dict[str, list[dict]] = {}
    for fam in families:
        for seed in range(seeds):
            print(f"training {fam} on digits, seed {seed} ...", file=sys.stderr, flush=True)
            by_family.setdefault(fam, []).append(bench(fam, [*extra, "--seed", str(seed)], keep_grid=False))
        print(seeds_table({fam: by_family[fam]}).splitlines()[-1], file=sys.stderr, flush=True)
    section = (
        f"Machine: {machine()}. Command: `python benchmarks/train_digits.py --seeds {seeds} --write` (each family: "
        f"`ganctl train FAMILY --dataset digits --seed S` with its defaults for S = 0..{seeds - 1}, each in a fresh "
        f"store, then `ganctl evaluate FAMILY/bench -n 2000`). FD and KID are in the features of ganctl's digit "
        f"classifier: 2,000 samples against digits' 297 test images; the real floor is 2,000 real training images "
        f"against the same test images (the same N). Label accuracy: how often that classifier reads the digit asked "
        f"for. KID is the mean over subsets as `ganctl evaluate` reports it.\n\n"
        + "\n".join(merge_rows(seeds_table(by_family).splitlines(), previous_rows("train_digits_seeds") if write else []))
    )
    print(section)
    if write:
        write_section("train_digits_seeds", "## Quality over seeds on digits", section)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("families", nargs="*", help="default: every image family; FAMILY:ARCH for a variant (cgan:conv)")
    ap.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    ap.add_argument("--extra", default="", help="extra train options, e.g. '--epochs 2' for a quick check")
    ap.add_argument("--seeds", type=int, default=1,
                    help="train each family with seeds 0..N-1 and report FD and KID as mean ± sd (its own section)")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from ganctl.families import registry

    families = args.families or [n for n in registry.names() if not registry.get(n).paired] + ["cgan:conv"]
    if args.seeds > 1:
        return main_seeds(families, args.seeds, args.extra.split(), args.write)
    results = []
    for fam in families:
        print(f"training {fam} on digits ...", file=sys.stderr, flush=True)
        results.append(bench(fam, args.extra.split()))
    rows = table(results).splitlines()
    if args.write:  # rows of families not run this time stay as they were
        rows = merge_rows(rows, previous_rows())
    section = (
        f"Machine: {machine()}. Command: `python benchmarks/train_digits.py [FAMILY ...] --write`, which replaces the "
        f"rows of the families it runs (each family: `ganctl train FAMILY --dataset digits` with its defaults, in a fresh "
        f"store, then `ganctl evaluate FAMILY/bench -n 2000`: Frechet distance of 2,000 samples to digits' 297 test "
        f"images in the features of a classifier trained on its 1,500 training images; the real floor is the same "
        f"distance for real training images; label accuracy: how often that classifier sees the requested digit).\n\n"
        + "\n".join(rows)
    )
    print(section)
    if args.write:
        write_section("train_digits", "## Training on digits with the defaults", section)


def previous_rows(section: str = "train_digits") -> list[str]:
    path = DOCS / "benchmarks.md"
    text = path.read_text() if path.exists() else ""
    m = re.search(rf"<!-- {section}:begin -->(.*?)<!-- {section}:end -->", text, re.S)
    return [ln for ln in m.group(1).splitlines() if ln.startswith("|")] if m else []


def merge_rows(new: list[str], old: list[str]) -> list[str]:
    """The table of ``new`` with ``old``'s rows for the models ``new`` lacks, in ``old``'s order."""
    key = lambda row: row.split("|")[1].strip()  # noqa: E731
    fresh = {key(r): r for r in new[2:]}
    merged = [fresh.pop(key(r), r) for r in old[2:]]
    return new[:2] + merged + list(fresh.values())

if __name__ == "__main__":
    main()
