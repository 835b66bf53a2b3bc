"""What the first optimizer costs a training process: ganctl's optimizers (``ganctl.runtime.accel.eager``,
which leave torch._dynamo unimported) against PyTorch's own, each in fresh processes, alternated.

Each process imports torch, builds a family's networks and optimizers through ganctl's own code
(``runtime.resolve(accel=...)``) and takes one update of each, timing that from after the import
of torch. The difference is the import of torch._dynamo that PyTorch's optimizer wrappers make.

    python benchmarks/optimizer_start.py                 # pix2pix and dcgan, 5 rounds
    python benchmarks/optimizer_start.py --rounds 3 dcgan
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, sys, time
import torch
t0 = time.perf_counter()
from ganctl.runtime import runtime
from ganctl.train import trainer
from ganctl.config import make_config
family, preset, accel = sys.argv[1], sys.argv[2], sys.argv[3] == "on"
channels = 3 if family == "pix2pix" else 1
cfg = make_config(family, preset, "x", channels=channels, classes=None, preset_key=preset)
rt = runtime.resolve("cpu", accel=accel)
nets = trainer.build_networks(cfg, rt)
t1 = time.perf_counter()
obj = trainer.build_objective(cfg, nets, rt)
for opt in obj.optimizers().values():
    for group in opt.param_groups:
        for p in group["params"]:
            p.grad = torch.zeros_like(p)
    opt.step()
    opt.zero_grad()
t2 = time.perf_counter()
print(json.dumps({"networks": t1 - t0, "optimizers": t2 - t1, "dynamo": "torch._dynamo" in sys.modules}))
"""

PRESETS = {"pix2pix": "facades", "dcgan": "mnist"}


def run(family: str, accel: bool) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, family, PRESETS[family], "on" if accel else "off"],
                          capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("families", nargs="*", help="pix2pix, dcgan (default: both)")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    print("| family | optimizers | imports torch._dynamo | building them and one update, median s (rounds) |")
    print("|---|---|---|---|")
    for fam in args.families or list(PRESETS):
        got: dict[bool, list[dict]] = {True: [], False: []}
        for _ in range(args.rounds):
            for accel in (True, False):
                got[accel].append(run(fam, accel))
        for accel, name in ((True, "ganctl's (accel on)"), (False, "PyTorch's (--no-accel)")):
            secs = [r["optimizers"] for r in got[accel]]
            print(f"| {fam} | {name} | {'yes' if any(r['dynamo'] for r in got[accel]) else 'no'} | "
                  f"{statistics.median(secs):.2f} ({', '.join(f'{s:.2f}' for s in secs)}) |", flush=True)


if __name__ == "__main__":
    main()
