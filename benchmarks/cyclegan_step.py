"""One CycleGAN training step, ganctl's variants against the official code's, in one process.

The step of the ``synthetic-facades-unpaired`` preset (64 px, resnet_6blocks, ngf = ndf = 32,
batch 1) on random batches in memory: both generators updated, then both discriminators.
ganctl's step is built as ``ganctl train`` builds it (``trainer.build_networks`` /
``build_objective``), in each variant; the official one is ``CycleGANModel.optimize_parameters``
from the checkout given as ``--official`` (fp32, as written). The variants are timed in turn,
``--rounds`` times, and the median ms per step of each is printed::

    python benchmarks/cyclegan_step.py --official /tmp/official
    OMP_WAIT_POLICY=PASSIVE python benchmarks/cyclegan_step.py --official /tmp/official --threads 2

Variants: ``bf16`` (ganctl's default on an AVX-512 BF16 CPU), ``bf16-nogemm`` (no small-map
convolutions as matrix products), ``bf16-noaccel`` / ``fp32-noaccel`` (no ganctl.runtime.accel at all;
the malloc setting is process-wide and stays on once any variant asked for it), ``fp32``.
"""

from __future__ import annotations

import argparse
import contextlib
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
from ganctl.runtime.accel import convs  # noqa: E402
from ganctl.train import trainer  # noqa: E402

VARIANTS = ("bf16", "bf16-nogemm", "bf16-noaccel", "fp32", "fp32-noaccel")


def ganctl_step(variant: str):
    cfg = make_config("cyclegan", "synthetic-facades-unpaired", "step", channels=3, classes=None,
                      preset_key="synthetic-facades-unpaired")
    rt = runtime.resolve("cpu", variant.split("-")[0], accel=not variant.endswith("noaccel"))
    nets = trainer.build_networks(cfg, rt)
    if variant.endswith("nogemm"):
        for net in nets.values():
            convs.as_plain_nn(net)
    obj = trainer.build_objective(cfg, nets, rt)
    fmt = torch.channels_last if trainer.uses_channels_last(cfg, rt) else torch.contiguous_format
    batch = {k: torch.rand(1, 3, 64, 64).mul_(2).sub_(1).contiguous(memory_format=fmt) for k in "AB"}
    return lambda: obj.step(batch, 0)


def official_step(folder: Path, data: Path):
    argv, cwd = sys.argv, os.getcwd()
    sys.argv = ["train.py", "--dataroot", str(data), "--name", "step", "--model", "cycle_gan",
                "--checkpoints_dir", str(data / "ckpt"), "--load_size", "72", "--crop_size", "64", "--ngf", "32",
                "--ndf", "32", "--netG", "resnet_6blocks", "--no_html"]
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
    batch = {"A": torch.rand(1, 3, 64, 64) * 2 - 1, "B": torch.rand(1, 3, 64, 64) * 2 - 1, "A_paths": ["a"], "B_paths": ["b"]}

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
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for d in ("trainA", "trainB"):  # the official options want the folders to exist
            (Path(tmp) / d).mkdir()
        steps = {"official": official_step(Path(args.official).resolve(), Path(tmp))}
        steps.update({v: ganctl_step(v) for v in args.variants.split(",")})
        for step in steps.values():
            for _ in range(2):
                step()
        times: dict[str, list[float]] = {k: [] for k in steps}
        for _ in range(args.rounds):
            for name, step in steps.items():
                t0 = time.perf_counter()
                for _ in range(args.steps):
                    step()
                times[name].append((time.perf_counter() - t0) / args.steps * 1000)
    print(f"{machine()}; {torch.get_num_threads()} threads; OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}")
    base = statistics.median(times["official"])
    for name, ms in times.items():
        med = statistics.median(ms)
        print(f"{name:14s} {med:7.0f} ms/step  (rounds {', '.join(f'{m:.0f}' for m in ms)})  official/this {base / med:.2f}x")


if __name__ == "__main__":
    main()
