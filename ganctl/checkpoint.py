"""Checkpoints: network weights in safetensors, resume state through torch.save/weights_only.

A checkpoint is a folder ``checkpoints/<tag>/`` with

- ``generator.safetensors``: self-describing (its metadata holds the generator spec of
  :mod:`ganctl.genspec`), so ``ganctl sample --checkpoint generator.safetensors`` needs nothing else;
- ``config.json``: the same spec, readable (the diffusers convention; checkpoints written before
  it existed have the header alone);
- ``discriminator.safetensors``;
- ``trainer.pt``: optimizer and fp16 loss-scaler states, epoch/batch/step, and the RNG states of
  the CPU and of every CUDA/MPS device, for exact resume;
- ``position.json``: epoch/batch/step again, so ordering checkpoints never reads ``trainer.pt``
  (the optimizer states: 457 MB for pix2pix). Older checkpoints without it still load.

Every save writes a complete folder under a temporary name (``.<tag>.*.tmp``), moves a folder
already holding that tag aside (``.old-<tag>``), renames the new one into place, then replaces
``checkpoints/latest`` atomically: a save is never skipped, so a re-save after a crash replaces a
stale or truncated copy. Pruned folders are renamed aside (``.prune-<tag>``) before they are
deleted; :func:`clean` removes what a killed save or prune left behind. A checkpoint that fails
to load on resume is moved to ``.broken-<tag>`` (kept for inspection, never a candidate again).
Loading never unpickles code: safetensors for weights, ``torch.load(weights_only=True)`` for the
rest.

Test hook (fault injection, for tests/test_faults.py and benchmarks/faults.py; not for users):
every write, fsync and rename of a save or prune is a numbered fault point. With
``GANCTL_FAULT=save:<n>`` the process SIGKILLs itself right after the n-th point (counted from 1
over the whole process); ``GANCTL_FAULT=save:<label>`` kills at the first point whose label ends
with ``<label>`` (e.g. ``epoch_0002:renamed``). ``GANCTL_FAULT_LOG=<file>`` appends every point's
label to that file.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import tempfile
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file
from torch import nn

from ganctl import __version__, genspec, retention
from ganctl.atomic import _file_mode, atomic_path, atomic_write, disk_full
from ganctl.config import parse_meta
from ganctl.errors import CheckpointError, NoSpaceError

GENERATOR = "generator.safetensors"
DISCRIMINATOR = "discriminator.safetensors"
TRAINER = "trainer.pt"
POSITION = "position.json"
# hidden names a save or prune moves folders to; clean() deletes them (not .broken-*: kept for the user)
_OLD, _PRUNE, _BROKEN = ".old-", ".prune-", ".broken-"


def _state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}


def save_weights(path: Path, module: nn.Module, meta: dict) -> None:
    with atomic_path(path) as tmp:
        save_file(_state(module), str(tmp), metadata={"ganctl": json.dumps(meta, sort_keys=True)})


def save_generator(path: Path, module: nn.Module, spec: dict) -> None:
    """A generator file and its spec as ``config.json`` beside it (each written atomically)."""
    data = genspec.to_json(spec)  # checked before anything is written
    save_weights(path, module, spec)
    atomic_write(Path(path).with_name(genspec.FILE), data)


def read_spec(path: Path) -> dict:
    """The checked generator spec of a generator file (config.json beside it, else its header);
    a CheckpointError naming the file when the file or its spec is unreadable or foreign."""
    header = read_meta(path)  # safetensors checks the header and that the file is complete
    try:
        return genspec.check(genspec.read(path, header))
    except ValueError as e:
        raise CheckpointError(f"{path} has damaged or foreign ganctl metadata: {e}") from e


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
    scalers: dict = field(default_factory=dict)  # fp16 GradScaler states by network; empty otherwise
    rng_mps: torch.Tensor | None = None


# ---------------------------------------------------------------- fault injection (test hook)

_fault_count = 0


def _fault(label: str) -> None:
    """A fault point: see the module docstring. Costs one environment lookup when unarmed."""
    global _fault_count
    spec, log = os.environ.get("GANCTL_FAULT", ""), os.environ.get("GANCTL_FAULT_LOG")
    if not spec and not log:
        return
    _fault_count += 1
    if log:
        with open(log, "a") as f:
            f.write(f"{_fault_count} {label}\n")
    if spec.startswith("save:"):
        want = spec[5:]
        if (want.isdigit() and int(want) == _fault_count) or (not want.isdigit() and label.endswith(want)):
            if hasattr(signal, "SIGKILL"):
                os.kill(os.getpid(), signal.SIGKILL)
            os._exit(137)


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    try:  # makes the renames inside durable; not possible everywhere (Windows)
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write(path: Path, label: str, write) -> None:
    write(path)
    _fault(f"{label}-written")
    _fsync_file(path)
    _fault(f"{label}-synced")


# ---------------------------------------------------------------- saving


def save(
    run_dir: Path, tag: str, G: nn.Module, D: nn.Module, g_meta: dict, state: TrainerState,
    keep: int = retention.KEEP, marked: Collection[int] = (),
) -> Path:
    """Write checkpoint ``tag`` (replacing a folder of that name), point ``latest`` to it, then
    prune to the ``keep`` newest and the ``marked`` epochs (see :mod:`ganctl.retention`)."""
    ckpt_root = run_dir / "checkpoints"
    ckpt_root.mkdir(parents=True, exist_ok=True)
    final = ckpt_root / tag
    trainer = {
        "epoch": state.epoch,
        "batch": state.batch,
        "step": state.step,
        "optimizers": state.optimizers,
        "rng_cpu": state.rng_cpu,
        "rng_cuda": state.rng_cuda,
        "scalers": state.scalers,
        "ganctl_version": __version__,
    }
    if state.rng_mps is not None:
        trainer["rng_mps"] = state.rng_mps
    position = {"epoch": state.epoch, "batch": state.batch, "step": state.step}

    tmp = Path(tempfile.mkdtemp(prefix=f".{tag}.", suffix=".tmp", dir=ckpt_root))
    try:
        _fault(f"{tag}:tmp-created")
        meta_d = {"ganctl_version": __version__}
        _write(tmp / GENERATOR, f"{tag}:generator", lambda p: save_file(
            _state(G), str(p), metadata={"ganctl": json.dumps(g_meta, sort_keys=True)}))
        _write(tmp / genspec.FILE, f"{tag}:generator-config", lambda p: p.write_bytes(genspec.to_json(g_meta)))
        _write(tmp / DISCRIMINATOR, f"{tag}:discriminator", lambda p: save_file(
            _state(D), str(p), metadata={"ganctl": json.dumps(meta_d, sort_keys=True)}))
        _write(tmp / TRAINER, f"{tag}:trainer", lambda p: torch.save(trainer, p))
        _write(tmp / POSITION, f"{tag}:position", lambda p: p.write_text(json.dumps(position) + "\n"))
        mode = _file_mode()
        for f in tmp.iterdir():
            os.chmod(f, mode)
        os.chmod(tmp, mode | 0o111)  # mkdtemp makes it 0700
        _fsync_dir(tmp)
        _fault(f"{tag}:folder-synced")
    except BaseException as e:
        full = disk_full(e, ckpt_root)  # asked before the rmtree frees what the save took
        shutil.rmtree(tmp, ignore_errors=True)
        if full:
            raise NoSpaceError(final) from e
        raise
    # A folder cannot replace a non-empty one in one rename: the old copy (a save whose `latest`
    # write was cut short, or a truncated one) goes aside first, for the moment between renames.
    aside = None
    if final.exists():
        aside = ckpt_root / f"{_OLD}{tag}"
        shutil.rmtree(aside, ignore_errors=True)
        os.rename(final, aside)
        _fault(f"{tag}:old-moved-aside")
    os.rename(tmp, final)
    _fault(f"{tag}:renamed")
    _fsync_dir(ckpt_root)
    _fault(f"{tag}:root-synced")
    atomic_write(ckpt_root / "latest", (tag + "\n").encode())
    _fault(f"{tag}:latest-written")
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)
        _fault(f"{tag}:old-deleted")
    prune(ckpt_root, final, keep, marked)
    return final


def _remove(ckpt_root: Path, folder: Path, prefix: str, label: str) -> None:
    """Rename ``folder`` aside, then delete it: a kill in between or during the deletion leaves
    a hidden folder for :func:`clean`, never a half-deleted one under a checkpoint's name."""
    aside = ckpt_root / f"{prefix}{folder.name}"
    shutil.rmtree(aside, ignore_errors=True)
    os.rename(folder, aside)
    _fault(f"{label}:prune-{folder.name}-moved-aside")
    shutil.rmtree(aside, ignore_errors=True)
    _fault(f"{label}:prune-{folder.name}-deleted")


