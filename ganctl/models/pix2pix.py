"""pix2pix networks (Isola et al., 2017): the U-Net generator and the PatchGAN discriminator.

Both compute exactly what ``UnetGenerator`` and ``NLayerDiscriminator`` in
junyanz/pytorch-CycleGAN-and-pix2pix compute, so the official ``latest_net_G.pth`` weights load
after renaming their keys (``ganctl.models.pix2pix_official``). The generator is written as a flat
encoder/decoder instead of the official recursive ``UnetSkipConnectionBlock`` tree; the maths is
the same (checked layer by layer against a recursive reference in the tests).

unet_256 (``num_downs=8``) at 256x256, ngf=64, E = encoder, D = decoder:

    E1 Conv 3->64                        128^2   (no norm, no activation before it)
    E2-E4 LReLU . Conv . Norm            64->128->256->512
    E5-E7 LReLU . Conv . Norm            512 (2^2 after E7)
    E8 LReLU . Conv 512->512             1^2     (no norm: normalising a 1x1 map gives 0, issue #60)
    D1 ReLU . ConvT . Norm, cat E7       no dropout
    D2-D4 ReLU . ConvT . Norm . Dropout(0.5), cat E6..E4
    D5-D7 ReLU . ConvT . Norm, cat E3..E1
    D8 ReLU . ConvT 128->3 (bias) . Tanh

Skips concatenate the encoder feature first, as the official code does.
"""

from __future__ import annotations

import torch
from torch import nn

NORMS = ("batch", "instance")


def _norm_layer(kind: str, ch: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(ch, affine=True, track_running_stats=True)
    if kind == "instance":
        return nn.InstanceNorm2d(ch, affine=False, track_running_stats=False)
    raise ValueError(f"unknown norm {kind!r}: pix2pix networks use one of {', '.join(NORMS)}")


def _use_bias(norm: str) -> bool:
    # The official get_norm_layer/use_bias rule: a conv followed by BatchNorm needs no bias (BN's
    # beta replaces it); InstanceNorm without affine has no beta, so the conv keeps its bias.
    return norm == "instance"


def _down(c_in: int, c_out: int, bias: bool) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel_size=4, stride=2, padding=1, bias=bias)


def _up(c_in: int, c_out: int, bias: bool) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(c_in, c_out, kernel_size=4, stride=2, padding=1, bias=bias)


class UNetGenerator(nn.Module):
    """U-Net with ``num_downs`` stride-2 levels (8 = unet_256, 7 = unet_128).

    Inputs must be a multiple of ``size_multiple`` (2**num_downs) in height and width.
    ``down[k]`` and ``up[j]`` are Sequentials whose index 1 is the conv and 2 the norm, so their
    state_dict keys map one to one onto the official ones.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        ngf: int = 64,
        num_downs: int = 8,
        norm: str = "batch",
        dropout: bool = True,
    ):
        super().__init__()
        if num_downs < 5:
            # the official tree always has the outermost, three widening, and the innermost block
            raise ValueError(f"a pix2pix U-Net needs num_downs >= 5 (got {num_downs})")
        _norm_layer(norm, 1)  # validate the name before building anything
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.ngf = ngf
        self.num_downs = num_downs
        self.norm = norm
        self.dropout = dropout
        self.size_multiple = 2**num_downs
        bias = _use_bias(norm)

        # encoder widths: ngf, 2ngf, 4ngf, 8ngf, then 8ngf for every deeper level
        widths = [ngf * min(2**k, 8) for k in range(num_downs)]
        inner = num_downs - 1

        down: list[nn.Module] = [nn.Sequential(_down(in_channels, widths[0], bias))]
        for k in range(1, inner):
            down.append(nn.Sequential(nn.LeakyReLU(0.2), _down(widths[k - 1], widths[k], bias), _norm_layer(norm, widths[k])))
        down.append(nn.Sequential(nn.LeakyReLU(0.2), _down(widths[inner - 1], widths[inner], bias)))

        # up[j] undoes down[inner - j]; every level but the innermost receives [skip, decoder] channels
        up: list[nn.Module] = []
        for j in range(inner):
            k = inner - j
            c_in = widths[k] if j == 0 else 2 * widths[k]
            block = [nn.ReLU(), _up(c_in, widths[k - 1], bias), _norm_layer(norm, widths[k - 1])]
            # Dropout sits on the num_downs-5 middle 8ngf blocks (D2-D4 for unet_256), not on the
            # bottleneck up-conv D1 as in the Torch original: this follows the PyTorch port.
            if dropout and 1 <= j <= num_downs - 5:
                block.append(nn.Dropout(0.5))
            up.append(nn.Sequential(*block))
        up.append(nn.Sequential(nn.ReLU(), _up(2 * widths[0], out_channels, True), nn.Tanh()))

        self.down = nn.ModuleList(down)
        self.up = nn.ModuleList(up)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        m = self.size_multiple
        if h % m or w % m:
            raise ValueError(
                f"unet_{m} needs images whose height and width are multiples of {m} (got {h}x{w}); resize or pad them"
            )
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
        x = skips.pop()  # the bottleneck feeds the decoder, it has no skip of its own
        for block in self.up[:-1]:
            x = torch.cat([skips.pop(), block(x)], dim=1)
        return self.up[-1](x)


class PatchGANDiscriminator(nn.Module):
    """The official NLayerDiscriminator: a grid of logits, one per overlapping patch.

    With ``n_layers=3`` each logit sees a 70x70 patch and a 256x256 pair gives 1x30x30 logits.
    No sigmoid: the loss applies it.
    """

    def __init__(self, in_channels: int = 6, ndf: int = 64, n_layers: int = 3, norm: str = "batch"):
        super().__init__()
        bias = _use_bias(norm)
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        ch = ndf
        for n in range(1, n_layers):
            nxt = ndf * min(2**n, 8)
            layers += [nn.Conv2d(ch, nxt, 4, 2, 1, bias=bias), _norm_layer(norm, nxt), nn.LeakyReLU(0.2, True)]
            ch = nxt
        nxt = ndf * min(2**n_layers, 8)
        layers += [nn.Conv2d(ch, nxt, 4, 1, 1, bias=bias), _norm_layer(norm, nxt), nn.LeakyReLU(0.2, True)]
        layers.append(nn.Conv2d(nxt, 1, 4, 1, 1))
        self.in_channels = in_channels
        self.ndf = ndf
        self.n_layers = n_layers
        self.norm = norm
        self.model = nn.Sequential(*layers)

    def forward(self, condition: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """Logits for ``image`` given ``condition`` (the generator's input), (N, 1, h, w)."""
        return self.model(torch.cat([condition, image], dim=1))


def init_pix2pix_weights(module: nn.Module) -> None:
    """The official init_weights('normal', 0.02): conv/linear weights N(0, 0.02) and zero bias,
    BatchNorm gammas N(1, 0.02) and zero beta (paper appendix 6.2)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
