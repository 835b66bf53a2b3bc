"""Training objectives: each owns its networks' optimizers, schedules, loss scalers and state, and
exposes one training step (:class:`~ganctl.train.objectives.base.Objective`). A family's registration
names its objective as ``"ganctl.train.objectives:ClassName"``."""

from __future__ import annotations

from collections.abc import Mapping

from torch import nn

from ganctl.config import TrainConfig
from ganctl.core.errors import GanctlError
from ganctl.runtime.runtime import Runtime
from ganctl.train.objectives.base import GANObjective, Objective, frozen, linear_decay, make_optimizer
from ganctl.train.objectives.cyclegan import CycleGANObjective, ImagePool
from ganctl.train.objectives.gan import BCEObjective, WassersteinObjective, gradient_penalty
from ganctl.train.objectives.pix2pix import Pix2PixObjective

__all__ = ["BCEObjective", "CycleGANObjective", "GANObjective", "ImagePool", "Objective", "Pix2PixObjective",
           "WassersteinObjective", "build", "frozen", "gradient_penalty", "linear_decay", "make_optimizer"]


def build(nets: Mapping[str, nn.Module], cfg: TrainConfig, rt: Runtime) -> Objective:
    """The objective the run's family registers for its networks (``cfg.objective`` names it)."""
    from ganctl.families import registry

    spec = registry.get(cfg.family).for_arch(cfg.arch).objective
    if spec.name != cfg.objective:
        raise GanctlError(f"the run's config names objective {cfg.objective!r}, but {cfg.family} trains {cfg.arch} with {spec.name!r}")
    return registry.resolve(spec.ref)(nets, cfg, rt)
