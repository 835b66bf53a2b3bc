"""wgan and wgan-gp: Wasserstein GANs (Arjovsky et al., 2017; Gulrajani et al., 2017) on the DCGAN networks."""

from __future__ import annotations

from dataclasses import replace

from ganctl.families.dcgan import DCGAN_NETS, paper_init
from ganctl.families.familyspec import Family, Objective, Option, Preset, Variant, presets

WASSERSTEIN = Objective(
    name="wasserstein",
    ref="ganctl.train.objectives:WassersteinObjective",
    options=(
        Option("--n-critic", "objective", "n_critic", minimum=1, type=int, panel="Wasserstein",
               help="Critic steps per generator step (default: 5)."),
        Option("--clip", "objective", "clip", positive=True, panel="Wasserstein",
               help="Clip every critic weight to +-CLIP after each critic step (default: 0.01 for weight clipping, "
                    "off with a gradient penalty)."),
        Option("--lambda-gp", "objective", "lambda_gp", minimum=0, panel="Wasserstein",
               help="Gradient penalty weight (default: 10 with a gradient penalty, off for weight clipping)."),
    ),
)

# WGAN with weight clipping (FidanVural/GAN wgan.py, VedantG-02 WGAN): the DCGAN generator, the
# DCGAN discriminator with batch norm and no sigmoid as critic, RMSprop 5e-5 for both, 5 critic
# steps per generator step, every critic parameter clipped to +-0.01, batch 64, z 100.
WGAN_MNIST = Preset(
    source="FidanVural/GAN wgan_training.py on MNIST at 64x64; 15 epochs (its README)",
    image_size=64,
    epochs=15,
    z_dim=100,
    batch_size=64,
    lr=5e-5,
    optimizer="rmsprop",
    generator=dict(features=64),
    discriminator=dict(features=64, norm="batch"),
    objective=dict(n_critic=5, clip=0.01),
    init=dict(bn_gamma_mean=0.0),
)
# WGAN-GP (VedantG-02 WGAN-GP; FidanVural's model file): instance norm (affine) in the critic,
# since the penalty is per sample and batch norm would couple the samples; Adam 1e-4 with betas
# (0.0, 0.9); lambda 10; 5 critic steps. Fidan's training script imported the batch-norm critic
# by mistake (seed-models.md section 8); we use the instance-norm one both model files define.
WGANGP_MNIST = replace(
    WGAN_MNIST,
    source="FidanVural/GAN wgan_gp_training.py on MNIST at 64x64, 50 epochs",
    epochs=50,
    lr=1e-4,
    betas=(0.0, 0.9),
    optimizer="adam",
    discriminator=dict(features=64, norm="instance"),
    objective=dict(n_critic=5, lambda_gp=10.0),
)


def _digits(base: Preset, source: str, norm: str) -> Preset:
    # 32x32 as for dcgan; with 5 critic steps the generator gets 1 step per 5 batches, so more
    # epochs than MNIST, whose epochs are 40x longer.
    return replace(base, source=source, image_size=32, epochs=150, init=dict(bn_gamma_mean=1.0),
                   generator=dict(features=32), discriminator=dict(features=32, norm=norm))


# A folder of 100 digits at 16 px, 3,000 batches (benchmarks.md, "Folder presets: batch norm's
# init"): with the seeds' gammas wgan FD 880 and wgan-gp 128, with N(1, 0.02) 19.1 and 20.3.
FOLDERS_LEARN = "with the seeds' N(0, 0.02) a 100-image folder was still far from the data after 3,000 batches"


def _faces(base: Preset, source: str) -> Preset:
    return replace(base, source=source, epochs=30)


WGAN = Family(
    name="wgan",
    summary="Wasserstein GAN with weight clipping (Arjovsky et al., 2017)",
    data="images",
    default=Variant(
        networks=DCGAN_NETS,
        objective=WASSERSTEIN,
        presets=presets(
            mnist=WGAN_MNIST,
            fashion_mnist=replace(WGAN_MNIST, source="FidanVural/GAN wgan_training.py settings at 64x64; 15 epochs"),
            digits=_digits(WGAN_MNIST, "FidanVural/GAN WGAN settings at 32x32, 32 features, for digits", "batch"),
            default=paper_init(replace(WGAN_MNIST, source="FidanVural/GAN WGAN settings (MNIST, 64x64)"), FOLDERS_LEARN),
            rgb=paper_init(_faces(WGAN_MNIST, "VedantG-02/pytorch-PlayGround WGAN (faces, 64x64 RGB), 30 epochs"),
                           FOLDERS_LEARN),
            celeba=_faces(WGAN_MNIST, "VedantG-02/pytorch-PlayGround WGAN (faces, 64x64 RGB), 30 epochs"),
        ),
        min_steps=600,  # generator steps: digits' 150 epochs of 23 batches, 5 critic steps each
    ),
)

WGAN_GP = Family(
    name="wgan-gp",
    summary="Wasserstein GAN with gradient penalty (Gulrajani et al., 2017)",
    data="images",
    default=Variant(
        networks=DCGAN_NETS,
        objective=WASSERSTEIN,
        presets=presets(
            mnist=WGANGP_MNIST,
            fashion_mnist=replace(WGANGP_MNIST, source="FidanVural/GAN WGAN-GP settings at 64x64, 50 epochs"),
            digits=_digits(WGANGP_MNIST, "FidanVural/GAN WGAN-GP settings at 32x32, 32 features, for digits", "instance"),
            default=paper_init(replace(WGANGP_MNIST, source="FidanVural/GAN WGAN-GP settings (MNIST, 64x64)"), FOLDERS_LEARN),
            rgb=paper_init(_faces(WGANGP_MNIST, "VedantG-02/pytorch-PlayGround WGAN-GP (faces, 64x64 RGB), 30 epochs"),
                           FOLDERS_LEARN),
            celeba=_faces(WGANGP_MNIST, "VedantG-02/pytorch-PlayGround WGAN-GP (faces, 64x64 RGB), 30 epochs"),
        ),
        min_steps=600,  # generator steps: digits' 150 epochs of 23 batches, 5 critic steps each
    ),
)
