"""The one place images are written: grids, strips, GIFs and the loss chart (atomically)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from ganctl.store import atomic_path

# Images smaller than this are enlarged (nearest neighbour) when saved, so 8x8 or 28x28 samples
# are visible in an image viewer without blurring.
MIN_CELL = 64


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float (N, C, H, W) -> uint8 (N, C, H, W)."""
    return ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def grid(images: torch.Tensor, nrow: int, padding: int = 2, pad_value: int = 255) -> torch.Tensor:
    """uint8 (N, C, H, W) -> uint8 (C, H', W') grid, row-major, ``nrow`` images per row."""
    n, c, h, w = images.shape
    ncol = min(nrow, n)
    rows = (n + ncol - 1) // ncol
    out = torch.full((c, rows * (h + padding) + padding, ncol * (w + padding) + padding), pad_value, dtype=torch.uint8)
    for i in range(n):
        r, k = divmod(i, ncol)
        y, x = padding + r * (h + padding), padding + k * (w + padding)
        out[:, y : y + h, x : x + w] = images[i]
    return out


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


def save_image(img: Image.Image, path: Path) -> Path:
    path = Path(path)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".gif": "GIF", ".webp": "WEBP", ".bmp": "BMP"}.get(path.suffix.lower(), "PNG")
    with atomic_path(path) as tmp:
        img.save(tmp, format=fmt)
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
    pics = pics + pics[-2:0:-1]
    pics = [p.convert("P", palette=Image.Palette.ADAPTIVE) if p.mode == "RGB" else p for p in pics]
    with atomic_path(Path(path)) as tmp:
        pics[0].save(tmp, format="GIF", save_all=True, append_images=pics[1:], duration=duration_ms, loop=0)
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
