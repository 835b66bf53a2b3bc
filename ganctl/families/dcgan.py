"""dcgan: the deep convolutional GAN (Radford et al., 2015); its networks are shared by wgan and wgan-gp."""

from __future__ import annotations

from dataclasses import replace

from ganctl.families.familyspec import Family, Networks, Preset, SizeRule, Variant, presets
from ganctl.families.gan import BCE

DCGAN_NETS = Networks(
    name="dcgan",
    generator="ganctl.models.dcgan:DCGANGenerator",
    discriminator="ganctl.models.dcgan:DCGANDiscriminator",
    init="ganctl.models.dcgan:init_dcgan_weights",
    sizes=SizeRule(minimum=16, power_of_two=True),
)

# FidanVural/GAN dcgan.py: MNIST resized to 64, z 100, 64 base features, Adam 2e-4 with default
# betas (Huy uses the same), batch 128, 20 epochs (its README), D loss halved, N(0, 0.02) init.
MNIST = Preset(
    source="FidanVural/GAN dcgan_training.py (MNIST at 64x64); 20 epochs from its README",
    image_size=64,
    epochs=20,
    batch_size=128,
    lr=2e-4,
    z_dim=100,
    generator=dict(features=64),
    discriminator=dict(features=64, norm="batch"),
    objective=dict(real_label=1.0, d_reduction="mean"),
    init=dict(bn_gamma_mean=0.0),
)

# VedantG-02 DCGAN on 64x64 faces: Adam 5e-5 with betas (0.5, 0.999), batch 64, 50 epochs.
RGB = replace(MNIST, source="VedantG-02/pytorch-PlayGround DCGAN (faces, 64x64 RGB)", epochs=50, batch_size=64, lr=5e-5,
              betas=(0.5, 0.999))

# 8x8 digits gain nothing from 64x64 or 64 base features: 32x32 with 32 features costs about a
# tenth of the compute. Batch 64 gives 23 steps an epoch on 1,500 images. With so few steps the
# seeds' init (norm gammas ~ N(0, 0.02)) leaves samples flat grey for the first epochs, so digits
# uses the DCGAN paper's settings: gammas ~ N(1, 0.02), Adam betas (0.5, 0.999).
DIGITS = replace(
    MNIST,
    source="DCGAN paper settings (Radford et al., 2015) at 32x32, batch 64, for digits",
    image_size=32,
    batch_size=64,
    epochs=30,
    betas=(0.5, 0.999),
    init=dict(bn_gamma_mean=1.0),
    generator=dict(features=32),
    discriminator=dict(features=32, norm="batch"),
)

def paper_init(p: Preset, why: str) -> Preset:
    """``p`` with batch norm's gammas drawn from N(1, 0.02), the DCGAN paper's init (as the digits
    presets), instead of the seeds' N(0, 0.02), which starts the generator with near-constant
    outputs; ``why``: the measurement that chose it, added to the preset's source."""
    return replace(p, init={**p.init, "bn_gamma_mean": 1.0}, source=f"{p.source}; BN gammas N(1, 0.02): {why}")


DCGAN = Family(
    name="dcgan",
    summary="deep convolutional GAN (Radford et al., 2015)",
    data="images",
    default=Variant(
        networks=DCGAN_NETS,
        objective=BCE,
        presets=presets(mnist=MNIST, fashion_mnist=MNIST, digits=DIGITS, default=MNIST, rgb=RGB, celeba=RGB),
        min_steps=400,  # digits: Frechet distance under 20 from epoch 17 (391 steps; docs/train.md)
        # 100 and 500 digits, 3 seeds: nearer the data than none at every length, by a third to a half of the gap
        small_folders="ada",
    ),
)
