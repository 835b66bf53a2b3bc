"""The hardware's ceiling: the device's measured convolution peak and the work per training image,
so a speed-up target can be checked against what any software could reach."""

from __future__ import annotations

import statistics
import time

import torch

from ganctl.models.dcgan import DCGANDiscriminator, DCGANGenerator
from ganctl.models.pix2pix import PatchGANDiscriminator, UNetGenerator

from .common import MNIST_EPOCH, set_requires_grad, sync


def peak_gflops(device: torch.device, dtype: torch.dtype, runs: int = 5) -> float:
    """The device's convolution rate in GFLOP/s: the best of two large 3x3 convolutions in
    channels_last (oneDNN on the CPU, cuDNN on a GPU), the median of ``runs`` timings each. This is
    the kind of work (a) and (b) are made of, at a size where the library reaches its peak."""
    import torch.nn.functional as F

    batch, repeat = (16, 1) if device.type == "cpu" else (256, 20)
    best = 0.0
    for channels, size in ((256, 32), (512, 16)):
        x = torch.randn(batch, channels, size, size, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
        w = torch.randn(channels, channels, 3, 3, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
        flop = 2 * batch * channels * channels * 9 * size * size * repeat
        for _ in range(2):
            F.conv2d(x, w, padding=1)
        times = []
        for _ in range(runs):
            sync(device)
            t0 = time.perf_counter()
            for _ in range(repeat):
                F.conv2d(x, w, padding=1)
            sync(device)
            times.append(time.perf_counter() - t0)
        best = max(best, flop / statistics.median(times) / 1e9)
    return best


def step_gflop(key: str, frozen_d: bool) -> float:
    """Convolution and matmul GFLOP of one training image in (a) or (b): one D step and one G step
    of the networks and losses, counted on the meta device (shapes only, nothing runs).
    ``frozen_d``: the G step computes no weight gradients of D. Both sides of (a) freeze D (the
    official pix2pix code does); in (b) ganctl does and the baseline, written as pytorch/examples
    dcgan, does not, so its G step does about 5% more work."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        if key == "a":
            G = UNetGenerator(3, 3, ngf=64, num_downs=8, norm="batch", dropout=True)
            D = PatchGANDiscriminator(6, ndf=64, n_layers=3, norm="batch")
            batch, x, y = 1, torch.randn(1, 3, 256, 256), torch.randn(1, 3, 256, 256)
        else:
            G = DCGANGenerator(z_dim=100, channels=1, image_size=64, features=64)
            D = DCGANDiscriminator(channels=1, image_size=64, features=64, norm="batch")
            batch, y = 128, torch.randn(128, 1, 64, 64)
        with FlopCounterMode(display=False) as counter:
            if key == "a":
                fake = G(x)
                (D(x, fake.detach()).mean() + D(x, y).mean()).backward()
                set_requires_grad(D, False)
                (D(x, fake).mean() + (fake - y).abs().mean()).backward()
            else:
                fake = G(torch.randn(batch, 100, 1, 1))
                (D(y).mean() + D(fake.detach()).mean()).backward()
                set_requires_grad(D, not frozen_d)
                D(fake).mean().backward()
    return counter.get_total_flops() / batch / 1e9


def target_rate(key: str, r: dict, device: torch.device) -> float:
    """The images/s that (a) or (b) must reach to meet the issue's target on this device."""
    if device.type == "cuda":
        return 50.0 if key == "a" else MNIST_EPOCH / 3
    return 2.5 * r["baseline"]


def ceiling(results: dict[str, dict], device: torch.device) -> dict:
    """How fast (a) and (b) could run at all on this device: its bf16 and fp32 convolution peaks, and the
    work per training image. A speed-up target above best/baseline cannot be met by any software."""
    low = torch.bfloat16 if device.type == "cpu" or torch.cuda.is_bf16_supported() else torch.float16
    peak32, peak_low = peak_gflops(device, torch.float32), peak_gflops(device, low)
    out = {"fp32": peak32, "low": peak_low, "low_name": str(low).removeprefix("torch."), "rows": {}}
    for key in ("a", "b"):
        if key in results:
            r, gflop = results[key], step_gflop(key, frozen_d=True)
            gflop_base = gflop if key == "a" else step_gflop(key, frozen_d=False)  # only (b)'s baseline differs
            best = peak_low / gflop
            out["rows"][key] = {"gflop": gflop, "gflop_base": gflop_base, "best": best, "ganctl": r["ganctl"] * gflop,
                                "baseline": r["baseline"] * gflop_base, "best_ratio": best / r["baseline"],
                                "needed": target_rate(key, r, device) * gflop}
    return out
