"""Quality with and without ``--augment`` on small subsets of digits, at equal steps, over seeds.

For each (model, subset size N, policy, seed): the first N images of digits' training split, taken
class-balanced with a fixed seed, written to a folder of class sub-folders (cgan reads its labels
from them), each image ``--repeat`` times, so that an epoch is several batches and the per-epoch
grid and checkpoint do not dominate the run's time (the discriminator still sees only N distinct
images); ``ganctl train MODEL --dataset FOLDER --epochs E --augment POLICY --seed S``, then the
run's generator scored like ``ganctl evaluate`` on digits itself: FD and KID of 2,000 samples
against digits' 297 test images in the features of ganctl's digit classifier; the real floor is
digits' training images against the same test images.

    taskset -c 1 python benchmarks/augment_quality.py --models dcgan --sizes 100 \\
        --policies "none;color,translation,cutout;ada" --seeds 0,1,2 --steps 3000 --score-at 1000,2000 --write
    python benchmarks/augment_quality.py --models cgan:conv --sizes 100,500 --policies "none;ada"

``--score-at`` also scores the run's checkpoints at those steps (kept with ``--keep-epochs``), so
one run gives the comparison at several lengths; ``--threads`` (default 1) is each run's
OMP_NUM_THREADS, and the load average is sampled every few seconds while a run trains.

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
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "augment_quality.jsonl"
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from report import machine, mean_sd, write_section  # noqa: E402

COMMAND = "python benchmarks/augment_quality.py " + " ".join(
    f'"{a}"' if ";" in a else a for a in sys.argv[1:]) if __name__ == "__main__" else ""


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


def score(run: Path, checkpoint: str | None = None) -> dict:
    """FD and KID of the run's generator (its last, or ``checkpoint``) against digits (classifier
    space), with the real floor."""
    import torch

    from ganctl.evaluation import evaluate
    from ganctl.use import generators, inference

    choice = generators.choose(run.parent.name, run=str(run), checkpoint=checkpoint)
    gen = inference.load_generator(choice.path, torch.device("cpu"))
    gen.meta["dataset"] = "digits"  # scored against digits' own test split, not the subset folder
    r = evaluate.evaluate_generator(gen, n=2000, seed=0, device="cpu", features="classifier")
    return r


def copy_floor(folder: Path, size: int) -> dict:
    """FD and KID of the subset itself, each of its images drawn equally often up to the scoring's
    sample size, against digits' test images: what a generator that copies its N images exactly
    would score (the floor of the 'real floor' row is the full training split)."""
    import torch

    from ganctl.data import datasets
    from ganctl.evaluation import in_domain

    ref = in_domain.InDomainReference("digits", size, 1, 2000, 0, torch.device("cpu"), None)
    own = datasets.load(str(folder), size, 1).images

    def fakes(n: int, classes: int) -> tuple[torch.Tensor, None]:
        return own[torch.arange(n) * len(own) // n], None  # evenly over the folder (read class by class)

    r = in_domain.score(ref, fakes, False)
    return {"fd": r["frechet_distance"], "kid": r["kid_mean"]}


def last_epoch(run: Path, epoch: int) -> dict:
    """The discriminator's mean D(real) and D(fake) over ``epoch``'s steps (how sure it is: an
    unaugmented one near 1 and 0 has memorised the set), and ADA's p at its end."""
    rows = [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if r.get("epoch") == epoch]
    out = {k: round(sum(r[k] for r in rows) / len(rows), 3) for k in ("d_real", "d_fake") if rows and k in rows[0]}
    if rows and "ada_p" in rows[-1]:
        out["ada_p"] = round(rows[-1]["ada_p"], 3)
    return out


def train(cmd: list[str], env: dict) -> tuple[float, list[float]]:
    """Run ``cmd``; its wall seconds and the 1-minute load averages seen every 5 s while it ran."""
    loads = [os.getloadavg()[0]]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    err: list[str] = []
    reader = threading.Thread(target=lambda: err.extend(proc.stderr))  # a full pipe would stall the run
    reader.start()
    while proc.poll() is None:
        time.sleep(5)
        loads.append(os.getloadavg()[0])
    reader.join()
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{''.join(err)[-2000:]}")
    return wall, loads


