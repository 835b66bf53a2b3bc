"""Quality with and without ``--augment`` on small subsets of digits (or synthetic-facades' pairs,
for pix2pix), at equal steps, over seeds.

For each (model, subset size N, policy, seed): the first N images of digits' training split, taken
class-balanced with a fixed seed, written to a folder of class sub-folders (cgan reads its labels
from them), each image ``--repeat`` times, so that an epoch is several batches and the per-epoch
grid and checkpoint do not dominate the run's time (the discriminator still sees only N distinct
images); ``ganctl train MODEL --dataset FOLDER --epochs E --augment POLICY --seed S``, then the
run's generator scored like ``ganctl evaluate`` on digits itself: FD and KID of 2,000 samples
against digits' 297 test images in the features of ganctl's digit classifier; the real floor is
digits' training images against the same test images.

``--models pix2pix``: the first N pairs of synthetic-facades' training split (it has 64; beyond
them, the generator's pairs after its validation and test pairs), ``--repeat`` times, in a folder
whose val/ is its 16 validation pairs and test/ its 16 validation and 16 test pairs; ``ganctl train
pix2pix --dataset FOLDER --direction BtoA`` (64 px, batch 1 unless asked), scored as ``ganctl
evaluate`` scores the run on those 32 held-out pairs: L1, PSNR, SSIM and (Inception weights in the
store only) FID. Its rows get a table of their own (a section of their own in docs/benchmarks.md).

    taskset -c 1 python benchmarks/augment_quality.py --models dcgan --sizes 100 \\
        --policies "none;color,translation,cutout;ada" --seeds 0,1,2 --steps 3000 --score-at 1000,2000 --write
    python benchmarks/augment_quality.py --models cgan:conv --sizes 100,500 --policies "none;ada"
    taskset -c 1 python benchmarks/augment_quality.py --models pix2pix --sizes 50,100 \\
        --policies "none;color,translation,cutout;ada" --steps 1600 --score-at 800 --repeat 4 --write

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

from report import machine, mean_sd, notes, write_section  # noqa: E402

PAIRED = "pix2pix"  # the model trained on synthetic-facades' pairs; every other one on digits
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


def defaults(model: str, size: int | None, batch: int | None) -> tuple[int, int]:
    """(image size, batch) of ``model``'s runs: those asked, else 64 px and batch 1 (pix2pix's
    own) for pix2pix, 16 px and 64 for the digits models."""
    return size or (64 if model == PAIRED else 16), batch or (1 if model == PAIRED else 64)


def pairs_folder(root: Path, n: int, repeat: int) -> Path:
    """synthetic-facades' first ``n`` training pairs, each ``repeat`` times, in train/ (past its 64:
    pairs of the same generator and seed after its validation and test pairs, which no split holds);
    its validation pairs in val/ (scored after each epoch by training), and its validation and test
    pairs in test/ (what :func:`score_pairs` scores). Files as the dataset's: rendering | label map."""
    import torch
    from PIL import Image

    from ganctl.data import catalog
    from ganctl.data.synthetic_facades import synthetic_facades

    folder = root / f"synthetic-facades-{n}"
    if folder.exists():
        return folder
    entry = catalog.get("synthetic-facades")
    counts = entry.expected_counts  # pairs 0-63 train, 64-79 val, 80-95 test
    train, val, held = counts["train"], counts["val"], sum(counts.values())
    splits = {"train": ([*range(min(n, train)), *range(held, held + n - train)], repeat),
              "val": (range(train, train + val), 1), "test": (range(train, held), 1)}
    tmp = root / f".{folder.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    for split, (indices, times) in splits.items():
        (tmp / split).mkdir(parents=True)
        for i in indices:
            photo, label = synthetic_facades(1, entry.native_size, 0, i)
            pixels = torch.cat([photo, label], 3)[0].permute(1, 2, 0).numpy()
            for r in range(times):
                Image.fromarray(pixels).save(tmp / split / f"{i + 1:03d}_{r}.png", compress_level=1)
    tmp.rename(folder)
    return folder


def generator(run: Path, checkpoint: str | None):
    """The run's generator (its last, or ``checkpoint``), on the CPU."""
    import torch

    from ganctl.use import generators, inference

    choice = generators.choose(run.parent.name, run=str(run), checkpoint=checkpoint)
    return inference.load_generator(choice.path, torch.device("cpu"))


