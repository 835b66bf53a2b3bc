"""Quality with and without ``--augment`` on small subsets of digits, at equal steps, over seeds.

For each (model, subset size N, policy, seed): the first N images of digits' training split, taken
class-balanced with a fixed seed, written to a folder of class sub-folders (cgan reads its labels
from them), each image ``--repeat`` times, so that an epoch is several batches and the per-epoch
grid and checkpoint do not dominate the run's time (the discriminator still sees only N distinct
images); ``ganctl train MODEL --dataset FOLDER --epochs E --augment POLICY --seed S``, then the
run's generator scored like ``ganctl evaluate`` on digits itself: FD and KID of 2,000 samples
against digits' 297 test images in the features of ganctl's digit classifier; the real floor is
digits' training images against the same test images.

    python benchmarks/augment_quality.py --models dcgan --sizes 100 --policies none,color,translation,cutout \\
        --seeds 0,1,2 --steps 600 --image-size 16 --write
    python benchmarks/augment_quality.py --models cgan:conv --sizes 100,500 --policies none,ada

Results are appended to benchmarks/results/augment_quality.jsonl as each run ends (an interrupted
sweep keeps them; ``--write`` tabulates every row of that file for the settings asked), and with
``--grids`` the last sample grid of each seed-0 run is copied to docs/benchmarks/.
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
RESULTS = ROOT / "benchmarks" / "results" / "augment_quality.jsonl"
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from report import machine, mean_sd, write_section  # noqa: E402


def subset_folder(root: Path, n: int, size: int, repeat: int) -> Path:
    """The first ``n`` digits training images, about n/10 of each class, as PNGs in class folders."""
    import torch
    from PIL import Image

    from ganctl.data import datasets

    folder = root / f"digits-{n}"
    if folder.exists():
        return folder
    data = datasets.load("digits", size)
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))
    picked: list[int] = []
    per_class = {c: 0 for c in range(len(data.classes))}
    for i in order.tolist():
        c = int(data.labels[i])
        if per_class[c] < -(-n // len(per_class)) and len(picked) < n:
            per_class[c] += 1
            picked.append(i)
    for i in picked:
        sub = folder / data.classes[int(data.labels[i])]
        sub.mkdir(parents=True, exist_ok=True)
        for r in range(repeat):
            Image.fromarray(data.images[i, 0].numpy()).save(sub / f"{i:05d}_{r}.png")
    return folder


def score(run: Path) -> dict:
    """FD and KID of the run's generator against digits (classifier space), with the real floor."""
    import torch

    from ganctl.evaluation import evaluate
    from ganctl.use import generators, inference

    gen = inference.load_generator(generators.choose(run.parent.name, run=str(run)).path, torch.device("cpu"))
    gen.meta["dataset"] = "digits"  # scored against digits' own test split, not the subset folder
    r = evaluate.evaluate_generator(gen, n=2000, seed=0, device="cpu", features="classifier")
    return r


