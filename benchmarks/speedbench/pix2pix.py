"""(a) pix2pix training at 256x256, batch 1, from JPEG A|B pairs on disk: ganctl against the official
train.py loop (AlignedDataset, per-sample PIL transforms, a DataLoader)."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ganctl.models.pix2pix import PatchGANDiscriminator, UNetGenerator, init_pix2pix_weights

from .common import Sizes, ganctl_train, set_requires_grad, span, timed_loop


def write_pairs(folder: Path, n_train: int, n_val: int) -> Path:
    """Synthetic facades as 512x256 JPEG A|B pairs in the official aligned layout (split/N.jpg)."""
    from PIL import Image

    from ganctl.data import synthetic_facades

    photos, labels = synthetic_facades.synthetic_facades(n_train + n_val, size=256, seed=0)
    ab = torch.cat([photos, labels], dim=3).permute(0, 2, 3, 1).contiguous()  # (n, 256, 512, 3)
    for split, indices in (("train", range(n_train)), ("val", range(n_train, n_train + n_val))):
        (folder / split).mkdir(parents=True)
        for k, i in enumerate(indices):
            Image.frombytes("RGB", (512, 256), ab[i].numpy().tobytes()).save(folder / split / f"{k + 1}.jpg", quality=95)
    return folder


class AlignedPairs(Dataset):
    """The official AlignedDataset: open the A|B JPEG, split it, and per sample resize both halves
    to 286 (bicubic), take the same random 256 crop and flip, ToTensor, Normalize(0.5)."""

    def __init__(self, folder: Path, direction: str = "BtoA", load: int = 286, crop: int = 256):
        import torchvision.transforms as T

        self.files = sorted(folder.glob("*.jpg"), key=lambda p: int(p.stem))
        self.direction, self.load, self.crop = direction, load, crop
        self.resize = T.Resize([load, load], T.InterpolationMode.BICUBIC)
        self.to_tensor = T.Compose([T.ToTensor(), T.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        import random

        from PIL import Image

        ab = Image.open(self.files[i]).convert("RGB")
        w, h = ab.size
        a, b = ab.crop((0, 0, w // 2, h)), ab.crop((w // 2, 0, w, h))
        # official get_params: one crop position and one flip for both halves
        x, y = random.randint(0, self.load - self.crop), random.randint(0, self.load - self.crop)
        flip = random.random() > 0.5

        def transform(img):
            img = self.resize(img).crop((x, y, x + self.crop, y + self.crop))
            if flip:
                img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            return self.to_tensor(img)

        a, b = transform(a), transform(b)
        return (b, a) if self.direction == "BtoA" else (a, b)


def baseline_pix2pix(folder: Path, device: torch.device, warmup: int, iters: int) -> tuple[float, int]:
    """The official train.py loop: returns (images/s, DataLoader workers)."""
    loader, step, workers, _ = pix2pix_setup(folder, device)
    return timed_loop(loader, step, device, warmup, iters, batch=1), workers


def pix2pix_setup(folder: Path, device: torch.device):
    """The official train.py's pieces: (DataLoader, step(real_a, real_b), workers, {"G": G, "D": D})."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as the official BaseModel sets it
    workers = min(4, os.cpu_count() or 1)  # the official --num_threads 4, capped at the cores
    loader = DataLoader(AlignedPairs(folder / "train"), batch_size=1, shuffle=True, num_workers=workers)
    torch.manual_seed(0)
    G = UNetGenerator(3, 3, ngf=64, num_downs=8, norm="batch", dropout=True)
    D = PatchGANDiscriminator(6, ndf=64, n_layers=3, norm="batch")
    init_pix2pix_weights(G)
    init_pix2pix_weights(D)
    G.to(device)
    D.to(device)
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce, l1 = nn.BCEWithLogitsLoss(), nn.L1Loss()

    def step(real_a: torch.Tensor, real_b: torch.Tensor) -> None:  # optimize_parameters
        real_a, real_b = real_a.to(device), real_b.to(device)
        fake_b = G(real_a)
        set_requires_grad(D, True)
        opt_d.zero_grad()
        pred_fake = D(real_a, fake_b.detach())
        pred_real = D(real_a, real_b)
        loss_d = 0.5 * (bce(pred_fake, torch.zeros_like(pred_fake)) + bce(pred_real, torch.ones_like(pred_real)))
        loss_d.backward()
        opt_d.step()
        set_requires_grad(D, False)
        opt_g.zero_grad()
        pred_fake = D(real_a, fake_b)
        loss_g = bce(pred_fake, torch.ones_like(pred_fake)) + 100.0 * l1(fake_b, real_b)
        loss_g.backward()
        opt_g.step()

    return loader, step, workers, {"G": G, "D": D}


def bench_pix2pix(work: Path, device: torch.device, sz: Sizes) -> dict:
    folder = write_pairs(work / "pairs", sz.pairs, n_val=4)
    ours = ganctl_train(work / "store-a", ["pix2pix", "--dataset", str(folder), "--direction", "BtoA"], device, sz)
    base, workers = baseline_pix2pix(folder, device, sz.warmup, sz.iters)
    return {
        "ganctl": ours["img_s"], "baseline": base, "ganctl_runtime": ours["runtime"], "ganctl_wall": ours["wall"],
        "how": (f"{sz.pairs} JPEG pairs; ganctl: epochs {span(ours['timed_epochs'])} of {sz.epochs} "
                f"({ours['timed_images']} iterations); baseline: {sz.iters} iterations after {sz.warmup}, "
                f"DataLoader num_workers={workers}"),
    }
