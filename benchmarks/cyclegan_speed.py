"""CycleGAN training, whole processes: ``ganctl train cyclegan`` against the official ``train.py``.

Both train on the same unpaired folder (``trainA/ trainB/ testA/ testB/``, written here by
ganctl's ``synthetic-facades-unpaired`` generator: label maps in A, renderings of other facades
in B, 256x256 PNGs) at the same settings: the ``synthetic-facades-unpaired`` preset, i.e. the
official recipe at 64 pixels (resize to 72, random 64 crop and flip), resnet_6blocks, ngf = ndf
= 32, instance norm, LSGAN, lambda 10 / identity 0.5, pool 50, Adam 2e-4 (0.5, 0.999), batch 1,
the learning rate held constant (no decay epochs). Each side runs as a user runs it, timed from
process start to exit:

- ganctl: the console script (``python -m ganctl`` where there is none), a fresh run in a store
  that holds nothing else, its defaults (precision and memory layout chosen for this machine, a
  checkpoint every epoch, the aligned test pairs scored and pictures drawn each epoch);
- official: ``python train.py --model cycle_gan`` in the checkout given as ``--official``, as it
  is written (fp32, eager, its DataLoader with 4 workers, PIL transforms per image), on the CPU
  (it picks the CPU where CUDA is absent; on a GPU machine ``CUDA_VISIBLE_DEVICES=`` is set for it
  and ``--device cpu`` for ganctl), HTML pages off (``--no_html``) and the networks saved every
  epoch (``--save_epoch_freq 1``), as ganctl does.

Every round runs each epoch count once on each side, ganctl then official, so a drift of the
machine's speed hits both. Both use the machine's cores as they come (PyTorch's default threads).

Get the official code (never commit it) and its one extra package::

    mkdir -p /tmp/official && git --git-dir=/work/.mirror/premsuggu+pytorch-CycleGAN-and-pix2pix/repo \\
        archive HEAD -- . ':!imgs' | tar -x -C /tmp/official
    pip install dominate wandb     # train.py imports both (wandb stays off)

    python benchmarks/cyclegan_speed.py --official /tmp/official               # 1 and 3 epochs, 1 round
    python benchmarks/cyclegan_speed.py --official /tmp/official --rounds 2 --write
    python benchmarks/cyclegan_speed.py --official /tmp/official --images 16   # a shorter epoch
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from report import machine, write_section  # noqa: E402
from speedbench.common import GANCTL  # noqa: E402
from speedbench.endtoend import SPLIT  # noqa: E402

from ganctl.data.synthetic_unpaired import write_synthetic_unpaired  # noqa: E402

TARGET = 2.5
# speedbench's phases, with CycleGAN's own per-epoch work (test pairs scored, the progress picture)
PHASES = tuple((h, (*keys, "CycleValidation", "ProgressAnimation") if h == "validation, grids" else keys) for h, keys in SPLIT)
OFFICIAL_EPOCH = re.compile(r"End of epoch (\d+) / \d+ \t Time Taken: (\d+) sec")


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--official", required=True, help="the official checkout's folder (see this file's docstring)")
    ap.add_argument("--epochs", default="1,3", help="comma-separated epoch counts (default 1,3)")
    ap.add_argument("--rounds", type=int, default=1, help="rounds of every epoch count on both sides (default 1)")
    ap.add_argument("--images", type=int, default=64, help="training images per domain (default 64, as the catalog set)")
    ap.add_argument("--test", type=int, default=16, help="aligned test pairs (ganctl scores and shows them; default 16)")
    ap.add_argument("--size", type=int, default=64, help="training size (load size: size * 286 / 256; default 64)")
    ap.add_argument("--ngf", type=int, default=32)
    ap.add_argument("--ndf", type=int, default=32)
    ap.add_argument("--n-blocks", type=int, default=6, choices=(6, 9), help="the official code has resnet_6blocks and 9")
    ap.add_argument("--write", action="store_true", help="replace this benchmark's section of docs/benchmarks.md")
    args = ap.parse_args(argv)
    args.epoch_counts = [int(e) for e in args.epochs.split(",") if e.strip()]
    if not args.epoch_counts or min(args.epoch_counts) < 1 or args.rounds < 1 or args.images < 1:
        ap.error("--epochs, --rounds and --images must be positive")
    if not (Path(args.official) / "train.py").is_file():
        ap.error("--official: the official checkout's folder, holding train.py (see this file's docstring)")
    return args


def timed(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> tuple[float, str]:
    """(wall seconds from start to exit, stdout + stderr); exits with the output if ``cmd`` fails."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"{shlex.join(cmd)} failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-4000:]}")
    return wall, proc.stdout + proc.stderr


def split(run_dir: Path, wall: float) -> dict[str, float]:
    """Seconds of ganctl's process by phase, from its timing log; 'other' is the rest of the wall time."""
    row = json.loads((run_dir / "runtime.json").read_text())["sessions"][-1]["timings"]
    seconds = {**row["before_fit_s"], **row["loop_s"]}
    out = {heading: sum(seconds.get(k, 0.0) for k in keys) for heading, keys in PHASES}
    out["other"] = max(0.0, wall - sum(out.values()))
    return out


