"""cyclegan: unpaired image-to-image translation (Zhu et al., 2017), as the official code trains it."""

from __future__ import annotations

from dataclasses import replace

from ganctl.families.familyspec import Family, Networks, Objective, Option, Preset, SizeRule, Variant, presets


def resnet_blocks(size: int) -> dict:
    """The official choice: resnet_9blocks for 256-pixel training, resnet_6blocks for 128 and below."""
    return {"n_blocks": 9 if size >= 256 else 6}


RESNET_PATCHGAN = Networks(
    name="cyclegan",
    generator="ganctl.models.cyclegan:ResnetGenerator",
    discriminator="ganctl.models.cyclegan:PatchDiscriminator",
    init="ganctl.models.pix2pix:init_pix2pix_weights",  # N(0, 0.02), as the official init_type normal
    translates=True,
    sizes=SizeRule(minimum=32, maximum=2048, multiple=4),  # the PatchGAN needs 32 to keep 2x2 maps
    for_size="ganctl.families.cyclegan:resnet_blocks",
    # G_A: A -> B, judged by D_A against real B; G_B: B -> A, judged by D_B against real A
    named=(("G_A", "generator"), ("G_B", "generator"), ("D_A", "discriminator"), ("D_B", "discriminator")),
    uses=(("AtoB", "G_A"), ("BtoA", "G_B")),
    options=(
        Option("--ngf", "generator", "ngf", minimum=1, type=int, help="Generator base width (default: 64)."),
        Option("--ndf", "discriminator", "ndf", minimum=1, type=int, help="Discriminator base width (default: 64)."),
        Option("--n-blocks", "generator", "n_blocks", minimum=1, type=int, panel="cyclegan",
               help="Residual blocks of each generator (default: 9 at 256 pixels and up, 6 below)."),
    ),
)

CYCLE_LOSS = Objective(
    name="cyclegan",
    ref="ganctl.train.objectives:CycleGANObjective",
    options=(
        Option("--lambda-cycle", "objective", "lambda_cycle", minimum=0, panel="cyclegan",
               help="Weight of the cycle-consistency L1 loss, each way (default: 10)."),
        Option("--lambda-identity", "objective", "lambda_identity", minimum=0, panel="cyclegan",
               help="Weight of the identity loss, relative to --lambda-cycle (default: 0.5, an effective 5; 0: off)."),
        Option("--pool-size", "objective", "pool_size", minimum=0, type=int, panel="cyclegan",
               help="Earlier fakes each discriminator is shown from (default: 50; 0: only the newest)."),
        Option("--epochs-decay", "objective", "epochs_decay", minimum=0, on_resume=True, type=int,
               help="Of the --epochs, how many at the end decay the learning rate linearly to 0 (default: half)."),
    ),
    settle="ganctl.families.pix2pix:settle_decay",
    not_charted=(),
)

# The official code (models/cycle_gan_model.py, options/train_options.py) and the paper (Zhu et
# al., 2017): ResNet generators (9 blocks at 256), 70x70 PatchGAN, instance norm, no dropout,
# LSGAN loss, lambda_A = lambda_B = 10, lambda_identity 0.5, pool of 50, Adam 2e-4 betas (0.5,
# 0.999), batch 1, 100 constant + 100 decaying epochs, resize 286 then random crop 256 and flip.
OFFICIAL = Preset(
    source="CycleGAN paper and official code: 100 + 100 epochs, batch 1",
    image_size=256,
    epochs=200,
    batch_size=1,
    lr=2e-4,
    betas=(0.5, 0.999),
    z_dim=0,
    generator=dict(ngf=64, norm="instance", dropout=False),
    discriminator=dict(ndf=64, n_layers=3, norm="instance"),
    objective=dict(lambda_cycle=10.0, lambda_identity=0.5, pool_size=50, epochs_decay=100),
    data=dict(load_size=286),
)

# ganctl's generated set (64 + 64 images): the official recipe at 64 pixels with half the widths, a
# size a CPU trains in minutes an epoch (the epochs it needs are not measured yet: docs/benchmarks.md)
SYNTHETIC = replace(OFFICIAL, source="CycleGAN recipe on ganctl's generated facades at 64 px, ngf/ndf 32, 30 epochs",
                    image_size=64, epochs=30, generator={**OFFICIAL.generator, "ngf": 32},
                    discriminator={**OFFICIAL.discriminator, "ndf": 32},
                    objective={**OFFICIAL.objective, "epochs_decay": 15})

CYCLEGAN = Family(
    name="cyclegan",
    summary="unpaired image-to-image translation (Zhu et al., 2017)",
    data="unpaired",
    default=Variant(
        networks=RESNET_PATCHGAN,
        objective=CYCLE_LOSS,
        presets=presets(synthetic_facades_unpaired=SYNTHETIC, default=OFFICIAL),
    ),
)
