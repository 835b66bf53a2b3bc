"""Networks only (nn.Modules); built by architecture name from a plain dict of arguments."""

from __future__ import annotations

from torch import nn

from ganctl.models.conditional import ConditionalDCGANCritic, ConditionalDCGANGenerator
from ganctl.models.dcgan import DCGANDiscriminator, DCGANGenerator, init_dcgan_weights
from ganctl.models.mlp import MLPDiscriminator, MLPGenerator
from ganctl.models.pix2pix import PatchGANDiscriminator, UNetGenerator, init_pix2pix_weights

_ARCHS = {
    "mlp": (MLPGenerator, MLPDiscriminator),
    "dcgan": (DCGANGenerator, DCGANDiscriminator),
    "cdcgan": (ConditionalDCGANGenerator, ConditionalDCGANCritic),
    "pix2pix": (UNetGenerator, PatchGANDiscriminator),
}


def build_generator(arch: str, args: dict) -> nn.Module:
    return _ARCHS[arch][0](**args)


def build_discriminator(arch: str, args: dict) -> nn.Module:
    return _ARCHS[arch][1](**args)


def init_weights(arch: str, module: nn.Module, init: dict) -> None:
    if arch in ("dcgan", "cdcgan"):
        init_dcgan_weights(module, init.get("bn_gamma_mean", 0.0))
    elif arch == "pix2pix":
        init_pix2pix_weights(module)
    # mlp: PyTorch's default init, as the seeds leave it
