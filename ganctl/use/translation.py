"""``ganctl translate`` as a library function: images, folders, globs, lists and videos through a
pix2pix generator, from the options to the path written (the CLI parses, calls it, and prints the
path). What is read and where it goes: :mod:`ganctl.use.translate_sources`; batches: :class:`Translator`
here; tiles: :mod:`ganctl.use.translate_tiles`; videos: :mod:`ganctl.use.translate_video`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from ganctl.core.errors import GanctlError
from ganctl.families import registry
from ganctl.store import layout
from ganctl.use import generators
from ganctl.use.translate_sources import IMAGE_SUFFIXES  # noqa: F401  (where it was)

FAMILY = "pix2pix"  # what translate uses with nothing to go by: no run of any translating family
# --tile works at the image's own scale in tiles, so --max-pixels (the working resolution) does not
# apply; this is the decoding limit instead: 1 Gpx is 3 GB as 8-bit RGB
TILE_MAX_PIXELS = 2**30


class PartialError(GanctlError):
    """Some inputs were skipped or are incomplete; the others were written to ``output``."""

    def __init__(self, message: str, output: Path):
        super().__init__(message)
        self.output = output


def _open(path: Path, size: int | None, max_pixels: int, tile: bool = False):
    """Decode one input; its pixel count is checked from the header first, so a huge image is
    refused before it takes memory (with --size, only images too large to decode safely are)."""
    from ganctl.core import images
    from ganctl.use import inference

    if tile:
        return images.open_image(path, max_pixels=TILE_MAX_PIXELS, hint=": above what --tile holds in memory (3 GB as 8-bit RGB)")
    if size is None:
        return images.open_image(path, max_pixels=max_pixels, hint=inference.TRANSLATE_SIZE_HINT + ", or translate it in tiles at its own resolution with --tile")
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

    from ganctl.core import images
    from ganctl.data import catalog
    from ganctl.data.synthetic_facades import synthetic_facades

    entry = catalog.get(dataset)
    train = entry.expected_counts["train"]  # pairs are numbered across splits: validation comes next
    _, labels = synthetic_facades(1, entry.native_size, seed=0, start=train)
    img = Image.fromarray(labels[0].permute(1, 2, 0).contiguous().numpy(), "RGB")
    return images.save_image(img, Path(path))


def family_for(model: str | None, run: str | None, from_file: bool, direction: str | None) -> str | None:
    """The translating family ``translate`` uses (torch-free): ``--model``, else the run's, else
    the family of the newest run of those that translate (with ``--direction``: that translate
    both ways); None when a ``--checkpoint`` or ``--pretrained`` file says it itself."""
    translating = [f for f in registry.FAMILIES.values() if f.translates]
    if model is not None:
        fam = registry.get(model)
        if not fam.translates:
            raise GanctlError(f"{fam.name} generates images from noise: use 'ganctl sample {fam.name}'; translate "
                              f"takes {' or '.join(f.name for f in translating)}")
        return fam.name
    if run is not None:
        found = []
        for fam in translating:  # a name that also names a run of an image family is still this one
            try:
                found.append(layout.find_run(run, fam.name))
            except GanctlError:
                continue
        if len(found) > 1:
            raise GanctlError(f"run name {run!r} is ambiguous ({', '.join(r.id for r in found)}): give it as FAMILY/NAME")
        info = found[0] if found else layout.find_run(run)  # none that translates: what is it, if anything?
        if not registry.get(info.family).translates:
            raise GanctlError(f"run {info.id} generates images from noise: use 'ganctl sample {info.family} --run {info.name}'")
        return info.family
    if from_file:
        return None
    if direction is not None:
        translating = [f for f in translating if len(f.default.networks.uses) > 1] or translating
    runs = [(r, f.name) for f in translating if (r := layout.newest_run(f.name)) is not None]
    if not runs:
        return FAMILY if any(f.name == FAMILY for f in translating) else translating[0].name
    newest = max(runs, key=lambda rf: (rf[0].path / "config.json").stat().st_mtime_ns)
    return newest[1]


class _NoProgress:
    def __init__(self, total: int, description: str): ...
    def __enter__(self): return self
    def __exit__(self, *exc): ...
    def advance(self, n: int = 1) -> None: ...
    def set_total(self, total: int) -> None: ...
    def message(self, text: str) -> None: ...


PREFETCH = 4  # batches of images decoded ahead of the generator
WRITE_AHEAD = 2  # batches of results waiting to be written before the generator waits for them
# zlib level of the PNGs translate writes: level 1 writes a generator's 1024x768 output 5x faster
# than Pillow's default 6 (100 ms against 530 ms on one core) for a file 15% larger; the pixels are
# the same. On two cores the default level took more time than the generator (docs/benchmarks.md).
PNG_LEVEL = 1


def translate(source: str | Path | Sequence[str | Path], *, output: str | None = None, mode: str = "paper", seed: int = 0,
              size: int | None = None, run: str | None = None, checkpoint: Path | None = None, pretrained: str | None = None,
              device: str = "auto", max_pixels: int = 4096 * 4096, say: Callable[[str], None] | None = None,
              progress=_NoProgress, recursive: bool = False, tile: bool = False, overlap: int | None = None,
              batch: int = 8, precision: str = "auto", workers: int = 2, model: str | None = None,
              direction: str | None = None, keep_size: bool = False) -> Path:
    """Translate ``source`` (an image, video, folder, glob or list of paths; several paths are a
    list) and return the file or folder written. ``progress(total, description)`` is a context
    manager with ``advance(n)``, ``set_total(n)`` and ``message(text)`` (the CLI's bar). Inputs that
    could not be read, or were cut short, are said in one line each and the rest is translated;
    then a :class:`PartialError` names them. ``keep_size``: still images are written at the working
    resolution, as the generator made them, instead of resized back to the input's (videos and
    animated GIFs keep their size)."""
    from ganctl.use import translate_sources

    sources = [str(source)] if isinstance(source, (str, Path)) else [str(s) for s in source]
    job = translate_sources.resolve(sources, output, recursive)  # before torch is imported
    if direction is not None and direction not in ("AtoB", "BtoA"):
        raise GanctlError(f"--direction must be AtoB or BtoA (got {direction!r})")
    family = family_for(model, run, checkpoint is not None or pretrained is not None, direction)
    say = say or (lambda text: None)
    if mode not in ("paper", "eval"):
        raise GanctlError(f"unknown --mode {mode!r}: use paper or eval")
    if tile and size is not None:
        raise GanctlError("--tile translates at the image's own resolution: give --tile or --size, not both")
    if tile and keep_size:
        raise GanctlError("--tile writes the image at its own resolution: give --tile or --keep-size, not both")
    if batch < 1:
        raise GanctlError(f"--batch must be at least 1 (got {batch})")
    from ganctl.use import inference

    inference.check_translate_pixels(1, 1, None if tile else size, max_pixels)  # --size and --max-pixels agree
    note = len(sources) == 1 and translate_sources.subfolders_note(Path(sources[0]), recursive)
    if note:
        say(note)
    problems = list(job.skipped)
    for line in job.skipped:
        say(f"warning: skipped {line}")
    first = None
    if job.single and job.items[0].kind == "image":
        first = _open(job.items[0].input, size, max_pixels, tile)  # an unreadable or huge input fails before the model loads
        if not tile and (warning := pair_warning(job.items[0].input, first)):
            say(warning)
    if job.single and job.items[0].kind == "video":
        from ganctl.use import translate_video

        translate_video.import_av()  # a missing PyAV is said before the model loads
    gen = generators.load(family, device, say=say, run=run, checkpoint=checkpoint, pretrained=pretrained,
                          only_pretrained=True, direction=direction)
    made = gen.meta.get("direction")
    if direction is not None and made and made != direction:
        raise GanctlError(f"{gen.path} translates {made}, not {direction}: leave out --direction, or choose another model")
    from ganctl.use.translator import Translator

    tr = Translator(gen, mode, seed, size, max_pixels, precision)
    folder = job.output if not job.single else job.output.parent
    new = not folder.exists()  # made by the writer, and said, as sample does
    if job.single:
        item = job.items[0]
        if item.kind == "image":
            holder, first = [first], None  # _one_image drops the decoded image once it has its pixels
            _one_image(tr, item, holder, tile, overlap, batch, progress, keep_size)
        else:
            problems += _one_video(tr, item, batch, progress)
        if new:
            say(f"created folder {folder}")
    else:
        problems += _many(tr, job.items, size, max_pixels, tile, overlap, batch, workers, progress, keep_size)
        done = len(job.items) + len(job.skipped) - len(problems)
        what = "images" if all(i.kind == "image" for i in job.items) else "inputs"
        say(f"translated {done} of {len(job.items) + len(job.skipped)} {what} into {'a new folder, ' if new else ''}{job.output}")
    if problems:
        names = "; ".join(problems[:3]) + (" ..." if len(problems) > 3 else "")
        raise PartialError(f"{len(problems)} input(s) skipped or incomplete ({names}); the rest is in {job.output}", job.output)
    return job.output


def _one_image(tr, item, holder: list, tile: bool, overlap: int | None, batch: int, progress,
               keep_size: bool = False) -> None:
    from ganctl.core import images

    img = holder.pop()
    if tile:
        n = tr.tiles(img.width, img.height, overlap)
        pixels = tr.pixels(img)
        del img  # the PIL image (4 bytes a pixel) goes; the uint8 pixels stay
        with progress(n, "tiles") as bar:
            out = tr.tiled(pixels, overlap, batch, advance=bar.advance)
    else:
        x, size = tr.prepare(img)
        out = tr.finish(tr.run([x])[0], None if keep_size else size)
    images.save_image(out, item.output, png_level=PNG_LEVEL)


def _one_video(tr, item, batch: int, progress) -> list[str]:
    from ganctl.use import translate_video

    lines: list[str] = []
    with progress(0, "frames") as bar:
        def warn(text: str) -> None:
            lines.append(text.removeprefix("warning: "))
            bar.message(text)

        if item.kind == "gif":
            translate_video.translate_gif(item.input, item.output, tr.images, batch=batch, advance=bar.advance, set_total=bar.set_total)
        else:
            translate_video.translate_video(item.input, item.output, tr, batch=batch, warn=warn,
                                            advance=bar.advance, set_total=bar.set_total)
    return lines


def _many(tr, items, size, max_pixels, tile, overlap, batch, workers, progress, keep_size: bool = False) -> list[str]:
    """Every item of a folder, glob or list: images in batches, videos one after another. Returns
    the problems, one line each.

    Three stages overlap: ``workers`` threads decode each image and prepare its input (resize,
    to float), the generator runs a batch in this thread, and ``workers`` other threads resize each
    result back and write it. Decoding, resizing and PNG encoding are PIL and numpy, which release
    the GIL; the queues between the stages are bounded (``PREFETCH`` and ``WRITE_AHEAD`` batches), so
    memory does not grow with the folder."""
    import collections
    from concurrent.futures import ThreadPoolExecutor

    from ganctl.core import images

    problems: list[str] = []
    warned = False
    with (progress(len(items), "images") as bar, ThreadPoolExecutor(max(1, workers)) as readers,
          ThreadPoolExecutor(max(1, workers)) as writers):
        def skip(line: str) -> None:
            problems.append(line)
            bar.message(f"warning: skipped {line}")
            bar.advance()

        def load(item):
            """(item, what the generator takes or the error, a pair warning or None)."""
            try:
                img = _open(item.input, size, max_pixels, tile)
            except GanctlError as e:
                return item, e, None
            warning = None if tile else pair_warning(item.input, img)
            if tile:
                return item, img, None
            try:
                return item, tr.prepare(img), warning
            except GanctlError as e:
                return item, GanctlError(f"{item.input}: {e}"), warning

        def write(item, y, size) -> None:
            images.save_image(tr.finish(y, None if keep_size else size), item.output, png_level=PNG_LEVEL)

        pending: collections.deque = collections.deque()
        writes: collections.deque = collections.deque()
        queue = iter([i for i in items if i.kind == "image"])

        def fill() -> None:
            while len(pending) < PREFETCH * batch and (item := next(queue, None)) is not None:
                pending.append(readers.submit(load, item))

        fill()
        while pending:
            group = []
            while pending and len(group) < batch:
                item, got, warning = pending.popleft().result()
                fill()
                if isinstance(got, GanctlError):
                    skip(str(got))
                    continue
                if warning and not warned:
                    bar.message(warning)  # once: a folder of pairs would repeat it for every file
                    warned = True
                group.append((item, got))
            if tile:
                for item, img in group:
                    writes.append(writers.submit(images.save_image, tr.tiled(img, overlap, batch), item.output, png_level=PNG_LEVEL))
                    bar.advance()
                continue
            ys = tr.run([x for _, (x, _) in group])
            for (item, (_, size)), y in zip(group, ys, strict=True):
                writes.append(writers.submit(write, item, y, size))
                bar.advance()
            while len(writes) > WRITE_AHEAD * batch:  # the writers are behind: wait for them
                writes.popleft().result()
        while writes:
            writes.popleft().result()
        for item in (i for i in items if i.kind != "image"):
            try:
                lines = _video_in_folder(tr, item, batch, bar)
                problems += lines
                bar.advance()
            except GanctlError as e:
                skip(str(e))
    return problems


def _video_in_folder(tr, item, batch: int, bar) -> list[str]:
    from ganctl.use import translate_video

    lines: list[str] = []

    def warn(text: str) -> None:
        lines.append(text.removeprefix("warning: "))
        bar.message(text)

    if item.kind == "gif":
        translate_video.translate_gif(item.input, item.output, tr.images, batch=batch)
    else:
        translate_video.translate_video(item.input, item.output, tr, batch=batch, warn=warn)
    return lines
