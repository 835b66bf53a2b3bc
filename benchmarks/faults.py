"""Kill trainings, or make them diverge, and check that they resume bit-identically (issue 15,
item 10; issue 31, item 1).

A tiny ``ganctl train gan`` run (48 random 8x8 images, 3 batches an epoch) is trained once
without interruption, recording every fault point of its checkpoint saves and prunes. The faults
are injected from outside ganctl: benchmarks/faultinject/sitecustomize.py, which Python runs at
the start of a process whose PYTHONPATH begins with that folder (:func:`_env` puts it there when
``FAULTINJECT`` or ``FAULTINJECT_LOG`` is set), wraps the filesystem calls of a save and a prune
(mkdtemp, fsync, rename, rmtree, unlink) and makes each one that completes under the run's
``checkpoints/`` a fault point: ``FAULTINJECT_LOG`` records their labels, ``FAULTINJECT=save:<n>``
SIGKILLs the process right after the n-th, ``save:<label suffix>`` after the first with that
label (labels: that file's docstring). Then, each in a fresh store:

- an injected kill (SIGKILL) at each save point;
- K kills from outside at random moments of the training.

After each kill the checkpoints are checked (``latest`` names the newest complete checkpoint; no
incomplete folder under a checkpoint's name), then ``ganctl train gan --resume`` runs to the end
and its final generator, discriminator and metrics are compared bit for bit with the
uninterrupted run's.

Divergence (benchmarks/divergence.py): a second tiny run (2 epochs of 12 batches, so the metrics
are read back inside an epoch as well as at its end) is made to diverge by setting its generator's
weights to NaN right after its N-th generator update, for each N (the benchmark patches the
objective in the child process; ganctl has no hook for it). Training must stop with its one-line error, ``latest`` must
name the last checkpoint saved before step N (or none exist), every checkpoint must hold finite
weights, and ``ganctl train --resume`` must train to the end, bit-identical to the uninterrupted run.

    python benchmarks/faults.py                      # every save point, 5 random kills, divergence at every step
    python benchmarks/faults.py --random 10 --write  # and update docs/benchmarks.md
    python benchmarks/faults.py --points none --random 0 --diverge all --write   # divergence alone
    python benchmarks/faults.py --family cyclegan --diverge none     # kills of a CycleGAN run (4 networks)

A checkpoint is complete when every network file of the run's layout reads (``Networks.file``:
``generator.safetensors`` for a G/D pair, ``G_A/generator.safetensors`` ... for a CycleGAN).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

NAME = "f"
INJECT = ROOT / "benchmarks" / "faultinject"  # its sitecustomize.py injects the faults
FAULT, FAULT_LOG = "FAULTINJECT", "FAULTINJECT_LOG"  # which arm it (a kill spec; a file for the labels)
FAMILIES = ("gan", "cyclegan")
# 32-pixel crops of 36-pixel images, widths of 4, one residual block; a constant learning rate, so
# that a resume with the same --epochs follows the same schedule
CYCLEGAN = ["--image-size", "32", "--ngf", "4", "--ndf", "4", "--n-blocks", "1", "--epochs-decay", "0"]


def make_dataset(root: Path, n: int = 48) -> Path:
    """n random 8x8 grayscale PNGs (fixed seed)."""
    from PIL import Image

    rng = random.Random(0)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.frombytes("L", (8, 8), bytes(rng.randrange(256) for _ in range(64))).save(root / f"img_{i:03d}.png")
    return root


def make_unpaired_dataset(root: Path, n: int = 6) -> Path:
    """trainA/ and trainB/ of n random 36x36 RGB PNGs each (fixed seed): a CycleGAN's epoch of n steps."""
    from PIL import Image

    rng = random.Random(0)
    for side in "AB":
        (root / f"train{side}").mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.frombytes("RGB", (36, 36), bytes(rng.randrange(256) for _ in range(36 * 36 * 3))).save(
                root / f"train{side}" / f"{i}.png")
    return root


def make_data(root: Path, family: str = "gan") -> Path:
    return make_unpaired_dataset(root) if family == "cyclegan" else make_dataset(root)


