"""ganctl import, ganctl export: pix2pix generators to and from the official .pth layout"""

from __future__ import annotations

from pathlib import Path

import typer

from ganctl.cli import ui

IMPORT_EXAMPLES = """
Examples:

  ganctl import checkpoints/facades/latest_net_G.pth --name my-facades --direction BtoA

  ganctl import sat2map.pth --name sat2map        (an official file downloaded by hand)

  ganctl translate --pretrained my-facades labels.png -o photo.png
"""

EXPORT_EXAMPLES = """
Examples:

  ganctl export pix2pix/facades -o checkpoints/facades_ganctl/     (writes latest_net_G.pth there)

  ganctl export --checkpoint runs/pix2pix/facades/checkpoints/epoch_0200 -o net_G.pth

  ganctl export --pretrained my-facades -o net_G.pth
"""


def import_(
    path: Path = typer.Argument(..., help="A generator .pth saved by the official pix2pix code (latest_net_G.pth)."),
    name: str = typer.Option(..., "--name", "-n", help="Name in the store, for 'translate --pretrained NAME'."),
    direction: str = typer.Option(None, "--direction", help="AtoB or BtoA: the direction it was trained for, as in the official --direction."),
    force: bool = typer.Option(False, "--force", help="Replace a pretrained model of the same name."),
) -> None:
    """Import a pix2pix generator saved by the official code (weights only; no code in it is run)."""
    from ganctl import pretrained, pretrained_install
    from ganctl.pix2pix_official import architecture_summary

    dest = pretrained_install.import_file(path, name, direction=direction, force=force)
    meta = pretrained.read_meta(dest)
    ui.info(f"imported {path.name} as {name}: {architecture_summary(meta['generator'])}, direction {meta['direction'] or 'not given'}")
    ui.result(dest)


def export(
    run: str = typer.Argument(None, help="Run to export: NAME, FAMILY/NAME or a run folder (its newest checkpoint)."),
    output: str = typer.Option(..., "--output", "-o", help="The .pth to write; a folder (or a path ending in /) gets latest_net_G.pth."),
    checkpoint: Path = typer.Option(None, "--checkpoint", "-c", help="A generator.safetensors file or checkpoint folder, instead of RUN."),
    pretrained_name: str = typer.Option(None, "--pretrained", "-p", help="A pretrained model in the store, instead of RUN."),
) -> None:
    """Write a pix2pix generator as an official latest_net_G.pth (for junyanz/pytorch-CycleGAN-and-pix2pix)."""
    from ganctl import generators, pretrained_export

    src = generators.choose(None, run=run, checkpoint=checkpoint, pretrained=pretrained_name, required=True).path
    out, meta = pretrained_export.export(src, output)
    ui.info(f"official test.py options: {pretrained_export.official_options(meta)}")
    depth = meta["generator"]["num_downs"]
    if depth not in (7, 8):
        ui.warn(f"the official --netG offers only unet_128 and unet_256; this is unet_{2**depth}: build "
                f"UnetGenerator(num_downs={depth}) in your own code to load it")
    ui.result(out)


def register(app: typer.Typer) -> None:
    app.command(name="import", epilog=IMPORT_EXAMPLES, rich_help_panel="Models and data")(import_)
    app.command(epilog=EXPORT_EXAMPLES, rich_help_panel="Models and data")(export)
