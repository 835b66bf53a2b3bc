"""Adaptive discriminator augmentation (Karras et al., 2020), written for ganctl from the paper.

**The pipeline** applies each transform to each image with probability ``p``, independently
(section 2.3: with p < 1 the discriminator can still tell the augmented distribution's source,
so the augmentations do not leak into the generated images). ganctl keeps a subset of the
paper's 18 transforms, the ones that are exact or nearly so at the small sizes ganctl trains:

- *pixel blitting*: x-flip, rotation by a multiple of 90 degrees, integer translation of up to
  1/8 of the image (the paper's ``xflip``, ``rotate90``, ``xint`` with ``xint_max`` 0.125);
- *geometric*: isotropic scaling by 2^N(0, 0.2) (``scale``, ``scale_std`` 0.2);
- *colour*: brightness + N(0, 0.2), contrast x 2^N(0, 0.5), saturation x 2^N(0, 1) about the
  luma axis (``brightness_std`` 0.2, ``contrast_std`` 0.5, ``saturation_std`` 1; saturation only
  on RGB).

Left out: arbitrary rotation, anisotropic scaling and fractional translation, whose non-leaking
versions need the paper's 2x-upsampled, wavelet-filtered resampling (more code than the rest
together, and at 32 px the filters' support is a large part of the image); hue rotation and luma
flip, which exist only for RGB; and the image-space filters and noise/cutout group, which the
paper found to help least (its figure 4). The paper's "bgc" choice (blit, geometric, colour) is the
one it recommends; this is that choice less the transforms that need the filtered resampling.

All geometric transforms of an image are composed into one affine map and applied with one
bilinear resampling with reflection padding (the paper pads by reflection too), what
``grid_sample`` computes; on square images as two small matrix products per image (see
:func:`geometric`); blit-only maps land on pixel centres, so they copy pixels exactly. Colour is
applied in the images' dtype.

**The heuristic** (section 3): r_t = E[sign(D(real))], the share of real images the discriminator
is sure of, accumulated on the device over ``interval`` steps; then p moves by
sign(r_t - target) * images / ramp_images and is clamped to [0, 1]. No value is read back to the
host: p lives on the device and the augmentation reads it there.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ganctl.runtime import distributed
from ganctl.train.augment.diffaugment import Batches, draw

XINT_MAX = 0.125
SCALE_STD = 0.2
BRIGHTNESS_STD = 0.2
CONTRAST_STD = 0.5
SATURATION_STD = 1.0
SEPARABLE_MAX = 128  # the largest square side resampled by matrix products (geometric)


def _normal(n: int, *shape: int, device: torch.device) -> torch.Tensor:
    return distributed.local_rows(torch.randn(distributed.global_rows(n), *shape, device=device))


def inverse_maps(n: int, h: int, w: int, p: torch.Tensor, device: torch.device) -> torch.Tensor:
    """(n, 2, 3): for each output pixel (normalised coordinates, as ``affine_grid``'s) where to
    read it in the input, composing x-flip, rotation by k x 90 degrees, integer translation and
    isotropic scaling, each applied with probability ``p``."""
    u = draw(n, 6, device=device)  # one column per decision
    on = (u[:, :4] < p).float()  # flip, rotate, translate, scale: applied?
    flip = 1 - 2 * (on[:, 0] * (u[:, 4] < 0.5).float())  # -1: mirrored
    k = on[:, 1] * torch.floor(u[:, 5] * 4)  # quarter turns
    # translation by U(-1/8, 1/8) of the size, rounded to whole pixels, in normalised units (2 / size a pixel)
    t = (draw(n, 2, device=device) * 2 - 1) * XINT_MAX
    ty = torch.round(t[:, 0] * h) * 2 / h * on[:, 2]
    tx = torch.round(t[:, 1] * w) * 2 / w * on[:, 2]
    s = torch.exp2(_normal(n, device=device) * SCALE_STD * on[:, 3])
    angle = k * (math.pi / 2)
    cos, sin = torch.cos(angle).round(), torch.sin(angle).round()  # exact quarter turns
    # forward map: flip, then rotate, then translate, then scale; its inverse reads the input
    # in = F^-1 R^-1 (out / s - t)
    a = torch.stack([torch.stack([cos, sin], 1), torch.stack([-sin, cos], 1)], 1)  # R^-1, (n, 2, 2)
    a = a * torch.stack([flip, torch.ones_like(flip)], 1).view(n, 2, 1)  # F^-1 R^-1 (F^-1 = F)
    lin = a / s.view(n, 1, 1)
    offset = -(a @ torch.stack([tx, ty], 1).unsqueeze(2))  # (n, 2, 1)
    return torch.cat([lin, offset], dim=2)


def _axis_weights(coef: torch.Tensor, offset: torch.Tensor, size: int, dtype: torch.dtype) -> torch.Tensor:
    """(n, size, size): row i holds the bilinear weights with which output index i reads the input
    along one axis, at normalised input coordinate ``coef * u_i + offset`` (``u_i`` output index
    i's centre), reflected at the image's border and clipped as ``grid_sample`` does with
    ``padding_mode="reflection", align_corners=False``: 1 - frac at floor(x), frac at floor(x) + 1."""
    exact = torch.float32 if coef.device.type == "mps" else torch.float64  # a few values per image: cheap
    coef, offset = coef.to(exact), offset.to(exact)
    centre = torch.arange(size, device=coef.device, dtype=exact) + 0.5 - size / 2  # u_i * size / 2
    x = coef.view(-1, 1) * centre + ((offset.view(-1, 1) + 1) * size - 1) / 2  # (n, size) pixel coordinates
    period = 2 * size  # reflect about -0.5 and size - 0.5
    x = torch.remainder(x + 0.5, period)
    x = torch.where(x >= size, period - x, x) - 0.5
    x = x.clamp(0, size - 1)
    low = x.floor()
    frac = (x - low).to(dtype)
    low = low.long().unsqueeze(2)
    out = torch.zeros(*x.shape, size + 1, device=x.device, dtype=dtype)  # a spare column for low + 1 = size
    out.scatter_(2, low, (1 - frac).unsqueeze(2))
    out.scatter_add_(2, low + 1, frac.unsqueeze(2))
    return out[..., :size]


def geometric(xs: Batches, p: torch.Tensor) -> Batches:
    """The composed map of :func:`inverse_maps`, sampled bilinearly with reflection padding.

    On square images the map is axis-aligned up to a transpose (its rotations are quarter turns and
    its scaling isotropic), so bilinear sampling separates: each image is ``rows @ x @ cols^T``
    (``x`` transposed first for odd quarter turns) with two small weight matrices per image, the
    same result as ``affine_grid`` + ``grid_sample`` (a test checks it) at a third of the CPU
    cost in bf16 at 32 px, in the images' dtype (grid_sample's bf16 CPU kernel is a scalar loop, and
    its backward from a bf16 grid corrupts the heap at 256 px). The products cost O(size) a pixel,
    so images larger than ``SEPARABLE_MAX`` (where grid_sample in float32 is twice as fast on the
    CPU), and other shapes, go through ``grid_sample`` in float32."""
    n, _, h, w = xs[0].shape
    theta = inverse_maps(n, h, w, p, xs[0].device)
    if h != w or h > SEPARABLE_MAX:  # float32: from a bf16 grid, grid_sample's CPU backward wrote out of bounds (torch 2.14)
        grid = F.affine_grid(theta, [n, 1, h, w], align_corners=False)
        return [F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="reflection", align_corners=False).to(x.dtype)
                for x in xs]
    # theta maps output (x, y) to input (x, y); for odd quarter turns its 2x2 part is anti-diagonal
    odd = theta[:, 0, 0] == 0
    # output row y reads input coordinate y (even) or x (odd, from the transposed image)
    row_coef = theta[:, 1, 1] + theta[:, 0, 1]
    row_off = torch.where(odd, theta[:, 0, 2], theta[:, 1, 2])
    col_coef = theta[:, 0, 0] + theta[:, 1, 0]
    col_off = torch.where(odd, theta[:, 1, 2], theta[:, 0, 2])
    weights: dict[torch.dtype, tuple[torch.Tensor, torch.Tensor]] = {}  # pix2pix's two halves share them
    out = []
    for x in xs:
        if x.dtype not in weights:
            weights[x.dtype] = (_axis_weights(row_coef, row_off, h, x.dtype).unsqueeze(1),  # (n, 1, h, h)
                                _axis_weights(col_coef, col_off, w, x.dtype).unsqueeze(1))
        rows, cols = weights[x.dtype]
        src = torch.where(odd.view(-1, 1, 1, 1), x.transpose(-1, -2), x)
        y = rows @ src @ cols.transpose(-1, -2)
        out.append(y.contiguous(memory_format=torch.channels_last) if x.is_contiguous(memory_format=torch.channels_last)
                   and not x.is_contiguous() else y)
    return out


def colour(xs: Batches, p: torch.Tensor) -> Batches:
    n, dev = xs[0].shape[0], xs[0].device
    on = (draw(n, 3, device=dev) < p).float()
    z = _normal(n, 3, device=dev)
    b = z[:, 0] * BRIGHTNESS_STD * on[:, 0]
    c = torch.exp2(z[:, 1] * CONTRAST_STD * on[:, 1])
    s = torch.exp2(z[:, 2] * SATURATION_STD * on[:, 2])
    out = []
    for x in xs:
        view = (-1,) + (1,) * (x.dim() - 1)
        x = (x + b.to(x.dtype).view(view)) * c.to(x.dtype).view(view)  # contrast about mid-grey (0 in [-1, 1])
        if x.shape[1] == 3:  # saturation: scale the part of each pixel off the luma axis (1, 1, 1) / sqrt(3)
            mean = x.mean(dim=1, keepdim=True)
            x = mean + (x - mean) * s.to(x.dtype).view(view)
        out.append(x)
    return out


def apply(xs: Batches, p: torch.Tensor) -> Batches:
    return colour(geometric(xs, p), p)


class Heuristic:
    """ADA's p and the overfitting signal it follows, on the device: ``observe`` adds sign(D(real))
    of a step's real images; :meth:`adjust` moves p after every ``interval`` steps."""

    def __init__(self, target: float, ramp_images: int, interval: int, device: torch.device):
        self.target, self.ramp_images, self.interval = target, ramp_images, interval
        self.p = torch.zeros((), device=device)
        self.signs = torch.zeros((), device=device)  # sum of sign(D(real)) since the last adjustment
        self.count = 0  # how many values that sum has, on this rank (known on the host: no read-back)

    def observe(self, signal: torch.Tensor) -> None:
        self.signs += signal.detach().float().sign().sum()
        self.count += signal.numel()

    def adjust(self, index: int, batch_images: int) -> None:
        """After step ``index`` (0-based), every ``interval`` steps: p += sign(r_t - target) *
        (images seen since) / ramp_images, r_t over every rank's signal."""
        if (index + 1) % self.interval or not self.count:  # every rank observes alike: all return here, or none
            return
        total = self.signs.clone()
        if distributed.world().active:
            import torch.distributed as dist

            dist.all_reduce(total)
        r_t = total / (self.count * distributed.world().size)
        step = distributed.global_rows(batch_images) * self.interval / self.ramp_images
        self.p.copy_((self.p + torch.sign(r_t - self.target) * step).clamp(0, 1))
        self.signs.zero_()
        self.count = 0

    def state_dict(self) -> dict:
        return {"p": self.p.detach().clone(), "signs": self.signs.detach().clone(),
                "count": torch.tensor(self.count)}

    def load_state_dict(self, state: dict) -> None:
        self.p.copy_(state["p"].to(self.p.device))
        self.signs.copy_(state["signs"].to(self.signs.device))
        self.count = int(state["count"])
