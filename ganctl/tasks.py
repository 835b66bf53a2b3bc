"""What the training loop trains on, and what it shows after each epoch.

A task turns batch indices into tensors on the device and writes the per-epoch pictures and
validation numbers; the engine stays the same for every family:

- :class:`ImageTask`: single images (and labels, for conditional models). Each epoch writes a
  grid from fixed noise (one row per class for conditional models) and, with ``eval_every``,
  the quality numbers of :mod:`ganctl.evaluate`.
- :class:`PairedTask` (pix2pix): (input, target) pairs with the paper's jitter. Each epoch writes
  input | output | target rows for fixed validation pairs and records validation L1, PSNR and SSIM.

Randomness that decides batches (order, crops, flips) comes from generators seeded with
(seed, epoch, batch), so it never needs saving for an exact resume.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path

import torch
import torch.nn.functional as F

from ganctl import images, inference, seeds
from ganctl.config import TrainConfig
from ganctl.runtime import Runtime

SAMPLE_GRID = 64  # fixed-noise images in each epoch's grid
VAL_PAIRS = 16  # validation pairs scored after each pix2pix epoch
VAL_SHOWN = 4  # of which shown in the epoch picture


def batch_generator(seed: int, epoch: int, batch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seeds.derive(seed, epoch, batch))


def to_unit(x: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    """uint8 images -> float in [-1, 1] on ``device``."""
    x = x.to(device, non_blocking=True).float().div_(127.5).sub_(1.0)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


class ImageTask:
    def __init__(self, cfg: TrainConfig, data, rt: Runtime, conditional: bool, channels_last: bool):
        self.cfg, self.rt, self.channels_last = cfg, rt, channels_last
        x, y = data.images, (data.labels if conditional else None)
        if rt.device.type != "cpu" and x.numel() < 2**31:  # small data: keep it on the GPU
            x = x.to(rt.device)
            y = y.to(rt.device) if y is not None else None
        self.x, self.y = x, y
        n = SAMPLE_GRID
        self.fixed_y = None
        if conditional:  # one row per class
            self.per_row = max(1, SAMPLE_GRID // len(cfg.classes))
            n = self.per_row * len(cfg.classes)
            self.fixed_y = inference.grid_labels(n, len(cfg.classes)).to(rt.device)
        self.fixed_z = inference.latents(n, cfg.z_dim, seed=cfg.seed).to(rt.device)
        self._eval_references: dict = {}  # real splits and features, loaded at the first evaluation

    def __len__(self) -> int:
        return len(self.x)

    def prefetch(self, idx: torch.Tensor, epoch: int, b: int) -> None:
        """Nothing to do ahead: the images are decoded in memory (on the GPU when there is one)."""

    def batch(self, idx: torch.Tensor, epoch: int, b: int) -> dict:
        idx = idx.to(self.x.device)
        labels = self.y[idx].to(self.rt.device) if self.y is not None else None
        return {"real": to_unit(self.x[idx], self.rt.device, self.channels_last), "labels": labels}

    def epoch_outputs(self, run_dir: Path, epoch: int, G: torch.nn.Module) -> dict[str, float]:
        was_training = G.training
        G.eval()
        with torch.no_grad():
            fake = G(self.fixed_z, self.fixed_y).float()
        G.train(was_training)
        path = run_dir / "samples" / f"epoch_{epoch + 1:04d}.png"
        if self.fixed_y is not None:
            images.save_grid(fake, path, nrow=self.per_row, row_labels=list(self.cfg.classes))
        else:
            images.save_grid(fake, path, nrow=8)
        if self.cfg.eval_every and (epoch + 1) % self.cfg.eval_every == 0:
            from ganctl import evaluate
            from ganctl.engine import generator_meta

            res = evaluate.evaluate_during_training(G, generator_meta(self.cfg), seed=self.cfg.seed, device=self.rt.device,
                                                    references=self._eval_references)
            keep = ("frechet_distance", "real_train_vs_test_frechet_distance", "label_accuracy")
            return {f"eval_{k}": float(res[k]) for k in keep if res.get(k) is not None}
        return {}


# ---------------------------------------------------------------- pix2pix


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of [0, 1] images (N, C, H, W)."""
    mse = ((a - b) ** 2).flatten(1).mean(1).clamp_min(1e-10)
    return 10 * torch.log10(1.0 / mse)


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM (Wang et al., 2004) of [0, 1] images: 11x11 Gaussian window, sigma 1.5,
    K1 0.01, K2 0.03, averaged over channels and valid positions."""
    c = a.shape[1]
    t = torch.arange(11, dtype=torch.float32, device=a.device) - 5
    g = torch.exp(-(t**2) / (2 * 1.5**2))
    g = g / g.sum()
    win = (g[:, None] * g[None, :]).expand(c, 1, 11, 11).contiguous()

    def blur(x):
        return F.conv2d(x, win, groups=c)

    c1, c2 = 0.01**2, 0.03**2
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return s.flatten(1).mean(1)


def image_scores(output: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """Mean L1 (on [0, 1]), PSNR and SSIM of [-1, 1] outputs against their targets."""
    o = (output.float().clamp(-1, 1) + 1) / 2
    t = (target.float().clamp(-1, 1) + 1) / 2
    return {
        "l1": float((o - t).abs().mean()),
        "psnr": float(psnr(o, t).mean()),
        "ssim": float(ssim(o, t).mean()),
    }


def orient(a: torch.Tensor, b: torch.Tensor, direction: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(input, target) from the stored (A, B) sides."""
    return (a, b) if direction == "AtoB" else (b, a)