def ganctl_cmd(args, data: Path, epochs: int, name: str) -> list[str]:
    return [*GANCTL, "train", "cyclegan", "--dataset", str(data), "--image-size", str(args.size), "--ngf", str(args.ngf),
            "--ndf", str(args.ndf), "--n-blocks", str(args.n_blocks), "--epochs", str(epochs), "--epochs-decay", "0",
            "--name", name, "--device", "cpu"]


def official_cmd(args, data: Path, epochs: int, name: str, checkpoints: Path) -> list[str]:
    return [sys.executable, "train.py", "--dataroot", str(data), "--name", name, "--model", "cycle_gan",
            "--checkpoints_dir", str(checkpoints), "--load_size", str(round(args.size * 286 / 256)),
            "--crop_size", str(args.size), "--ngf", str(args.ngf), "--ndf", str(args.ndf),
            "--netG", f"resnet_{args.n_blocks}blocks", "--n_epochs", str(epochs), "--n_epochs_decay", "0",
            "--no_html", "--save_epoch_freq", "1"]


def main() -> None:
    args = parse_args()
    official = Path(args.official).resolve()
    results: dict[int, list[dict]] = {e: [] for e in args.epoch_counts}
    with tempfile.TemporaryDirectory(prefix="ganctl-cyclegan-speed-") as tmp:
        work = Path(tmp)
        data = write_synthetic_unpaired(work / "data", {"trainA": args.images, "trainB": args.images,
                                                        "testA": args.test, "testB": args.test})
        env_g = {**os.environ, "GANCTL_HOME": str(work / "store"), "GANCTL_DISABLE_PROGRESS_BARS": "1"}
        env_o = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
        print(f"{machine()}; {args.images} images per domain at {args.size} px", file=sys.stderr, flush=True)
        for r in range(args.rounds):
            for epochs in args.epoch_counts:
                name = f"r{r + 1}e{epochs}"
                g_wall, g_out = timed(ganctl_cmd(args, data, epochs, name), env_g)
                o_wall, o_out = timed(official_cmd(args, data, epochs, name, work / "official"), env_o, cwd=official)
                run_dir = work / "store" / "runs" / "cyclegan" / name
                row = {"ganctl": g_wall, "official": o_wall, "split": split(run_dir, g_wall),
                       "official_epochs": [int(s) for _, s in OFFICIAL_EPOCH.findall(o_out)],
                       "start_line": next((ln for ln in g_out.splitlines() if ln.startswith("training cyclegan")), "")}
                results[epochs].append(row)
                print(f"round {r + 1}, {epochs} epoch(s): ganctl {g_wall:.1f} s, official {o_wall:.1f} s, "
                      f"{o_wall / g_wall:.2f}x", file=sys.stderr, flush=True)
    command = shlex.join(["python", "benchmarks/cyclegan_speed.py", *sys.argv[1:]])
    text = table(args, results, command)
    print(text)
    if args.write:
        print(f"wrote {write_section('cyclegan_speed', '## CycleGAN', text)}", file=sys.stderr)


def table(args, results: dict[int, list[dict]], command: str) -> str:
    official_cmd_shown = shlex.join(official_cmd(args, Path("DATA"), 1, "bench", Path("CKPT"))[1:])
    lines = [
        f"Machine: {machine()}. Command: `{command.replace('--official ' + args.official, '--official OFFICIAL')}` "
        f"(OFFICIAL: a checkout of the official code, see the script). Data: ganctl's synthetic facades as "
        f"{args.images} label maps (A) and {args.images} renderings of other facades (B), 256x256 PNGs, "
        f"{args.test} aligned test pairs; both sides at {args.size} px (resize {round(args.size * 286 / 256)}, "
        f"random crop, flip), resnet_{args.n_blocks}blocks, ngf {args.ngf}, ndf {args.ndf}, batch 1, no decay. "
        f"Official: `python {official_cmd_shown.replace('--n_epochs 1', '--n_epochs EPOCHS')}`.",
        "",
        "| measurement | ganctl | official train.py | speed-up (each round) | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for epochs, rows in results.items():
        g = statistics.mean(r["ganctl"] for r in rows)
        o = statistics.mean(r["official"] for r in rows)
        each = ", ".join(f"{r['official'] / r['ganctl']:.2f}x" for r in rows)
        met = "yes" if o / g >= TARGET else "**no**"
        lines.append(f"| CycleGAN, {epochs} epoch{'s' if epochs > 1 else ''} of {args.images} steps, whole process: "
                     f"start to exit | {g:.1f} s | {o:.1f} s | {o / g:.2f}x ({each}) | >= {TARGET}x official | {met} |")
    first = next(iter(results.values()))[0]
    lines += ["", f"ganctl ran as: `{first['start_line']}`.", "",
              "Where ganctl's wall time went (seconds, from the run's `runtime.json`; the official code's own "
              "per-epoch 'Time Taken' beside it):", ""]
    heads = [h for h, _ in PHASES] + ["other"]
    lines += ["| run | " + " | ".join(heads) + " | whole process | official epochs (s) |",
              "|---|" + "---|" * (len(heads) + 2)]
    for epochs, rows in results.items():
        for i, r in enumerate(rows):
            cells = " | ".join(f"{r['split'][h]:.1f}" for h in heads)
            lines.append(f"| {epochs} epoch(s), round {i + 1} | {cells} | {r['ganctl']:.1f} | "
                         f"{', '.join(map(str, r['official_epochs']))} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
