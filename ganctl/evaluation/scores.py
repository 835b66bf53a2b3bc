"""Image similarity scores of translations against their targets: L1, PSNR and SSIM."""

from __future__ import annotations

import torch
import torch.nn.functional as F


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
