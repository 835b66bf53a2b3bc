"""One CycleGAN training step, ganctl's variants against the official code's, in one process.

The step of the ``synthetic-facades-unpaired`` preset (64 px, resnet_6blocks, ngf = ndf = 32,
batch 1) on random batches in memory: both generators updated, then both discriminators
(``--size 128 --ngf 64``: the recipe's resnet_6blocks at 128 px, ngf = ndf = 64).
ganctl's step is built as ``ganctl train`` builds it (``trainer.build_networks`` /
``build_objective``), in each variant; the official one is ``CycleGANModel.optimize_parameters``
from the checkout given as ``--official`` (fp32, as written). The variants are timed in turn,
``--rounds`` times, and the median ms per step of each is printed::

    python benchmarks/cyclegan_step.py --official /tmp/official
    OMP_WAIT_POLICY=PASSIVE python benchmarks/cyclegan_step.py --official /tmp/official --threads 2

Variants: a precision (``bf16``, ``fp32``; ``auto``: what ``ganctl train`` picks on this CPU)
and any of these, joined by ``-``: ``nogemm`` (no small-map convolutions as matrix products),
``nonorms`` (PyTorch's own instance norm, which copies channels_last maps to NCHW and back),
``noaccel`` (no ganctl.runtime.accel at all; the malloc setting is process-wide and stays on once any
variant asked for it), ``unstacked`` (each image through its own network call, six generator and
four discriminator calls, as the official code makes them), ``nchw`` (no channels_last),
``compile`` (torch.compile the networks; the compile itself happens in the warm-up steps).
E.g. ``--variants fp32,fp32-unstacked,bf16,bf16-unstacked``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import os
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from report import machine  # noqa: E402

from ganctl.config import make_config  # noqa: E402
from ganctl.runtime import runtime  # noqa: E402
from ganctl.runtime.accel import convs, norms  # noqa: E402
from ganctl.train import trainer  # noqa: E402

VARIANTS = ("auto", "bf16", "bf16-unstacked", "bf16-nogemm", "bf16-noaccel", "fp32", "fp32-unstacked",
            "fp32-noaccel")
FLAGS = ("nogemm", "nonorms", "noaccel", "unstacked", "nchw", "compile")


def ganctl_step(variant: str, size: int, ngf: int):
    precision, *flags = variant.split("-")
    if unknown := set(flags) - set(FLAGS):
        raise SystemExit(f"unknown variant flags {sorted(unknown)}: use {', '.join(FLAGS)}")
    cfg = make_config("cyclegan", "synthetic-facades-unpaired", "step", channels=3, classes=None,
                      preset_key="synthetic-facades-unpaired", image_size=size,
                      generator_overrides={"ngf": ngf}, discriminator_overrides={"ndf": ngf})
    rt = runtime.resolve("cpu", precision, accel="noaccel" not in flags, compile="compile" in flags)
    if "nchw" in flags:
        rt = dataclasses.replace(rt)  # a copy whose channels_last answers no
        object.__setattr__(rt, "channels_last", lambda convolutional=True: False)
    nets = trainer.build_networks(cfg, rt)
    for flag, module in (("nogemm", convs), ("nonorms", norms)):
        if flag in flags:
            for net in nets.values():
                module.as_plain_nn(net)
    obj = trainer.build_objective(cfg, nets, rt)
    if "unstacked" in flags:
        obj.stack_calls = False
    fmt = torch.channels_last if trainer.uses_channels_last(cfg, rt) else torch.contiguous_format
    batch = {k: torch.rand(1, 3, size, size).mul_(2).sub_(1).contiguous(memory_format=fmt) for k in "AB"}
    return lambda: obj.step(batch, 0)


def official_step(folder: Path, data: Path, size: int, ngf: int):
    argv, cwd = sys.argv, os.getcwd()
    sys.argv = ["train.py", "--dataroot", str(data), "--name", "step", "--model", "cycle_gan",
                "--checkpoints_dir", str(data / "ckpt"), "--load_size", str(size * 9 // 8), "--crop_size", str(size),
                "--ngf", str(ngf), "--ndf", str(ngf), "--netG", "resnet_6blocks", "--no_html"]
    sys.path.insert(0, str(folder))
    os.chdir(folder)
    try:
        from models import create_model
        from options.train_options import TrainOptions

        with contextlib.redirect_stdout(io.StringIO()):
            opt = TrainOptions().parse()
            opt.device = torch.device("cpu")
            model = create_model(opt)
            model.setup(opt)
    finally:
        sys.argv = argv
        os.chdir(cwd)
    batch = {"A": torch.rand(1, 3, size, size) * 2 - 1, "B": torch.rand(1, 3, size, size) * 2 - 1,
             "A_paths": ["a"], "B_paths": ["b"]}

    def step():
        model.set_input(batch)
        model.optimize_parameters()

    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--official", required=True, help="the official checkout (see benchmarks/cyclegan_speed.py)")
    ap.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated subset of {','.join(VARIANTS)}")
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (default: PyTorch's choice)")
    ap.add_argument("--steps", type=int, default=3, help="timed steps per variant per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--size", type=int, default=64, help="image side (default 64, the preset's)")
    ap.add_argument("--ngf", type=int, default=32, help="ngf and ndf of both sides (default 32, the preset's)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps per variant first")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for d in ("trainA", "trainB"):  # the official options want the folders to exist
            (Path(tmp) / d).mkdir()
        steps = {"official": official_step(Path(args.official).resolve(), Path(tmp), args.size, args.ngf)}
        steps.update({v: ganctl_step(v, args.size, args.ngf) for v in args.variants.split(",")})
        for name, step in steps.items():
            t0 = time.perf_counter()
            for _ in range(args.warmup):
                step()
            print(f"warm-up of {name}: {time.perf_counter() - t0:.1f} s for {args.warmup} steps", file=sys.stderr)
        times: dict[str, list[float]] = {k: [] for k in steps}
        for _ in range(args.rounds):
            for name, step in steps.items():
                t0 = time.perf_counter()
                for _ in range(args.steps):
                    step()
                times[name].append((time.perf_counter() - t0) / args.steps * 1000)
    print(f"{machine()}; {torch.get_num_threads()} threads; OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}; "
          f"{args.size} px, ngf = ndf = {args.ngf}; load average {os.getloadavg()[0]:.1f} at the end")
    base = statistics.median(times["official"])
    for name, ms in times.items():
        med = statistics.median(ms)
        print(f"{name:14s} {med:7.0f} ms/step  (rounds {', '.join(f'{m:.0f}' for m in ms)})  official/this {base / med:.2f}x")


if __name__ == "__main__":
    main()
