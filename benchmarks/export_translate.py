"""Translate one 256x256 image with an exported ONNX pix2pix generator in onnxruntime, against
``ganctl translate``, each timed from process start to the written file (median of 3 runs).

The generator is the paper's unet_256 (ngf 64, batch norm, dropout: 54.4 M parameters) with the
official initialisation and random batch-norm statistics: the time does not depend on the weights.
It is exported with ``ganctl export --format onnx`` in eval and in paper mode, and each file runs
the ten-line snippet of docs/export.md (read from the page). ``ganctl translate`` runs in the same
mode (its paper mode also draws dropout masks; the ONNX paper file uses their expectation).

    python benchmarks/export_translate.py            # print the table
    python benchmarks/export_translate.py --write    # and replace its section of docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
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

RUNS = 3
SIZE = 256


def make_generator(folder: Path) -> Path:
    """A unet_256 checkpoint folder (generator.safetensors and config.json) as ganctl writes one."""
    import torch

    from ganctl.models.pix2pix import UNetGenerator, init_pix2pix_weights
    from ganctl.store import checkpoint, genspec

    args = {"in_channels": 3, "out_channels": 3, "ngf": 64, "num_downs": 8, "norm": "batch", "dropout": True}
    torch.manual_seed(0)
    net = UNetGenerator(**args)
    init_pix2pix_weights(net)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 2.0)
    spec = genspec.make(family="pix2pix", arch="pix2pix", generator=args, z_dim=0, image_size=SIZE, channels=3,
                        classes=None, conditional=False, dataset=None, run=None, direction="AtoB", load_size=286)
    folder.mkdir(parents=True, exist_ok=True)
    checkpoint.save_generator(folder / genspec.GENERATOR, net, spec)
    return folder


def make_image(path: Path) -> Path:
    """A 256x256 RGB picture with edges and flat areas, like a label map."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (SIZE, SIZE), (30, 60, 200))
    draw = ImageDraw.Draw(img)
    for i in range(8):
        draw.rectangle([20 + 25 * i, 10 + 20 * i, 90 + 20 * i, 60 + 25 * i], fill=(40 * i, 255 - 30 * i, 90 + 10 * i))
    img.save(path)
    return path


def snippet() -> str:
    """The onnxruntime snippet of docs/export.md, reading sys.argv[1..3] instead of its file names."""
    text = (ROOT / "docs" / "export.md").read_text()
    code = next(b for b in re.findall(r"```python\n(.*?)```", text, flags=re.S) if "facades.onnx" in b)
    for name, arg in (('"facades.onnx"', "sys.argv[1]"), ('"labels.png"', "sys.argv[2]"), ('"photo.png"', "sys.argv[3]")):
        assert name in code, name
        code = code.replace(name, arg)
    return "import sys\n" + code


def timed(cmd: list[str], env: dict, out: Path) -> float:
    """Seconds from starting ``cmd`` to its exit; it must have written ``out``."""
    out.unlink(missing_ok=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0 or not out.is_file():
        raise SystemExit(f"{' '.join(map(str, cmd))} failed:\n{proc.stderr}")
    return wall


def median_of(cmd: list[str], env: dict, out: Path) -> tuple[float, list[float]]:
    times = [timed(cmd, env, out) for _ in range(RUNS)]
    return statistics.median(times), times


def pixel_difference(a: Path, b: Path) -> int:
    import numpy as np
    from PIL import Image

    return int(np.abs(np.asarray(Image.open(a), dtype=int) - np.asarray(Image.open(b), dtype=int)).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="replace this benchmark's section of docs/benchmarks.md")
    opts = parser.parse_args()

    import onnxruntime

    work = Path(tempfile.mkdtemp(prefix="ganctl-bench-export-"))
    env = {**os.environ, "GANCTL_HOME": str(work / "store"), "GANCTL_DISABLE_PROGRESS_BARS": "1",
           "PYTHONPATH": str(ROOT)}
    gen = make_generator(work / "unet_256")
    image = make_image(work / "labels.png")
    code = snippet()
    rows = []
    try:
        for mode in ("eval", "paper"):
            onnx_file = work / f"g-{mode}.onnx"
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "ganctl", "export", "--checkpoint", gen, "--format", "onnx",
                                   "--mode", mode, "-o", onnx_file], env=env, capture_output=True, text=True)
            export_s = time.perf_counter() - t0
            if proc.returncode != 0:
                raise SystemExit(f"export failed:\n{proc.stderr}")
            verified = re.search(r"max abs difference (\S+)", proc.stderr).group(1)
            ort_out, ganctl_out = work / f"ort-{mode}.png", work / f"ganctl-{mode}.png"
            ort_med, ort_all = median_of([sys.executable, "-c", code, onnx_file, image, ort_out], env, ort_out)
            g_med, g_all = median_of([sys.executable, "-m", "ganctl", "translate", image, "--checkpoint", gen,
                                      "--mode", mode, "-o", ganctl_out], env, ganctl_out)
            rows.append((mode, export_s, verified, onnx_file.stat().st_size, ort_med, ort_all, g_med, g_all,
                         pixel_difference(ort_out, ganctl_out)))
            print(f"{mode}: export {export_s:.1f}s (verified {verified}), onnxruntime {ort_med:.2f}s {ort_all}, "
                  f"ganctl translate {g_med:.2f}s {g_all}", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def runs(values: list[float]) -> str:
        return ", ".join(f"{v:.2f}" for v in values)

    lines = [
        f"`python benchmarks/export_translate.py` on {machine()}, onnxruntime {onnxruntime.__version__}. "
        f"One {SIZE}x{SIZE} image through a unet_256 generator (ngf 64, 54.4 M parameters, random weights), "
        f"each command timed from process start to the written PNG, median of {RUNS} (all runs in brackets, seconds). "
        "The ONNX side is the ten-line snippet of [export.md](export.md#run-an-exported-pix2pix-generator-with-onnxruntime) "
        "run as `python -c`; the ganctl side is `ganctl translate IMAGE --checkpoint DIR --mode MODE -o OUT.png`. "
        "Both use the default threads (2 cores, shared with other work while this ran).",
        "",
        "| mode | export (once) | verified max abs diff | .onnx size | onnxruntime | ganctl translate | speed-up | max pixel difference |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for mode, export_s, verified, size, ort_med, ort_all, g_med, g_all, px in rows:
        lines.append(f"| {mode} | {export_s:.1f} s | {verified} | {size / 1e6:.0f} MB | {ort_med:.2f} s ({runs(ort_all)}) | "
                     f"{g_med:.2f} s ({runs(g_all)}) | {g_med / ort_med:.1f}x | {px} |")
    lines += [
        "",
        "The pixel difference is between the two PNGs (0..255). In eval mode both compute the same network. In paper "
        "mode `ganctl translate` draws dropout masks (seeded) where the ONNX file uses their expectation, so the "
        "pictures differ by more ([export.md](export.md#--mode-eval-or-paper-pix2pix)).",
    ]
    body = "\n".join(lines)
    print(body)
    if opts.write:
        print(write_section("export_translate", "## ONNX translate against ganctl translate", body), file=sys.stderr)


if __name__ == "__main__":
    main()