def score_pairs(run: Path, folder: Path, checkpoint: str | None = None) -> dict:
    """What ``ganctl evaluate`` reports for a pix2pix run (paper mode, its default) on ``folder``'s
    test pairs: L1, PSNR, SSIM, and FID where the Inception weights are in the store (else None)."""
    import torch

    from ganctl.evaluation import pairs

    r = pairs.evaluate_pairs(generator(run, checkpoint), str(folder), device=torch.device("cpu"))
    return {"l1": r["l1"], "psnr": r["psnr"], "ssim": r["ssim"], "fid": r["frechet_distance"], "pairs": r["n"],
            "mode": r["mode"]}


def score(run: Path, checkpoint: str | None = None) -> dict:
    """FD and KID of the run's generator (its last, or ``checkpoint``) against digits (classifier
    space), with the real floor."""
    from ganctl.evaluation import evaluate

    gen = generator(run, checkpoint)
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
    rows = [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
            if r.get("epoch") == epoch and "d_real" in r]  # not pix2pix's validation line
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
    cmd += ["--direction", "BtoA"] if model == PAIRED else []  # label map -> rendering, as synthetic-facades
    env = {**os.environ, "GANCTL_HOME": str(home), "GANCTL_DISABLE_PROGRESS_BARS": "1", "PYTHONPATH": str(ROOT),
           "OMP_NUM_THREADS": str(threads)}
    wall, loads = train(cmd, env)
    run = home / "runs" / family / name
    os.environ["GANCTL_HOME"] = str(home)
    rows = []
    for e in [*kept, epochs]:
        checkpoint = None if e == epochs else f"epoch_{e:04d}"
        if model == PAIRED:
            scores = score_pairs(run, folder, checkpoint)
        else:
            r = score(run, checkpoint)
            scores = {"fd": r["frechet_distance"], "kid": r["kid_mean"], "floor_fd": r["real_train_vs_test_frechet_distance"],
                      "floor_kid": r["real_train_vs_test_kid_mean"], "label_accuracy": r.get("label_accuracy")}
        rows.append({"model": model, "n": n, "policy": policy, "seed": seed, "steps": e * per_epoch,
                     "run_steps": epochs * per_epoch, "image_size": size, "batch": batch, "repeat": repeat,
                     **scores, **last_epoch(run, e), "wall_s": round(wall, 1),
                     "threads": threads, "cpus": len(os.sched_getaffinity(0)),
                     "load": [round(min(loads), 2), round(max(loads), 2)], "grid": str(run / "samples" / f"epoch_{e:04d}.png"),
                     "machine": machine(), "command": COMMAND, "when": time.strftime("%Y-%m-%d %H:%M")})
    if model == PAIRED:
        shutil.rmtree(run / "checkpoints")  # 367 MB each at 64 px; scored, the samples and metrics stay
    return rows


def grouped(rows: list[dict]) -> dict[tuple, list[dict]]:
    """The rows by (model, n, run steps, steps, size, batch, policy), in the tables' order (none
    first), each group's seeds in order."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        key = (r["model"], r["n"], r.get("run_steps", r["steps"]), r["steps"], r["image_size"], r["batch"], r["policy"])
        groups.setdefault(key, []).append(r)
    order = sorted(groups, key=lambda k: (k[0], k[1], k[2], k[3], k[4], k[5], k[6] != "none", k[6]))
    return {k: sorted(groups[k], key=lambda r: r["seed"]) for k in order}


def run_cells(g: list[dict]) -> list[str]:
    """ADA's p of each seed, the mean wall time of a run and the load seen while they trained."""
    import statistics

    ada = ", ".join(f"{r['ada_p']:.2f}" for r in g) if all("ada_p" in r for r in g) else "-"
    load = (f"{min(r['load'][0] for r in g):.1f} to {max(r['load'][1] for r in g):.1f}"
            if all("load" in r for r in g) else "not recorded")
    return [ada, f"{statistics.mean(r['wall_s'] for r in g) / 60:.1f} min", load]