def _env(home: Path, **extra: str) -> dict:
    """The caller's environment (its thread count too: runs compared bit for bit must use the
    same), this tree's ganctl, and a store of its own; with ``FAULTINJECT`` or ``FAULTINJECT_LOG``
    in ``extra``, the fault injection's folder first on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GANCTL_", FAULT))}
    inject = [str(INJECT)] if extra.get(FAULT) or extra.get(FAULT_LOG) else []
    env.update(GANCTL_HOME=str(home), PYTHONPATH=os.pathsep.join(filter(None, [*inject, str(ROOT), env.get("PYTHONPATH")])),
               PYTHONUNBUFFERED="1", NO_COLOR="1")
    env.update(extra)
    return env


def train_args(dataset: Path, epochs: int, batch_size: int = 16, family: str = "gan") -> list[str]:
    """A new run (``batch_size``: gan's; a CycleGAN trains on batches of 1, as its recipe)."""
    sizes = CYCLEGAN if family == "cyclegan" else ["--image-size", "8", "--batch-size", str(batch_size)]
    return ["train", family, "--dataset", str(dataset), *sizes, "--epochs", str(epochs), "--device", "cpu",
            "--precision", "fp32", "--name", NAME]


def resume_args(epochs: int, family: str = "gan") -> list[str]:
    return ["train", family, "--resume", "--name", NAME, "--epochs", str(epochs), "--device", "cpu", "--precision", "fp32"]


def ganctl(home: Path, args: list[str], **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ganctl", *args], env=_env(home, **env), capture_output=True, text=True)


def run_dir(home: Path, family: str = "gan") -> Path:
    return home / "runs" / family / NAME


# ---------------------------------------------------------------- what a run left


def network_files(run: Path) -> dict[str, str]:
    """Network name -> its file inside a checkpoint folder, as the run's networks lay them out."""
    from ganctl.families import registry

    nets = registry.networks(json.loads((run / "config.json").read_text())["arch"])
    return {name: nets.file(name) for name in nets.names()}


def _complete(ckpt: Path) -> bool:
    """Every file of the checkpoint reads in full."""
    import torch
    from safetensors.torch import load_file

    try:
        for file in network_files(ckpt.parent.parent).values():
            load_file(ckpt / file)
        torch.load(ckpt / "trainer.pt", map_location="cpu", weights_only=True)
        return True
    except Exception:
        return False


def _step(ckpt: Path) -> tuple[int, int]:
    import torch

    t = torch.load(ckpt / "trainer.pt", map_location="cpu", weights_only=True)
    return (int(t["step"]), 1 if ckpt.name.startswith("step_") else 0)


def check_checkpoints(run: Path) -> str:
    """'ok': ``latest`` names the newest complete checkpoint (or there is none and no ``latest``);
    'behind': it names a complete one, and a newer complete one exists (a kill between a save's
    rename and its ``latest`` write; the resume's clean-up points ``latest`` at the newer one); else what is wrong.
    A folder under a checkpoint's name that is not complete is always wrong."""
    root = run / "checkpoints"
    folders = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")] if root.is_dir() else []
    broken = [p.name for p in folders if not _complete(p)]
    if broken:
        return f"incomplete checkpoint under a final name: {', '.join(broken)}"
    latest = root / "latest"
    if not folders:
        return "ok" if not latest.exists() else "latest names a missing checkpoint"
    newest = max(folders, key=_step)
    if not latest.is_file():
        return "behind"  # the first save, cut between its rename and the first `latest`
    named = root / latest.read_text().strip()
    if named not in folders:
        return f"latest names {named.name}, which is missing"
    return "ok" if named == newest or _step(named) == _step(newest) else "behind"


def final_state(home: Path, epochs: int, family: str = "gan") -> tuple[dict, list]:
    from safetensors.torch import load_file

    run = run_dir(home, family)
    ck = run / "checkpoints" / f"epoch_{epochs:04d}"
    tensors = {}
    for name, file in network_files(run).items():  # G., D. for a pair, as before network names
        short = {"generator": "G", "discriminator": "D"}.get(name, name)
        tensors.update({f"{short}.{k}": v for k, v in load_file(ck / file).items()})
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return tensors, rows


def same(a: tuple[dict, list], b: tuple[dict, list]) -> bool:
    import torch

    return a[0].keys() == b[0].keys() and all(torch.equal(a[0][k], b[0][k]) for k in a[0]) and a[1] == b[1]


# ---------------------------------------------------------------- trials


@dataclass
class Reference:
    dataset: Path
    epochs: int
    points: list[str]  # label of fault point n+1
    state: tuple[dict, list]
    train_seconds: float
    batch_size: int = 16
    family: str = "gan"


def _start(home: Path, args: list[str], **env: str) -> tuple[subprocess.Popen, float]:
    """Start ``ganctl ARGS``; return it once it printed its start line (data loaded, run folder
    written), with the time of that line."""
    proc = subprocess.Popen([sys.executable, "-m", "ganctl", *args], env=_env(home, **env),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        if line.startswith("training "):
            break
    return proc, time.perf_counter()


def reference(workdir: Path, dataset: Path, epochs: int, batch_size: int = 16, family: str = "gan") -> Reference:
    home = Path(tempfile.mkdtemp(prefix="reference-", dir=workdir))
    log = home.with_suffix(".points")
    proc, started = _start(home, train_args(dataset, epochs, batch_size, family), **{FAULT_LOG: str(log)})
    rest = proc.stderr.read()
    if proc.wait() != 0:
        raise SystemExit(f"the uninterrupted run failed:\n{rest}")
    seconds = time.perf_counter() - started
    points = [line.split(" ", 1)[1] for line in log.read_text().splitlines()]
    return Reference(dataset, epochs, points, final_state(home, epochs, family), seconds, batch_size, family)


@dataclass
class Trial:
    what: str
    killed: bool = False
    checks: list[str] = field(default_factory=list)  # check_checkpoints after each kill
    resumed: bool = False
    identical: bool = False
    latest_final: bool = False
    detail: str = ""


def _finish(home: Path, ref: Reference, t: Trial, chain: list[str]) -> Trial:
    """Resume until the run is done (each resume of ``chain`` killed at that fault label first)."""
    for label in [*chain, None]:
        env = {FAULT: f"save:{label}"} if label else {}
        r = ganctl(home, resume_args(ref.epochs, ref.family), **env)
        if label:
            if r.returncode != -signal.SIGKILL:
                t.detail = f"the resume meant to be killed at {label} ended with {r.returncode}: {r.stderr[-300:]}"
                return t
            t.checks.append(check_checkpoints(run_dir(home, ref.family)))
        elif r.returncode != 0:
            t.detail = f"resume failed ({r.returncode}): {r.stderr.strip().splitlines()[-1:]}"
            return t
    t.resumed = True
    t.identical = same(final_state(home, ref.epochs, ref.family), ref.state)
    latest = run_dir(home, ref.family) / "checkpoints" / "latest"
    t.latest_final = latest.is_file() and latest.read_text().strip() == f"epoch_{ref.epochs:04d}"
    return t


def injected(workdir: Path, ref: Reference, point: int | str, chain: tuple[str, ...] = ()) -> Trial:
    """Kill the training at fault point ``point`` (a number, or a label suffix), resume to the end."""
    home = Path(tempfile.mkdtemp(prefix="kill-", dir=workdir))
    t = Trial(f"save:{point}" + "".join(f" then save:{c}" for c in chain))
    r = ganctl(home, train_args(ref.dataset, ref.epochs, ref.batch_size, ref.family), **{FAULT: f"save:{point}"})
    if r.returncode != -signal.SIGKILL:
        t.detail = f"not killed (exit {r.returncode})"
        return t
    t.killed = True
    t.checks.append(check_checkpoints(run_dir(home, ref.family)))
    t = _finish(home, ref, t, list(chain))
    shutil.rmtree(home, ignore_errors=True)
    return t


def random_kill(workdir: Path, ref: Reference, rng: random.Random) -> Trial:
    """SIGKILL from outside at a random moment after the training started."""
    home = Path(tempfile.mkdtemp(prefix="rand-", dir=workdir))
    proc, _ = _start(home, train_args(ref.dataset, ref.epochs, ref.batch_size, ref.family))
    delay = rng.uniform(0, ref.train_seconds)
    t = Trial(f"random kill {delay:.2f} s after the start line")
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.stderr.close()
    if proc.wait() != -signal.SIGKILL:
        t.detail = "finished before the kill"
        return t
    t.killed = True
    t.checks.append(check_checkpoints(run_dir(home, ref.family)))
    t = _finish(home, ref, t, [])
    shutil.rmtree(home, ignore_errors=True)
    return t


def summarise(trials: list[Trial]) -> dict:
    killed = [t for t in trials if t.killed]
    checks = [c for t in killed for c in t.checks]
    return {
        "kills": len(checks),
        "trials": len(killed),
        "resumed": sum(t.resumed for t in killed),
        "bit_identical": sum(t.identical for t in killed),
        "latest_newest": sum(c == "ok" for c in checks),
        "latest_behind": sum(c == "behind" for c in checks),
        "inconsistent": sum(c not in ("ok", "behind") for c in checks),
        "latest_final": sum(t.latest_final for t in killed),
        "not_killed": len(trials) - len(killed),
    }


def _kills(args, workdir: Path) -> tuple[dict, Reference, int] | None:
    """The kill trials: (summary, reference, save points tried), or None when none were asked for."""
    if args.points == "none" and not args.random:
        return None
    ref = reference(workdir, make_data(workdir / "images", args.family), args.epochs, family=args.family)
    print(f"uninterrupted run: {len(ref.points)} save fault points, training {ref.train_seconds:.1f} s", file=sys.stderr)
    points = {"all": range(1, len(ref.points) + 1), "none": []}.get(args.points) or [int(x) for x in args.points.split(",")]
    plan: list[tuple[str, object]] = [("point", n) for n in points]
    plan += [("random", None)] * args.random
    rng = random.Random(args.seed)
    trials = []
    for kind, what in plan:
        if kind == "point":
            t = injected(workdir, ref, what)
            t.what += f" ({ref.points[what - 1]})"
        else:
            t = random_kill(workdir, ref, rng)
        trials.append(t)
        ok = t.resumed and t.identical and t.latest_final and all(c in ("ok", "behind") for c in t.checks)
        print(f"{'ok ' if ok else 'BAD'} {t.what}: after kill {t.checks} resumed={t.resumed} identical={t.identical}"
              f"{' ' + t.detail if t.detail else ''}", file=sys.stderr)
    return summarise(trials), ref, len(list(points))


def _divergences(args, workdir: Path) -> tuple[dict, Reference] | None:
    """The divergence trials (benchmarks/divergence.py): (summary, reference), or None."""
    if args.diverge == "none":
        return None
    from divergence import BATCH, diverged, summarise_divergence

    ref = reference(workdir, make_dataset(workdir / "images"), 2, BATCH)
    steps = 2 * 48 // BATCH
    afters = range(1, steps + 1) if args.diverge == "all" else [int(x) for x in args.diverge.split(",")]
    trials = []
    for after in afters:
        t = diverged(workdir, ref, after)
        trials.append(t)
        print(f"{'ok ' if t.ok else 'BAD'} NaN after generator update {after}: caught by {t.caught_by or '-'}, "
              f"latest {t.kept or 'none'}, finite={t.all_finite} resumed={t.resumed} identical={t.identical}"
              f"{' ' + t.detail if t.detail else ''}", file=sys.stderr)
    return summarise_divergence(trials), ref


def _section(family: str) -> tuple[str, str]:
    """The docs/benchmarks.md section a family's kills are written to."""
    if family == "gan":
        return "faults", "## Fault injection: kills and bit-exact resume"
    return f"faults-{family}", f"## Fault injection: kills and bit-exact resume of a {family} run"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=3, help="epochs of the run (3: the last save also prunes)")
    ap.add_argument("--random", type=int, default=5, help="kills at random moments")
    ap.add_argument("--points", default="all", help="'all' save points, 'none', or a comma list of point numbers")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random moments")
    ap.add_argument("--family", default="gan", choices=FAMILIES, help="the kills' run: a tiny gan, or a tiny "
                    "cyclegan (4 networks in folders of their own; 2 x 6 steps an epoch)")
    ap.add_argument("--diverge", default="all", help="generator updates after which the weights go NaN: "
                    "'all' (each of the divergence run's 24), 'none', or a comma list")
    ap.add_argument("--write", action="store_true", help="update the sections in docs/benchmarks.md")
    args = ap.parse_args()

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    workdir = Path(tempfile.mkdtemp(prefix="ganctl-faults-"))
    t0 = time.perf_counter()
    kills = _kills(args, workdir)
    kill_minutes = (time.perf_counter() - t0) / 60
    divergence = _divergences(args, workdir)
    diverge_minutes = (time.perf_counter() - t0) / 60 - kill_minutes
    shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps({"kills": kills[0] if kills else None, "divergence": divergence[0] if divergence else None}))
    if not args.write:
        return
    from report import machine, write_section

    if kills:
        s, ref, n_points = kills
        body = f"""Measured on {machine()} in {kill_minutes:.0f} min: `python benchmarks/faults.py --epochs {args.epochs} --random {args.random}{'' if args.points == 'all' else ' --points ' + args.points} --diverge none`.
A tiny `ganctl train {args.family}` run ({args.epochs} epochs of {3 if args.family == 'gan' else 6} batches; {len(ref.points)} fault points in its saves) killed with SIGKILL
at {n_points} save fault points (right after each fsync, rename, temporary folder creation and deletion of a checkpoint save, prune and `latest`,
injected from outside ganctl by `benchmarks/faultinject/sitecustomize.py`) and at
{args.random} random moments; after each, `ganctl train --resume` to the end.

| kills | runs resumed to the end | final weights and metrics bit-identical | `latest` = newest complete checkpoint after the kill | `latest` one save behind (killed between a folder's rename and its `latest` write; the resume re-points it) | inconsistent checkpoints | `latest` = final checkpoint at the end |
|---|---|---|---|---|---|---|
| {s['kills']} | {s['resumed']} of {s['trials']} | {s['bit_identical']} of {s['trials']} | {s['latest_newest']} of {s['kills']} | {s['latest_behind']} | {s['inconsistent']} | {s['latest_final']} of {s['trials']} |

{'' if not s['not_killed'] else f"{s['not_killed']} random kill(s) came after the run had finished and are not counted."}
"""
        print(f"wrote {write_section(*_section(args.family), body)}", file=sys.stderr)
    if divergence:
        d, ref = divergence
        n = d["runs"]
        body = f"""Measured on {machine()} in {diverge_minutes:.0f} min: `python benchmarks/faults.py --points none --random 0 --diverge {args.diverge}`.
A tiny `ganctl train gan` run (2 epochs of 12 batches, fp32 on the CPU, the default `--keep 1`) whose generator's
weights are set to NaN right after its N-th generator update, for {'each N from 1 to 24' if args.diverge == 'all' else 'N in ' + args.diverge};
then `ganctl train --resume` (unpatched) to the end. Caught by the metrics: a read-back of the losses (every 10
steps on a CPU) saw them non-finite before the next save; by the save: the weights about to be saved were not finite.

| runs | stopped with the one-line divergence error | caught by the metrics | caught by the save | `latest` = the last checkpoint saved before the NaN (none in epoch 1) | every checkpoint finite | checkpoints consistent | resumed to the end | final weights and metrics bit-identical to the uninterrupted run |
|---|---|---|---|---|---|---|---|---|
| {n} | {d['stopped']} of {n} | {d['caught_by_metrics']} | {d['caught_by_save']} | {d['kept_right']} of {n} | {d['all_finite']} of {n} | {d['consistent']} of {n} | {d['resumed']} of {n} | {d['bit_identical']} of {n} |
"""
        print(f"wrote {write_section('divergence', '## Fault injection: a run that diverges', body)}", file=sys.stderr)


if __name__ == "__main__":
    main()
