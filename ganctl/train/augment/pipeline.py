"""The augmentation an objective applies to whatever goes into its discriminators
(:attr:`ganctl.train.objectives.Objective.augment`), built from the run's config.

Objectives call it on every discriminator input, real and generated, in the D step and in the G
step, never on what a reconstruction, cycle or L1 loss compares (the DiffAugment authors' advice:
those losses are about the images themselves). Images a discriminator sees side by side (pix2pix's
input and output) are passed together and get one transform.
"""

from __future__ import annotations

import torch

from ganctl import augment_spec
from ganctl.core.errors import GanctlError
from ganctl.train.augment import ada, diffaugment


class Augment:
    """``augment(x)`` -> x augmented; ``augment(x, y)`` -> (x, y), one transform for both.
    With no augmentation it returns its arguments as they are and draws nothing, so a run
    without it is the same, bit for bit, as before augmentation existed."""

    def __init__(self, config: dict, device: torch.device):
        self.config = dict(config)
        self.policies = augment_spec.ops(self.config)
        self.used = False  # called at all: an objective that never calls it cannot honour --augment
        self.heuristic = (ada.Heuristic(float(config["target"]), int(config["ramp_images"]), int(config["interval"]),
                                        device) if augment_spec.is_ada(self.config) else None)

    def __bool__(self) -> bool:
        return bool(self.config)

    def __call__(self, *xs: torch.Tensor):
        if not self.config:
            return xs[0] if len(xs) == 1 else xs
        self.used = True
        out = (ada.apply(list(xs), self.heuristic.p) if self.heuristic is not None
               else diffaugment.apply(self.policies, list(xs)))
        return out[0] if len(xs) == 1 else tuple(out)

    @property
    def p(self) -> torch.Tensor | None:
        """ADA's probability (a device tensor), None for other policies."""
        return self.heuristic.p if self.heuristic is not None else None

    def observe(self, signal: torch.Tensor) -> None:
        """A discriminator's outputs on augmented real images, less its decision boundary (logits:
        as they are; least squares against 1 and 0: less 0.5; a critic: less its mean on fakes).
        ADA follows the share of them above zero; other policies ignore it."""
        if self.heuristic is not None:
            self.heuristic.observe(signal)

    def end_step(self, metrics: dict, index: int, batch_images: int) -> dict:
        """After step ``index`` on ``batch_images`` images (this rank's): ADA adjusts p, and
        ``ada_p`` joins the metrics (a copy: p changes in place after the log has its tensor).
        A GanctlError when the step augmented nothing: the objective does not support --augment."""
        if self.config and not self.used:
            raise GanctlError(f"--augment {self.config['policy']}: this family's objective does not augment what its "
                              "discriminator sees (docs/contributing.md says how); train without --augment")
        if self.heuristic is not None:
            self.heuristic.adjust(index, batch_images)
            metrics["ada_p"] = self.heuristic.p.clone()
        return metrics

    def state_dict(self) -> dict:
        return self.heuristic.state_dict() if self.heuristic is not None else {}

    def load_state_dict(self, state: dict) -> None:
        if self.heuristic is None:
            raise ValueError("the checkpoint holds ADA's state, and the run does not train with --augment ada")
        self.heuristic.load_state_dict(state)
