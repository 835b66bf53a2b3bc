"""DiffAugment's three policies (Zhao et al., 2020, section 3 and its reference implementation's
parameters), written for ganctl from the paper's definitions.

Every op takes a list of image batches that must see the *same* transform (pix2pix's input and
output halves: one batch for the other families) and returns them transformed. Random draws are
made for the global batch from torch's generator on the images' device (:func:`draw`), so a
resumed run draws what an uninterrupted one would (its state is in every checkpoint), and several
processes draw what one would for the whole batch. The arithmetic stays in the images' dtype
(the training's precision) and is differentiable with respect to the images.

- ``color``: brightness + U(-0.5, 0.5); saturation x (U(0, 1) * 2) about the pixel's channel mean;
  contrast x (U(0, 1) + 0.5) about the image's mean. Images in [-1, 1], as ganctl's are.
- ``translation``: an integer shift of up to 1/8 of the height and width each way, the uncovered
  border filled with zeros (the paper's zero padding).
- ``cutout``: a square of half the image's size, centred anywhere on it, set to zero.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ganctl.runtime import distributed

Batches = list[torch.Tensor]

TRANSLATION_RATIO = 0.125  # DiffAugment's ratio: shifts of up to 1/8 of the image
CUTOUT_RATIO = 0.5  # a square of half the image's side


def draw(n: int, *shape: int, device: torch.device) -> torch.Tensor:
    """U(0, 1) of shape (n, *shape), drawn for the global batch; this rank's rows."""
    return distributed.local_rows(torch.rand(distributed.global_rows(n), *shape, device=device))


def draw_int(low: int, high: int, n: int, device: torch.device) -> torch.Tensor:
    """Integers in [low, high) per sample, drawn for the global batch; this rank's rows."""
    return distributed.local_rows(torch.randint(low, high, (distributed.global_rows(n),), device=device))


def _like(r: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return r.to(x.dtype).view(-1, *([1] * (x.dim() - 1)))


def color(xs: Batches) -> Batches:
    n, dev = xs[0].shape[0], xs[0].device
    b, s, c = draw(n, 3, device=dev).unbind(1)
    out = []
    for x in xs:
        x = x + (_like(b, x) - 0.5)
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * (_like(s, x) * 2) + mean
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        out.append((x - mean) * (_like(c, x) + 0.5) + mean)
    return out


def shift(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, pad: int) -> torch.Tensor:
    """``x`` with sample i moved down by ``dy[i]`` and right by ``dx[i]`` pixels (|d| <= pad), the
    uncovered border zero: one gather from the zero-padded batch (its gradient a scatter-add)."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    rows = torch.arange(h, device=x.device).unsqueeze(0) + pad - dy.unsqueeze(1)  # (n, h): source row of each
    cols = torch.arange(w, device=x.device).unsqueeze(0) + pad - dx.unsqueeze(1)
    idx = torch.arange(n, device=x.device).view(n, 1, 1)
    # advanced indices around a slice put their dimensions first: (n, h, w, c), channels_last underneath
    return padded[idx, :, rows.unsqueeze(2), cols.unsqueeze(1)].permute(0, 3, 1, 2)


def translation(xs: Batches) -> Batches:
    n, _, h, w = xs[0].shape
    sy, sx = int(h * TRANSLATION_RATIO + 0.5), int(w * TRANSLATION_RATIO + 0.5)
    dy = draw_int(-sy, sy + 1, n, xs[0].device)
    dx = draw_int(-sx, sx + 1, n, xs[0].device)
    return [shift(x, dy, dx, max(sy, sx)) for x in xs]


def cutout_mask(n: int, h: int, w: int, device: torch.device) -> torch.Tensor:
    """(n, 1, h, w) of ones with a zero square of half the side per sample. Its centre is drawn
    over [0, side + (1 - size % 2)), the square clipped at the border, as the paper's code does."""
    ch, cw = int(h * CUTOUT_RATIO + 0.5), int(w * CUTOUT_RATIO + 0.5)
    cy = draw_int(0, h + (1 - ch % 2), n, device) - ch // 2  # top row of the square
    cx = draw_int(0, w + (1 - cw % 2), n, device) - cw // 2
    ys = torch.arange(h, device=device).view(1, h, 1)
    xs = torch.arange(w, device=device).view(1, 1, w)
    inside = ((ys >= cy.view(n, 1, 1)) & (ys < (cy + ch).view(n, 1, 1))
              & (xs >= cx.view(n, 1, 1)) & (xs < (cx + cw).view(n, 1, 1)))
    return (~inside).unsqueeze(1)


def cutout(xs: Batches) -> Batches:
    n, _, h, w = xs[0].shape
    keep = cutout_mask(n, h, w, xs[0].device)
    return [x * keep.to(x.dtype) for x in xs]


OPS = {"color": color, "translation": translation, "cutout": cutout}


def apply(policies: tuple[str, ...], xs: Batches) -> Batches:
    for name in policies:
        xs = OPS[name](xs)
    return xs