def prune(ckpt_root: Path, newest: Path, keep: int = retention.KEEP, marked: Collection[int] = ()) -> list[Path]:
    """Delete the checkpoints of ``ckpt_root`` that :func:`ganctl.retention.to_prune` lets go,
    each renamed aside first (a kill mid-prune leaves a hidden folder for :func:`clean`, never a
    half-deleted checkpoint). Returns them."""
    folders = [p for p in ckpt_root.iterdir() if p.is_dir() and not p.is_symlink()]
    gone = retention.to_prune(folders, newest, keep, marked)
    for folder in gone:
        _remove(ckpt_root, folder, _PRUNE, newest.name)
    return gone


def clean(run_dir: Path) -> list[Path]:
    """Delete what killed saves and prunes left under ``checkpoints/`` (temporary folders and
    files, folders moved aside). Only the trainer of the run may call this. Returns what went."""
    root = Path(run_dir) / "checkpoints"
    gone = []
    if not root.is_dir():
        return gone
    for p in root.iterdir():
        name = p.name
        if (name.startswith(".") and name.endswith(".tmp")) or name.startswith((_OLD, _PRUNE)):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            gone.append(p)
    _repoint_latest(root)
    return gone


def _repoint_latest(root: Path) -> None:
    """Point ``latest`` at the newest checkpoint when a save was killed between its folder's
    rename and its ``latest`` write: every folder under a final name is complete (it was fsynced
    before the rename), so the newest by position is the newest complete one."""
    folders = [p for p in root.glob("*_*") if p.is_dir() and not p.name.startswith(".")]
    if not folders:
        return
    newest = max(folders, key=_position)
    pointer = root / "latest"
    named = root / pointer.read_text().strip() if pointer.is_file() else None
    if _position(newest) > (_position(named) if named is not None and named.is_dir() else (-1, 0)):
        atomic_write(pointer, (newest.name + "\n").encode())


