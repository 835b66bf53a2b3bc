"""Networks only (plain nn.Modules), one file per architecture; built by the name a family's
registration gives them (:mod:`ganctl.families.registry`) from a plain dict of arguments."""

from __future__ import annotations

from torch import nn

from ganctl.families import registry
from ganctl.models.conditional import ConditionalDCGANCritic, ConditionalDCGANGenerator
from ganctl.models.dcgan import DCGANDiscriminator, DCGANGenerator
from ganctl.models.mlp import MLPDiscriminator, MLPGenerator
from ganctl.models.pix2pix import PatchGANDiscriminator, UNetGenerator

__all__ = ["ConditionalDCGANCritic", "ConditionalDCGANGenerator", "DCGANDiscriminator", "DCGANGenerator",
           "MLPDiscriminator", "MLPGenerator", "PatchGANDiscriminator", "UNetGenerator", "build_discriminator",
           "build_all", "build_generator", "check_args", "init_weights"]


def _networks(arch: str) -> registry.Networks:
    try:
        return registry.networks(arch)
    except KeyError:
        raise ValueError(f"arch is {arch!r}, not one of {', '.join(registry.arch_names())}") from None


def check_args(arch: str, args: object, which: str = "generator") -> None:
    """ValueError saying what is wrong with constructor ``args`` of the ``arch`` network (unknown
    arch or argument, a missing one, a wrong type, a count below 1), for files read from disk."""
    import inspect
    import typing

    from ganctl.config import type_problem

    nets = _networks(arch)
    if not isinstance(args, dict):
        raise ValueError(f"{which} is {type(args).__name__}, not an object of arguments")
    cls = nets.classes()[0 if which == "generator" else 1]
    hints = typing.get_type_hints(cls.__init__)
    params = {k: p for k, p in inspect.signature(cls.__init__).parameters.items() if k != "self"}
    for key, value in args.items():
        if key not in params:
            raise ValueError(f"{which}.{key} is not an argument of the {arch} {which}")
        want = type_problem(value, hints.get(key))
        if want:
            raise ValueError(f"{which}.{key} is {value!r:.40}, not {want}")
        counts = value if isinstance(value, (list, tuple)) else [value]
        low = 0 if key == "num_classes" else 1
        if any(isinstance(v, int) and not isinstance(v, bool) and v < low for v in counts):
            raise ValueError(f"{which}.{key} is {value!r:.40}, below its minimum {low}")
    missing = [k for k, p in params.items() if p.default is inspect.Parameter.empty and k not in args]
    if missing:
        raise ValueError(f"{which} has no {missing[0]!r} argument")


def build_generator(arch: str, args: dict) -> nn.Module:
    return _networks(arch).classes()[0](**args)


def build_discriminator(arch: str, args: dict) -> nn.Module:
    return _networks(arch).classes()[1](**args)


def build_all(arch: str, generator: dict, discriminator: dict, init: dict) -> dict[str, nn.Module]:
    """Every network of the ``arch`` set by name, built from its role's arguments, then each
    initialised, in the order the registration lists them (so that a seed set before gives the
    weights it always gave)."""
    nets = _networks(arch)
    args = {"generator": generator, "discriminator": discriminator}
    built = {name: (build_generator if role == "generator" else build_discriminator)(arch, args[role])
             for name, role in nets.named}
    for module in built.values():
        init_weights(arch, module, init)
    return built


def init_weights(arch: str, module: nn.Module, init: dict) -> None:
    """The family's weight init (none: PyTorch's default, as the seeds leave MLPs)."""
    nets = _networks(arch)
    if nets.init:
        registry.resolve(nets.init)(module, **init)
