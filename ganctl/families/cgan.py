"""cgan: the class-conditional GAN (Mirza & Osindero, 2014); ``--arch conv`` is a conditional WGAN-GP."""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

from ganctl.families.dcgan import paper_init
from ganctl.families.familyspec import Family, Networks, Preset, SizeRule, Variant, presets
from ganctl.families.gan import BCE, MLP
from ganctl.families.wgan import WASSERSTEIN

CDCGAN = Networks(
    name="cdcgan",
    generator="ganctl.models.conditional:ConditionalDCGANGenerator",
    discriminator="ganctl.models.conditional:ConditionalDCGANCritic",
    init="ganctl.models.dcgan:init_dcgan_weights",
    sizes=SizeRule(minimum=16, power_of_two=True),
)

# vanerk03/CGAN (its README states these): z 100, Embedding(10, 10) joined after z in G and after
# the flattened image in D; G 256-256 ReLU; D 256-784 LReLU 0.2; BCE with D loss halved; fakes
# made for the batch's real labels; Adam 3e-4 with default betas; batch 32; 50 epochs on MNIST.
# Its discriminator puts a LeakyReLU on the logit (seed-models.md section 8): not copied.
MNIST = Preset(
    source="vanerk03/CGAN MNIST_MLP_cgan (MNIST, 28x28), 50 epochs",
    image_size=28,
    epochs=50,
    batch_size=32,
    lr=3e-4,
    z_dim=100,
    generator=dict(hidden=(256, 256), batch_norm=False, dropout=0.0, slope=0.0, embed_dim=10),
    discriminator=dict(hidden=(256, 784), dropout=0.0, slope=0.2, embed_dim=10),
    objective=dict(real_label=1.0, d_reduction="mean"),
)

# digits: with vanerk's settings unchanged (28x28, 200 epochs) the discriminator memorises the
# 1,500 images and the generator collapses (37.7% label accuracy, benchmarks.md). At 16x16 (digits
# are 8x8), with Huy1711/GAN's regularisers on D (dropout 0.3, real label 0.9), batch 64 and 600
# epochs (14k steps; MNIST's 50 epochs are 94k) it reaches 93.7%.
DIGITS = replace(
    MNIST,
    image_size=16,
    epochs=600,
    batch_size=64,
    discriminator={**MNIST.discriminator, "dropout": 0.3},
    objective={**MNIST.objective, "real_label": 0.9},
    source="vanerk03/CGAN networks at 16x16 for digits, with Huy1711/GAN's D dropout 0.3 and real label 0.9; batch 64, 600 epochs",
)

# FidanVural/GAN cgan.py: a conditional WGAN-GP at 64x64 with 16 base features; the label is a
# 100-number embedding joined to z, and a 64x64 plane joined to the critic's input; instance norm
# in the critic; Adam 1e-4 betas (0, 0.9); lambda 10; 5 critic steps; batch 64; 20 epochs.
CONV_MNIST = Preset(
    source="FidanVural/GAN cgan_training.py (conditional WGAN-GP, MNIST at 64x64), 20 epochs",
    image_size=64,
    epochs=20,
    batch_size=64,
    lr=1e-4,
    betas=(0.0, 0.9),
    z_dim=100,
    generator=dict(features=16, embed_dim=100),
    discriminator=dict(features=16, norm="instance"),
    objective=dict(n_critic=5, lambda_gp=10.0),
    init=dict(bn_gamma_mean=0.0),
)

# A folder of 100 digits at 16 px, 3,000 batches (benchmarks.md, "Folder presets: batch norm's
# init"): with the seeds' gammas the conditional critic's game had not started (FD 868, label
# accuracy at chance); with N(1, 0.02) FD 16.8 and 85% of the labels right.
FOLDERS_LEARN = "with the seeds' N(0, 0.02) a 100-image folder had not started learning after 3,000 batches"

CGAN = Family(
    name="cgan",
    summary="class-conditional GAN (Mirza & Osindero, 2014); --arch conv: conditional WGAN-GP",
    data="labelled",
    default=Variant(
        networks=MLP,
        objective=BCE,
        presets=presets(
            mnist=MNIST,
            fashion_mnist=MNIST,
            digits=DIGITS,
            default=MNIST,
            rgb=replace(MNIST, image_size=32, source="vanerk03/CGAN settings at 32x32 RGB (no seed trains cgan on colour)"),
        ),
        min_steps=10000,  # digits: 600 epochs of 23 batches (13,800 steps) reach 94% label accuracy
        small_folders="ada",  # as gan and dcgan; the conv variant (a WGAN-GP critic) gets none
    ),
    variants=MappingProxyType({
        "conv": Variant(
            networks=CDCGAN,
            objective=WASSERSTEIN,
            summary="conditional WGAN-GP with DCGAN networks (FidanVural/GAN)",
            presets=presets(
                mnist=CONV_MNIST,
                fashion_mnist=CONV_MNIST,
                digits=replace(CONV_MNIST, image_size=32, epochs=150, init=dict(bn_gamma_mean=1.0),
                               source="FidanVural/GAN conditional WGAN-GP settings at 32x32, for digits"),
                default=paper_init(CONV_MNIST, FOLDERS_LEARN),
                rgb=paper_init(CONV_MNIST, FOLDERS_LEARN),
            ),
            min_steps=600,  # generator steps: digits' 150 epochs of 23 batches, 5 critic steps each
        )
    }),
)
