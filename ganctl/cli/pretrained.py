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

  ganctl import checkpoints/horse2zebra/latest_net_G_B.pth --name zebra2horse     (a CycleGAN's G_B: BtoA)

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

  ganctl export cyclegan/horse2zebra -o checkpoints/h2z/       (latest_net_G_A.pth and latest_net_G_B.pth)

  ganctl export cyclegan/horse2zebra --format onnx --direction BtoA -o zebra2horse.onnx
"""

def import_(
    path: Path = typer.Argument(..., help="A generator .pth saved by the official pix2pix or CycleGAN code (latest_net_G.pth; latest_net_G_A.pth, latest_net_G_B.pth)."),
    name: str = typer.Option(..., "--name", "-n", help="Name in the store, for 'translate --pretrained NAME'."),
    direction: str = typer.Option(None, "--direction", help="AtoB or BtoA: the direction it was trained for, as in the official --direction (a CycleGAN's *_net_G_A.pth: AtoB, *_net_G_B.pth: BtoA, unless given)."),
    force: bool = typer.Option(False, "--force", help="Replace a pretrained model of the same name."),
) -> None:
    """Import a pix2pix or CycleGAN generator saved by the official code (weights only; no code in it is run)."""
    from ganctl.models.cyclegan_official import summary as architecture_summary
    from ganctl.store import pretrained, pretrained_install

    dest = pretrained_install.import_file(path, name, direction=direction, force=force)
    meta = pretrained.read_meta(dest)
    ui.info(f"imported {path.name} as {name}: {architecture_summary(meta['generator'])}, direction {meta['direction'] or 'not given'}")
    ui.result(dest)


def export(
    run: str = typer.Argument(None, help="Run to export: NAME, FAMILY/NAME or a run folder (its newest checkpoint)."),
    output: str = typer.Option(..., "--output", "-o", help="The file to write; a folder (or a path ending in /) gets latest_net_G.pth (a CycleGAN run: latest_net_G_A.pth and latest_net_G_B.pth), generator.onnx or generator.pt2."),
    fmt: str = typer.Option("official", "--format", "-f", help="official: a pix2pix or CycleGAN .pth for the official code; onnx: an ONNX model (any family); pt2: a torch.export program (any family)."),
    mode: str = typer.Option(None, "--mode", help="onnx and pt2 of pix2pix and cyclegan: eval (default: stored batch-norm statistics, no dropout) or paper (batch norm with the input's own statistics, dropout at its expectation)."),
    checkpoint: Path = typer.Option(None, "--checkpoint", "-c", help="A generator.safetensors file or checkpoint folder, instead of RUN."),
    pretrained_name: str = typer.Option(None, "--pretrained", "-p", help="A pretrained model in the store, instead of RUN."),
    direction: str = typer.Option(None, "--direction", help="cyclegan: AtoB (G_A) or BtoA (G_B). Default: onnx and pt2 export AtoB; official writes both generators to a folder."),
) -> None:
    """Write a generator to use outside ganctl: ONNX or a torch.export program, checked against PyTorch; or a pix2pix or CycleGAN generator in the official .pth layout."""
    from ganctl.core.errors import GanctlError
    from ganctl.export import options
    from ganctl.use import generators

    options.check_options(fmt, mode)  # before any file is read
    if direction is not None and direction not in ("AtoB", "BtoA"):
        raise GanctlError(f"--direction must be AtoB or BtoA (got {direction!r})")
    if direction is not None and pretrained_name is not None:
        raise GanctlError("--direction picks one of a run's generators; a pretrained model translates one way: leave it out")
    if fmt == "official" and pretrained_name is None:
        _official_set(generators.choose_each(None, run=run, checkpoint=checkpoint, direction=direction, required=True),
                      output)
        return
    src = generators.choose(None, run=run, checkpoint=checkpoint, pretrained=pretrained_name, required=True,
                            direction=direction).path
    if fmt != "official":
        from ganctl.export import exporter

        done = exporter.export(src, fmt, output, mode or "eval")
        shapes = ", ".join("x".join(map(str, s)) for s in done.checks)
        ui.info(f"verified: max abs difference {done.max_diff:.2e} from PyTorch (limit {options.TOLERANCE:g}) "
                f"on inputs {shapes}")
        ui.result(done.path)
        return
    _official_one(src, output)


def _official_set(chosen: dict, output: str) -> None:
    """Generators as the official code names them. One of a pix2pix: ``latest_net_G.pth`` in a
    folder (or the file ``-o`` names). Those of a model with a generator each way are named as its
    networks are (``latest_net_G_A.pth``, ``latest_net_G_B.pth``: the names in a CycleGAN
    checkpoints folder, which test.py --model cycle_gan loads, or --model test --model_suffix _A one
    of), so ``-o`` is a folder unless --direction picked one."""
    import os

    from ganctl.core.errors import GanctlError

    out = Path(output).expanduser()
    folder = out.is_dir() or str(output).endswith(("/", os.sep))
    if len(chosen) > 1 and not folder:
        if out.exists() or out.suffix:
            names = ", ".join(f"latest_net_{_network(c.path, w)}.pth" for w, c in chosen.items())
            raise GanctlError(f"-o {output} names a file, and this model has a generator each way: give -o a folder "
                              f"(it gets {names}), or --direction for one of them")
        folder = True
    for way, choice in chosen.items():
        name = _network(choice.path, way)
        to = out / f"latest_net_{name or 'G'}.pth" if folder else out
        # test.py --model test loads latest_net_G{--model_suffix}.pth: say the suffix that finds this file
        _official_one(choice.path, to, suffix=name.partition("_")[2] if folder else "")


def _network(path: Path, way: str) -> str:
    """The network name of the generator ``path`` of a set with one each way (CycleGAN: G_A), or ''."""
    from ganctl.families import registry
    from ganctl.store import genspec

    try:
        nets = registry.networks(genspec.read_file(path)["arch"])
    except KeyError:  # an arch this ganctl does not know: the export names what it cannot write
        return ""
    return nets.generator_for(way)[1] if len(nets.uses) > 1 else ""


def _official_one(src: Path, output, suffix: str = "") -> None:
    from ganctl.export import official

    out, meta = official.export(src, output)
    extra = f" --model_suffix _{suffix}" if suffix else ""
    ui.info(f"{out.name}: official test.py options: {official.official_options(meta)}{extra}")
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
