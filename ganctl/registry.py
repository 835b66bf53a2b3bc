"""Model families as plain data: networks, objective, and default hyperparameters per dataset.

Nothing here imports torch. Each preset names its source (a seed repository or paper; see
shared/reference/seed-models.md sections 6-8 for the conflicts between the seeds and why each
default was chosen).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType

from ganctl.errors import did_you_mean


@dataclass(frozen=True)
class Preset:
    source: str
    image_size: int
    epochs: int
    batch_size: int
    lr: float
    betas: tuple[float, float] = (0.9, 0.999)
    optimizer: str = "adam"
    z_dim: int = 100
    generator: dict = field(default_factory=dict)  # architecture arguments beyond z/channels/size
    discriminator: dict = field(default_factory=dict)
    objective: dict = field(default_factory=dict)
    init: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)  # how batches are prepared (pix2pix: direction, load and crop size)


@dataclass(frozen=True)
class Variant:
    """An alternative architecture of a family (``--arch``), with its own objective and presets."""

    arch: str
    objective: str
    summary: str
    presets: MappingProxyType


@dataclass(frozen=True)
class Family:
    name: str
    summary: str
    arch: str  # key into ganctl.models
    objective: str  # key into ganctl.objectives
    conditional: bool
    presets: MappingProxyType  # dataset key -> Preset; "default" for grayscale folders, "rgb" for colour
    variants: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))  # --arch NAME -> Variant (the default arch is `arch`)
    paired: bool = False  # trains on (input, target) image pairs, not on single images

    def arch_names(self) -> list[str]:
        return [self.arch, *self.variants]

    def variant(self, arch: str | None) -> tuple[str, str, MappingProxyType]:
        """(arch, objective, presets) for ``--arch`` (None: the family's default)."""
        if arch is None or arch == self.arch:
            return self.arch, self.objective, self.presets
        if arch not in self.variants:
            raise did_you_mean(f"--arch for {self.name}", arch, self.arch_names())
        v = self.variants[arch]
        return v.arch, v.objective, v.presets

    def preset_for(self, dataset: str, channels: int | None = None, arch: str | None = None) -> tuple[str, Preset]:
        """The preset for a catalog dataset name, else by channel count for folders."""
        _, _, presets = self.variant(arch)
        if dataset in presets:
            return dataset, presets[dataset]
        key = "rgb" if channels == 3 and "rgb" in presets else "default"
        return key, presets[key]


def _presets(**kw: Preset) -> MappingProxyType:
    return MappingProxyType({k.replace("_", "-"): v for k, v in kw.items()})


# ---------------------------------------------------------------- gan (MLP)

# Huy1711/GAN (PyTorch Lightning notebook): z 64, G 128-192 with BN, LReLU 0.2, dropout 0.3;
# D 192-128 with dropout; BCE with the real target smoothed to 0.9 (for D and G); D loss summed;
# Adam 2e-4 with default betas; batch 64; 100 epochs. Its two bugs (LReLU on D's raw input, BN
# eps=0.8) are not copied (seed-models.md section 8).
_GAN_MNIST = Preset(
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
_GAN_RGB = Preset(
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
    arch="mlp",
    objective="bce",
    conditional=False,
    presets=_presets(
        mnist=_GAN_MNIST,
        fashion_mnist=_GAN_MNIST,
        # digits are upsampled to 28x28 so the MNIST networks apply unchanged; 1,500 training
        # images give 23 batches an epoch, so more epochs than MNIST's 938-batch epochs.
        digits=Preset(**{**_GAN_MNIST.__dict__, "epochs": 300, "source": "Huy1711/GAN MNIST preset; epochs set for digits' 1,500 images"}),
        default=_GAN_MNIST,
        rgb=_GAN_RGB,
        celeba=_GAN_RGB,
    ),
)

# ---------------------------------------------------------------- dcgan

# FidanVural/GAN dcgan.py: MNIST resized to 64, z 100, 64 base features, Adam 2e-4 with default
# betas (Huy uses the same), batch 128, 20 epochs (its README), D loss halved, N(0, 0.02) init.
_DCGAN_MNIST = Preset(
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
_DCGAN_RGB = Preset(
    **{
        **_DCGAN_MNIST.__dict__,
        "source": "VedantG-02/pytorch-PlayGround DCGAN (faces, 64x64 RGB)",
        "epochs": 50,
        "batch_size": 64,
        "lr": 5e-5,
        "betas": (0.5, 0.999),
    }
)

DCGAN = Family(
    name="dcgan",
    summary="deep convolutional GAN (Radford et al., 2015)",
    arch="dcgan",
    objective="bce",
    conditional=False,
    presets=_presets(
        mnist=_DCGAN_MNIST,
        fashion_mnist=_DCGAN_MNIST,
        # 8x8 digits gain nothing from 64x64 or 64 base features: 32x32 with 32 features costs
        # about a tenth of the compute. Batch 64 gives 23 steps an epoch on 1,500 images. With so few steps the
        # seeds' init (norm gammas ~ N(0, 0.02)) leaves samples flat grey for the first epochs,
        # so digits uses the DCGAN paper's settings: gammas ~ N(1, 0.02), Adam betas (0.5, 0.999).
        digits=Preset(
            **{
                **_DCGAN_MNIST.__dict__,
                "source": "DCGAN paper settings (Radford et al., 2015) at 32x32, batch 64, for digits",
                "image_size": 32,
                "batch_size": 64,
                "epochs": 30,
                "betas": (0.5, 0.999),
                "init": dict(bn_gamma_mean=1.0),
                "generator": dict(features=32),
                "discriminator": dict(features=32, norm="batch"),
            }
        ),
        default=_DCGAN_MNIST,
        rgb=_DCGAN_RGB,
        celeba=_DCGAN_RGB,
    ),
)

# ---------------------------------------------------------------- wgan, wgan-gp

# WGAN with weight clipping (FidanVural/GAN wgan.py, VedantG-02 WGAN): the DCGAN generator, the
# DCGAN discriminator with batch norm and no sigmoid as critic, RMSprop 5e-5 for both, 5 critic
# steps per generator step, every critic parameter clipped to +-0.01, batch 64, z 100.
_WGAN_BASE = dict(
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
_WGANGP_BASE = dict(
    _WGAN_BASE,
    lr=1e-4,
    betas=(0.0, 0.9),
    optimizer="adam",
    discriminator=dict(features=64, norm="instance"),
    objective=dict(n_critic=5, lambda_gp=10.0),
)
# digits: 32x32 as for dcgan; with 5 critic steps the generator gets 1 step per 5 batches, so
# more epochs than MNIST, whose epochs are 40x longer.
_DIGITS = dict(image_size=32, init=dict(bn_gamma_mean=1.0), generator=dict(features=32))

WGAN = Family(
    name="wgan",
    summary="Wasserstein GAN with weight clipping (Arjovsky et al., 2017)",
    arch="dcgan",
    objective="wasserstein",
    conditional=False,
    presets=_presets(
        mnist=Preset(source="FidanVural/GAN wgan_training.py on MNIST at 64x64; 15 epochs (its README)", image_size=64, epochs=15, **_WGAN_BASE),
        fashion_mnist=Preset(source="FidanVural/GAN wgan_training.py settings at 64x64; 15 epochs", image_size=64, epochs=15, **_WGAN_BASE),
        digits=Preset(source="FidanVural/GAN WGAN settings at 32x32, 32 features, for digits", epochs=150, **{**_WGAN_BASE, **_DIGITS, "discriminator": dict(features=32, norm="batch")}),
        default=Preset(source="FidanVural/GAN WGAN settings (MNIST, 64x64)", image_size=64, epochs=15, **_WGAN_BASE),
        rgb=Preset(source="VedantG-02/pytorch-PlayGround WGAN (faces, 64x64 RGB), 30 epochs", image_size=64, epochs=30, **_WGAN_BASE),
        celeba=Preset(source="VedantG-02/pytorch-PlayGround WGAN (faces, 64x64 RGB), 30 epochs", image_size=64, epochs=30, **_WGAN_BASE),
    ),
)

WGAN_GP = Family(
    name="wgan-gp",
    summary="Wasserstein GAN with gradient penalty (Gulrajani et al., 2017)",
    arch="dcgan",
    objective="wasserstein",
    conditional=False,
    presets=_presets(
        mnist=Preset(source="FidanVural/GAN wgan_gp_training.py on MNIST at 64x64, 50 epochs", image_size=64, epochs=50, **_WGANGP_BASE),
        fashion_mnist=Preset(source="FidanVural/GAN WGAN-GP settings at 64x64, 50 epochs", image_size=64, epochs=50, **_WGANGP_BASE),
        digits=Preset(source="FidanVural/GAN WGAN-GP settings at 32x32, 32 features, for digits", epochs=150, **{**_WGANGP_BASE, **_DIGITS, "discriminator": dict(features=32, norm="instance")}),
        default=Preset(source="FidanVural/GAN WGAN-GP settings (MNIST, 64x64)", image_size=64, epochs=50, **_WGANGP_BASE),
        rgb=Preset(source="VedantG-02/pytorch-PlayGround WGAN-GP (faces, 64x64 RGB), 30 epochs", image_size=64, epochs=30, **_WGANGP_BASE),
        celeba=Preset(source="VedantG-02/pytorch-PlayGround WGAN-GP (faces, 64x64 RGB), 30 epochs", image_size=64, epochs=30, **_WGANGP_BASE),
    ),
)


# ---------------------------------------------------------------- cgan

# vanerk03/CGAN (its README states these): z 100, Embedding(10, 10) joined after z in G and after
# the flattened image in D; G 256-256 ReLU; D 256-784 LReLU 0.2; BCE with D loss halved; fakes
# made for the batch's real labels; Adam 3e-4 with default betas; batch 32; 50 epochs on MNIST.
# Its discriminator puts a LeakyReLU on the logit (seed-models.md section 8): not copied.
_CGAN_MNIST = Preset(
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

# FidanVural/GAN cgan.py: a conditional WGAN-GP at 64x64 with 16 base features; the label is a
# 100-number embedding joined to z, and a 64x64 plane joined to the critic's input; instance norm
# in the critic; Adam 1e-4 betas (0, 0.9); lambda 10; 5 critic steps; batch 64; 20 epochs.
_CGAN_CONV_MNIST = Preset(
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

CGAN = Family(
    name="cgan",
    summary="class-conditional GAN (Mirza & Osindero, 2014); --arch conv: conditional WGAN-GP",
    arch="mlp",
    objective="bce",
    conditional=True,
    presets=_presets(
        mnist=_CGAN_MNIST,
        fashion_mnist=_CGAN_MNIST,
        # digits: with vanerk's settings unchanged (28x28, 200 epochs) the discriminator memorises
        # the 1,500 images and the generator collapses (37.7% label accuracy, benchmarks.md). At
        # 16x16 (digits are 8x8), with Huy1711/GAN's regularisers on D (dropout 0.3, real label 0.9),
        # batch 64 and 600 epochs (14k steps; MNIST's 50 epochs are 94k) it reaches 93.7%.
        digits=Preset(**{**_CGAN_MNIST.__dict__, "image_size": 16, "epochs": 600, "batch_size": 64,
                         "discriminator": {**_CGAN_MNIST.discriminator, "dropout": 0.3},
                         "objective": {**_CGAN_MNIST.objective, "real_label": 0.9},
                         "source": "vanerk03/CGAN networks at 16x16 for digits, with Huy1711/GAN's D dropout 0.3 and real label 0.9; batch 64, 600 epochs"}),
        default=_CGAN_MNIST,
        rgb=Preset(**{**_CGAN_MNIST.__dict__, "image_size": 32, "source": "vanerk03/CGAN settings at 32x32 RGB (no seed trains cgan on colour)"}),
    ),
    variants=MappingProxyType(
        {
            "conv": Variant(
                arch="cdcgan",
                objective="wasserstein",
                summary="conditional WGAN-GP with DCGAN networks (FidanVural/GAN)",
                presets=_presets(
                    mnist=_CGAN_CONV_MNIST,
                    fashion_mnist=_CGAN_CONV_MNIST,
                    digits=Preset(**{**_CGAN_CONV_MNIST.__dict__, "image_size": 32, "epochs": 150, "init": dict(bn_gamma_mean=1.0),
                                     "source": "FidanVural/GAN conditional WGAN-GP settings at 32x32, for digits"}),
                    default=_CGAN_CONV_MNIST,
                    rgb=_CGAN_CONV_MNIST,
                ),
            )
        }
    ),
)

# ---------------------------------------------------------------- pix2pix

# The official implementation (junyanz/pytorch-CycleGAN-and-pix2pix) and the paper (Isola et al.,
# 2017): U-Net-256 and the 70x70 PatchGAN with batch norm, BCE-with-logits with D's loss halved,
# lambda_L1 100, Adam 2e-4 betas (0.5, 0.999), batch 1, N(0, 0.02) init with BN gammas N(1, 0.02),
# jitter: resize to 286, the same random 256 crop and flip on both sides. `epochs` is the total;
# the learning rate is constant, then decays linearly to zero over the last `epochs_decay`.
_PIX2PIX = Preset(
    source="pix2pix paper and official code: 100 + 100 epochs, batch 1",
    image_size=256,
    epochs=200,
    batch_size=1,
    lr=2e-4,
    betas=(0.5, 0.999),
    z_dim=0,
    generator=dict(ngf=64, num_downs=8, norm="batch", dropout=True),
    discriminator=dict(ndf=64, n_layers=3, norm="batch"),
    objective=dict(lambda_l1=100.0, gan=True, epochs_decay=100),
    data=dict(direction="AtoB", load_size=286),
)


def _p2p(source: str, epochs: int, direction: str | None, batch_size: int = 1) -> Preset:
    # direction None: the dataset's own default (the catalog says which side is the input)
    return Preset(**{**_PIX2PIX.__dict__, "source": source, "epochs": epochs, "batch_size": batch_size,
                     "objective": {**_PIX2PIX.objective, "epochs_decay": epochs // 2},
                     "data": {**_PIX2PIX.data, "direction": direction}})


PIX2PIX = Family(
    name="pix2pix",
    summary="image-to-image translation with a conditional GAN (Isola et al., 2017)",
    arch="pix2pix",
    objective="pix2pix",
    conditional=False,
    paired=True,
    presets=_presets(
        # labels -> photo; 200 epochs (the paper, the official defaults, lmg1404's README)
        facades=_p2p("pix2pix paper/official code, facades labels->photo (BtoA), 200 epochs", 200, "BtoA"),
        # map -> aerial photo; 40 epochs as the seed vanerk03/CGAN (the paper trained 200)
        maps=_p2p("vanerk03/CGAN maps run (map->aerial, BtoA), 40 epochs; recipe of the paper", 40, "BtoA"),
        # paper appendix 6.2: edges2shoes and edges2handbags 15 epochs, night2day 17, batch 4
        edges2shoes=_p2p("pix2pix paper appendix: edges->shoes, 15 epochs, batch 4", 15, "AtoB", 4),
        edges2handbags=_p2p("pix2pix paper appendix: edges->handbags, 15 epochs, batch 4", 15, "AtoB", 4),
        night2day=_p2p("pix2pix paper appendix: night->day, 17 epochs, batch 4", 17, "AtoB", 4),
        # generated offline set (64 pairs): short runs for the quickstart, tests and benchmarks
        synthetic_facades=_p2p("pix2pix recipe on ganctl's generated facades (labels -> rendering), 20 epochs", 20, None),
        # a folder: the official defaults; the direction is AtoB unless the data says otherwise
        default=_p2p("pix2pix paper/official defaults: 100 + 100 epochs, batch 1", 200, None),
    ),
)


def _register(*families: Family) -> MappingProxyType:
    table: dict[str, Family] = {}
    for f in families:
        if f.name in table:
            raise ValueError(f"model family {f.name!r} is registered twice")
        table[f.name] = f
    return MappingProxyType(table)


FAMILIES: MappingProxyType = _register(GAN, DCGAN, WGAN, WGAN_GP, CGAN, PIX2PIX)


def names() -> list[str]:
    return list(FAMILIES)


def get(name: str) -> Family:
    if name not in FAMILIES:
        raise did_you_mean("model", name, names())
    return FAMILIES[name]
