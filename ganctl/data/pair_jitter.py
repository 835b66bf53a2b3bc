"""The random crop and flip pix2pix and CycleGAN train with: shared by the two sides of each pair
(pix2pix), drawn for each image on its own (CycleGAN's two domains)."""

from __future__ import annotations

import torch


def _draw(n: int, h: int, w: int, crop: int, generator: torch.Generator) -> list[tuple[int, int, bool]]:
    """(x, y, flip) for ``n`` images: offsets uniform in 0..size-crop (inclusive), flip with p = 0.5, as
    the official ``get_params``. The draws come from ``generator`` (on its device; one transfer to
    the host per batch), in the order x, y, flip."""
    if not 0 < crop <= min(h, w):
        raise ValueError(f"crop size {crop} does not fit images of {h}x{w}")
    dev = generator.device
    xs = torch.randint(0, w - crop + 1, (n,), generator=generator, device=dev)
    ys = torch.randint(0, h - crop + 1, (n,), generator=generator, device=dev)
    flips = torch.rand(n, generator=generator, device=dev) < 0.5
    return list(zip(xs.tolist(), ys.tolist(), flips.tolist(), strict=True))


def _apply(x: torch.Tensor, params: list[tuple[int, int, bool]], crop: int) -> torch.Tensor:
    # a loop over views: on CPU an index gather over the whole batch is an order of magnitude slower;
    # the crops are views copied once by torch.stack, on the tensor's device
    crops = []
    for i, (x0, y0, flip) in enumerate(params):
        c = x[i, :, y0 : y0 + crop, x0 : x0 + crop]
        crops.append(c.flip(-1) if flip else c)
    return torch.stack(crops) if crops else x[:, :, :crop, :crop].clone()


def paired_jitter(
    a: torch.Tensor, b: torch.Tensor, crop: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random crop to ``crop`` x ``crop`` and random horizontal flip, the same for A and B.

    One crop offset and one flip decision per pair. Works for uint8 and float batches (N, C, H, W);
    A and B may differ in channels.
    """
    if a.shape[0] != b.shape[0] or a.shape[-2:] != b.shape[-2:]:
        raise ValueError(f"A and B batches differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    n, _, h, w = a.shape
    params = _draw(n, h, w, crop, generator)
    return _apply(a, params, crop), _apply(b, params, crop)


def crop_flip(x: torch.Tensor, crop: int, generator: torch.Generator) -> torch.Tensor:
    """Random crop to ``crop`` x ``crop`` and random horizontal flip, drawn for each image of the
    batch (N, C, H, W): the official unaligned dataset's ``transform_A`` / ``transform_B``, which
    crop and flip A and B independently."""
    n, _, h, w = x.shape
    return _apply(x, _draw(n, h, w, crop, generator), crop)
