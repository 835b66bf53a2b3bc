"""The random crop and flip pix2pix trains with, shared by the two sides of each pair."""

from __future__ import annotations

import torch


def paired_jitter(
    a: torch.Tensor, b: torch.Tensor, crop: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random crop to ``crop`` x ``crop`` and random horizontal flip, the same for A and B.

    One crop offset (x and y uniform in 0..L-crop, inclusive) and one flip decision (p = 0.5) per
    pair, as the official ``get_params``. The draws come from ``generator`` (on its device; one
    transfer to the host per batch); the crops are views copied once by ``torch.stack``, on the
    tensors' device. Works for uint8 and float batches (N, C, H, W); A and B may differ in channels.
    """
    if a.shape[0] != b.shape[0] or a.shape[-2:] != b.shape[-2:]:
        raise ValueError(f"A and B batches differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    n, _, h, w = a.shape
    if not 0 < crop <= min(h, w):
        raise ValueError(f"crop size {crop} does not fit images of {h}x{w}")
    dev = generator.device
    xs = torch.randint(0, w - crop + 1, (n,), generator=generator, device=dev)
    ys = torch.randint(0, h - crop + 1, (n,), generator=generator, device=dev)
    flips = torch.rand(n, generator=generator, device=dev) < 0.5
    params = list(zip(xs.tolist(), ys.tolist(), flips.tolist(), strict=True))

    # a loop over views: on CPU an index gather over the whole batch is an order of magnitude slower
    def jitter(x: torch.Tensor) -> torch.Tensor:
        crops = []
        for i, (x0, y0, flip) in enumerate(params):
            c = x[i, :, y0 : y0 + crop, x0 : x0 + crop]
            crops.append(c.flip(-1) if flip else c)
        return torch.stack(crops) if crops else x[:, :, :crop, :crop].clone()

    return jitter(a), jitter(b)
