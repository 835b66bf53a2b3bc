"""The baseline as a user runs it: one process that imports, builds the networks, trains EPOCHS
epochs over a DataLoader and saves both networks at the end (torch.save of the state dicts), the
way the seeds' train.py scripts do. Timed from outside, process start to exit.

    python benchmarks/speedbench/baseline_train.py pix2pix PAIRS_FOLDER EPOCHS DEVICE OUT.pth
    python benchmarks/speedbench/baseline_train.py dcgan TORCHVISION_ROOT EPOCHS DEVICE OUT.pth
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT)]


def main() -> None:
    kind, data, epochs, device, out = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4], Path(sys.argv[5])
    import torch

    if kind == "pix2pix":
        from speedbench.pix2pix import pix2pix_setup as setup
    else:
        from speedbench.dcgan import dcgan_setup as setup
    loader, step, _, nets = setup(data, torch.device(device))
    for _ in range(epochs):
        for batch in loader:
            step(*batch)
    torch.save({name: net.state_dict() for name, net in nets.items()}, out)


if __name__ == "__main__":
    main()
