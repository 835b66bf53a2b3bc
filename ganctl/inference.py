"""Sampling and latent interpolation with a trained generator (tensors in, tensors out)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ganctl import checkpoint, models
from ganctl.errors import CheckpointError, GanctlError
from ganctl.store import RunInfo


def latents(n: int, z_dim: int, seed: int) -> torch.Tensor:
    """N(0, I) latents from a CPU generator, so a seed gives the same points on any device."""
    return torch.randn(n, z_dim, generator=torch.Generator().manual_seed(seed))


def grid_labels(n: int, num_classes: int) -> torch.Tensor:
    """Labels for a grid with one row per class: 0,0,..,1,1,.. (n // classes columns each)."""
    per = max(1, n // num_classes)
    return torch.arange(num_classes).repeat_interleave(per)[:n]


@dataclass
class LoadedGenerator:
    net: nn.Module
    meta: dict
    path: Path

    @property
    def z_dim(self) -> int:
        return int(self.meta["z_dim"])


def generator_file(run: RunInfo) -> Path:
    """The newest readable generator of a run."""
    for ckpt in checkpoint.candidates(run.path):
        path = ckpt / checkpoint.GENERATOR
        if path.is_file():
            return path
    raise CheckpointError(
        f"run {run.id} has no checkpoint yet (it saves one at the end of each epoch): "
        f"train it with 'ganctl train {run.family} --resume --name {run.name}'"
    )


def resolve_checkpoint(path: Path) -> Path:
    """Accept a generator file, a checkpoint folder, or a run folder."""
    path = Path(path).expanduser()
    if path.is_dir():
        if (path / checkpoint.GENERATOR).is_file():
            return path / checkpoint.GENERATOR
        if (path / "config.json").is_file():
            return generator_file(RunInfo(path.parent.name, path.name, path))
        raise CheckpointError(f"{path} holds no {checkpoint.GENERATOR}: give a generator file or a run folder")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    return path


def load_generator(path: Path, device: torch.device, family: str | None = None) -> LoadedGenerator:
    path = resolve_checkpoint(path)
    meta = checkpoint.read_meta(path)
    if "arch" not in meta or "generator" not in meta:
        raise CheckpointError(f"{path} is not a ganctl generator (its metadata names no architecture)")
    if family and meta.get("family") != family:
        raise GanctlError(f"{path} holds a {meta.get('family')!r} generator, not {family!r}: use 'ganctl sample {meta.get('family')}'")
    net = models.build_generator(meta["arch"], meta["generator"])
    checkpoint.load_weights(path, net)
    net.to(device).eval()
    return LoadedGenerator(net, meta, path)


@torch.no_grad()
def generate(gen: LoadedGenerator, z: torch.Tensor, labels: torch.Tensor | None = None, batch: int = 256) -> torch.Tensor:
    """[-1, 1] images for latents ``z`` (and labels, for conditional models), on the CPU."""
    dev = next(gen.net.parameters()).device
    out = []
    for i in range(0, len(z), batch):
        y = labels[i : i + batch].to(dev) if labels is not None else None
        out.append(gen.net(z[i : i + batch].to(dev), y).float().cpu())
    return torch.cat(out)


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
