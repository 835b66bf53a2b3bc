"""``progress.gif``: every epoch's picture (the fixed-noise grid, or pix2pix's validation pairs) as
one animation, each frame captioned with its epoch, written with the one GIF writer
(:func:`ganctl.core.images.save_animation`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw

from ganctl.core import images
from ganctl.core.errors import GanctlError
from ganctl.report.rundata import PROGRESS_GIF, epoch_pictures

MAX_FRAMES = 100  # past this many epochs, evenly spaced ones (the first and the last always)
MAX_SIDE = 640  # larger frames are scaled down: 100 frames of a 256-px pix2pix grid (776x1034) would be ~50 MB
FRAME_MS = 300
LAST_MS = 2000  # the last frame holds, so the final state can be seen before the loop restarts
CAPTION = 18  # pixels of the band above each frame that names its epoch


@dataclass
class Animation:
    path: Path
    epochs: list[int]  # the frames, in order
    skipped: list[Path] = field(default_factory=list)  # pictures that could not be read


def evenly(items: list, limit: int) -> list:
    """At most ``limit`` of ``items``, evenly spaced, the first and the last kept."""
    if len(items) <= limit:
        return list(items)
    if limit == 1:
        return [items[-1]]
    return [items[round(i * (len(items) - 1) / (limit - 1))] for i in range(limit)]


def _frame(img: Image.Image, epoch: int, size: tuple[int, int] | None) -> Image.Image:
    img = img.convert("L" if img.mode in ("L", "1", "LA") else "RGB")
    if size is None:
        scale = min(1.0, MAX_SIDE / max(img.size))
        size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    if img.size != size:
        img = img.resize(size, Image.Resampling.LANCZOS if size[0] < img.width else Image.Resampling.NEAREST)
    white = 255 if img.mode == "L" else (255, 255, 255)
    out = Image.new(img.mode, (img.width, img.height + CAPTION), white)
    out.paste(img, (0, CAPTION))
    ImageDraw.Draw(out).text((4, 3), f"epoch {epoch}", fill=0 if img.mode == "L" else (0, 0, 0))
    return out


def write(run_dir: Path, upto_epoch: int | None = None) -> Animation | None:
    """Write ``RUN/progress.gif`` from the run's epoch pictures (up to ``upto_epoch``: a resumed
    run's later pictures from before are not its history); None when there is no picture yet."""
    run_dir = Path(run_dir)
    found = [(e, p) for e, p in epoch_pictures(run_dir) if upto_epoch is None or e <= upto_epoch]
    frames: list[Image.Image] = []
    epochs: list[int] = []
    skipped: list[Path] = []
    size = None
    for epoch, path in evenly(found, MAX_FRAMES):
        try:
            img = images.open_image(path)
        except images.ImageReadError:
            skipped.append(path)
            continue
        frame = _frame(img, epoch, size)
        if size is None:
            size, mode = (frame.width, frame.height - CAPTION), frame.mode
        frames.append(frame if frame.mode == mode else frame.convert(mode))
        epochs.append(epoch)
    if not frames:
        return None
    target = run_dir / PROGRESS_GIF
    images.save_animation(frames, target, [FRAME_MS] * (len(frames) - 1) + [LAST_MS])
    return Animation(target, epochs, skipped)


def write_for_report(run_dir: Path, run_id: str) -> Animation:
    """:func:`write`, for ``ganctl report --gif``: a run without pictures is an error."""
    made = write(run_dir)
    if made is None:
        raise GanctlError(f"run {run_id} has no epoch picture yet (samples/epoch_NNNN.png): "
                          "train it for at least one epoch")
    return made
