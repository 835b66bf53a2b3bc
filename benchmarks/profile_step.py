"""Where a training step's time goes: ganctl's own objective and networks, timed and profiled.

Builds the model as `ganctl train` does for (a) pix2pix at 256x256, batch 1 or (b) DCGAN at 64x64,
batch 128 (the shapes of benchmarks/speed.py), on random batches already in memory, so only the
step itself is measured: the networks, the losses, the optimizers. Prints images/s, the GFLOP/s
that makes, and the operators that took the most time. Each CPU fast path can be turned off
alone (the defaults are what `ganctl train` does on this CPU):

    python benchmarks/profile_step.py pix2pix
    python benchmarks/profile_step.py dcgan --precision fp32
    python benchmarks/profile_step.py pix2pix --allocator default   # glibc's malloc as it comes
    python benchmarks/profile_step.py dcgan --convs native          # no small-map convolutions as GEMMs
    python benchmarks/profile_step.py pix2pix --adam torch          # torch.optim.Adam, not the copy-free one
    python benchmarks/profile_step.py pix2pix --norms native        # batch norm's gradients as they come
    python benchmarks/profile_step.py pix2pix --weights nchw --batches nchw   # no channels_last
    python benchmarks/profile_step.py pix2pix --weights conv-only   # other weight layouts
    python benchmarks/profile_step.py pix2pix --compile             # torch.compile (slow start)
    python benchmarks/profile_step.py cyclegan --threads 1          # both generators and discriminators

``--ab`` times every one of those switches against all of them on, each in its own process
(the malloc setting cannot be undone), interleaved over ``--rounds``, and prints (or, with
``--write``, records in docs/benchmarks.md) one table of what each fast path contributes:

    python benchmarks/profile_step.py --ab --rounds 3 --write
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from report import machine, write_section  # noqa: E402

from ganctl import models  # noqa: E402
from ganctl.config import make_config  # noqa: E402
from ganctl.runtime import accel, runtime  # noqa: E402
from ganctl.runtime.accel import convs, memory, norms  # noqa: E402
from ganctl.train import objectives, trainer  # noqa: E402

SETUPS = {
    "pix2pix": (dict(family="pix2pix", dataset="facades", channels=3, preset_key="facades"), 1, (3, 256, 256)),
    "dcgan": (dict(family="dcgan", dataset="mnist", channels=1, preset_key="mnist"), 128, (1, 64, 64)),
    # the synthetic-facades-unpaired preset: 64 px, resnet_6blocks, ngf = ndf = 32 (benchmarks/cyclegan_speed.py)
    "cyclegan": (dict(family="cyclegan", dataset="synthetic-facades-unpaired", channels=3,
                      preset_key="synthetic-facades-unpaired"), 1, (3, 64, 64)),
}

# --ab: (what is off, the switches that turn it off); the first row is everything on
VARIANTS = [
    ("nothing (ganctl train's defaults)", []),
    ("small-map convs as GEMMs", ["--convs", "native"]),
    ("copy-free channels_last Adam", ["--adam", "torch"]),
    ("dense batch-norm gradients", ["--norms", "native"]),
    ("malloc keeps freed memory", ["--allocator", "default"]),
    ("all of ganctl.runtime.accel (--no-accel)", ["--convs", "native", "--adam", "torch", "--norms", "native", "--allocator", "default"]),
    ("channels_last (weights and batches NCHW)", ["--weights", "nchw", "--batches", "nchw"]),
    ("bf16 (fp32; the GEMM route is bf16-only, so off too)", ["--precision", "fp32"]),
]


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", choices=SETUPS, nargs="?", help="the step to time (with --ab: default both)")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                    help="cuda: the step as `ganctl train --device cuda` builds it (the CPU switches do not apply)")
    ap.add_argument("--precision", default="auto", choices=runtime.PRECISIONS)
    ap.add_argument("--steps", type=int, default=0, help="timed steps (default: 20 for pix2pix, 8 for dcgan)")
    ap.add_argument("--allocator", choices=("tuned", "default"), default="tuned",
                    help="tuned: ganctl's malloc setting (what training does); default: glibc's own")
    ap.add_argument("--weights", choices=("channels_last", "nchw", "conv-only"), default="channels_last",
                    help="weight memory format: what training does (channels_last), none, or Conv2d only "
                         "(transposed-convolution weights NCHW)")
    ap.add_argument("--batches", choices=("channels_last", "nchw"), default="channels_last",
                    help="the batches' memory format (training: channels_last)")
    ap.add_argument("--convs", choices=("gemm", "native"), default="gemm",
                    help="gemm: small-map convolutions as matrix products (what training does); native: all oneDNN")
    ap.add_argument("--norms", choices=("dense", "native"), default="dense",
                    help="dense: batch norm's gradients made channels_last-dense (what training does); native: as they come")
    ap.add_argument("--adam", choices=("ganctl", "torch"), default="ganctl",
                    help="ganctl: the copy-free Adam of ganctl.runtime.accel (what training does); torch: torch.optim.Adam, "
                         "which copies channels_last weights to contiguous memory and back in every fused update")
    ap.add_argument("--compile", action="store_true", help="torch.compile both networks")
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (default: PyTorch's own choice)")
    ap.add_argument("--top", type=int, default=15, help="operators to list (0: no profile)")
    ap.add_argument("--ab", action="store_true", help="time each fast path off against all on (see above)")
    ap.add_argument("--rounds", type=int, default=2, help="--ab: rounds of every variant, interleaved")
    ap.add_argument("--write", action="store_true", help="--ab: record the table in docs/benchmarks.md")
    return ap.parse_args(argv)


def main() -> None:
    args = parse_args()
    if args.ab:
        ab_table(args)
        return
    if args.model is None:
        raise SystemExit("name the step to time: pix2pix or dcgan (or give --ab)")
    if args.device == "cuda":
        if args.model == "cyclegan":
            raise SystemExit("--device cuda: pix2pix or dcgan")
        cuda_step(args)
        return
    cpu = torch.device("cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.allocator == "tuned":
        memory.keep_freed_memory()
    precision = runtime.resolve_precision(args.precision, cpu)
    # the optimizers are built with accel on or off (only make_optimizer reads it here); the
    # convolutions are switched below and the allocator above, each on its own switch
    rt = runtime.Runtime(cpu, precision, accel=args.adam == "ganctl")
    setup, batch_size, shape = SETUPS[args.model]
    cfg = make_config(setup["family"], setup["dataset"], "profile", channels=setup["channels"], classes=None,
                      preset_key=setup["preset_key"], batch_size=batch_size)
    torch.manual_seed(0)
    nets = models.build_all(cfg.arch, cfg.generator, cfg.discriminator, cfg.init)
    fmt = torch.channels_last if trainer.uses_channels_last(cfg, rt) else torch.contiguous_format
    for net in nets.values():
        for m in net.modules():
            transposed = isinstance(m, torch.nn.ConvTranspose2d)
            if args.weights == "channels_last" or (args.weights == "conv-only" and not transposed):
                m.to(memory_format=fmt)
    if args.convs == "gemm" and accel.gemm_convs(runtime.Runtime(cpu, precision)):
        for net in nets.values():
            convs.accelerate(net)
    if args.norms == "dense" and fmt == torch.channels_last:
        for net in nets.values():
            norms.accelerate(net)
    obj = objectives.build({k: torch.compile(v) if args.compile else v for k, v in nets.items()}, cfg, rt)
    batch_fmt = fmt if args.batches == "channels_last" else torch.contiguous_format

    def image() -> torch.Tensor:
        return torch.rand(batch_size, *shape).mul_(2).sub_(1).contiguous(memory_format=batch_fmt)

    batch = {"input": image(), "target": image()} if args.model == "pix2pix" else {"real": image(), "labels": None}
    if args.model == "cyclegan":
        batch = {"A": image(), "B": image()}

    def step() -> None:
        if args.model == "cyclegan":  # one step updates both generators, then both discriminators
            obj.step(batch, 0)
            return
        obj.d_step(batch)
        obj.g_step(batch)

    from torch.utils.flop_counter import FlopCounterMode

    for _ in range(2):
        step()
    with FlopCounterMode(display=False) as counter:
        step()
    steps = args.steps or (8 if args.model == "dcgan" else 20)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = (time.perf_counter() - t0) / steps
    gflop = counter.get_total_flops() / 1e9
    on = accel.fast_paths(runtime.Runtime(cpu, precision), True)
    print(f"{args.model}: {runtime.device_name(cpu)}, {precision}, allocator {args.allocator}, weights {args.weights}, "
          f"batches {args.batches}, convs {args.convs}, norms {args.norms}, adam {args.adam}{', compiled' if args.compile else ''}"
          f" ({'malloc setting on' if accel.MALLOC in on else 'glibc malloc'})")
    print(f"{batch_size / seconds:.2f} img/s, {seconds * 1000:.0f} ms per step, {gflop:.1f} GFLOP per step, "
          f"{gflop / seconds:.0f} GFLOP/s")
    if args.top:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(3):
                step()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.top, max_name_column_width=45))


def cuda_step(args: argparse.Namespace) -> None:
    """The step on a GPU, built as ``ganctl train`` builds it (its runtime, networks, objective): the
    wall time per step against the GPU's busy time in it, so a launch-bound step shows as such."""
    from torch.profiler import ProfilerActivity, profile

    if not torch.cuda.is_available():
        raise SystemExit("--device cuda: PyTorch sees no CUDA GPU")
    rt = runtime.resolve("cuda", args.precision, compile=args.compile)
    setup, batch_size, shape = SETUPS[args.model]
    cfg = make_config(setup["family"], setup["dataset"], "profile", channels=setup["channels"], classes=None,
                      preset_key=setup["preset_key"], batch_size=batch_size)
    nets = trainer.build_networks(cfg, rt)
    obj = trainer.build_objective(cfg, nets, rt)
    fmt = torch.channels_last if trainer.uses_channels_last(cfg, rt) else torch.contiguous_format

    def image() -> torch.Tensor:
        return torch.rand(batch_size, *shape, device=rt.device).mul_(2).sub_(1).contiguous(memory_format=fmt)

    batch = {"input": image(), "target": image()} if args.model == "pix2pix" else {"real": image(), "labels": None}

    def step() -> None:
        obj.d_step(batch)
        obj.g_step(batch)

    for _ in range(20 if args.compile else 5):
        step()
    torch.cuda.synchronize()
    steps = args.steps or (200 if args.model == "pix2pix" else 100)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    queued = (time.perf_counter() - t0) / steps
    torch.cuda.synchronize()
    seconds = (time.perf_counter() - t0) / steps
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(10):
            step()
        torch.cuda.synchronize()
    events = prof.key_averages()
    # the kernels alone (as the profiler's own "Self CUDA time total"): operators and annotations
    # list the time of kernels they launched once more
    on_gpu = [e for e in events if e.device_type == torch.autograd.DeviceType.CUDA and not getattr(e, "is_user_annotation", False)]
    busy = sum(e.self_device_time_total for e in on_gpu) / 10 / 1e6
    kernels = sum(e.count for e in on_gpu) / 10
    print(f"{args.model}: {runtime.device_name(rt.device)}, torch {torch.__version__}, "
          f"{', '.join(rt.fast_paths(True))}")
    print(f"{batch_size / seconds:,.1f} img/s, {seconds * 1000:.2f} ms per step (the host queues a step in "
          f"{queued * 1000:.2f} ms), the GPU busy {busy * 1000:.2f} ms of it ({busy / seconds:.0%}), "
          f"about {kernels:.0f} kernels per step")
    if args.top:
        for key in ("self_device_time_total", "self_cuda_time_total"):
            try:
                print(events.table(sort_by=key, row_limit=args.top, max_name_column_width=45))
                break
            except (KeyError, AttributeError, ValueError):
                continue


