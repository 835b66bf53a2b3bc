"""The speed section of docs/benchmarks.md: the results table, the details, the ceiling table."""

from __future__ import annotations

import time
from pathlib import Path

import torch
from report import machine
from report import write_section as _write

from .common import MNIST_EPOCH
from .endtoend import split_table

BEGIN, END = "<!-- speed:begin -->", "<!-- speed:end -->"
HEADINGS = {"cpu": "## Speed: ganctl against plain PyTorch", "cuda": "## Speed on a GPU: ganctl against plain PyTorch"}
# issue 21's targets for one H100/H200-class GPU
CUDA_PIX2PIX_IMG_S = 150
CUDA_MNIST_EPOCH_S = 2.0


def targets(key: str, r: dict, device: torch.device) -> list[tuple[str, bool]]:
    """(target, met) pairs for one result: ratios on the CPU, absolute numbers on a GPU."""
    ratio = r["ganctl"] / r["baseline"]
    if key == "a":
        if device.type == "cuda":
            return [(f">= {CUDA_PIX2PIX_IMG_S} img/s (H100/H200)", r["ganctl"] >= CUDA_PIX2PIX_IMG_S)]
        return [(">= 2.5x baseline", ratio >= 2.5)]
    if key == "b":
        if device.type == "cuda":
            epoch = MNIST_EPOCH / r["ganctl"]
            return [(f"MNIST epoch < {CUDA_MNIST_EPOCH_S:g} s (H100/H200): {epoch:.2f} s", epoch < CUDA_MNIST_EPOCH_S)]
        return [(">= 2.5x baseline", ratio >= 2.5)]
    if key in E2E_TARGETS:
        return [(f">= {E2E_TARGETS[key]}x baseline", r["baseline"] / r["ganctl"] >= E2E_TARGETS[key])]
    if key == "c":
        return [("< 3 s", r["ganctl"] < 3)]
    return [("< 0.3 s", r["ganctl"] < 0.3)]


ROWS = {
    "a": ("(a) pix2pix training, 256x256, batch 1, JPEG pairs on disk", "img/s", True),
    "b": ("(b) DCGAN training, 64x64, batch 128, MNIST-format files", "img/s", True),
    "c": ("(c) `ganctl translate` one 256x256 image, process start to file", "s", False),
    "d": ("(d) `ganctl --help` (baseline: `python -c \"import torch\"`)", "s", False),
    "e": ("(e) pix2pix, 1 epoch, whole process: start to exit", "s", False),
    "f": ("(f) pix2pix, 3 epochs, whole process: start to exit", "s", False),
    "g": ("(g) DCGAN, 1 epoch, whole process: start to exit", "s", False),
}
E2E_TARGETS = {"e": 2.5, "f": 2.8, "g": 2.5}


def table(results: dict[str, dict], device: torch.device) -> str:
    lines = [
        "| measurement | ganctl | plain PyTorch | speed-up | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for key, r in results.items():
        title, unit, higher_is_better = ROWS[key]
        speedup = r["ganctl"] / r["baseline"] if higher_is_better else r["baseline"] / r["ganctl"]
        goals = targets(key, r, device)
        lines.append(
            f"| {title} | {num(r['ganctl'])} {unit} | {num(r['baseline'])} {unit} | {speedup:.2f}x | "
            f"{'; '.join(t for t, _ in goals)} | {'; '.join('yes' if ok else '**no**' for _, ok in goals)} |"
        )
    return "\n".join(lines)


def num(x: float) -> str:
    """Three significant digits or so: 0.214, 2.14, 21.4, 2,140."""
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}" if x >= 10 else f"{x:.2f}" if x >= 1 else f"{x:.3f}"


def details(results: dict[str, dict]) -> str:
    lines = []
    for key, r in results.items():
        extra = f"; ganctl ran as: {r['ganctl_runtime']}; its whole run took {r['ganctl_wall']:.0f} s" if "ganctl_runtime" in r else ""
        lines.append(f"- ({key}) {r['how']}{extra}.")
    return "\n".join(lines)


def _gflop_cell(r: dict) -> str:
    same = abs(r["gflop"] - r["gflop_base"]) < 0.05
    return num(r["gflop"]) if same else f"{num(r['gflop'])} / {num(r['gflop_base'])}"


def ceiling_table(c: dict) -> str:
    if not c["rows"]:
        return ""
    low = c["low_name"]
    lines = [
        f"What the hardware allows: the measured convolution peak of this device is {c['fp32']:,.0f} GFLOP/s in fp32 "
        f"and {c['low']:,.0f} GFLOP/s in {low} ({c['low'] / c['fp32']:.2f}x). Work per training image is counted "
        "with `torch.utils.flop_counter` over one D step and one G step of the networks above, each side's own: "
        "ganctl's G step computes no weight gradients of D, nor does the official pix2pix code, but "
        "pytorch/examples dcgan, which the DCGAN baseline follows, does (ganctl / baseline where they differ).",
        "",
        f"| training | GFLOP per image | ganctl GFLOP/s (of the {low} peak) | plain PyTorch GFLOP/s (of the fp32 peak) "
        f"| img/s with every FLOP at the {low} peak | the most speed-up the hardware allows "
        f"| share of the {low} peak the target needs |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, r in c["rows"].items():
        title = ROWS[key][0].split(",")[0]
        lines.append(
            f"| {title} | {_gflop_cell(r)} | {num(r['ganctl'])} ({r['ganctl'] / c['low']:.0%}) | "
            f"{num(r['baseline'])} ({r['baseline'] / c['fp32']:.0%}) | {num(r['best'])} | {r['best_ratio']:.2f}x | "
            f"{r['needed'] / c['low']:.0%} |"
        )
    return "\n".join(lines) + "\n\n"


def section(results: dict[str, dict], device: torch.device, command: str, roof: dict | None = None) -> str:
    import torchvision

    return (
        f"{BEGIN}\n"
        f"Machine: {machine()}, torchvision {torchvision.__version__}. Device: {device.type}. "
        f"Command: `{command}` ({time.strftime('%Y-%m-%d')}).\n\n"
        "ganctl runs as a user runs it (the console script in a subprocess, a fresh store, its defaults: its "
        "precision and memory format are chosen per machine). The baseline is written the way the seed "
        "repositories write it: fp32, NCHW, per-sample PIL transforms in a torch DataLoader, default "
        "`torch.optim.Adam`, the same networks (built from `ganctl.models`), the same batch size; on CUDA it sets "
        "`cudnn.benchmark` as the official pix2pix and pytorch/examples dcgan do. Training rates are steady "
        "state: ganctl's first epoch and the baseline's first iterations are not timed, and ganctl's epoch "
        "time covers the batch loop only (not the validation after it); ganctl saves one checkpoint, after its last epoch "
        "(`--save-every` the epochs: a save's background write would run beside the next epoch's batches; rows (e)-(g) "
        "count every save).\n\n"
        f"{table(results, device)}\n\n"
        f"{details(results)}\n\n"
        f"{split_table(results)}"
        f"{ceiling_table(roof) if roof else ''}"
        f"{END}"
    )


def write_section(text: str, device: torch.device) -> Path:
    """The CPU's numbers and a GPU's live in sections of their own, so neither run clobbers the other."""
    body = text.replace(BEGIN, "").replace(END, "")
    kind = "cuda" if device.type == "cuda" else "cpu"
    return _write("speed" if kind == "cpu" else "speed-cuda", HEADINGS[kind], body)
