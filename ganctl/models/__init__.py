"""Networks only (nn.Modules); built by architecture name from a plain dict of arguments."""

from __future__ import annotations

from torch import nn

from ganctl.models.dcgan import DCGANDiscriminator, DCGANGenerator, init_dcgan_weights
from ganctl.models.mlp import MLPDiscriminator, MLPGenerator

_ARCHS = {
    "mlp": (MLPGenerator, MLPDiscriminator),
    "dcgan": (DCGANGenerator, DCGANDiscriminator),
}


def build_generator(arch: str, args: dict) -> nn.Module:
    return _ARCHS[arch][0](**args)


def build_discriminator(arch: str, args: dict) -> nn.Module:
    return _ARCHS[arch][1](**args)


def init_weights(arch: str, module: nn.Module, init: dict) -> None:
    if arch == "dcgan":
        init_dcgan_weights(module, init.get("bn_gamma_mean", 0.0))
    # mlp: PyTorch's default init, as the seeds leave it
