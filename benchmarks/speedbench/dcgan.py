"""(b) DCGAN training at 64x64, batch 128, on MNIST-format IDX files: ganctl against pytorch/examples
dcgan (torchvision MNIST, Resize(64), per-sample transforms, a DataLoader)."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

from ganctl.models.dcgan import DCGANDiscriminator, DCGANGenerator, init_dcgan_weights

from .common import Sizes, ganctl_train, span, timed_loop


def digit_images(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` 28x28 uint8 digits made from ganctl's 8x8 digits: upsampled to 20x20 and placed in a
    28x28 frame as MNIST centres them, shifted by up to 2 pixels so the copies differ."""
    import torch.nn.functional as F

    from ganctl.data.catalog import PACKAGE_DATA as data
    from ganctl.data.datasets import read_idx

    small = read_idx(data / "digits-images-idx3-ubyte.gz")
    labels = read_idx(data / "digits-labels-idx1-ubyte.gz")
    idx = torch.arange(n) % small.shape[0]
    big = F.interpolate(small[idx].unsqueeze(1).float(), size=(20, 20), mode="bilinear", align_corners=False)
    padded = F.pad(big.squeeze(1).round().clamp(0, 255).to(torch.uint8), (6, 6, 6, 6))  # 32x32, digit at 6..26
    shift = torch.randint(0, 25, (n,), generator=torch.Generator().manual_seed(seed))
    out = torch.empty(n, 28, 28, dtype=torch.uint8)
    for k in range(25):  # offset (dy, dx) in 0..4 each: the digit lands at 2..6 from the top/left
        sel = shift == k
        dy, dx = divmod(k, 5)
        out[sel] = padded[sel, dy : dy + 28, dx : dx + 28]
    return out, labels[idx].to(torch.uint8)


def idx_bytes(t: torch.Tensor) -> bytes:
    """An unsigned-byte IDX file: images (N, 28, 28) or labels (N,)."""
    header = struct.pack(">HBB", 0, 0x08, t.dim()) + struct.pack(f">{t.dim()}I", *t.shape)
    return header + t.contiguous().numpy().tobytes()


def write_mnist(home: Path, torchvision_root: Path, n_train: int, n_test: int = 256) -> None:
    """The same MNIST-format files twice: gzipped in the ganctl store (``datasets/mnist/``, what
    ``is_present`` looks for) and uncompressed where torchvision.datasets.MNIST reads them."""
    store, raw = home / "datasets" / "mnist", torchvision_root / "MNIST" / "raw"
    store.mkdir(parents=True)
    raw.mkdir(parents=True)
    images, labels = digit_images(n_train + n_test)
    for prefix, sl in (("train", slice(0, n_train)), ("t10k", slice(n_train, None))):
        for kind, t in (("images-idx3", images[sl]), ("labels-idx1", labels[sl])):
            body = idx_bytes(t)
            (raw / f"{prefix}-{kind}-ubyte").write_bytes(body)
            (store / f"{prefix}-{kind}-ubyte.gz").write_bytes(gzip.compress(body, compresslevel=1))


def baseline_dcgan(root: Path, device: torch.device, warmup: int, iters: int) -> tuple[float, int]:
    """pytorch/examples dcgan and the seeds: torchvision MNIST, Resize(64), per-sample transforms.
    Returns (images/s, DataLoader workers)."""
    loader, step, workers, _ = dcgan_setup(root, device)
    return timed_loop(loader, step, device, warmup, iters, batch=128), workers


def dcgan_setup(root: Path, device: torch.device):
    """pytorch/examples dcgan's pieces: (DataLoader, step(real, labels), workers, {"G": G, "D": D})."""
    import torchvision
    import torchvision.transforms as T

    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as pytorch/examples dcgan sets it
    tf = T.Compose([T.Resize(64), T.ToTensor(), T.Normalize((0.5,), (0.5,))])
    dataset = torchvision.datasets.MNIST(str(root), train=True, download=False, transform=tf)
    workers = min(2, os.cpu_count() or 1)  # pytorch/examples dcgan --workers 2
    loader = DataLoader(dataset, batch_size=128, shuffle=True, num_workers=workers, drop_last=True)
    torch.manual_seed(0)
    G = DCGANGenerator(z_dim=100, channels=1, image_size=64, features=64).to(device)
    D = DCGANDiscriminator(channels=1, image_size=64, features=64, norm="batch").to(device)
    init_dcgan_weights(G)
    init_dcgan_weights(D)
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.9, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.9, 0.999))
    criterion = nn.BCEWithLogitsLoss()

    def step(real: torch.Tensor, _labels: torch.Tensor) -> None:
        real = real.to(device)
        n = real.shape[0]
        fake = G(torch.randn(n, 100, 1, 1, device=device))
        d_real, d_fake = D(real), D(fake.detach())
        loss_d = (criterion(d_real, torch.ones_like(d_real)) + criterion(d_fake, torch.zeros_like(d_fake))) / 2
        D.zero_grad()
        loss_d.backward()
        opt_d.step()
        out = D(fake)
        loss_g = criterion(out, torch.ones_like(out))
        G.zero_grad()
        loss_g.backward()
        opt_g.step()

    return loader, step, workers, {"G": G, "D": D}


def bench_dcgan(work: Path, device: torch.device, sz: Sizes) -> dict:
    home, tv_root = work / "store-b", work / "torchvision"
    write_mnist(home, tv_root, sz.images)
    ours = ganctl_train(home, ["dcgan", "--dataset", "mnist", "--batch-size", "128"], device, sz)
    base, workers = baseline_dcgan(tv_root, device, sz.warmup, sz.iters)
    return {
        "ganctl": ours["img_s"], "baseline": base, "ganctl_runtime": ours["runtime"], "ganctl_wall": ours["wall"],
        "how": (f"{sz.images:,} images; ganctl: epochs {span(ours['timed_epochs'])} of {sz.epochs} "
                f"({ours['timed_images']:,} images); baseline: {sz.iters} batches after {sz.warmup}, "
                f"DataLoader num_workers={workers}"),
    }
