"""ganctl translate"""

from __future__ import annotations

from pathlib import Path

import typer

from ganctl.cli import ui
from ganctl.core import seeds

EXAMPLES = """
Examples:

  ganctl translate --write-example labels.png   (a label map to try it on)

  ganctl translate labels.png -o facade.png

  ganctl translate --pretrained facades_label2photo labels.png -o photo.png

  ganctl translate maps/ -o photos/ --run maps        (every image in the folder)

  ganctl translate 'scans/*.tif' -o out/              (a glob; quoted, or several paths)

  ganctl translate aerial.jpg --tile -o out.png       (at its own resolution, in tiles)

  ganctl translate clip.mp4 -o clip_out.mp4           (a video, frame by frame, audio kept)

  ganctl translate labels.png -o out.png --mode eval  (deterministic network)
"""

def translate(
    ctx: typer.Context,
    source: list[str] = typer.Argument(None, metavar="SOURCE...", help="An image, a video (mp4, mov, webm, mkv, animated GIF), a folder, a glob ('scans/*.tif') or a .txt list of paths; several paths are a list.", show_default=False),
    output: str = typer.Option(None, "--output", "-o", help="Output file for one input; the folder for several (default: beside SOURCE, SOURCE_translated.png, .mp4, or SOURCE_translated/)."),
    recursive: bool = typer.Option(False, "--recursive", "-R", help="With a folder: its subfolders too (the output mirrors the tree)."),
    tile: bool = typer.Option(False, "--tile", help="Translate at the image's own resolution in overlapping tiles of the training size (any size, bounded memory)."),
    overlap: int = typer.Option(None, "--overlap", help="With --tile: the least overlap of neighbouring tiles in pixels (default: a quarter of a tile).", show_default=False),
    mode: str = typer.Option("paper", "--mode", help="paper: dropout and batch statistics at test time, as the paper and the official test script; eval: the deterministic network."),
    seed: int = typer.Option(0, "--seed", "-s", callback=seeds.option, help="Seed for the dropout of --mode paper (same seed, same output)."),
    size: int = typer.Option(None, "--size", help="Working resolution (a multiple of 256 for U-Net-256) (default: each side rounded to the nearest multiple)."),
    keep_size: bool = typer.Option(False, "--keep-size", help="Write still images at the working resolution, as the generator made them, instead of resized back to the input's (as the official test.py writes them; videos keep their size)."),
    run: str = typer.Option(None, "--run", "-r", help="pix2pix or cyclegan run name or folder (default: the newest run of those that translate).", rich_help_panel="Model"),
    model: str = typer.Option(None, "--model", "-m", help="pix2pix or cyclegan: the newest run of that family (default: the newest of either).", rich_help_panel="Model"),
    direction: str = typer.Option(None, "--direction", help="AtoB or BtoA: which of a CycleGAN's two generators (default: AtoB).", rich_help_panel="Model"),
    checkpoint: Path = typer.Option(None, "--checkpoint", "-c", help="A generator .safetensors file, checkpoint folder or run folder.", rich_help_panel="Model"),
    pretrained: str = typer.Option(None, "--pretrained", "-p", help="A pretrained model in the store (see 'ganctl download').", rich_help_panel="Model"),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or mps.", rich_help_panel="Hardware"),
    precision: str = typer.Option("auto", "--precision", help="auto (bf16 where the hardware runs it natively), fp32 or bf16 (fp16 on GPUs).", rich_help_panel="Hardware"),
    batch: int = typer.Option(8, "--batch", help="Images, frames or tiles run together (the output does not depend on it).", rich_help_panel="Hardware"),
    max_pixels: int = typer.Option(4096 * 4096, "--max-pixels",  # inference.TRANSLATE_MAX_PIXELS (no torch import here)
                                   help="Refuse a working resolution above this many pixels (the full U-Net needs about 400 bytes a pixel); --size works at a lower one.", rich_help_panel="Hardware"),
    write_example: Path = typer.Option(None, "--write-example", help="Write a label map to try translate on (from synthetic-facades' validation split) to this file, and exit.", show_default=False),
) -> None:
    """Translate images and videos with a pix2pix generator (for example label maps to photos).

    The output has the input's resolution: the image is resized to a size the U-Net takes, and
    the result back; with --tile it is translated at its own scale in tiles. Grayscale, palette
    and transparent images are converted first.
    """
    from ganctl.use import translation

    if write_example is not None:
        if source:
            raise typer.BadParameter("writes a label map and translates nothing: give it without SOURCE", param_hint="'--write-example'")
        ui.result(translation.write_example(write_example))
        return
    if not source:
        ctx.fail("Missing argument 'SOURCE...'.")
    try:
        out = translation.translate(source, output=output, mode=mode, seed=seed, size=size, run=run, checkpoint=checkpoint,
                                    pretrained=pretrained, device=device, max_pixels=max_pixels, say=ui.info,
                                    progress=ui.ItemProgress, recursive=recursive, tile=tile, overlap=overlap,
                                    keep_size=keep_size,
                                    batch=batch, precision=precision, model=model, direction=direction)
    except translation.PartialError as e:  # what was written is still the result; the error line follows
        ui.result(e.output)
        raise
    ui.result(out)


def register(app: typer.Typer) -> None:
    app.command(epilog=EXAMPLES, rich_help_panel="Generate")(translate)
