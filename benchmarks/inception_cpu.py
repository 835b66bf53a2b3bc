"""Seconds per image of Inception-v3 features (what FID, KID and precision/recall cost) on this
machine, through the same torch-fidelity path `ganctl evaluate` takes. The weights are random, in
the real file's layout (tests/inception_weights.py): the real file cannot be downloaded here, and
the network's cost does not depend on its weights.

    python benchmarks/inception_cpu.py            # 64 images of 64x64, resized to 299 inside
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ganctl.evaluation import fidelity  # noqa: E402
from tests.inception_weights import write_random_inception  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--size", type=int, default=64, help="the images' side before the resize to 299")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    cpu = torch.device("cpu")
    with tempfile.TemporaryDirectory() as tmp:
        extractor = fidelity.inception_extractor(write_random_inception(Path(tmp) / "inception.pth"), cpu)
    images = torch.randint(0, 256, (args.images, 3, args.size, args.size), dtype=torch.uint8)
    fidelity.features(extractor, fidelity.UInt8Images(images[:8], True), cpu, (fidelity.INCEPTION_LAYER,))  # warm-up
    for r in range(args.rounds):
        t0 = time.perf_counter()
        fidelity.features(extractor, fidelity.UInt8Images(images, True), cpu, (fidelity.INCEPTION_LAYER,))
        per = (time.perf_counter() - t0) / args.images
        print(f"round {r + 1}: {per:.3f} s per image ({torch.get_num_threads()} threads): "
              f"{per * 2000 / 60:.1f} min per 2,000 images")


if __name__ == "__main__":
    main()