class PairedTask:
    def __init__(self, cfg: TrainConfig, train, val, rt: Runtime, channels_last: bool):
        from ganctl.data.pair_jitter import paired_jitter

        self._jitter = paired_jitter
        self.cfg, self.rt, self.channels_last = cfg, rt, channels_last
        self.train_data = train
        # on a GPU, a set decoded in memory moves there once (facades at 286: 200 MB), and the
        # crops and flips run there too
        self.on_device = rt.device.type != "cpu" and not getattr(train, "lazy", False) and train.a.numel() < 2**31
        if self.on_device:
            self.a, self.b = train.a.to(rt.device), train.b.to(rt.device)
        self.direction = cfg.data_args["direction"]
        self.crop = cfg.image_size
        self._ahead_pool: ThreadPoolExecutor | None = None
        self._ahead: tuple[tuple, Future] | None = None
        # validation pairs are resized straight to the training size (load = crop, as the
        # official test script), held once on the device
        n_val = min(VAL_PAIRS, len(val))
        a, b = val.batch(torch.arange(n_val))
        x, y = orient(a, b, self.direction)
        self.val_x = to_unit(x, rt.device, channels_last)
        self.val_y = to_unit(y, rt.device, channels_last)

    def __len__(self) -> int:
        return len(self.train_data)

    def prefetch(self, idx: torch.Tensor, epoch: int, b: int) -> None:
        """Start preparing batch ``b`` of ``epoch`` while the current one trains.

        Only a set too large to hold decoded (:class:`~ganctl.data.paired.LazyPairedData`) has work
        to do ahead: reading and decoding the JPEGs, the crop and flip, and on a GPU the copy into
        pinned memory, so that the copy to the device does not wait for the CPU. A DataLoader's
        workers do this for the seeds; here one thread runs a batch ahead, and the decoding inside
        it uses the set's own thread pool (sized to the machine).
        """
        if self.on_device or not getattr(self.train_data, "lazy", False):
            return
        if self._ahead_pool is None:
            self._ahead_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ganctl-prefetch")
        key = (tuple(idx.tolist()), epoch, b)
        self._ahead = (key, self._ahead_pool.submit(self._host_batch, idx.cpu(), epoch, b))

    def _host_batch(self, idx: torch.Tensor, epoch: int, b: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(input, target) uint8 on the CPU: decoded, jittered, pinned when a GPU will take them."""
        a, bb = self.train_data.batch(idx)
        a, bb = self._jitter(a, bb, self.crop, batch_generator(self.cfg.seed, epoch, b))
        x, y = orient(a, bb, self.direction)
        if self.rt.device.type == "cuda":
            x, y = x.pin_memory(), y.pin_memory()
        return x, y

    def batch(self, idx: torch.Tensor, epoch: int, b: int) -> dict:
        if self.on_device:
            idx = idx.to(self.rt.device)
            a, bb = self.a[idx], self.b[idx]
            a, bb = self._jitter(a, bb, self.crop, batch_generator(self.cfg.seed, epoch, b))
            x, y = orient(a, bb, self.direction)
        else:
            ahead, self._ahead = self._ahead, None
            if ahead is not None and ahead[0] == (tuple(idx.tolist()), epoch, b):
                x, y = ahead[1].result()  # a decoding error is raised here, for this batch
            else:
                if ahead is not None:  # not the batch asked for (never in the engine's loop)
                    wait([ahead[1]])
                x, y = self._host_batch(idx.cpu(), epoch, b)
        return {"input": to_unit(x, self.rt.device, self.channels_last), "target": to_unit(y, self.rt.device, self.channels_last)}

    def epoch_outputs(self, run_dir: Path, epoch: int, G: torch.nn.Module) -> dict[str, float]:
        outs = []
        # validation as translate does it by default: the paper's test-time network (dropout on,
        # batch statistics), one image at a time, seeded so every epoch is scored alike
        with inference.paper_mode(G, seed=self.cfg.seed), torch.no_grad(), self.rt.autocast():
            for i in range(len(self.val_x)):
                outs.append(G(self.val_x[i : i + 1]).float())
        out = torch.cat(outs)
        k = min(VAL_SHOWN, len(out))
        rows = torch.stack([self.val_x[:k].float(), out[:k], self.val_y[:k].float()], dim=1).flatten(0, 1)
        images.save_grid(rows, run_dir / "samples" / f"epoch_{epoch + 1:04d}.png", nrow=3)
        return {f"val_{k}": v for k, v in image_scores(out, self.val_y).items()}
