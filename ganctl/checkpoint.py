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
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file
from torch import nn

from ganctl import __version__
from ganctl.config import parse_meta
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
    except (SafetensorError, OSError, ValueError, KeyError) as e:
        raise CheckpointError(f"{path} is not a readable safetensors file ({e})") from e
    return parse_meta(meta, path)


def load_weights(path: Path, module: nn.Module, assign: bool = False) -> None:
    """Load weights strictly; ``assign`` takes the file's tensors as they are (for a module built
    on the meta device, which skips initialising weights that are overwritten anyway).

    Floating-point tensors saved in another precision (a generator exported as fp16, or fp64) are
    cast to the dtype of the module's own parameters, so the network runs in one dtype."""
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path} is not a readable safetensors file ({e}); it may be truncated") from e
    try:
        match_dtypes(state, module)
    except ValueError as e:
        raise CheckpointError(f"{path} does not fit this model: {e}") from e
    try:
        module.load_state_dict(state, assign=assign)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        raise CheckpointError(f"{path} does not fit this model: {first[1].strip() if len(first) > 1 else first[0]}") from e


def match_dtypes(state: dict[str, torch.Tensor], module: nn.Module) -> dict[str, torch.Tensor]:
    """Cast (in place) each floating-point tensor of ``state`` to the dtype of the module's tensor
    of the same name; integer buffers (batch-norm counts) and unknown keys are left alone. A
    ValueError names a tensor that holds integers (or booleans) where the module has weights."""
    own = module.state_dict()
    for key, t in state.items():
        want = own.get(key)
        if want is None or not want.is_floating_point() or t.dtype == want.dtype:
            continue
        if not t.is_floating_point():
            raise ValueError(f"{key} holds {str(t.dtype).removeprefix('torch.')} values, not floating-point weights")
        state[key] = t.to(want.dtype)
    return state


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
        raise CheckpointError(f"{path} cannot be read safely: {load_error_reason(e)[0]}") from e


_ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")


def load_error_reason(e: Exception) -> tuple[str, bool]:
    """Why ``torch.load(weights_only=True)`` failed, in a few words, and whether it was because the
    pickle calls code. torch's own text advises loading again with weights_only=False, which would
    run that code: none of it is kept, only the line that names what was refused."""
    msg = _ANSI_RE.sub("", str(e)).strip()
    if "Weights only load failed" not in msg:
        first = msg.splitlines()[0].strip().rstrip(".") if msg else ""
        return (f"{type(e).__name__}: {first[:200]}" if first else type(e).__name__), False
    lines = [ln.strip() for ln in msg.splitlines()[1:] if ln.strip()]
    detail = next((ln for ln in lines if "weights_only" not in ln and "torch.load" not in ln), "")
    if "global" in detail.lower():
        called = re.search(r"GLOBAL ([\w.]+)", detail)
        what = f" (it calls {called.group(1)})" if called else ""
        return f"the file contains code ganctl will not run{what}: only tensors are accepted", True
    return f"it is not a file of plain tensors ({detail.rstrip('.')[:200] or type(e).__name__})", False