def one(model: str, folder: Path, n: int, policy: str, seed: int, steps: int, score_at: list[int], size: int,
        batch: int, repeat: int, threads: int, home: Path) -> list[dict]:
    """One training run, scored at its last checkpoint and at each of ``score_at`` steps: a row each."""
    family, _, arch = model.partition(":")
    per_epoch = (n * repeat) // batch
    epochs = max(1, round(steps / per_epoch))
    kept = sorted({max(1, round(s / per_epoch)) for s in score_at} - {epochs})
    name = f"{family}-{arch or 'd'}-{n}-{policy.replace(',', '_')}-s{seed}-{epochs * per_epoch}"
    cmd = [sys.executable, "-m", "ganctl", "train", family, "--dataset", str(folder), "--name", name,
           "--epochs", str(epochs), "--batch-size", str(batch), "--image-size", str(size), "--seed", str(seed),
           "--augment", policy, "--save-every", str(epochs)]
    cmd += ["--keep-epochs", ",".join(map(str, kept))] if kept else []
    cmd += ["--arch", arch] if arch else []
    env = {**os.environ, "GANCTL_HOME": str(home), "GANCTL_DISABLE_PROGRESS_BARS": "1", "PYTHONPATH": str(ROOT),
           "OMP_NUM_THREADS": str(threads)}
    wall, loads = train(cmd, env)
    run = home / "runs" / family / name
    os.environ["GANCTL_HOME"] = str(home)
    rows = []
    for e in [*kept, epochs]:
        r = score(run, None if e == epochs else f"epoch_{e:04d}")
        rows.append({"model": model, "n": n, "policy": policy, "seed": seed, "steps": e * per_epoch,
                     "run_steps": epochs * per_epoch, "image_size": size, "batch": batch, "repeat": repeat,
                     "fd": r["frechet_distance"], "kid": r["kid_mean"], "floor_fd": r["real_train_vs_test_frechet_distance"],
                     "floor_kid": r["real_train_vs_test_kid_mean"], "label_accuracy": r.get("label_accuracy"),
                     **last_epoch(run, e), "wall_s": round(wall, 1),
                     "threads": threads, "cpus": len(os.sched_getaffinity(0)),
                     "load": [round(min(loads), 2), round(max(loads), 2)], "grid": str(run / "samples" / f"epoch_{e:04d}.png"),
                     "machine": machine(), "command": COMMAND, "when": time.strftime("%Y-%m-%d %H:%M")})
    return rows


