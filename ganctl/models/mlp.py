"""Fully connected generator and discriminator (the 'gan' family; 'cgan' adds a label embedding).

Widths, activations, norm and dropout are arguments so the presets of the seed repositories
(Huy1711/GAN, FidanVural/GAN, VedantG-02) are plain data in the registry.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def _act(slope: float) -> nn.Module:
    return nn.LeakyReLU(slope) if slope > 0 else nn.ReLU()


class MLPGenerator(nn.Module):
    """z (N, z_dim) [+ label embedding] -> hidden layers -> tanh image (N, C, H, W)."""

    def __init__(
        self,
        z_dim: int,
        channels: int,
        image_size: int,
        hidden: tuple[int, ...] = (128, 192),
        batch_norm: bool = True,
        dropout: float = 0.0,
        slope: float = 0.2,
        num_classes: int = 0,
        embed_dim: int = 10,
    ):
        super().__init__()
        self.z_dim = z_dim
        self.num_classes = num_classes
        self.out_shape = (channels, image_size, image_size)
        self.embed = nn.Embedding(num_classes, embed_dim) if num_classes else None
        layers: list[nn.Module] = []
        width = z_dim + (embed_dim if num_classes else 0)
        for h in hidden:
            layers.append(nn.Linear(width, h))
            if batch_norm:
                # Huy1711/GAN wrote BatchNorm1d(h, 0.8), which sets eps=0.8 by accident;
                # we keep the layer and drop the typo (seed-models.md section 8).
                layers.append(nn.BatchNorm1d(h))
            layers.append(_act(slope))
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = h
        layers += [nn.Linear(width, math.prod(self.out_shape)), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward_embedded(self, z: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """Generate from latents and label embeddings (vanerk03/CGAN order: cat([z, emb]))."""
        return self.net(torch.cat([z, emb.to(z.dtype)], dim=1)).view(z.shape[0], *self.out_shape)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            return self.forward_embedded(z, self.embed(labels))
        return self.net(z).view(z.shape[0], *self.out_shape)


class MLPDiscriminator(nn.Module):
    """Image (N, C, H, W) [+ label embedding] -> hidden layers -> one logit per image."""

    def __init__(
        self,
        channels: int,
        image_size: int,
        hidden: tuple[int, ...] = (192, 128),
        dropout: float = 0.0,
        slope: float = 0.2,
        num_classes: int = 0,
        embed_dim: int = 10,
    ):
        super().__init__()
        self.num_classes = num_classes
        self.embed = nn.Embedding(num_classes, embed_dim) if num_classes else None
        width = channels * image_size * image_size + (embed_dim if num_classes else 0)
        layers: list[nn.Module] = []
        for h in hidden:
            layers += [nn.Linear(width, h), nn.LeakyReLU(slope)]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        x = x.flatten(1)
        if self.embed is not None:
            x = torch.cat([x, self.embed(labels)], dim=1)
        return self.net(x).squeeze(1)