def move_aside(ckpt: Path) -> Path:
    """Rename a checkpoint that does not load to ``.broken-<tag>`` (replacing an older one of that
    name): it stops being a candidate, and a later save of its tag starts afresh."""
    aside = ckpt.parent / f"{_BROKEN}{ckpt.name}"
    shutil.rmtree(aside, ignore_errors=True)
    os.rename(ckpt, aside)
    return aside


# ---------------------------------------------------------------- reading


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


def read_position(ckpt: Path) -> dict:
    """``{"epoch", "batch", "step"}`` of a checkpoint without loading its optimizer states: from
    ``position.json``, or for checkpoints saved before it existed, from ``trainer.pt`` memory-mapped
    (its tensors are then never read). Raises CheckpointError when neither is readable."""
    try:
        pos = json.loads((ckpt / POSITION).read_text())
        return {k: int(pos[k]) for k in ("epoch", "batch", "step")}
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{ckpt / POSITION} is unreadable ({e})") from e
    try:
        data = torch.load(ckpt / TRAINER, map_location="cpu", weights_only=True, mmap=True)
        return {k: int(data[k]) for k in ("epoch", "batch", "step")}
    except Exception as e:
        raise CheckpointError(f"{ckpt / TRAINER} cannot be read ({type(e).__name__})") from e


def _position(p: Path) -> tuple[int, int]:
    try:
        return (read_position(p)["step"], 1 if p.name.startswith("step_") else 0)
    except CheckpointError:  # unreadable ones sort last; load_trainer reports why
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
            scalers=dict(data.get("scalers") or {}),  # absent before ganctl saved them
            rng_mps=data.get("rng_mps"),
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
