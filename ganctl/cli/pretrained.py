"""ganctl import, ganctl export: pix2pix generators to and from the official .pth layout; any generator
to ONNX or a torch.export program (ganctl.export)"""

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

  ganctl export pix2pix/facades --format onnx -o facades.onnx      (onnxruntime, any ONNX runtime)

  ganctl export pix2pix/facades --format onnx --mode paper -o facades-paper.onnx

  ganctl export dcgan/digits --format pt2 -o digits.pt2            (torch.export.load, no ganctl needed)

  ganctl export --checkpoint runs/pix2pix/facades/checkpoints/epoch_0200 -o net_G.pth

  ganctl export --pretrained my-facades -o net_G.pth
"""

def import_(
    path: Path = typer.Argument(..., help="A generator .pth saved by the official pix2pix code (latest_net_G.pth)."),
    name: str = typer.Option(..., "--name", "-n", help="Name in the store, for 'translate --pretrained NAME'."),
    direction: str = typer.Option(None, "--direction", help="AtoB or BtoA: the direction it was trained for, as in the official --direction."),
    force: bool = typer.Option(False, "--force", help="Replace a pretrained model of the same name."),
) -> None:
    """Import a pix2pix or CycleGAN generator saved by the official code (weights only; no code in it is run)."""
    from ganctl import pretrained, pretrained_install
    from ganctl.cyclegan_official import summary as architecture_summary

    dest = pretrained_install.import_file(path, name, direction=direction, force=force)
    meta = pretrained.read_meta(dest)
    ui.info(f"imported {path.name} as {name}: {architecture_summary(meta['generator'])}, direction {meta['direction'] or 'not given'}")
    ui.result(dest)


def export(
    run: str = typer.Argument(None, help="Run to export: NAME, FAMILY/NAME or a run folder (its newest checkpoint)."),
    output: str = typer.Option(..., "--output", "-o", help="The file to write; a folder (or a path ending in /) gets latest_net_G.pth, generator.onnx or generator.pt2."),
    fmt: str = typer.Option("official", "--format", "-f", help="official: a pix2pix .pth for the official code; onnx: an ONNX model (any family); pt2: a torch.export program (any family)."),
    mode: str = typer.Option(None, "--mode", help="onnx and pt2 of pix2pix: eval (default: stored batch-norm statistics, no dropout) or paper (batch norm with the input's own statistics, dropout at its expectation)."),
    checkpoint: Path = typer.Option(None, "--checkpoint", "-c", help="A generator.safetensors file or checkpoint folder, instead of RUN."),
    pretrained_name: str = typer.Option(None, "--pretrained", "-p", help="A pretrained model in the store, instead of RUN."),
) -> None:
    """Write a generator to use outside ganctl: ONNX or a torch.export program, checked against PyTorch; or a pix2pix generator as an official latest_net_G.pth."""
    from ganctl import generators
    from ganctl.export import options

    options.check_options(fmt, mode)  # before any file is read
    src = generators.choose(None, run=run, checkpoint=checkpoint, pretrained=pretrained_name, required=True).path
    if fmt != "official":
        from ganctl.export import exporter

        done = exporter.export(src, fmt, output, mode or "eval")
        shapes = ", ".join("x".join(map(str, s)) for s in done.checks)
        ui.info(f"verified: max abs difference {done.max_diff:.2e} from PyTorch (limit {options.TOLERANCE:g}) "
                f"on inputs {shapes}")
        ui.result(done.path)
        return
    from ganctl import pretrained_export

    out, meta = pretrained_export.export(src, output)
    ui.info(f"official test.py options: {pretrained_export.official_options(meta)}")
    depth, blocks = meta["generator"].get("num_downs"), meta["generator"].get("n_blocks")
    if depth is not None and depth not in (7, 8):
        ui.warn(f"the official --netG offers only unet_128 and unet_256; this is unet_{2**depth}: build "
                f"UnetGenerator(num_downs={depth}) in your own code to load it")
    if blocks is not None and blocks not in (6, 9):
        ui.warn(f"the official --netG offers only resnet_6blocks and resnet_9blocks; this has {blocks} blocks: build "
                f"ResnetGenerator(n_blocks={blocks}) in your own code to load it")
    ui.result(out)


def register(app: typer.Typer) -> None:
    app.command(name="import", epilog=IMPORT_EXAMPLES, rich_help_panel="Models and data")(import_)
    app.command(epilog=EXPORT_EXAMPLES, rich_help_panel="Models and data")(export)
