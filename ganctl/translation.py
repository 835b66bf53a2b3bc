"""``ganctl translate`` as a library function: an image or a folder of images through a pix2pix
generator, from the options to the path written (the CLI parses, calls it, and prints the path)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ganctl import generators
from ganctl.errors import GanctlError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
FAMILY = "pix2pix"


def inputs(source: Path) -> list[Path]:
    """The images to translate: ``source`` itself, or the images under a folder."""
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


def pair_warning(path: Path, img) -> str | None:
    """A warning when ``img`` looks like a side-by-side A|B pair (twice as wide as high, as the
    images of a pix2pix dataset), which translates as one picture rather than its input half."""
    if img.width != 2 * img.height:
        return None
    return (f"warning: {path} is {img.width}x{img.height}, twice as wide as high: it looks like an A|B pair from a "
            "pix2pix dataset, and is translated whole. Give the input half alone (crop it), or try "
            "'ganctl translate --write-example labels.png' for a label map")


def write_example(path: Path, dataset: str = "synthetic-facades") -> Path:
    """Write a label map to translate: the label-map half of the first validation pair of
    synthetic-facades (what a pix2pix run on it takes as input), drawn here, no store needed."""
    from PIL import Image

    from ganctl import images
    from ganctl.data import catalog
    from ganctl.data.synthetic_facades import synthetic_facades

    entry = catalog.get(dataset)
    train = entry.expected_counts["train"]  # pairs are numbered across splits: validation comes next
    _, labels = synthetic_facades(1, entry.native_size, seed=0, start=train)
    img = Image.fromarray(labels[0].permute(1, 2, 0).contiguous().numpy(), "RGB")
    return images.save_image(img, Path(path))


class _NoProgress:
    def __init__(self, total: int, description: str): ...
    def __enter__(self): return self
    def __exit__(self, *exc): ...
    def advance(self) -> None: ...
    def message(self, text: str) -> None: ...


def translate(source: Path, *, output: str | None = None, mode: str = "paper", seed: int = 0, size: int | None = None,
              run: str | None = None, checkpoint: Path | None = None, pretrained: str | None = None,
              device: str = "auto", max_pixels: int = 4096 * 4096, say: Callable[[str], None] | None = None,
              progress=_NoProgress) -> Path:
    """Translate ``source`` (an image, or a folder of images, searched recursively); returns the
    image or folder written. ``progress(total, description)`` is a context manager with
    ``advance()`` and ``message(text)`` (the CLI's bar)."""
    files = inputs(source)  # a missing input is answered before torch is imported
    from ganctl import images, inference

    say = say or (lambda text: None)
    if mode not in inference.TRANSLATE_MODES:
        raise GanctlError(f"unknown --mode {mode!r}: use paper or eval")
    inference.check_translate_pixels(1, 1, size, max_pixels)  # --size and --max-pixels agree
    folder = source.is_dir()
    if not folder:
        first = _open(files[0], size, max_pixels)  # an unreadable or huge input fails before the model is loaded
        warning = pair_warning(files[0], first)
        if warning:
            say(warning)
    out = Path(output) if output else source.parent / (source.name + "_translated" if folder else source.stem + "_translated.png")
    if not folder and (out.is_dir() or (output or "").endswith(("/", "\\"))):
        out = out / (source.stem + ".png")
    if folder and out.exists() and not out.is_dir():
        raise GanctlError(f"{out} is a file: with a folder of inputs, -o names a folder")
    gen = generators.load(FAMILY, device, say=say, run=run, checkpoint=checkpoint, pretrained=pretrained,
                          only_pretrained=True)
    new = not (out if folder else out.parent).exists()  # made by the writer, and said, as sample does
    if not folder:
        images.save_image(inference.translate_image(gen, first, mode, seed, size, max_pixels), out)
        if new:
            say(f"created folder {out.parent}")
        return out
    failed, warned = [], False
    with progress(len(files), "translate") as bar:
        for path in files:
            target = out / path.relative_to(source).with_suffix(".png")
            try:
                img = _open(path, size, max_pixels)
            except GanctlError as e:
                failed.append(path)
                bar.message(f"warning: skipped {e}")
                bar.advance()
                continue
            warning = None if warned else pair_warning(path, img)
            if warning:  # once: a folder of pairs would repeat it for every file
                bar.message(warning)
                warned = True
            images.save_image(inference.translate_image(gen, img, mode, seed, size, max_pixels), target)
            bar.advance()
    say(f"translated {len(files) - len(failed)} of {len(files)} images into {'a new folder, ' if new else ''}{out}")
    if failed:
        raise GanctlError(f"{len(failed)} file(s) could not be read: {', '.join(str(p) for p in failed[:5])}{' ...' if len(failed) > 5 else ''}")
    return out