def ab_table(args: argparse.Namespace) -> None:
    """Every VARIANT of each model, each in a fresh process, ``--rounds`` times interleaved; the
    median ms per step of each, and how many times slower the step is with that path off."""
    steps = ["--steps", str(args.steps)] if args.steps else []
    chosen = [args.model] if args.model else ["pix2pix", "dcgan"]
    times: dict[tuple[str, str], list[float]] = {}
    for r in range(args.rounds):
        for model in chosen:
            for name, switches in VARIANTS:
                cmd = [sys.executable, __file__, model, "--top", "0", *steps, *switches]
                out = subprocess.run(cmd, capture_output=True, text=True)
                m = re.search(r"([0-9.]+) ms per step", out.stdout)
                if out.returncode or not m:
                    raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
                times.setdefault((model, name), []).append(float(m.group(1)))
                print(f"round {r + 1}/{args.rounds} {model:8s} {name:55s} {m.group(1):>6s} ms", file=sys.stderr)
    lines = [f"{machine()}; `python benchmarks/profile_step.py --ab --rounds {args.rounds}`: one training step "
             "(D and G updates) on batches in memory, median ms per step of the rounds, each variant in its own "
             "process. 'Slower without it' is that variant's step time over the all-on step time.", "",
             "| step | turned off | ms per step | slower without it |", "|---|---|---:|---:|"]
    for model in chosen:
        base = statistics.median(times[(model, VARIANTS[0][0])])
        label = {"pix2pix": "pix2pix 256x256, batch 1", "dcgan": "DCGAN 64x64, batch 128",
                 "cyclegan": "CycleGAN 64x64, ngf 32, batch 1"}[model]
        for name, _ in VARIANTS:
            ms = statistics.median(times[(model, name)])
            lines.append(f"| {label} | {name} | {ms:.0f} | {'-' if ms == base else f'{ms / base:.2f}x'} |")
    table = "\n".join(lines)
    print(table)
    if args.write:
        print(write_section("fast_paths", "## Each CPU fast path, one at a time", table), file=sys.stderr)


if __name__ == "__main__":
    main()
