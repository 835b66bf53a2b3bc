"""CycleGAN networks (Zhu et al., 2017): the ResNet generator and the single-image PatchGAN.

Both compute what ``ResnetGenerator`` and ``NLayerDiscriminator`` in
junyanz/pytorch-CycleGAN-and-pix2pix (``models/networks.py``) compute, and are laid out the same
way: one ``nn.Sequential`` named ``model`` whose indices are the official ones, residual blocks
holding a Sequential named ``conv_block``. Their state_dict keys are therefore the official keys
(``model.1.weight``, ``model.10.conv_block.1.weight``, ...), and an official ``latest_net_G_A.pth``
loads after only the checks in :mod:`ganctl.models.cyclegan_official`.

resnet_9blocks (``n_blocks=9``; ``resnet_6blocks`` for 128-pixel images), ngf=64, instance norm:

    0 ReflectionPad(3)  1 Conv7x7 in->ngf  2 Norm  3 ReLU
    4 Conv3x3/2 ngf->2ngf    5 Norm  6 ReLU
    7 Conv3x3/2 2ngf->4ngf   8 Norm  9 ReLU
    10 .. 9+N  ResnetBlock(4ngf): x + [Pad(1) Conv3x3 Norm ReLU (Dropout) Pad(1) Conv3x3 Norm](x)
    10+N ConvT3x3/2 (output_padding 1) 4ngf->2ngf  11+N Norm  12+N ReLU
    13+N ConvT3x3/2 (output_padding 1) 2ngf->ngf   14+N Norm  15+N ReLU
    16+N ReflectionPad(3)  17+N Conv7x7 ngf->out (bias)  18+N Tanh
"""

from __future__ import annotations

import torch
from torch import nn

from ganctl.models.pix2pix import PatchGANDiscriminator, _norm_layer, _use_bias

N_DOWNSAMPLING = 2  # fixed in the official ResnetGenerator: two stride-2 convs, two transposed convs
SIZE_MULTIPLE = 2**N_DOWNSAMPLING
# the 2x2 maps of an 8-pixel input are the smallest the blocks' 1-pixel reflection padding accepts
MIN_SIZE = 2 * SIZE_MULTIPLE


class ResnetBlock(nn.Module):
    """Two 3x3 convolutions with reflection padding, added to the input (Johnson et al., 2016,
    as the official code adapts them). Dropout, when on, sits after the first ReLU, which moves
    the second conv from index 5 to 6 exactly as in the official block."""

    def __init__(self, dim: int, norm: str, dropout: bool):
        super().__init__()
        bias = _use_bias(norm)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), _norm_layer(norm, dim), nn.ReLU(True),
        ]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), _norm_layer(norm, dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """The official ``resnet_{n_blocks}blocks`` generator: an image in, an image of the same size
    out (height and width multiples of 4, at least 8).

    Instance norm (the CycleGAN default) has no affine parameters and no running statistics, so
    every conv keeps its bias; with batch norm the convs before a norm have none (the official
    ``use_bias`` rule). The last conv always has a bias.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        ngf: int = 64,
        n_blocks: int = 9,
        norm: str = "instance",
        dropout: bool = False,
    ):
        super().__init__()
        if n_blocks < 1:
            raise ValueError(f"a ResNet generator needs n_blocks >= 1 (got {n_blocks})")
        _norm_layer(norm, 1)  # validate the name before building anything
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.ngf = ngf
        self.n_blocks = n_blocks
        self.norm = norm
        self.dropout = dropout
        self.size_multiple = SIZE_MULTIPLE
        self.min_size = MIN_SIZE  # read by the export's trace: the smallest side it is checked and allows
        bias = _use_bias(norm)

        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3), nn.Conv2d(in_channels, ngf, 7, bias=bias), _norm_layer(norm, ngf), nn.ReLU(True),
        ]
        ch = ngf
        for _ in range(N_DOWNSAMPLING):
            layers += [nn.Conv2d(ch, 2 * ch, 3, stride=2, padding=1, bias=bias), _norm_layer(norm, 2 * ch), nn.ReLU(True)]
            ch *= 2
        layers += [ResnetBlock(ch, norm, dropout) for _ in range(n_blocks)]
        for _ in range(N_DOWNSAMPLING):
            # output_padding 1 makes each transposed conv exactly undo a stride-2 conv's halving
            layers += [
                nn.ConvTranspose2d(ch, ch // 2, 3, stride=2, padding=1, output_padding=1, bias=bias),
                _norm_layer(norm, ch // 2),
                nn.ReLU(True),
            ]
            ch //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        h, w = image.shape[-2:]
        m = self.size_multiple
        if h % m or w % m or min(h, w) < MIN_SIZE:
            # any other size comes back a different size (ceil on the way down), or fails in the
            # reflection padding: say so rather than return a cropped or shifted image
            raise ValueError(
                f"a ResNet generator needs images whose height and width are multiples of {m}, at least "
                f"{MIN_SIZE} (got {h}x{w}); resize or pad them"
            )
        return self.model(image)


class PatchDiscriminator(PatchGANDiscriminator):
    """The official NLayerDiscriminator as CycleGAN uses it: one image in (no condition beside
    it), a grid of logits out, instance norm by default. ``n_layers=3`` is the 70x70 PatchGAN;
    the keys (``model.N.*``) are the official ones."""

    def __init__(self, in_channels: int = 3, ndf: int = 64, n_layers: int = 3, norm: str = "instance"):
        super().__init__(in_channels=in_channels, ndf=ndf, n_layers=n_layers, norm=norm)

    def forward(self, image: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """Logits for ``image``, (N, 1, h, w); no sigmoid (LSGAN compares them with 1 and 0)."""
        return self.model(image)
