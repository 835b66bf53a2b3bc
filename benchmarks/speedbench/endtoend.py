"""(e), (f), (g): training as users time it, whole process from start to exit: ``ganctl train``
with its defaults (checkpoints, validation, grids and all) against the baseline process
(:mod:`speedbench.baseline_train`), on the same data. ganctl's time is split with the run's own
timing log (``RUN/runtime.json``, see ganctl/train/callbacks/session.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from .common import GANCTL, Sizes, run, store_env
from .dcgan import write_mnist
from .pix2pix import write_pairs

BASELINE = Path(__file__).with_name("baseline_train.py")

# the split's columns: (heading, keys of a session's timings in runtime.json: before_fit_s or loop_s)
SPLIT = (
    ("imports", ("imports",)),
    ("data", ("data",)),
    ("networks", ("networks", "runtime", "resume")),
    ("first step", ("first step",)),
    ("steps", ("steps", "batches")),
    ("validation, grids", ("PairValidation", "SampleGrid", "Evaluation")),
    ("checkpoints", ("Checkpointer",)),
    ("logs, chart, progress", ("MetricsLog", "LossChart", "Progress")),
)


def split(run_dir: Path, wall: float) -> dict[str, float]:
    """Seconds of ganctl's process by phase, from its timing log; 'other' is the rest of the wall time
    (the interpreter, the CLI, what the log does not name)."""
    row = json.loads((run_dir / "runtime.json").read_text())["sessions"][-1]["timings"]
    seconds = {**row["before_fit_s"], **row["loop_s"]}
    out = {heading: sum(seconds.get(k, 0.0) for k in keys) for heading, keys in SPLIT}
    out["other"] = max(0.0, wall - sum(out.values()))
    return out


def _ganctl(home: Path, args: list[str], device: torch.device, epochs: int, extra: tuple[str, ...]) -> dict:
    cmd = [*GANCTL, "train", *args, "--epochs", str(epochs), "--name", "e2e", "--device", device.type, *extra]
    _, wall = run(cmd, store_env(home))
    return {"wall": wall, "split": split(home / "runs" / args[0] / "e2e", wall)}


def _baseline(kind: str, data: Path, device: torch.device, epochs: int, out: Path) -> float:
    return run([sys.executable, str(BASELINE), kind, str(data), str(epochs), device.type, str(out)])[1]


def bench_pix2pix_e2e(work: Path, device: torch.device, sz: Sizes, epochs: int) -> dict:
    folder = write_pairs(work / "pairs", sz.e2e_pairs, n_val=4)
    args = ["pix2pix", "--dataset", str(folder), "--direction", "BtoA", "--epochs-decay", "0"]
    ours = _ganctl(work / "store", args, device, epochs, sz.extra)
    base = _baseline("pix2pix", folder, device, epochs, work / "baseline.pth")
    return {"ganctl": ours["wall"], "baseline": base, "split": ours["split"],
            "how": f"{sz.e2e_pairs} JPEG pairs, {epochs} epoch{'s' if epochs > 1 else ''}, whole processes"}


def bench_dcgan_e2e(work: Path, device: torch.device, sz: Sizes) -> dict:
    home, tv_root = work / "store", work / "torchvision"
    write_mnist(home, tv_root, sz.e2e_images)
    ours = _ganctl(home, ["dcgan", "--dataset", "mnist", "--batch-size", "128"], device, 1, sz.extra)
    base = _baseline("dcgan", tv_root, device, 1, work / "baseline.pth")
    return {"ganctl": ours["wall"], "baseline": base, "split": ours["split"],
            "how": f"{sz.e2e_images:,} MNIST-format images, 1 epoch, whole processes"}


def split_table(results: dict[str, dict]) -> str:
    rows = {k: r for k, r in results.items() if "split" in r}
    if not rows:
        return ""
    heads = [h for h, _ in SPLIT] + ["other"]
    lines = ["Where ganctl's wall time went (seconds, from the run's `runtime.json`):", "",
             "| run | " + " | ".join(heads) + " | whole process |", "|---|" + "---|" * (len(heads) + 1)]
    for key, r in rows.items():
        cells = " | ".join(f"{r['split'][h]:.1f}" for h in heads)
        lines.append(f"| ({key}) | {cells} | {r['ganctl']:.1f} |")
    return "\n".join(lines) + "\n\n"