def one(model: str, folder: Path, n: int, policy: str, seed: int, steps: int, size: int, batch: int,
        repeat: int, home: Path) -> dict:
    family, _, arch = model.partition(":")
    per_epoch = (n * repeat) // batch
    epochs = max(1, round(steps / per_epoch))
    name = f"{family}-{arch or 'd'}-{n}-{policy.replace(',', '_')}-s{seed}"
    cmd = [sys.executable, "-m", "ganctl", "train", family, "--dataset", str(folder), "--name", name,
           "--epochs", str(epochs), "--batch-size", str(batch), "--image-size", str(size), "--seed", str(seed),
           "--augment", policy, "--save-every", str(epochs)]
    cmd += ["--arch", arch] if arch else []
    env = {**os.environ, "GANCTL_HOME": str(home), "GANCTL_DISABLE_PROGRESS_BARS": "1", "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    run = home / "runs" / family / name
    os.environ["GANCTL_HOME"] = str(home)
    r = score(run)
    grid = sorted((run / "samples").glob("epoch_*.png"))[-1]
    return {"model": model, "n": n, "policy": policy, "seed": seed, "steps": epochs * per_epoch, "image_size": size,
            "batch": batch, "repeat": repeat, "fd": r["frechet_distance"], "kid": r["kid_mean"],
            "floor_fd": r["real_train_vs_test_frechet_distance"], "floor_kid": r["real_train_vs_test_kid_mean"], "wall_s": round(wall, 1), "grid": str(grid),
            "machine": machine(), "when": time.strftime("%Y-%m-%d %H:%M")}


def table(rows: list[dict]) -> str:
    import statistics

    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["model"], r["n"], r["steps"], r["image_size"], r["policy"]), []).append(r)
    out = ["| model | images | steps | size | --augment | seeds | FD, mean ± sd | KID, mean ± sd | each seed: FD | "
           "real floor FD | gap closed | wall time per run |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for key in sorted(groups, key=lambda k: (k[0], k[1], k[2], k[3], k[4] != "none", k[4])):
        g = sorted(groups[key], key=lambda r: r["seed"])
        model, n, steps, size, policy = key
        base = groups.get((model, n, steps, size, "none"))
        floor = statistics.mean(r["floor_fd"] for r in g)
        closed = "-"
        if base and policy != "none":
            b = statistics.mean(r["fd"] for r in base)
            closed = f"{(b - statistics.mean(r['fd'] for r in g)) / (b - floor):+.0%}"
        out.append(f"| {model.replace(':', ' --arch ')} | {n} | {steps} | {size} | {policy} | {len(g)} | "
                   f"{mean_sd([r['fd'] for r in g], '.2f')} | {mean_sd([r['kid'] for r in g], '.3f')} | "
                   f"{', '.join(format(r['fd'], '.2f') for r in g)} | {floor:.2f} | {closed} | "
                   f"{statistics.mean(r['wall_s'] for r in g) / 60:.1f} min |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="dcgan")
    ap.add_argument("--sizes", default="100")
    ap.add_argument("--policies", default="none;color,translation,cutout", help="';'-separated --augment values")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--image-size", type=int, default=16)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--grids", action="store_true", help="copy seed 0's last grids to docs/benchmarks/")
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--work", type=Path, help="a folder to keep the subsets and the store in (the digit "
                    "classifier is trained once in it); default: a new temporary folder")
    a = ap.parse_args()
    work = a.work or Path(tempfile.mkdtemp(prefix="ganctl-augq-"))
    home = work / "home"
    done = {(r["model"], r["n"], r["policy"], r["seed"], r["image_size"], r["batch"], r["repeat"])
            for r in map(json.loads, RESULTS.read_text().splitlines())} if RESULTS.exists() else set()
    for seed in map(int, a.seeds.split(",")):  # seeds outermost: an interrupted sweep has every policy's first seeds
        for model in a.models.split(","):
            for n in map(int, a.sizes.split(",")):
                folder = subset_folder(work, n, a.image_size, a.repeat)
                for policy in a.policies.split(";"):
                    if (model, n, policy, seed, a.image_size, a.batch, a.repeat) in done:  # kept from an earlier sweep
                        continue
                    row = one(model, folder, n, policy, seed, a.steps, a.image_size, a.batch, a.repeat, home)
                    print(json.dumps(row), flush=True)
                    RESULTS.parent.mkdir(parents=True, exist_ok=True)
                    with open(RESULTS, "a") as f:
                        f.write(json.dumps(row) + "\n")
                    if a.grids and seed == 0:
                        out = ROOT / "docs" / "benchmarks" / f"augment-{model.replace(':', '-')}-{n}-{policy.replace(',', '_')}.png"
                        shutil.copy(row["grid"], out)
    rows = [json.loads(x) for x in RESULTS.read_text().splitlines()]
    print(table(rows))
    if a.write:
        body = (f"Machine: {rows[-1]['machine']}. Command: `python benchmarks/augment_quality.py {' '.join(sys.argv[1:])}` "
                "(each run: `ganctl train MODEL --dataset FOLDER --augment POLICY --seed S` at equal steps, FOLDER the "
                "first N digits training images, class-balanced, each written --repeat times; then FD and KID of 2,000 "
                "samples against digits' 297 test images in the features of ganctl's digit classifier; real floor: "
                "digits' training images against the same test images. 'gap closed': how much of the unaugmented "
                "runs' mean distance to the floor the policy removed).\n\n" + table(rows))
        write_section("augment_quality", "## Augmentation on small sets: quality", body)


if __name__ == "__main__":
    main()
