"""Convolutional conditional generator and critic (FidanVural/GAN cgan.py, a conditional WGAN-GP).

The generator embeds the label into ``embed_dim`` numbers and joins them to z as extra input
channels of the first transposed convolution; the critic embeds the label into a full image plane
(H*W numbers) and takes it as one extra input channel. Apart from that they are the DCGAN
networks of ``dcgan.py`` (at 64x64 with 16 features, exactly the seed's).
"""

from __future__ import annotations

import torch
from torch import nn

from ganctl.models.dcgan import DCGANDiscriminator, DCGANGenerator


class ConditionalDCGANGenerator(nn.Module):
    def __init__(
        self,
        z_dim: int = 100,
        channels: int = 1,
        image_size: int = 64,
        features: int = 16,
        num_classes: int = 10,
        embed_dim: int = 100,
    ):
        super().__init__()
        self.z_dim, self.num_classes, self.embed_dim = z_dim, num_classes, embed_dim
        self.embed = nn.Embedding(num_classes, embed_dim)
        # the seed's first layer is CT(z + embed, ...): the DCGAN generator with a wider input
        self.body = DCGANGenerator(z_dim + embed_dim, channels, image_size, features)

    def forward_embedded(self, z: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """Generate from latents and label embeddings (interpolating between two labels
        moves through the embedding with z fixed)."""
        return self.body(torch.cat([z, emb.to(z.dtype)], dim=1))

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_embedded(z, self.embed(labels))


class ConditionalDCGANCritic(nn.Module):
    """One score per (image, label); the label is an extra image channel."""

    def __init__(
        self,
        channels: int = 1,
        image_size: int = 64,
        features: int = 16,
        num_classes: int = 10,
        norm: str = "instance",
    ):
        super().__init__()
        self.image_size, self.num_classes = image_size, num_classes
        self.embed = nn.Embedding(num_classes, image_size * image_size)
        self.body = DCGANDiscriminator(channels + 1, image_size, features, norm)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        plane = self.embed(labels).view(-1, 1, self.image_size, self.image_size).to(x.dtype)
        if x.is_contiguous(memory_format=torch.channels_last):
            plane = plane.contiguous(memory_format=torch.channels_last)
        return self.body(torch.cat([x, plane], dim=1))
