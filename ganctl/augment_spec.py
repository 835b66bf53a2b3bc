"""Augmentation of everything a discriminator sees, real and generated alike, differentiably, so
that the generator's gradient passes through it: ``ganctl train FAMILY --augment POLICY``.

Two kinds, from two papers (their math is reproduced here; their code is not used):

- **DiffAugment** (Zhao et al., 2020, "Differentiable Augmentation for Data-Efficient GAN
  Training"): ``color``, ``translation`` and ``cutout``, any subset, each applied to every image
  the discriminator sees (:mod:`ganctl.train.augment.diffaugment`).
- **ADA** (Karras et al., 2020, "Training Generative Adversarial Networks with Limited Data"):
  ``ada``, a pipeline of transforms each applied with probability ``p``, which is tuned during
  training from how sure the discriminator is of the real images (:mod:`ganctl.train.augment.ada`).

A run's choice is its config's ``augment`` object: ``{}`` (none), ``{"policy": "color,translation"}``
or ``{"policy": "ada", "target": 0.6, "ramp_images": N, "interval": 4}``. This module is torch-free:
the command line checks a policy here before torch is imported.
"""

from __future__ import annotations

from ganctl.core.errors import GanctlError, did_you_mean

DIFFAUGMENT = ("color", "translation", "cutout")  # DiffAugment's names, in the order it applies them
ADA = "ada"
OFF = ("none", "off")
ADA_TARGET = 0.6  # Karras et al. 2020, section 3: r_t target 0.6 for their datasets
ADA_INTERVAL = 4  # steps between adjustments of p (the stylegan2-ada default, ada_interval=4)
ADA_RAMP_IMAGES = 500_000  # p can go from 0 to 1 in 500k images (ada_kimg=500, the paper's speed)
# ...but a small folder's whole run is often fewer images than that, so p could never rise far:
# a run lets p cross [0, 1] in at most this fraction of its images (see ramp_images)
ADA_RAMP_FRACTION = 0.1
MIN_SHIFT_SIZE = 16  # translation (DiffAugment's and ADA's) moves by 1/8 of the image: 1 pixel below 16


def parse(policy: str | None, target: float | None = None) -> dict:
    """The config's ``augment`` object for ``--augment POLICY`` (``--ada-target``), or a
    GanctlError saying what to pass. None: no augmentation."""
    if target is not None and not 0.0 <= target <= 1.0:
        raise GanctlError(f"--ada-target must be between 0 and 1 (got {target:g}); the paper's is {ADA_TARGET}")
    if policy is None or policy.strip().lower() in OFF:
        if target is not None:
            raise GanctlError("--ada-target applies with --augment ada")
        return {}
    names = [n.strip().lower() for n in policy.split(",") if n.strip()]
    if names == [ADA]:
        return {"policy": ADA, "target": ADA_TARGET if target is None else float(target), "interval": ADA_INTERVAL}
    if ADA in names:
        raise GanctlError("--augment ada is a pipeline of its own: pass it alone, or DiffAugment's color,translation,cutout")
    if not names:
        raise GanctlError("--augment needs a policy: color, translation, cutout (any of them, comma-separated), ada or none")
    for name in names:
        if name not in DIFFAUGMENT:
            raise did_you_mean("--augment policy", name, [*DIFFAUGMENT, ADA, "none"])
    if target is not None:
        raise GanctlError("--ada-target applies with --augment ada")
    # DiffAugment applies its policies in the order it lists them; so does ganctl, whatever the order given
    return {"policy": ",".join(n for n in DIFFAUGMENT if n in names)}


def ops(augment: dict) -> tuple[str, ...]:
    """The DiffAugment policies of a config's ``augment`` ((): none, or ADA)."""
    policy = augment.get("policy", "")
    return () if not policy or policy == ADA else tuple(policy.split(","))


def is_ada(augment: dict) -> bool:
    return augment.get("policy") == ADA


def check_size(augment: dict, image_size: int) -> None:
    """A GanctlError when the policy cannot apply at ``image_size``."""
    shift = "translation" if "translation" in ops(augment) else ADA if is_ada(augment) else None
    if shift and image_size < MIN_SHIFT_SIZE:
        raise GanctlError(
            f"--augment {shift} moves images by up to 1/8 of their size, a single pixel at {image_size} px: "
            f"it needs --image-size {MIN_SHIFT_SIZE} or more (color and cutout apply at any size)")


def ramp_images(total_images: int) -> int:
    """Images over which ADA's p may go from 0 to 1: the paper's 500k, or a tenth of a shorter
    run's images (at 500k, a 100-image folder's 2,000 steps of 64 could move p by at most 0.26)."""
    return max(1, min(ADA_RAMP_IMAGES, int(total_images * ADA_RAMP_FRACTION)))


def check(augment: object) -> str | None:
    """None if ``augment`` is an ``augment`` object of a config.json; else what is wrong with it."""
    if not isinstance(augment, dict):
        return "not an object"
    if not augment:
        return None
    policy = augment.get("policy")
    if not isinstance(policy, str):
        return "without a policy"
    if policy == ADA:
        target, ramp, interval = augment.get("target"), augment.get("ramp_images"), augment.get("interval")
        if not isinstance(target, (int, float)) or isinstance(target, bool) or not 0 <= target <= 1:
            return f"an ada target of {target!r}, not a number from 0 to 1"
        if not isinstance(ramp, int) or isinstance(ramp, bool) or ramp < 1:
            return f"ramp_images {ramp!r}, not a positive integer"
        if not isinstance(interval, int) or isinstance(interval, bool) or interval < 1:
            return f"interval {interval!r}, not a positive integer"
        return None
    names = policy.split(",")
    if not all(n in DIFFAUGMENT for n in names) or len(set(names)) != len(names):
        return f"policy {policy!r}, not ada or some of {', '.join(DIFFAUGMENT)}"
    return None


def describe(augment: dict) -> str:
    """What augmentation a run trains with, in words (the first line of train, the report)."""
    if not augment:
        return "none"
    if is_ada(augment):
        return (f"ADA (target {augment['target']:g}, p from 0 up to 1 in {augment['ramp_images']:,} images, "
                f"adjusted every {augment['interval']} steps)")
    return f"DiffAugment {augment['policy']}"
