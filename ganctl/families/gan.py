"""gan: the fully connected GAN (Goodfellow et al., 2014), with the presets of the seed repositories."""

from __future__ import annotations

from dataclasses import replace

from ganctl.families.familyspec import Family, Networks, Objective, Preset, SizeRule, Variant, presets

MLP = Networks(
    name="mlp",
    generator="ganctl.models.mlp:MLPGenerator",
    discriminator="ganctl.models.mlp:MLPDiscriminator",
    init="",  # PyTorch's default init, as the seeds leave it
    convolutional=False,
    sizes=SizeRule(minimum=8),
)

# The original game with the non-saturating generator loss (d_real/d_fake are D's mean probabilities).
BCE = Objective(name="bce", ref="ganctl.train.objectives:BCEObjective", not_charted=("d_real", "d_fake"))

# Huy1711/GAN (PyTorch Lightning notebook): z 64, G 128-192 with BN, LReLU 0.2, dropout 0.3;
# D 192-128 with dropout; BCE with the real target smoothed to 0.9 (for D and G); D loss summed;
# Adam 2e-4 with default betas; batch 64; 100 epochs. Its two bugs (LReLU on D's raw input, BN
# eps=0.8) are not copied (seed-models.md section 8).
MNIST = Preset(
    source="Huy1711/GAN (PyTorch Lightning notebook), MNIST and Fashion-MNIST runs",
    image_size=28,
    epochs=100,
    batch_size=64,
    lr=2e-4,
    z_dim=64,
    generator=dict(hidden=(128, 192), batch_norm=True, dropout=0.3, slope=0.2),
    discriminator=dict(hidden=(192, 128), dropout=0.3, slope=0.2),
    objective=dict(real_label=0.9, d_reduction="sum"),
)

# VedantG-02 simpleGAN on 64x64 RGB faces: z 64, G 128-256-512-1024-4096 ReLU, D 4096-...-128
# LReLU 0.01, BCE with D loss halved, Adam 5e-5 with default betas, batch 64, 50 epochs.
RGB = Preset(
    source="VedantG-02/pytorch-PlayGround simpleGAN (CelebA-style faces, 64x64 RGB)",
    image_size=64,
    epochs=50,
    batch_size=64,
    lr=5e-5,
    z_dim=64,
    generator=dict(hidden=(128, 256, 512, 1024, 4096), batch_norm=False, dropout=0.0, slope=0.0),
    discriminator=dict(hidden=(4096, 1024, 512, 256, 128), dropout=0.0, slope=0.01),
    objective=dict(real_label=1.0, d_reduction="mean"),
)

GAN = Family(
    name="gan",
    summary="fully connected GAN (Goodfellow et al., 2014)",
    data="images",
    default=Variant(
        networks=MLP,
        objective=BCE,
        presets=presets(
            mnist=MNIST,
            fashion_mnist=MNIST,
            # digits are upsampled to 28x28 so the MNIST networks apply unchanged; 1,500 training
            # images give 23 batches an epoch, so more epochs than MNIST's 938-batch epochs.
            digits=replace(MNIST, epochs=300, source="Huy1711/GAN MNIST preset; epochs set for digits' 1,500 images"),
            default=MNIST,
            rgb=RGB,
            celeba=RGB,
        ),
        min_steps=5000,  # digits: 300 epochs of 23 batches (6,900 steps), docs/benchmarks.md
        small_folders="ada",  # measured on dcgan, whose discriminator is trained with the same loss
    ),
)
