"""A loaded generator bound to translate's options: batches of images in, PIL images out.

Images of one working size are translated together (a batch of video frames, of a folder's
images); :mod:`ganctl.use.translate_net` makes each one's result the same as alone, so batching
changes the speed, not the output. bf16 autocast where the hardware runs it natively
(:func:`ganctl.runtime.runtime.resolve_precision`), fp32 elsewhere or with ``precision="fp32"``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

import numpy as np
import torch
from PIL import Image

from ganctl.core.errors import GanctlError
from ganctl.use import inference, translate_net, translate_tiles


class Translator:
    def __init__(self, gen: inference.LoadedGenerator, mode: str = "paper", seed: int = 0, size: int | None = None,
                 max_pixels: int | None = inference.TRANSLATE_MAX_PIXELS, precision: str = "auto"):
        from ganctl.runtime import runtime

        if mode not in inference.TRANSLATE_MODES:
            raise GanctlError(f"unknown --mode {mode!r}: use paper or eval")
        self.gen, self.mode, self.seed, self.size, self.max_pixels = gen, mode, seed, size, max_pixels
        self.device = next(gen.net.parameters()).device
        if self.device.type == "cpu":  # the convolutions and per-input norms ~1.2x faster (benchmarks.md, translate)
            gen.net.to(memory_format=torch.channels_last)
        self.precision = runtime.resolve_precision(precision, self.device)
        g = gen.meta["generator"]
        self.multiple = int(getattr(gen.net, "size_multiple", 0) or 2 ** int(g["num_downs"]))
        self.in_channels = int(g["in_channels"])
        self.out_channels = int(g.get("out_channels", self.in_channels))
        self.tile_size = int(gen.meta.get("image_size") or 256)
        if size is not None and (size < self.multiple or size % self.multiple):
            raise GanctlError(f"--size must be a multiple of {self.multiple} for this model (got {size})")

    def autocast(self):
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)
        return torch.autocast(self.device.type, dtype=dtype) if dtype else contextlib.nullcontext()

    def prepare(self, img) -> tuple[torch.Tensor, tuple[int, int]]:
        """One PIL image or uint8 (H, W, C) array -> the (1, C, H', W') input at its working size,
        and the (width, height) to resize the result back to. Only PIL and numpy, which release
        the GIL: a folder's decoding threads run it beside the generator."""
        if isinstance(img, np.ndarray):
            img = Image.fromarray(img)
        inference.check_translate_pixels(img.width, img.height, self.size, self.max_pixels)
        return inference.prepare_image(img, self.in_channels, self.multiple, self.size), img.size

    @torch.no_grad()
    def run(self, xs: Sequence[torch.Tensor]) -> list[np.ndarray]:
        """The prepared inputs ``xs`` through the generator, consecutive inputs of one working size
        as one batch: each one's uint8 (H', W', C) result at its working size."""
        out: list[np.ndarray] = []
        with translate_net.batched(self.gen.net, self.mode) as run:
            i = 0
            while i < len(xs):
                j = i + 1
                while j < len(xs) and xs[j].shape == xs[i].shape:
                    j += 1
                x = torch.cat(xs[i:j]).to(self.device)
                with self.autocast():
                    y = run(x, [self.seed] * len(x))
                u8 = ((y.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
                out.extend(u8)
                i = j
        return out

    @staticmethod
    def finish(arr: np.ndarray, size: tuple[int, int] | None) -> Image.Image:
        """A result of :meth:`run` as a PIL image of ``size`` (bicubic; PIL, so in a thread too), or
        at the working size it has where ``size`` is None."""
        out = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
        return out if size is None or out.size == size else out.resize(size, Image.Resampling.BICUBIC)

    def images(self, imgs: Sequence) -> list[Image.Image]:
        """Each PIL image or uint8 (H, W, C) array translated at its working size, then resized
        back to its own; consecutive inputs of one working size run as one batch."""
        prepared = [self.prepare(im) for im in imgs]
        ys = self.run([x for x, _ in prepared])
        return [self.finish(y, size) for y, (_, size) in zip(ys, prepared, strict=True)]

    def pixels(self, img: Image.Image) -> np.ndarray:
        """uint8 (H, W, C) in the generator's channels: the one copy of the input :meth:`tiled` needs
        (the caller can then drop the PIL image, 4 bytes a pixel)."""
        src = np.asarray(_channels(img, self.in_channels))
        return src[:, :, None] if src.ndim == 2 else src

    def tiled(self, img: Image.Image | np.ndarray, overlap: int | None = None, batch: int = 8,
              advance: Callable[[int], None] = lambda n: None) -> Image.Image:
        """``img`` (or its :meth:`pixels`) translated at its own resolution in overlapping tiles of
        the training size (:mod:`ganctl.use.translate_tiles`); paper mode normalises with the whole
        image's statistics."""
        tile = self.tile_size
        overlap = tile // 4 if overlap is None else overlap
        src = img if isinstance(img, np.ndarray) else self.pixels(img)
        del img
        net, mode = self.gen.net, self.mode

        def run_net(stats):
            return translate_net.batched(net, mode, stats=stats)

        gather = None
        if translate_net.adaptive_norms(net, mode):
            def gather(batches):
                return translate_net.gather_stats(net, mode, batches, autocast=self.autocast)
        arr = translate_tiles.translate_array(run_net, src, tile=tile, overlap=overlap, mode=mode, seed=self.seed,
                                              out_channels=self.out_channels, device=self.device, batch=batch,
                                              gather=gather, advance=advance, autocast=self.autocast)
        return Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)

    def tiles(self, width: int, height: int, overlap: int | None = None) -> int:
        """How many tiles :meth:`tiled` runs for a ``width`` x ``height`` image."""
        tile = self.tile_size
        overlap = tile // 4 if overlap is None else overlap
        return len(translate_tiles.Grid(height, width, tile, overlap))


def _channels(img: Image.Image, channels: int) -> Image.Image:
    """Any PIL image in the generator's channels, transparent parts on white (as prepare_image)."""
    from ganctl.core.images import to_8bit

    img = to_8bit(img)
    if img.mode == ("L" if channels == 1 else "RGB"):
        return img  # no copy: with --tile the image may be 430 MB
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return img.convert("L" if channels == 1 else "RGB")
