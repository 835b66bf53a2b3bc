"""ganctl translate"""

from __future__ import annotations

from pathlib import Path

import typer

from ganctl import seeds
from ganctl.cli import ui

EXAMPLES = """
Examples:

  ganctl translate facade_labels.png -o out.png

  ganctl translate --pretrained facades_label2photo labels.png -o photo.png

  ganctl translate maps/ -o photos/ --run maps        (every image in the folder)

  ganctl translate labels.png -o out.png --mode eval  (deterministic network)
"""

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}


def _model(run: str | None, checkpoint: Path | None, pretrained_name: str | None, device: str):
    """The generator to use: --run, --checkpoint, --pretrained, else the newest pix2pix run, else
    the only pretrained model in the store."""
    from ganctl import inference, runtime, store
    from ganctl.errors import GanctlError

    if sum(x is not None for x in (run, checkpoint, pretrained_name)) > 1:
        raise GanctlError("give one of --run, --checkpoint and --pretrained")
    dev = runtime.resolve_device(device)
    if checkpoint is not None:
        return inference.load_generator(checkpoint, dev, family="pix2pix")
    if pretrained_name is not None:
        from ganctl import pretrained

        gen = inference.load_generator(pretrained.generator_path(pretrained_name), dev, family="pix2pix")
        ui.info(f"using pretrained model {gen.meta.get('pretrained', pretrained_name)}")
        return gen
    info = store.find_run(run, "pix2pix") if run else store.newest_run("pix2pix")
    if info is not None:
        gen = inference.load_generator(inference.generator_file(info), dev, family="pix2pix")
        how = "" if run else "newest run, "
        ui.info(f"using run {info.id} ({how}{gen.path.parent.name}, {gen.meta.get('direction') or 'AtoB'})")
        return gen
    from ganctl import pretrained

    found = pretrained.installed()
    if len(found) == 1:
        gen = inference.load_generator(found[0]["path"], dev, family="pix2pix")
        ui.info(f"no pix2pix run in the store: using the pretrained model {found[0]['name']}")
        return gen
    if found:
        names = ", ".join(f["name"] for f in found)
        raise GanctlError(f"no pix2pix run in the store and several pretrained models ({names}): choose one with --pretrained NAME")
    raise GanctlError(
        "no pix2pix model in the store: train one ('ganctl train pix2pix --dataset synthetic-facades') "
        "or download a pretrained one ('ganctl download facades_label2photo')"
    )


def _inputs(source: Path) -> list[Path]:
    from ganctl.errors import GanctlError

    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
        if not files:
            raise GanctlError(f"{source} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        return files
    if not source.exists():
        raise GanctlError(f"input {source} does not exist")
    return [source]


def _open(path: Path, size: int | None, max_pixels: int):
    """Decode one input; its pixel count is checked from the header first, so a huge image is
    refused before it takes memory (with --size, only images too large to decode safely are)."""
    from ganctl import images, inference

    if size is None:
        return images.open_image(path, max_pixels=max_pixels, hint=inference.TRANSLATE_SIZE_HINT)
    return images.open_image(path, hint=": shrink it first")


def translate(
    source: Path = typer.Argument(..., help="An image, or a folder of images (searched recursively)."),
    output: str = typer.Option(None, "--output", "-o", help="Output image; a folder when SOURCE is a folder (default: SOURCE_translated.png or SOURCE_translated/)."),
    mode: str = typer.Option("paper", "--mode", help="paper: dropout and batch statistics at test time, as the paper and the official test script; eval: the deterministic network."),
    seed: int = typer.Option(0, "--seed", "-s", callback=seeds.option, help="Seed for the dropout of --mode paper (same seed, same output)."),
    size: int = typer.Option(None, "--size", help="Working resolution (a multiple of 256 for U-Net-256) (default: each side rounded to the nearest multiple)."),
    run: str = typer.Option(None, "--run", "-r", help="pix2pix run name or folder (default: the newest pix2pix run).", rich_help_panel="Model"),
    checkpoint: Path = typer.Option(None, "--checkpoint", "-c", help="A generator .safetensors file, checkpoint folder or run folder.", rich_help_panel="Model"),
    pretrained: str = typer.Option(None, "--pretrained", "-p", help="A pretrained model in the store (see 'ganctl download').", rich_help_panel="Model"),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or mps.", rich_help_panel="Hardware"),
    max_pixels: int = typer.Option(4096 * 4096, "--max-pixels",  # inference.TRANSLATE_MAX_PIXELS (no torch import here)
                                   help="Refuse a working resolution above this many pixels (the full U-Net needs about 400 bytes a pixel); --size works at a lower one.", rich_help_panel="Hardware"),
) -> None:
    """Translate images with a pix2pix generator (for example label maps to photos).

    The output has the input's resolution: the image is resized to a size the U-Net takes, and
    the result back. Grayscale, palette and transparent images are converted first.
    """
    from ganctl import images, inference
    from ganctl.errors import GanctlError

    if mode not in inference.TRANSLATE_MODES:
        raise GanctlError(f"unknown --mode {mode!r}: use paper or eval")
    inference.check_translate_pixels(1, 1, size, max_pixels)  # --size and --max-pixels agree
    files = _inputs(source)
    folder = source.is_dir()
    if not folder:
        first = _open(files[0], size, max_pixels)  # an unreadable or huge input fails before the model is loaded
    out = Path(output) if output else source.parent / (source.name + "_translated" if folder else source.stem + "_translated.png")
    if not folder and (out.is_dir() or (output or "").endswith(("/", "\\"))):
        out = out / (source.stem + ".png")
    if folder and out.exists() and not out.is_dir():
        raise GanctlError(f"{out} is a file: with a folder of inputs, -o names a folder")
    gen = _model(run, checkpoint, pretrained, device)
    if not folder:
        images.save_image(inference.translate_image(gen, first, mode, seed, size, max_pixels), out)
        ui.result(out)
        return
    failed = []
    with ui.ItemProgress(len(files), "translate") as progress:
        for path in files:
            target = out / path.relative_to(source).with_suffix(".png")
            try:
                img = _open(path, size, max_pixels)
            except GanctlError as e:
                failed.append(path)
                progress.message(f"warning: skipped {e}")
                progress.advance()
                continue
            images.save_image(inference.translate_image(gen, img, mode, seed, size, max_pixels), target)
            progress.advance()
    ui.info(f"translated {len(files) - len(failed)} of {len(files)} images into {out}")
    if failed:
        raise GanctlError(f"{len(failed)} file(s) could not be read: {', '.join(str(p) for p in failed[:5])}{' ...' if len(failed) > 5 else ''}")
    ui.result(out)


def register(app: typer.Typer) -> None:
    app.command(epilog=EXAMPLES, rich_help_panel="Generate")(translate)