def table(rows: list[dict], copies: dict[int, dict] | None = None) -> str:
    """The rows grouped by setting, seeds together; ``copies``: :func:`copy_floor` of each subset size."""
    import statistics

    copies = copies or {}
    groups = grouped(rows)
    out = ["| model | images | steps (of a run of) | size, batch | --augment | seeds | FD, mean ± sd | KID, mean ± sd | "
           "each seed: FD | real floor FD | copy floor FD | gap closed | label accuracy | D(real) / D(fake), that epoch | "
           "ADA p | wall time per run | load average (1 min) |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for key, g in groups.items():
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
        out.append(f"| {model.replace(':', ' --arch ')} | {n} | {steps} ({run_steps}) | {size}, {batch} | {policy} | "
                   f"{len(g)} | {mean_sd([r['fd'] for r in g], '.2f')} | {mean_sd([r['kid'] for r in g], '.3f')} | "
                   f"{', '.join(format(r['fd'], '.2f') for r in g)} | {floor:.2f} | "
                   f"{format(copies[n]['fd'], '.2f') if n in copies else '-'} | {closed} | {acc} | {sure} | "
                   + " | ".join(run_cells(g)) + " |")
    return "\n".join(out)


def pairs_table(rows: list[dict]) -> str:
    """pix2pix's rows grouped by setting, seeds together; FID only if every row has one."""
    import statistics

    groups = grouped(rows)
    fid = all(r.get("fid") is not None for r in rows)
    out = ["| model | pairs | steps (of a run of) | size, batch | --augment | seeds | L1, mean ± sd | "
           "PSNR (dB), mean ± sd | SSIM, mean ± sd | " + ("FID, mean ± sd | " if fid else "") + "each seed: L1 | "
           "L1 against none | D's loss on real / fake, that epoch | ADA p | wall time per run | load average (1 min) |",
           "|---" * (15 + fid) + "|"]
    for key, g in groups.items():
        model, n, run_steps, steps, size, batch, policy = key
        base = groups.get((*key[:-1], "none"))
        l1 = statistics.mean(r["l1"] for r in g)
        than = f"{l1 / statistics.mean(r['l1'] for r in base) - 1:+.1%}" if base and policy != "none" else "-"
        out.append(f"| {model} | {n} | {steps} ({run_steps}) | {size}, {batch} | {policy} | {len(g)} | "
                   f"{mean_sd([r['l1'] for r in g], '.4f')} | {mean_sd([r['psnr'] for r in g], '.2f')} | "
                   f"{mean_sd([r['ssim'] for r in g], '.3f')} | "
                   + (f"{mean_sd([r['fid'] for r in g], '.2f')} | " if fid else "")
                   + f"{', '.join(format(r['l1'], '.4f') for r in g)} | {than} | "
                   f"{statistics.mean(r['d_real'] for r in g):.3f} / {statistics.mean(r['d_fake'] for r in g):.3f} | "
                   + " | ".join(run_cells(g)) + " |")
    return "\n".join(out)


def header(rows: list[dict]) -> str:
    """The section's first sentences: the machine, the cores and threads, and the commands of the rows."""
    commands = sorted({r.get("command", "") for r in rows} - {""})
    return (f"Machine: {rows[-1]['machine']}; each run on {rows[-1].get('cpus', '?')} core(s) (`taskset`), "
            f"{rows[-1].get('threads', '?')} thread(s). Command{'s' if len(commands) > 1 else ''}: "
            + "; ".join(f"`{c}`" for c in commands))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="dcgan")
    ap.add_argument("--sizes", default="100")
    ap.add_argument("--policies", default="none;color,translation,cutout", help="';'-separated --augment values")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--steps", type=int, default=3000, help="discriminator steps (batches) of each run")
    ap.add_argument("--score-at", default="", help="also score the checkpoints nearest these steps, e.g. 1000,2000")
    ap.add_argument("--image-size", type=int, help="default: 64 for pix2pix, 16 for the digits models")
    ap.add_argument("--batch", type=int, help="default: 1 for pix2pix, 64 for the digits models")
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
    os.environ["GANCTL_HOME"] = str(home)  # the scoring (and --no-run's copy floor) caches its classifier there, not in the user's store
    score_at = [int(s) for s in a.score_at.split(",") if s]
    models, sizes, policies = a.models.split(","), [int(n) for n in a.sizes.split(",")], a.policies.split(";")

    def key(r: dict) -> tuple:
        return (r["model"], r["n"], r["policy"], r["seed"], r["steps"], r.get("run_steps", r["steps"]),
                r["image_size"], r["batch"], r["repeat"])

    done = {key(r) for r in map(json.loads, a.results.read_text().splitlines())} if a.results.exists() else set()
    for seed in [] if a.no_run else map(int, a.seeds.split(",")):  # seeds outermost: an interrupted sweep has every policy's first seeds
        for model in models:
            size, batch = defaults(model, a.image_size, a.batch)
            for n in sizes:
                folder = (pairs_folder(work, n, a.repeat) if model == PAIRED
                          else subset_folder(work, n, size, a.repeat))
                per_epoch = (n * a.repeat) // batch
                run_steps = max(1, round(a.steps / per_epoch)) * per_epoch
                for policy in policies:
                    if (model, n, policy, seed, run_steps, run_steps, size, batch, a.repeat) in done:
                        continue  # kept from an earlier sweep
                    for row in one(model, folder, n, policy, seed, a.steps, score_at, size, batch,
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
            and (r["image_size"], r["batch"]) == defaults(r["model"], a.image_size, a.batch)]
    pairs = [r for r in rows if r["model"] == PAIRED]
    rows = [r for r in rows if r["model"] != PAIRED]
    if rows:
        size = defaults(rows[0]["model"], a.image_size, a.batch)[0]
        copies = {n: copy_floor(subset_folder(work, n, size, a.repeat), size) for n in sorted({r["n"] for r in rows})}
        print(table(rows, copies))
    if pairs:
        print(pairs_table(pairs))
    if a.write and rows:
        body = (header(rows) + " (each run: `ganctl train MODEL --dataset FOLDER --augment POLICY --seed S` at equal steps, FOLDER "
                "the first N digits training images, class-balanced, each written --repeat times; 'steps' are "
                "discriminator steps (batches), scored at the run's checkpoints; then FD and KID of 2,000 "
                "samples against digits' 297 test images in the features of ganctl's digit classifier; real floor: "
                "digits' training images against the same test images. 'gap closed': how much of the unaugmented "
                "runs' mean distance to the floor the policy removed, at the same steps; KID as ganctl evaluate reports it. D(real) / D(fake): the "
                "discriminator's mean outputs over the epoch that ends there, on the images it saw (augmented "
                "ones when augmenting; the WGAN-GP critic of cgan --arch conv has no such outputs). Label "
                "accuracy (cgan): the digit classifier's agreement with the label each sample was drawn for. Load average: the lowest and highest 1-minute load seen while the runs "
                "trained, on the whole 2-core machine).\n\n" + table(rows, copies))
        write_section("augment_quality", "## Augmentation on small sets: quality", body + "\n\n" + notes("augment_quality"))
    if a.write and pairs:
        fid = ("" if all(r.get("fid") is not None for r in pairs) else
               " FID is left out: ganctl computes it for pairs only on the Inception-v3 weights (`ganctl download "
               "inception`), which are not in the store and cannot be downloaded on this machine, and it has no "
               "other feature extractor for RGB pairs (the digit classifier is for digits).")
        body = (header(pairs) + " (each run: `ganctl train pix2pix --dataset FOLDER --direction BtoA --image-size SIZE "
                "--batch-size BATCH --augment POLICY --seed S` at equal steps, a step being one update of D and one of "
                "G; FOLDER's train/ the first N pairs of synthetic-facades' training split, each written --repeat "
                "times (the split has 64 pairs: the 100-pair set adds the same generator's pairs 97 to 132, after the "
                "validation and test pairs, which no split holds), label map to rendering as synthetic-facades' "
                "default direction. pix2pix's schedule decays the learning rate to 0 over the last half of each run, "
                "so an earlier score is of a checkpoint at the full rate, not of a shorter run. Scores: what `ganctl "
                "evaluate` reports for the run (paper mode, its default) on 32 held-out pairs, synthetic-facades' 16 "
                "validation and 16 test pairs: L1 on [0, 1] (lower is better), PSNR and SSIM (higher is better); 'L1 "
                "against none': the relative change of the mean L1 from the unaugmented runs' at the same steps." + fid +
                " D's loss: pix2pix logs the PatchGAN's BCE on real and on generated pairs, the mean over the epoch "
                "that ends there (a surer discriminator has both nearer 0; not the probabilities of the digits table). "
                "Load average: the lowest and highest 1-minute load seen while the runs trained, on the whole 2-core "
                "machine).\n\n" + pairs_table(pairs))
        write_section("augment_quality_pix2pix", "### pix2pix on 50 and 100 synthetic-facades pairs",
                      body + "\n\n" + notes("augment_quality_pix2pix"))


if __name__ == "__main__":
    main()
