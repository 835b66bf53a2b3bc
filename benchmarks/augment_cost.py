"""What ``--augment`` costs per training step: the same objective steps with each policy, side by
side in one process, in interleaved rounds (a machine whose load changes during the run slows
every policy alike), reported as the median seconds per step and the difference to no augmentation.

    python benchmarks/augment_cost.py                              # dcgan on digits, its preset (32 px, batch 64)
    python benchmarks/augment_cost.py --family pix2pix --rounds 5 --write

Each round runs ``--steps`` steps of every policy from the same weights and the same batch;
the run's precision is the machine's default (``--precision auto``), as ``ganctl train`` uses.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from report import machine, write_section  # noqa: E402

POLICIES = ["none", "color", "translation", "cutout", "color,translation,cutout", "ada"]


def build(family: str, policy: str, precision: str):
    import torch

    from ganctl import augment_spec as augment
    from ganctl.config import make_config
    from ganctl.runtime import runtime
    from ganctl.train import objectives, trainer

    rt = runtime.resolve("cpu", precision, False, True)
    aug = augment.parse(policy)
    if augment.is_ada(aug):
        aug = {**aug, "ramp_images": 500_000}
    if family == "pix2pix":
        cfg = make_config("pix2pix", "synthetic-facades", "bench", channels=3, classes=None,
                          preset_key="synthetic-facades", augment=aug)
        size = cfg.image_size
        batch = {"input": torch.rand(cfg.batch_size, 3, size, size) * 2 - 1,
                 "target": torch.rand(cfg.batch_size, 3, size, size) * 2 - 1}
    else:
        cfg = make_config(family, "digits", "bench", channels=1, classes=tuple(map(str, range(10))),
                          preset_key="digits", augment=aug)
        size = cfg.image_size
        batch = {"real": torch.rand(cfg.batch_size, 1, size, size) * 2 - 1,
                 "labels": torch.arange(cfg.batch_size) % 10}
    cfg = replace(cfg, seed=0)
    nets = trainer.build_networks(cfg, rt)
    obj = objectives.build(nets, cfg, rt)
    if obj.augment.p is not None:
        obj.augment.p.fill_(0.5)  # every transform on about half the images, as a run settles near
    if trainer.uses_channels_last(cfg, rt):
        batch = {k: v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 else v for k, v in batch.items()}
    return obj, batch, cfg, rt


def ops_alone(obj, batch, steps: int) -> float:
    """CPU seconds per step of the augmentation itself: the three discriminator inputs a step
    augments, the D step's two without gradient, the G step's fake with its backward pass; pairs
    are augmented together."""
    import torch

    xs = [v for k, v in batch.items() if k in ("real", "input", "target")]
    dtype = torch.bfloat16 if obj.rt.precision == "bf16" else torch.float32
    plain = [x.to(dtype) for x in xs]
    xs = [x.detach().requires_grad_(True) for x in plain]
    t0 = time.process_time()
    for _ in range(steps):
        obj.augment(*plain)
        obj.augment(*plain)
        out = obj.augment(*xs)
        out = out if isinstance(out, tuple) else (out,)
        sum(o.float().sum() for o in out).backward()
    return (time.process_time() - t0) / steps


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--family", default="dcgan")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's own choice)")
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()
    import torch

    if a.threads:
        torch.set_num_threads(a.threads)
    loads = [os.getloadavg()[0]]

    built = {p: build(a.family, p, a.precision) for p in POLICIES}
    ops: dict[str, list[float]] = {p: [] for p in POLICIES}
    times: dict[str, list[float]] = {p: [] for p in POLICIES}
    walls: dict[str, list[float]] = {p: [] for p in POLICIES}
    for obj, batch, _, _ in built.values():  # warm-up: first-call allocations and kernel choices
        obj.step(batch, 0)
    for _ in range(a.rounds):
        for p, (obj, batch, _, _) in built.items():
            t0, w0 = time.process_time(), time.perf_counter()
            for i in range(a.steps):
                obj.step(batch, i + 1)
            times[p].append((time.process_time() - t0) / a.steps)
            walls[p].append((time.perf_counter() - w0) / a.steps)
            ops[p].append(ops_alone(obj, batch, a.steps))
            loads.append(os.getloadavg()[0])
    cfg, rt = built["none"][2], built["none"][3]
    base = min(times["none"])
    rows = ["| --augment | CPU s/step (fastest round) | each round | vs none | ops alone, CPU s/step | ops alone / step "
            "| wall s/step (fastest) |", "|---|---|---|---|---|---|---|"]
    for p in POLICIES:
        m, o = min(times[p]), min(ops[p])
        rows.append(f"| {p} | {m:.4f} | {', '.join(f'{t:.3f}' for t in times[p])} | "
                    f"{'-' if p == 'none' else f'{(m - base) / base:+.1%}'} | {o:.4f} | {o / base:.1%} | "
                    f"{min(walls[p]):.4f} |")
    head = (f"Machine: {machine()}, {torch.get_num_threads()} thread(s) on {len(os.sched_getaffinity(0))} core(s), "
            f"{rt.precision}; 1-minute load average of the whole machine {min(loads):.1f} to {max(loads):.1f} "
            f"during the rounds. Command: `python "
            f"benchmarks/augment_cost.py {' '.join(sys.argv[1:])}`: {a.family}'s objective step ({cfg.image_size} px, "
            f"batch {cfg.batch_size}, its digits preset{'s' if a.family != 'pix2pix' else ''}) with each policy, "
            f"{a.rounds} interleaved rounds of {a.steps} steps; ADA at p = 0.5.")
    table = "\n".join(rows)
    print(head + "\n\n" + table)
    if a.write:
        write_section(f"augment_cost_{a.family}", f"## Augmentation: cost per step ({a.family})", head + "\n\n" + table)


if __name__ == "__main__":
    main()