def table(rows: list[dict], copies: dict[int, dict] | None = None) -> str:
    """The rows grouped by setting, seeds together; ``copies``: :func:`copy_floor` of each subset size."""
    import statistics

    copies = copies or {}

    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        key = (r["model"], r["n"], r.get("run_steps", r["steps"]), r["steps"], r["image_size"], r["batch"], r["policy"])
        groups.setdefault(key, []).append(r)
    out = ["| model | images | steps (of a run of) | size, batch | --augment | seeds | FD, mean ± sd | KID, mean ± sd | "
           "each seed: FD | real floor FD | copy floor FD | gap closed | label accuracy | D(real) / D(fake), that epoch | "
           "ADA p | wall time per run | load average (1 min) |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for key in sorted(groups, key=lambda k: (k[0], k[1], k[2], k[3], k[4], k[5], k[6] != "none", k[6])):
        g = sorted(groups[key], key=lambda r: r["seed"])
        model, n, run_steps, steps, size, batch, policy = key
        base = groups.get((*key[:-1], "none"))
        floor = statistics.mean(r["floor_fd"] for r in g)
        closed = "-"
        if base and policy != "none":
            b = statistics.mean(r["fd"] for r in base)
            closed = f"{(b - statistics.mean(r['fd'] for r in g)) / (b - floor):+.0%}"
        sure = (f"{statistics.mean(r['d_real'] for r in g):.2f} / {statistics.mean(r['d_fake'] for r in g):.2f}"
                if all("d_real" in r for r in g) else "-")
        acc = (mean_sd([r["label_accuracy"] for r in g], ".3f") if all(r.get("label_accuracy") is not None for r in g)
               else "-")
        ada = ", ".join(f"{r['ada_p']:.2f}" for r in g) if all("ada_p" in r for r in g) else "-"
        load = (f"{min(r['load'][0] for r in g):.1f} to {max(r['load'][1] for r in g):.1f}"
                if all("load" in r for r in g) else "not recorded")
        out.append(f"| {model.replace(':', ' --arch ')} | {n} | {steps} ({run_steps}) | {size}, {batch} | {policy} | "
                   f"{len(g)} | {mean_sd([r['fd'] for r in g], '.2f')} | {mean_sd([r['kid'] for r in g], '.3f')} | "
                   f"{', '.join(format(r['fd'], '.2f') for r in g)} | {floor:.2f} | "
                   f"{format(copies[n]['fd'], '.2f') if n in copies else '-'} | {closed} | {acc} | {sure} | {ada} | "
                   f"{statistics.mean(r['wall_s'] for r in g) / 60:.1f} min | {load} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="dcgan")
    ap.add_argument("--sizes", default="100")
    ap.add_argument("--policies", default="none;color,translation,cutout", help="';'-separated --augment values")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--steps", type=int, default=3000, help="discriminator steps (batches) of each run")
    ap.add_argument("--score-at", default="", help="also score the checkpoints nearest these steps, e.g. 1000,2000")
    ap.add_argument("--image-size", type=int, default=16)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of each run (and of the scoring)")
    ap.add_argument("--grids", action="store_true", help="copy seed 0's last grids to docs/benchmarks/")
    ap.add_argument("--write", action="store_true", help="write every row of the results file for the models, "
                    "sizes, policies, image size and batch asked into docs/benchmarks.md")
    ap.add_argument("--work", type=Path, help="a folder to keep the subsets and the store in (the digit "
                    "classifier is trained once in it); default: a new temporary folder")
    ap.add_argument("--no-run", action="store_true", help="run nothing: only tabulate (and --write) the rows there are")
    ap.add_argument("--results", type=Path, default=RESULTS, help="the JSON-lines file rows are appended to")
    a = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(a.threads)
    import torch

    torch.set_num_threads(a.threads)
    work = a.work or Path(tempfile.mkdtemp(prefix="ganctl-augq-"))
    home = work / "home"
    score_at = [int(s) for s in a.score_at.split(",") if s]
    models, sizes, policies = a.models.split(","), [int(n) for n in a.sizes.split(",")], a.policies.split(";")

    def key(r: dict) -> tuple:
        return (r["model"], r["n"], r["policy"], r["seed"], r["steps"], r.get("run_steps", r["steps"]),
                r["image_size"], r["batch"], r["repeat"])

    done = {key(r) for r in map(json.loads, a.results.read_text().splitlines())} if a.results.exists() else set()
    for seed in [] if a.no_run else map(int, a.seeds.split(",")):  # seeds outermost: an interrupted sweep has every policy's first seeds
        for model in models:
            for n in sizes:
                folder = subset_folder(work, n, a.image_size, a.repeat)
                per_epoch = (n * a.repeat) // a.batch
                run_steps = max(1, round(a.steps / per_epoch)) * per_epoch
                for policy in policies:
                    if (model, n, policy, seed, run_steps, run_steps, a.image_size, a.batch, a.repeat) in done:
                        continue  # kept from an earlier sweep
                    for row in one(model, folder, n, policy, seed, a.steps, score_at, a.image_size, a.batch,
                                   a.repeat, a.threads, home):
                        print(json.dumps(row), flush=True)
                        a.results.parent.mkdir(parents=True, exist_ok=True)
                        with open(a.results, "a") as f:
                            f.write(json.dumps(row) + "\n")
                    if a.grids and seed == 0:
                        out = ROOT / "docs" / "benchmarks" / f"augment-{model.replace(':', '-')}-{n}-{policy.replace(',', '_')}.png"
                        shutil.copy(row["grid"], out)
    rows = [r for r in map(json.loads, a.results.read_text().splitlines())
            if r["model"] in models and r["n"] in sizes and r["policy"] in policies
            and r["image_size"] == a.image_size and r["batch"] == a.batch]
    copies = {n: copy_floor(subset_folder(work, n, a.image_size, a.repeat), a.image_size)
              for n in sorted({r["n"] for r in rows})}
    print(table(rows, copies))
    if a.write:
        commands = sorted({r.get("command", "") for r in rows} - {""})
        body = (f"Machine: {rows[-1]['machine']}; each run on {rows[-1].get('cpus', '?')} core(s) (`taskset`), "
                f"{rows[-1].get('threads', '?')} thread(s). Command{'s' if len(commands) > 1 else ''}: "
                + "; ".join(f"`{c}`" for c in commands) +
                " (each run: `ganctl train MODEL --dataset FOLDER --augment POLICY --seed S` at equal steps, FOLDER "
                "the first N digits training images, class-balanced, each written --repeat times; 'steps' are "
                "discriminator steps (batches), scored at the run's checkpoints; then FD and KID of 2,000 "
                "samples against digits' 297 test images in the features of ganctl's digit classifier; real floor: "
                "digits' training images against the same test images. 'gap closed': how much of the unaugmented "
                "runs' mean distance to the floor the policy removed, at the same steps; KID as ganctl evaluate reports it. D(real) / D(fake): the "
                "discriminator's mean outputs over the epoch that ends there, on the images it saw (augmented "
                "ones when augmenting; the WGAN-GP critic of cgan --arch conv has no such outputs). Label "
                "accuracy (cgan): the digit classifier's agreement with the label each sample was drawn for. Load average: the lowest and highest 1-minute load seen while the runs "
                "trained, on the whole 2-core machine).\n\n" + table(rows, copies))
        write_section("augment_quality", "## Augmentation on small sets: quality", body)


if __name__ == "__main__":
    main()
