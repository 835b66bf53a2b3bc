"""DCGAN generator and discriminator/critic (Radford et al., 2015), for any power-of-two size.

At 64x64 with 64 base features these are exactly the networks of FidanVural/GAN and VedantG-02:
G = CT(z, 1024, 4, 1, 0) then CT blocks 1024->512->256->128 with BN+ReLU and bias=False, then
CT(128, C) + tanh; D = Conv(C, 64) + LReLU(0.2) without norm, then Conv blocks with norm, then
Conv(512, 1, 4, 1, 0) giving one logit. Smaller images drop the widest block (32x32: 512 at 4x4).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def _depth(image_size: int) -> int:
    k = math.log2(image_size / 4)
    if image_size < 16 or k != int(k):
        raise ValueError(f"DCGAN needs an image size that is a power of two, at least 16 (got {image_size})")
    return int(k)


def _norm(kind: str, ch: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(ch)
    if kind == "instance":  # WGAN-GP: the penalty is per sample, so no batch statistics in the critic
        return nn.InstanceNorm2d(ch, affine=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}")


class DCGANGenerator(nn.Module):
    def __init__(self, z_dim: int = 100, channels: int = 1, image_size: int = 64, features: int = 64):
        super().__init__()
        self.z_dim = z_dim
        k = _depth(image_size)
        ch = features * 2**k
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(z_dim, ch, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ch),
            nn.ReLU(True),
        ]
        for _ in range(k - 1):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z.view(z.shape[0], self.z_dim, 1, 1))


class DCGANDiscriminator(nn.Module):
    """Returns one logit (or critic score) per image; no sigmoid: the loss applies it."""

    def __init__(self, channels: int = 1, image_size: int = 64, features: int = 64, norm: str = "batch"):
        super().__init__()
        k = _depth(image_size)
        ch = features
        layers: list[nn.Module] = [nn.Conv2d(channels, ch, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        for _ in range(k - 1):
            layers += [
                nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=norm == "none"),
                _norm(norm, ch * 2),
                nn.LeakyReLU(0.2, True),
            ]
            ch *= 2
        layers.append(nn.Conv2d(ch, 1, 4, 1, 0))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x).flatten()


def init_dcgan_weights(module: nn.Module, bn_gamma_mean: float = 0.0) -> None:
    """N(0, 0.02) on conv weights (DCGAN paper). The seeds also draw norm gammas from N(0, 0.02)
    (seed-models.md section 6.4); ``bn_gamma_mean=1.0`` gives the pix2pix-style N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) and m.weight is not None:
            nn.init.normal_(m.weight, bn_gamma_mean, 0.02)
            nn.init.zeros_(m.bias)
