"""Where a training step's time goes: ganctl's own objective and networks, timed and profiled.

Builds the model as `ganctl train` does for (a) pix2pix at 256x256, batch 1 or (b) DCGAN at 64x64,
batch 128 (the shapes of benchmarks/speed.py), on random batches already in memory, so only the
step itself is measured: the networks, the losses, the optimizers. Prints images/s, the GFLOP/s
that makes, and the operators that took the most time.

    python benchmarks/profile_step.py pix2pix
    python benchmarks/profile_step.py dcgan --precision fp32
    python benchmarks/profile_step.py pix2pix --allocator default   # glibc's malloc as it comes
    python benchmarks/profile_step.py pix2pix --weights conv-only   # other weight layouts
    python benchmarks/profile_step.py dcgan --convs native          # no small-map convolutions as GEMMs
    python benchmarks/profile_step.py pix2pix --adam torch          # torch.optim.Adam instead of ganctl's
    python benchmarks/profile_step.py pix2pix --compile             # torch.compile (slow start)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ganctl import models, objectives, runtime, trainer  # noqa: E402
from ganctl.config import make_config  # noqa: E402
from ganctl.models import layers  # noqa: E402

SETUPS = {
    "pix2pix": (dict(family="pix2pix", dataset="facades", channels=3, preset_key="facades"), 1, (3, 256, 256)),
    "dcgan": (dict(family="dcgan", dataset="mnist", channels=1, preset_key="mnist"), 128, (1, 64, 64)),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", choices=SETUPS)
    ap.add_argument("--precision", default="auto", choices=runtime.PRECISIONS)
    ap.add_argument("--steps", type=int, default=0, help="timed steps (default: 20 for pix2pix, 8 for dcgan)")
    ap.add_argument("--allocator", choices=("tuned", "default"), default="tuned",
                    help="tuned: ganctl's malloc setting (what training does); default: glibc's own")
    ap.add_argument("--weights", choices=("channels_last", "nchw", "conv-only"), default="channels_last",
                    help="weight memory format: what training does (channels_last), none, or Conv2d only "
                         "(transposed-convolution weights NCHW); the batches are channels_last in all three")
    ap.add_argument("--convs", choices=("gemm", "native"), default="gemm",
                    help="gemm: small-map convolutions as matrix products (what training does); native: all oneDNN")
    ap.add_argument("--adam", choices=("ganctl", "torch"), default="ganctl",
                    help="ganctl: ganctl.optim.Adam (what training does); torch: torch.optim.Adam, which copies "
                         "channels_last weights to contiguous memory and back in every fused update")
    ap.add_argument("--compile", action="store_true", help="torch.compile both networks")
    ap.add_argument("--top", type=int, default=15, help="operators to list (0: no profile)")
    args = ap.parse_args()

    layers.set_gemm(args.convs == "gemm")
    if args.allocator == "tuned":
        runtime.keep_freed_memory()
    rt = runtime.Runtime(torch.device("cpu"), runtime.resolve_precision(args.precision, torch.device("cpu")))
    setup, batch_size, shape = SETUPS[args.model]
    cfg = make_config(setup["family"], setup["dataset"], "profile", channels=setup["channels"], classes=None,
                      preset_key=setup["preset_key"], batch_size=batch_size)
    torch.manual_seed(0)
    G = models.build_generator(cfg.arch, cfg.generator)
    D = models.build_discriminator(cfg.arch, cfg.discriminator)
    models.init_weights(cfg.arch, G, cfg.init)
    models.init_weights(cfg.arch, D, cfg.init)
    fmt = torch.channels_last if trainer.uses_channels_last(cfg, rt) else torch.contiguous_format
    for net in (G, D):
        for m in net.modules():
            transposed = isinstance(m, torch.nn.ConvTranspose2d)
            if args.weights == "channels_last" or (args.weights == "conv-only" and not transposed):
                m.to(memory_format=fmt)
    if args.adam == "torch":
        objectives.optim.Adam = torch.optim.Adam  # make_optimizer builds torch's own
    obj = objectives.build(torch.compile(G) if args.compile else G, torch.compile(D) if args.compile else D, cfg, rt)

    def image() -> torch.Tensor:
        return torch.rand(batch_size, *shape).mul_(2).sub_(1).contiguous(memory_format=fmt)

    batch = {"input": image(), "target": image()} if args.model == "pix2pix" else {"real": image(), "labels": None}

    def step() -> None:
        obj.d_step(batch)
        obj.g_step(batch)

    from torch.utils.flop_counter import FlopCounterMode

    for _ in range(2):
        step()
    with FlopCounterMode(display=False) as counter:
        step()
    steps = args.steps or (20 if args.model == "pix2pix" else 8)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = (time.perf_counter() - t0) / steps
    gflop = counter.get_total_flops() / 1e9
    print(f"{args.model}: {rt.describe()}, allocator {args.allocator}, weights {args.weights}, convs {args.convs}"
          f", adam {args.adam}{', compiled' if args.compile else ''}")
    print(f"{batch_size / seconds:.2f} img/s, {seconds * 1000:.0f} ms per step, {gflop:.1f} GFLOP per step, "
          f"{gflop / seconds:.0f} GFLOP/s")
    if args.top:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(3):
                step()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.top, max_name_column_width=45))


if __name__ == "__main__":
    main()
