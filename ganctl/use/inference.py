"""Sampling and latent interpolation with a trained generator (tensors in, tensors out)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ganctl import models
from ganctl.core.errors import CheckpointError, GanctlError
from ganctl.store import checkpoint, genspec


def latents(n: int, z_dim: int, seed: int) -> torch.Tensor:
    """N(0, I) latents from a CPU generator, so a seed gives the same points on any device."""
    return torch.randn(n, z_dim, generator=torch.Generator().manual_seed(seed))


def grid_labels(n: int, num_classes: int) -> torch.Tensor:
    """Labels for a grid with one row per class: 0,0,..,1,1,.. (n // classes columns each)."""
    per = max(1, n // num_classes)
    return torch.arange(num_classes).repeat_interleave(per)[:n]


@contextlib.contextmanager
def seeded_rng(device: torch.device | str, seed: int) -> Iterator[None]:
    """Inside: the CPU's and ``device``'s default generators seeded with ``seed``; afterwards both
    as they were. Unlike ``torch.manual_seed``, no other device is reseeded (nor queued for
    seeding when CUDA starts), so a training run's random streams are never changed behind its back."""
    device = torch.device(device)
    accel = device.type if device.type not in ("cpu", "meta") else None
    ids: list[int] = []
    if accel:
        mod = torch.get_device_module(accel)
        ids = [device.index if device.index is not None else (mod.current_device() if hasattr(mod, "current_device") else 0)]
    # device_type must name a device even when only the CPU is forked (devices=[]): torch 2.11
    # turns None into torch.device(None) and fails wherever CUDA is available
    with torch.random.fork_rng(devices=ids, device_type=accel or "cpu"):
        torch.random.default_generator.manual_seed(seed)
        if accel == "cuda":  # fork_rng has initialised CUDA, so this seeds now, not lazily later
            with torch.cuda.device(ids[0]):
                torch.cuda.manual_seed(seed)
        elif accel:
            mod.manual_seed(seed)
        yield


@contextlib.contextmanager
def paper_mode(net: nn.Module, seed: int | None = None) -> Iterator[nn.Module]:
    """Run a generator as pix2pix does at test time (paper section 3.3, the official test.py
    without --eval): dropout active and batch norm normalising with the statistics of the batch
    itself, without touching the stored running statistics. ``seed`` fixes the dropout masks
    (the global RNG state is restored afterwards, so training randomness is unaffected)."""
    saved = []
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            saved.append((m, m.training, m.track_running_stats, m.running_mean, m.running_var))
            # with no running statistics, batch norm uses the batch's own in any mode
            m.track_running_stats, m.running_mean, m.running_var = False, None, None
        elif isinstance(m, nn.modules.dropout._DropoutNd):
            saved.append((m, m.training, None, None, None))
            m.train(True)
    try:
        with contextlib.ExitStack() as stack:
            if seed is not None:
                param = next(net.parameters(), None)
                stack.enter_context(seeded_rng(param.device if param is not None else torch.device("cpu"), seed))
            yield net
    finally:
        for m, training, track, mean, var in saved:
            m.train(training)
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.track_running_stats, m.running_mean, m.running_var = track, mean, var


@dataclass
class LoadedGenerator:
    net: nn.Module
    meta: dict
    path: Path

    @property
    def z_dim(self) -> int:
        return int(self.meta["z_dim"])


def load_generator(path: Path, device: torch.device, family: str | None = None) -> LoadedGenerator:
    """The generator in the file ``path`` (which file: :mod:`ganctl.use.generators`), on ``device``."""
    path = Path(path)
    header = checkpoint.read_meta(path)
    if "arch" not in header or "generator" not in header:
        raise CheckpointError(f"{path} is not a ganctl generator (its metadata names no architecture)")
    meta = genspec.read(path, header)  # the header read once; check_meta checks the spec and its arch
    check_meta(meta, path)
    if family and meta.get("family") != family:
        other = meta.get("family")
        from ganctl.families import registry

        translates = other in registry.FAMILIES and registry.get(other).translates
        use = "ganctl translate IMAGE --checkpoint PATH" if translates else f"ganctl sample {other}"
        raise GanctlError(f"{path} holds a {other!r} generator, not {family!r}: use '{use}'")
    try:
        with torch.device("meta"):  # no time spent initialising weights the file replaces
            net = models.build_generator(meta["arch"], meta["generator"])
    except (TypeError, ValueError, KeyError, AssertionError, RuntimeError) as e:
        raise CheckpointError(f"{path} describes no {meta['arch']} generator that can be built ({e})") from e
    checkpoint.load_weights(path, net, assign=True)
    checkpoint.check_finite(path, net)  # on the host, before it moves: one pass over the weights
    net.to(device).eval()
    return LoadedGenerator(net, meta, path)


def check_meta(meta: dict, path: Path) -> None:
    """A CheckpointError naming ``path`` unless its metadata's fields have the types and ranges a
    run's config.json would (they are copied from it) and its generator arguments fit its arch."""
    try:
        genspec.check(meta)
        models.check_args(meta["arch"], meta["generator"])
    except ValueError as e:
        raise CheckpointError(f"{path} has damaged or foreign ganctl metadata: {e}") from e


@torch.no_grad()
def generate(gen: LoadedGenerator, z: torch.Tensor, labels: torch.Tensor | None = None, batch: int = 256) -> torch.Tensor:
    """[-1, 1] images for latents ``z`` (and labels, for conditional models), on the CPU."""
    dev = next(gen.net.parameters()).device
    out = []
    for i in range(0, len(z), batch):
        y = labels[i : i + batch].to(dev) if labels is not None else None
        out.append(gen.net(z[i : i + batch].to(dev), y).float().cpu())
    return torch.cat(out)


@torch.no_grad()
def generate_embedded(gen: LoadedGenerator, z: torch.Tensor, emb: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """[-1, 1] images for latents and label embeddings (conditional generators only)."""
    dev = next(gen.net.parameters()).device
    out = []
    for i in range(0, len(z), batch):
        out.append(gen.net.forward_embedded(z[i : i + batch].to(dev), emb[i : i + batch].to(dev)).float().cpu())
    return torch.cat(out)


@torch.no_grad()
def label_embedding(gen: LoadedGenerator, label: int) -> torch.Tensor:
    dev = next(gen.net.parameters()).device
    return gen.net.embed(torch.tensor([label], device=dev))[0].float().cpu()


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation (Shoemake 1985; White 2016 for GAN latents), per row."""
    an, bn = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((an * bn).sum(-1, keepdim=True).clamp(-1, 1))
    so = torch.sin(omega)
    t = t.view(-1, 1)
    lerp = (1 - t) * a + t * b
    out = (torch.sin((1 - t) * omega) / so) * a + (torch.sin(t * omega) / so) * b
    return torch.where(so.abs() < 1e-6, lerp, out)


def interpolate(a: torch.Tensor, b: torch.Tensor, steps: int, method: str = "lerp") -> torch.Tensor:
    """``steps`` points from a to b, both ends included (Huy1711/GAN: linspace(0, 1, 10))."""
    if steps < 2:
        raise GanctlError("--steps must be at least 2 (the two end points)")
    t = torch.linspace(0, 1, steps)
    if method == "lerp":
        return (1 - t).view(-1, 1) * a + t.view(-1, 1) * b
    if method == "slerp":
        return slerp(a.expand(steps, -1), b.expand(steps, -1), t)
    raise GanctlError(f"unknown --method {method!r}: use lerp or slerp")


# ---------------------------------------------------------------- pix2pix translation

TRANSLATE_MODES = ("paper", "eval")
# 4096 x 4096: the full U-Net needs about 400 bytes a pixel (6.7 GB here); a 12000 x 12000 photo
# took 330 s and 12 GB even with a tiny model
TRANSLATE_MAX_PIXELS = 4096 * 4096
TRANSLATE_SIZE_HINT = (": translate it at a lower resolution with --size 1024 (the output keeps the input's size), "
                       "or raise --max-pixels (the full U-Net needs about 400 bytes a pixel)")


def check_translate_pixels(width: int, height: int, size: int | None, max_pixels: int | None) -> None:
    """Refuse a translation whose working resolution is above ``max_pixels``, before any work."""
    if max_pixels is None:
        return
    if max_pixels < 1:
        raise GanctlError(f"--max-pixels must be at least 1 (got {max_pixels})")
    if size is not None and size * size > max_pixels:
        raise GanctlError(f"--size {size} works on {size * size:,} pixels, above --max-pixels {max_pixels:,}: "
                          "give a smaller --size or raise --max-pixels")
    if size is None and width * height > max_pixels:
        raise GanctlError(f"the image is {width}x{height} ({width * height / 1e6:.1f} Mpx), above the limit of "
                          f"{max_pixels / 1e6:.1f} Mpx{TRANSLATE_SIZE_HINT}")


def prepare_image(img, channels: int, multiple: int, size: int | None = None) -> torch.Tensor:
    """Any PIL image -> (1, C, H', W') in [-1, 1] at a size the U-Net takes.

    Grayscale, palette and images with transparency are converted (transparent parts on white);
    each side is resized to the nearest multiple of ``multiple`` (at least one), or to
    ``size`` x ``size`` when given, bicubic as the official loader.
    """
    from PIL import Image

    from ganctl.core.images import to_8bit

    img = to_8bit(img)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    img = img.convert("L" if channels == 1 else "RGB")
    if size:
        w2 = h2 = size
    else:
        w2 = max(multiple, round(img.width / multiple) * multiple)
        h2 = max(multiple, round(img.height / multiple) * multiple)
    if (w2, h2) != img.size:
        img = img.resize((w2, h2), Image.Resampling.BICUBIC)
    # in numpy, not torch: the same float32 values (x / 127.5 - 1, each rounded once); torch's
    # conversion of the permuted uint8 took 0.1-24 ms on a loaded 2-core host, numpy 0.2-0.5 ms
    # (benchmarks/translate_speed.py prepare), and numpy releases the GIL, so translate's
    # decoding threads run it beside the generator
    x = np.ascontiguousarray(np.asarray(img, dtype=np.uint8).reshape(h2, w2, channels).transpose(2, 0, 1)).astype(np.float32)
    x /= np.float32(127.5)
    x -= np.float32(1.0)
    return torch.from_numpy(x).unsqueeze(0)


def translate_image(gen: LoadedGenerator, img, mode: str = "paper", seed: int = 0, size: int | None = None,
                    max_pixels: int | None = TRANSLATE_MAX_PIXELS):
    """Translate one PIL image with a pix2pix generator; the result has the input's resolution.

    ``mode="paper"``: dropout on and batch statistics, as the paper and the official test script
    (seeded, so the same seed gives the same output); ``mode="eval"``: the deterministic network
    with stored statistics and no dropout. A working resolution above ``max_pixels`` is refused.
    """
    from PIL import Image

    if mode not in TRANSLATE_MODES:
        raise GanctlError(f"unknown --mode {mode!r}: use paper or eval")
    net = gen.net
    g = gen.meta["generator"]
    multiple = int(getattr(net, "size_multiple", 0) or 2 ** int(g["num_downs"]))
    if size is not None and (size < multiple or size % multiple):
        raise GanctlError(f"--size must be a multiple of {multiple} for this model (got {size})")
    check_translate_pixels(img.width, img.height, size, max_pixels)
    x = prepare_image(img, int(g["in_channels"]), multiple, size)
    dev = next(net.parameters()).device
    with torch.no_grad():
        if mode == "paper":
            with paper_mode(net, seed=seed):
                y = net(x.to(dev))
        else:
            net.eval()
            y = net(x.to(dev))
    u8 = ((y[0].float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    arr = u8.permute(1, 2, 0).contiguous()
    out = Image.frombytes("L" if arr.shape[2] == 1 else "RGB", (arr.shape[1], arr.shape[0]), arr.numpy().tobytes())
    if out.size != img.size:
        out = out.resize(img.size, Image.Resampling.BICUBIC)
    return out
