"""The one place images are read (:func:`open_image`) and written: grids, strips, GIFs and the
loss chart (atomically)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from ganctl.core.atomic import atomic_path
from ganctl.core.errors import GanctlError

# Images smaller than this are enlarged (nearest neighbour) when saved, so 8x8 or 28x28 samples
# are visible in an image viewer without blurring.
MIN_CELL = 64


# ---------------------------------------------------------------- reading

# PIL guards against decompression bombs with a multi-line warning above 89 Mpx and an error above
# twice that, raised while the header is read. open_image checks the header itself, with a limit
# its caller chooses and a message that says what to do, so PIL's guard is switched off.
DECODE_MAX_PIXELS = 2 * 89_478_485  # PIL's default error limit: any image a dataset may hold
Image.MAX_IMAGE_PIXELS = None

# header modes of single-channel images (16-bit and 32-bit ones included)
GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
_WIDE_GRAY = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N"})
_ORIENTATION = 0x0112  # the EXIF tag


class ImageReadError(GanctlError):
    """A file that could not be decoded; ``reason`` says why, without the path."""

    def __init__(self, path: Path, reason: str, message: str | None = None):
        super().__init__(message or f"{path} is not a readable image ({reason})")
        self.path, self.reason = Path(path), reason


def _mpx(pixels: int) -> str:
    return f"{pixels / 1e6:.1f} Mpx"


def read_header(path: Path) -> tuple[str, tuple[int, int]]:
    """(mode, (width, height)) from the file's header, without decoding its pixels; the size is
    the one :func:`open_image` returns (EXIF rotations by 90 degrees swap it)."""
    from PIL import UnidentifiedImageError

    try:
        with Image.open(path) as img:
            rotated = img.getexif().get(_ORIENTATION, 1) in (5, 6, 7, 8)
            return img.mode, (img.size[::-1] if rotated else img.size)
    except UnidentifiedImageError as e:
        raise ImageReadError(path, "not an image file PIL can read") from e
    except (OSError, ValueError, SyntaxError) as e:
        if isinstance(e, OSError) and e.strerror:  # the file system's refusal: Permission denied, ...
            raise ImageReadError(path, e.strerror, f"{path} cannot be read: {e.strerror}") from e
        raise ImageReadError(path, f"bad header: {e}") from e


def to_8bit(img: Image.Image) -> Image.Image:
    """16- and 32-bit grayscale -> 8-bit "L", scaled (65535 is white), not clipped at 255."""
    if img.mode in _WIDE_GRAY:
        # PIL reads 16-bit PNGs as I;16 or I: keep the top 8 bits, as PIL reads 48-bit RGB
        return (img if img.mode == "I" else img.convert("I")).point(lambda v: v * (1 / 256)).convert("L")
    if img.mode == "F":
        return img.convert("L")
    return img


def open_image(path: Path, *, max_pixels: int | None = DECODE_MAX_PIXELS, hint: str = "", draft: int | None = None) -> Image.Image:
    """Decode an image file, the same way for training, pairs and translate.

    Its pixel count is checked from the header before decoding (``max_pixels``; ``hint`` ends the
    message, saying how to get past it); the EXIF orientation is applied; 16- and 32-bit grayscale
    is scaled to 8 bits (a 16-bit PNG's 65535 is white, not 255 of it); other modes are kept
    (palette, alpha) for the caller to convert. ``draft``: for JPEGs, decode at a reduced scale
    that still covers ``draft`` x ``draft`` pixels (DCT scaling). Raises :class:`ImageReadError`."""
    from PIL import ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as file:
            w, h = file.size
            if max_pixels is not None and w * h > max_pixels:
                reason = f"{w}x{h} is {_mpx(w * h)}, above the limit of {_mpx(max_pixels)}"
                raise ImageReadError(path, reason, f"{path} is {w}x{h} ({_mpx(w * h)}), above the limit of {_mpx(max_pixels)}{hint}")
            if draft and file.format == "JPEG":
                file.draft("RGB", (draft, draft))
            file.load()
            img = to_8bit(ImageOps.exif_transpose(file) or file)
            return img.copy() if img is file else img  # closing the file frees the original's pixels
    except ImageReadError:
        raise
    except UnidentifiedImageError as e:
        raise ImageReadError(path, "not an image file PIL can read") from e
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        text = str(e)
        if isinstance(e, OSError) and e.strerror:  # the file system's refusal: Permission denied, ...
            raise ImageReadError(path, e.strerror, f"{path} cannot be read: {e.strerror}") from e
        if "truncated" in text or isinstance(e, EOFError):
            reason = f"truncated: {text or 'the file ends early'}"
        elif "mode" in text:
            reason = f"unsupported pixel format: {text}"
        else:
            reason = text or type(e).__name__
        raise ImageReadError(path, reason) from e


# ---------------------------------------------------------------- writing


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float (N, C, H, W) -> uint8 (N, C, H, W)."""
    return ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def grid(images: torch.Tensor, nrow: int, padding: int = 2, pad_value: int = 255) -> torch.Tensor:
    """uint8 (N, C, H, W) -> uint8 (C, H', W') grid, row-major, ``nrow`` images per row, with
    ``padding`` pixels of ``pad_value`` around every image: the pixels of torchvision's
    ``make_grid`` (tested), without importing torchvision, which costs a sample command ~1.7 s."""
    n, c, h, w = images.shape
    ncol = min(nrow, n)
    rows, p = -(-n // ncol), padding
    cells = images.new_full((rows * ncol, c, h + p, w + p), pad_value)  # each image with its top-left padding
    cells[:n, :, p:, p:] = images
    out = cells.view(rows, ncol, c, h + p, w + p).permute(2, 0, 3, 1, 4).reshape(c, rows * (h + p), ncol * (w + p))
    return torch.nn.functional.pad(out, (0, p, 0, p), value=pad_value)  # the bottom and right edges


def to_pil(image: torch.Tensor, min_cell: int = 0, cell: int = 0) -> Image.Image:
    """uint8 (C, H, W) -> PIL image, enlarged by an integer factor so a cell is >= min_cell."""
    c = image.shape[0]
    arr = image.permute(1, 2, 0).contiguous()
    mode = "L" if c == 1 else "RGB"
    img = Image.frombytes(mode, (arr.shape[1], arr.shape[0]), arr.numpy().tobytes())
    if cell and min_cell and cell < min_cell:
        k = -(-min_cell // cell)
        img = img.resize((img.width * k, img.height * k), Image.Resampling.NEAREST)
    return img


def save_image(img: Image.Image, path: Path, *, png_level: int | None = None) -> Path:
    """Write ``img`` in the format its suffix names (PNG for any other suffix), atomically.
    ``png_level``: zlib level of a PNG (Pillow's default 6 when None); the pixels are the same at
    every level, only the time and the size change."""
    path = Path(path)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".gif": "GIF", ".webp": "WEBP", ".bmp": "BMP"}.get(path.suffix.lower(), "PNG")
    opts = {"compress_level": png_level} if fmt == "PNG" and png_level is not None else {}
    with atomic_path(path) as tmp:
        img.save(tmp, format=fmt, **opts)
    return path


def save_grid(images: torch.Tensor, path: Path, nrow: int = 8, row_labels: Sequence[str] | None = None) -> Path:
    """[-1, 1] images -> one grid picture; ``row_labels`` writes a name left of each row."""
    u8 = to_uint8(images)
    img = to_pil(grid(u8, nrow), MIN_CELL, u8.shape[-1])
    if row_labels:
        img = label_rows(img, row_labels, rows=-(-len(u8) // min(nrow, len(u8))))
    return save_image(img, path)


def label_rows(img: Image.Image, labels: Sequence[str], rows: int) -> Image.Image:
    """Add a white margin on the left with one label per row (class names of a conditional grid)."""
    labels = [str(x) for x in labels][:rows]
    margin = 8 + 6 * max(len(x) for x in labels)
    out = Image.new(img.mode, (img.width + margin, img.height), 255 if img.mode == "L" else (255, 255, 255))
    out.paste(img, (margin, 0))
    draw = ImageDraw.Draw(out)
    row_h = img.height / rows
    for r, text in enumerate(labels):
        draw.text((4, r * row_h + row_h / 2 - 5), text, fill=0 if img.mode == "L" else (0, 0, 0))
    return out


def save_each(images: torch.Tensor, folder: Path, stem: str = "sample") -> list[Path]:
    u8 = to_uint8(images)
    width = max(3, len(str(len(u8) - 1)))
    return [save_image(to_pil(im), Path(folder) / f"{stem}_{i:0{width}d}.png") for i, im in enumerate(u8)]


def save_gif(frames: torch.Tensor, path: Path, duration_ms: int = 120) -> Path:
    """[-1, 1] frames (T, N, C, H, W): each frame is a grid of N; plays forward then back."""
    u8 = [to_uint8(f) for f in frames]
    pics = [to_pil(grid(f, nrow=len(f)), 128, f.shape[-1]) for f in u8]
    return save_animation(pics + pics[-2:0:-1], path, duration_ms)


def save_animation(pics: Sequence[Image.Image], path: Path, duration_ms: int | Sequence[int] = 120) -> Path:
    """PIL frames -> one looping GIF (an adaptive palette for each RGB frame); ``duration_ms``: one
    for every frame, or one per frame."""
    pics = [p.convert("P", palette=Image.Palette.ADAPTIVE) if p.mode == "RGB" else p for p in pics]
    durations = list(duration_ms) if isinstance(duration_ms, Sequence) else duration_ms
    with atomic_path(Path(path)) as tmp:
        pics[0].save(tmp, format="GIF", save_all=True, append_images=pics[1:], duration=durations, loop=0)
    return Path(path)


def loss_chart(series: dict[str, Sequence[float]], path: Path, title: str = "", size=(720, 360)) -> Path:
    """A small line chart of training curves (averaged into at most 400 points each)."""
    w, h = size
    left, right, top, bottom = 56, 16, 28, 30
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    colors = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14)]
    binned = {k: _bin(list(v), 400) for k, v in series.items() if len(v)}
    values = [x for v in binned.values() for x in v]
    if not values:
        return save_image(img, path)
    lo, hi = min(values), max(values)
    if hi - lo < 1e-9:
        lo, hi = lo - 1, hi + 1
    pw, ph = w - left - right, h - top - bottom
    draw.rectangle([left, top, left + pw, top + ph], outline=(160, 160, 160))
    for i in range(5):  # horizontal grid lines with labels
        yv = lo + (hi - lo) * i / 4
        y = top + ph - ph * i / 4
        draw.line([left, y, left + pw, y], fill=(230, 230, 230))
        draw.text((4, y - 6), f"{yv:.3g}", fill=(80, 80, 80))
    n_steps = max(len(v) for v in series.values())
    draw.text((left, h - bottom + 8), "step 0", fill=(80, 80, 80))
    draw.text((left + pw - 70, h - bottom + 8), f"step {n_steps}", fill=(80, 80, 80))
    for v, color in zip(binned.values(), colors, strict=False):
        pts = [(left + pw * i / max(1, len(v) - 1), top + ph - ph * (y - lo) / (hi - lo)) for i, y in enumerate(v)]
        if len(pts) > 1:
            draw.line(pts, fill=color, width=2)
    x = left + 8
    for name, color in zip(binned, colors, strict=False):
        draw.rectangle([x, 8, x + 12, 18], fill=color)
        draw.text((x + 16, 7), name, fill=(0, 0, 0))
        x += 24 + 7 * len(name)
    if title:
        draw.text((w - right - 7 * len(title), 7), title, fill=(80, 80, 80))
    return save_image(img, path)


def _bin(values: list[float], n: int) -> list[float]:
    if len(values) <= n:
        return values
    k = len(values) / n
    return [sum(values[int(i * k) : int((i + 1) * k)]) / max(1, int((i + 1) * k) - int(i * k)) for i in range(n)]
