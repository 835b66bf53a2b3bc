"""Checkpoints: network weights in safetensors, resume state through torch.save/weights_only.

A checkpoint is a folder ``checkpoints/<tag>/`` with

- ``generator.safetensors``: self-describing (its metadata holds the architecture), so
  ``ganctl sample --checkpoint generator.safetensors`` needs nothing else;
- ``discriminator.safetensors``;
- ``trainer.pt``: optimizer states, epoch/batch/step, and RNG states, for exact resume.

Folders are written under a temporary name and renamed into place; ``checkpoints/latest`` names
the newest complete one and is itself replaced atomically. Loading never unpickles code: safetensors
for weights, ``torch.load(weights_only=True)`` for the rest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file
from torch import nn

from ganctl import __version__
from ganctl.errors import CheckpointError
from ganctl.store import atomic_dir, atomic_path, atomic_write

GENERATOR = "generator.safetensors"
DISCRIMINATOR = "discriminator.safetensors"
TRAINER = "trainer.pt"
KEEP = 2  # epoch checkpoints kept besides the newest interrupt checkpoint


def _state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}


def save_weights(path: Path, module: nn.Module, meta: dict) -> None:
    with atomic_path(path) as tmp:
        save_file(_state(module), str(tmp), metadata={"ganctl": json.dumps(meta, sort_keys=True)})


def read_meta(path: Path) -> dict:
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        return json.loads(meta["ganctl"]) if "ganctl" in meta else {}
    except (SafetensorError, OSError, ValueError, KeyError) as e:
        raise CheckpointError(f"{path} is not a readable safetensors file ({e})") from e


def load_weights(path: Path, module: nn.Module, assign: bool = False) -> None:
    """Load weights strictly; ``assign`` takes the file's tensors as they are (for a module built
    on the meta device, which skips initialising weights that are overwritten anyway)."""
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path} is not a readable safetensors file ({e}); it may be truncated") from e
    try:
        module.load_state_dict(state, assign=assign)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        raise CheckpointError(f"{path} does not fit this model: {first[1].strip() if len(first) > 1 else first[0]}") from e


@dataclass
class TrainerState:
    epoch: int  # epoch in progress (0-based)
    batch: int  # batches of that epoch already done
    step: int  # generator+critic iterations done in total
    optimizers: dict
    rng_cpu: torch.Tensor
    rng_cuda: list


def save(
    run_dir: Path, tag: str, G: nn.Module, D: nn.Module, g_meta: dict, state: TrainerState
) -> Path:
    ckpt_root = run_dir / "checkpoints"
    final = ckpt_root / tag
    if final.exists():  # re-saving the same position (an interrupt right after an epoch end)
        return final
    with atomic_dir(final) as tmp:
        save_weights(tmp / GENERATOR, G, g_meta)
        save_weights(tmp / DISCRIMINATOR, D, {"ganctl_version": __version__})
        with atomic_path(tmp / TRAINER) as t:
            torch.save(
                {
                    "epoch": state.epoch,
                    "batch": state.batch,
                    "step": state.step,
                    "optimizers": state.optimizers,
                    "rng_cpu": state.rng_cpu,
                    "rng_cuda": state.rng_cuda,
                    "ganctl_version": __version__,
                },
                t,
            )
    atomic_write(ckpt_root / "latest", (tag + "\n").encode())
    _prune(ckpt_root, keep=final)
    return final


def _prune(ckpt_root: Path, keep: Path) -> None:
    import shutil

    epochs = sorted(p for p in ckpt_root.glob("epoch_*") if p.is_dir())
    for old in epochs[:-KEEP]:
        if old != keep:
            shutil.rmtree(old, ignore_errors=True)
    for old in ckpt_root.glob("step_*"):
        if old != keep and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)


def candidates(run_dir: Path) -> list[Path]:
    """Checkpoint folders, the one ``latest`` names first, then the others newest first."""
    root = run_dir / "checkpoints"
    found = sorted((p for p in root.glob("*_*") if p.is_dir() and not p.name.startswith(".")), key=_position, reverse=True)
    pointer = root / "latest"
    if pointer.is_file():
        named = root / pointer.read_text().strip()
        if named in found:
            found.remove(named)
            found.insert(0, named)
    return found


def _position(p: Path) -> tuple[int, int]:
    try:
        trainer = torch.load(p / TRAINER, map_location="cpu", weights_only=True)
        return (trainer["step"], 1 if p.name.startswith("step_") else 0)
    except Exception:  # unreadable ones sort last; load_trainer reports why
        return (-1, 0)


def load_trainer(ckpt: Path) -> TrainerState:
    path = ckpt / TRAINER
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
        return TrainerState(
            epoch=int(data["epoch"]),
            batch=int(data["batch"]),
            step=int(data["step"]),
            optimizers=data["optimizers"],
            rng_cpu=data["rng_cpu"],
            rng_cuda=list(data["rng_cuda"]),
        )
    except FileNotFoundError as e:
        raise CheckpointError(f"{path} is missing") from e
    except Exception as e:  # a truncated zip, or a pickle with code in it (refused by weights_only)
        raise CheckpointError(f"{path} cannot be read safely ({type(e).__name__}: {str(e).splitlines()[0][:200]})") from e
