"""Translating an image at its own resolution in overlapping tiles (``ganctl translate --tile``).

The generator sees tiles of the size it was trained at, in a regular grid whose neighbours overlap
by at least ``overlap`` pixels; each tile's result is weighted by a separable window that rises as
sin^2 across the overlap with its neighbour (and is flat elsewhere, and at the image's edges), and
the weighted results are divided by the sum of the weights. Where two tiles overlap their weights
are sin^2 and cos^2 of the same angle, a cross-fade that sums to one, so no edge of a tile (where a
U-Net's zero padding shows) reaches the output with any weight to speak of.

Memory does not grow with the image beyond its uint8 pixels: the input is held as uint8 (as
decoded), and the output is assembled one band of tile rows at a time in a float32 accumulator
one tile high and the image wide (3 x 256 x 12000 floats = 37 MB), whose finished rows are turned
to uint8 and copied into the output before the next row of tiles is added; a float copy of the
whole image, or the network's activations for more than one batch of tiles, never exists.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator

import numpy as np
import torch

from ganctl.core.errors import GanctlError
from ganctl.use import translate_net

STATS_SAMPLE = 64  # tiles whose statistics stand for the whole image's (spread evenly over it)


def starts(length: int, tile: int, overlap: int) -> list[int]:
    """Tile origins along one side: evenly spaced, the first at 0 and the last ending at ``length``,
    neighbours overlapping by at least ``overlap`` (one tile when ``length <= tile``)."""
    if length <= tile:
        return [0]
    n = math.ceil((length - tile) / (tile - overlap)) + 1
    return [round(i * (length - tile) / (n - 1)) for i in range(n)]


def window(origins: list[int], tile: int, length: int) -> list[np.ndarray]:
    """Each tile's 1-D weights (float32, ``tile`` long): sin^2 up across the overlap with the
    previous tile, cos^2 down across the overlap with the next one, 1 elsewhere. Never 0, so the
    sum of the weights can be divided by anywhere."""
    out = []
    for i, s in enumerate(origins):
        w = np.ones(tile, np.float64)
        if i > 0:
            n = origins[i - 1] + tile - s
            w[:n] *= np.sin(np.pi / 2 * (np.arange(n) + 0.5) / n) ** 2
        if i + 1 < len(origins):
            n = s + tile - origins[i + 1]
            w[tile - n:] *= np.cos(np.pi / 2 * (np.arange(n) + 0.5) / n) ** 2
        out.append(w.astype(np.float32))
    return out


def _tile(src: np.ndarray, y: int, x: int, tile: int) -> np.ndarray:
    """The tile at (y, x) of the uint8 (H, W, C) image, mirrored past the image's edges when the
    image is smaller than a tile."""
    t = src[y : y + tile, x : x + tile]
    if t.shape[0] < tile or t.shape[1] < tile:
        t = np.pad(t, ((0, tile - t.shape[0]), (0, tile - t.shape[1]), (0, 0)), mode="symmetric")
    return t


def _to_input(tiles: list[np.ndarray], device: torch.device) -> torch.Tensor:
    x = torch.from_numpy(np.stack(tiles)).to(device).permute(0, 3, 1, 2)
    return x.float().div_(127.5).sub_(1.0)


def tile_seed(seed: int, row: int, col: int) -> int:
    """The dropout seed of the tile in grid cell (row, col): each tile its own draw, the same on
    every run with the same seed and grid."""
    return (seed * 1_000_003 + row * 65_537 + col) % (2**63)


class Grid:
    """The tiles of an (H, W) image: ``rows`` and ``cols`` are the origins."""

    def __init__(self, height: int, width: int, tile: int, overlap: int):
        if not 0 <= overlap < tile:
            raise GanctlError(f"--overlap must be from 0 to {tile - 1} pixels for {tile}-pixel tiles (got {overlap})")
        self.height, self.width, self.tile, self.overlap = height, width, tile, overlap
        self.rows, self.cols = starts(height, tile, overlap), starts(width, tile, overlap)
        self.wy, self.wx = window(self.rows, tile, height), window(self.cols, tile, width)

    def __len__(self) -> int:
        return len(self.rows) * len(self.cols)

    def sample(self, n: int) -> list[tuple[int, int]]:
        """Up to ``n`` grid cells spread evenly over the image (all of them when there are fewer)."""
        cells = [(r, c) for r in range(len(self.rows)) for c in range(len(self.cols))]
        if len(cells) <= n:
            return cells
        return [cells[round(i * (len(cells) - 1) / (n - 1))] for i in range(n)]


def translate_array(run_net: Callable[..., torch.Tensor], src: np.ndarray, *, tile: int, overlap: int, mode: str,
                    seed: int, out_channels: int, device: torch.device, batch: int = 8,
                    gather: Callable[..., translate_net.Stats] | None = None, advance: Callable[[int], None] = lambda n: None,
                    autocast=contextlib.nullcontext) -> np.ndarray:
    """The uint8 (H, W, out_channels) translation of the uint8 (H, W, C) image ``src``, tile by tile.

    ``run_net(stats)`` is a context manager giving ``run(x, seeds)`` (:func:`translate_net.batched`
    bound to the net and mode); ``gather(batches)`` measures the whole image's statistics from the
    sample of tiles ``batches()`` yields, or is None when the mode has no adaptive norm layers.
    ``advance(n)`` is called as tiles are done."""
    h, w = src.shape[:2]
    grid = Grid(h, w, tile, overlap)
    stats: translate_net.Stats = {}
    if gather is not None:
        cells = grid.sample(STATS_SAMPLE)

        def sample_batches() -> Iterator[tuple[torch.Tensor, list[int]]]:
            for i in range(0, len(cells), batch):
                chunk = cells[i : i + batch]
                tiles = [_tile(src, grid.rows[r], grid.cols[c], tile) for r, c in chunk]
                yield _to_input(tiles, device), [tile_seed(seed, r, c) for r, c in chunk]

        stats = gather(sample_batches)
    out = np.empty((h, w, out_channels), np.uint8)
    band_h = min(tile, h)
    acc = np.zeros((band_h, w, out_channels), np.float32)
    wsum = np.zeros((band_h, w, 1), np.float32)
    with run_net(stats) as run, torch.no_grad():
        for r, y in enumerate(grid.rows):
            wy = grid.wy[r][:band_h, None, None]
            for c0 in range(0, len(grid.cols), batch):
                cols = list(range(c0, min(c0 + batch, len(grid.cols))))
                x = _to_input([_tile(src, y, grid.cols[c], tile) for c in cols], device)
                with autocast():
                    yb = run(x, [tile_seed(seed, r, c) for c in cols])
                yb = yb.float().clamp_(-1, 1).permute(0, 2, 3, 1).cpu().numpy()
                for k, c in enumerate(cols):
                    x0 = grid.cols[c]
                    span = min(tile, w - x0)
                    wt = wy * grid.wx[c][None, :span, None]
                    acc[:, x0 : x0 + span] += yb[k, :band_h, :span] * wt
                    wsum[:, x0 : x0 + span] += wt
                advance(len(cols))
            # rows above the next tile row's origin get nothing more: finish them, then shift the band
            done = (grid.rows[r + 1] if r + 1 < len(grid.rows) else h) - y
            final = acc[:done] / wsum[:done]
            out[y : y + done] = np.rint((final + 1) * 127.5).clip(0, 255).astype(np.uint8)
            acc[: band_h - done] = acc[done:].copy()
            wsum[: band_h - done] = wsum[done:].copy()
            acc[band_h - done :] = 0
            wsum[band_h - done :] = 0
    return out
