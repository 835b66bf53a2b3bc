"""pix2pix: image-to-image translation with a conditional GAN (Isola et al., 2017)."""

from __future__ import annotations

from dataclasses import replace

from ganctl.core.errors import GanctlError
from ganctl.families.familyspec import Family, Networks, Objective, Option, Preset, SizeRule, Variant, presets


def unet_depth(size: int) -> dict:
    """U-Net-256 for 256-pixel crops (8 downsamplings to 1x1), U-Net-128 for 128 (7), and so on."""
    return {"num_downs": size.bit_length() - 1}


def settle_schedule(args: dict, epochs: int, given: frozenset[str], epochs_given: bool) -> dict:
    """pix2pix's arguments: something to learn, and the learning-rate decay (:func:`settle_decay`)."""
    if not args.get("gan", True) and args.get("lambda_l1") == 0:
        raise GanctlError("--no-gan with --lambda-l1 0 leaves nothing to learn: drop one of them")
    return settle_decay(args, epochs, given, epochs_given)


def settle_decay(args: dict, epochs: int, given: frozenset[str], epochs_given: bool) -> dict:
    """The learning-rate decay of the official pix2pix/CycleGAN schedule: half of a given --epochs
    unless --epochs-decay was given too (else the preset's), and always fewer epochs than the
    total. ``given``: the objective arguments the user passed on this command."""
    if epochs_given and "epochs_decay" not in given:
        args["epochs_decay"] = epochs // 2
    decay = int(args.get("epochs_decay", 0))
    if decay >= epochs:
        raise GanctlError(f"--epochs-decay ({decay}) must be smaller than --epochs ({epochs}): --epochs is the total")
    return args


UNET_PATCHGAN = Networks(
    name="pix2pix",
    generator="ganctl.models.pix2pix:UNetGenerator",
    discriminator="ganctl.models.pix2pix:PatchGANDiscriminator",
    init="ganctl.models.pix2pix:init_pix2pix_weights",
    translates=True,
    sizes=SizeRule(minimum=32, maximum=1024, power_of_two=True),
    for_size="ganctl.families.pix2pix:unet_depth",
    options=(
        Option("--ngf", "generator", "ngf", minimum=1, type=int, help="Generator base width (default: 64)."),
        Option("--ndf", "discriminator", "ndf", minimum=1, type=int, help="Discriminator base width (default: 64)."),
    ),
    discriminator_inputs=2,
)

PIX2PIX_LOSS = Objective(
    name="pix2pix",
    ref="ganctl.train.objectives:Pix2PixObjective",
    options=(
        Option("--lambda-l1", "objective", "lambda_l1", minimum=0,
               help="Weight of the L1 loss; 0 trains with the GAN loss alone (default: 100)."),
        Option("--no-gan", "objective", "gan", switch_off=True,
               help="Train the generator with the L1 loss alone (no discriminator)."),
        Option("--epochs-decay", "objective", "epochs_decay", minimum=0, on_resume=True, type=int,
               help="Of the --epochs, how many at the end decay the learning rate linearly to 0 (default: half)."),
    ),
    settle="ganctl.families.pix2pix:settle_schedule",
)

# The official implementation (junyanz/pytorch-CycleGAN-and-pix2pix) and the paper (Isola et al.,
# 2017): U-Net-256 and the 70x70 PatchGAN with batch norm, BCE-with-logits with D's loss halved,
# lambda_L1 100, Adam 2e-4 betas (0.5, 0.999), batch 1, N(0, 0.02) init with BN gammas N(1, 0.02),
# jitter: resize to 286, the same random 256 crop and flip on both sides. `epochs` is the total;
# the learning rate is constant, then decays linearly to zero over the last `epochs_decay`.
PAPER = Preset(
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
    return replace(PAPER, source=source, epochs=epochs, batch_size=batch_size,
                   objective={**PAPER.objective, "epochs_decay": epochs // 2}, data={**PAPER.data, "direction": direction})


PIX2PIX = Family(
    name="pix2pix",
    summary="image-to-image translation with a conditional GAN (Isola et al., 2017)",
    data="pairs",
    default=Variant(
        networks=UNET_PATCHGAN,
        objective=PIX2PIX_LOSS,
        presets=presets(
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
        min_steps=100,  # synthetic-facades: 64 steps already reach 17.4 dB validation PSNR (docs/benchmarks.md)
        # 50 and 100 pairs, 3 seeds: validation L1 2% lower than none for every seed; ada no different from none
        small_folders="color,translation,cutout",
    ),
)
