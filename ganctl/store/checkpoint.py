"""Checkpoints: network weights in safetensors, resume state through torch.save/weights_only.

A checkpoint is a folder ``checkpoints/<tag>/`` with one safetensors file per network, where the
family's networks say (:meth:`ganctl.families.familyspec.Networks.file`): a G/D family's are

- ``generator.safetensors``: self-describing (its metadata holds the generator spec of
  :mod:`ganctl.store.genspec`), so ``ganctl sample --checkpoint generator.safetensors`` needs nothing else;
- ``config.json``: the same spec, readable (the diffusers convention; checkpoints written before
  it existed have the header alone);
- ``discriminator.safetensors``;

and a larger set's are ``NAME/generator.safetensors`` (with its ``config.json``) and
``NAME/discriminator.safetensors`` (CycleGAN: G_A, G_B, D_A, D_B). Then

- ``trainer.pt``: the objective's optimizer, fp16 loss-scaler and own states (an image pool),
  epoch/batch/step, and the RNG states of the CPU and of every CUDA/MPS device, for exact resume;
- ``position.json``: epoch/batch/step again, so ordering checkpoints never reads ``trainer.pt``
  (the optimizer states: 457 MB for pix2pix). Older checkpoints without it still load.

Every save writes a complete folder under a temporary name (``.<tag>.*.tmp``), moves a folder
already holding that tag aside (``.old-<tag>``), renames the new one into place, then replaces
``checkpoints/latest`` atomically: a save is never skipped, so a re-save after a crash replaces a
stale or truncated copy. Pruned folders are renamed aside (``.prune-<tag>``) before they are
deleted; :func:`clean` removes what a killed save or prune left behind (both torch-free, in
:mod:`ganctl.store.retention`). A checkpoint that fails
to load on resume is moved to ``.broken-<tag>`` (kept for inspection, never a candidate again).
Loading never unpickles code: safetensors for weights, ``torch.load(weights_only=True)`` for the
rest.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from ganctl import __version__
from ganctl.core.atomic import _file_mode, atomic_path, atomic_write, disk_full
from ganctl.core.errors import CheckpointError, NoSpaceError, cannot_read, load_error_reason
from ganctl.store import genspec, retention

# the folder bookkeeping (which checkpoint is newest, pruning, cleaning) is torch-free: it lives in
# ganctl.store.retention, and is named here too for the callers that load checkpoints
from ganctl.store.retention import OLD as _OLD
from ganctl.store.retention import POSITION, TRAINER
from ganctl.store.retention import candidates as candidates
from ganctl.store.retention import clean as clean
from ganctl.store.retention import move_aside as move_aside
from ganctl.store.retention import prune as prune
from ganctl.store.retention import read_position as read_position

GENERATOR = genspec.GENERATOR
DISCRIMINATOR = "discriminator.safetensors"
PAIR_FILES = {"generator": GENERATOR, "discriminator": DISCRIMINATOR}  # a G/D family's files


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


# a generator file's header and spec are read without torch: one reader, in genspec
read_meta = genspec.read_file_meta
read_spec = genspec.read_file


def load_weights(path: Path, module: nn.Module, assign: bool = False) -> None:
    """Load weights strictly; ``assign`` takes the file's tensors as they are (for a module built
    on the meta device, which skips initialising weights that are overwritten anyway).

    Floating-point tensors saved in another precision (a generator exported as fp16, or fp64) are
    cast to the dtype of the module's own parameters, so the network runs in one dtype."""
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        if cannot_read(path):
            raise CheckpointError(f"{path} cannot be read: {cannot_read(path)}") from e
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


def nonfinite(tensors: dict[str, torch.Tensor]) -> str | None:
    """The name of the first floating-point tensor of ``tensors`` that holds a NaN or an infinity,
    or None. A tensor's sum is non-finite when it holds one (NaN or inf propagates, inf - inf is
    NaN), and summing is several times faster than testing every element on a CPU (pix2pix's 57M
    weights: 234 against 1,094 ms, medians on 2 busy cores); only a sum that overflows is tested
    element by element."""
    for key, t in tensors.items():
        if t.is_floating_point() and t.numel() and not torch.isfinite(t.sum()) and not torch.isfinite(t).all():
            return key
    return None


USE_ADVICE = "the run diverged before it saved them; use an earlier checkpoint with --checkpoint, or train again with a lower --lr"


def check_finite(path: Path, module: nn.Module, advice: str = USE_ADVICE) -> None:
    """A CheckpointError naming ``path`` when the weights loaded from it into ``module`` are not
    all finite: a generator from a run that diverged draws every pixel black or white (two values)
    and exports that fail their own check, so it is refused before it is used."""
    bad = nonfinite(module.state_dict())
    if bad is not None:
        raise CheckpointError(f"the weights in {path} are not finite ({bad} holds NaN or infinite values)"
                              + (f": {advice}" if advice else ""))


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
    scalers: dict = field(default_factory=dict)  # fp16 GradScaler states by optimizer; empty otherwise
    rng_mps: torch.Tensor | None = None
    objective: dict = field(default_factory=dict)  # the objective's own state (CycleGAN's image pools)


# ---------------------------------------------------------------- writing


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


def _write(path: Path, write) -> None:
    write(path)
    _fsync_file(path)


# ---------------------------------------------------------------- saving


@dataclass
class Snapshot:
    """What a checkpoint holds, copied into host memory at the save point: training may change the
    networks and optimizers while another thread writes this (:func:`write`). The networks'
    tensors are row-major, as safetensors stores them (:func:`snapshot` copies them so)."""

    networks: dict[str, dict[str, torch.Tensor]]  # network name -> its tensors
    files: dict[str, str]  # network name -> its file inside the checkpoint folder
    specs: dict[str, dict]  # generator name -> its spec (in its header, and as config.json beside it)
    trainer: dict
    position: dict


def host_copy(obj, row_major: bool = False):
    """``obj`` (tensors inside dicts, lists and tuples) with every tensor copied into host memory
    that nothing else references. Device tensors go into pinned memory with non-blocking copies
    and one wait per device, not one wait per tensor. Strides are kept (channels_last optimizer
    moments resume as they were), or with ``row_major`` the copies are laid out row-major, as
    safetensors stores them, in the same one copy."""
    waits: set[torch.device] = set()

    def copy(x):
        if isinstance(x, torch.Tensor):
            x = x.detach()
            pin = x.device.type == "cuda"
            if row_major:
                out = torch.empty(x.size(), dtype=x.dtype, device="cpu", pin_memory=pin)
            else:
                if not (x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last)):
                    x = x.contiguous()
                out = torch.empty_strided(x.size(), x.stride(), dtype=x.dtype, device="cpu", pin_memory=pin)
            out.copy_(x, non_blocking=x.device.type != "cpu")
            if x.device.type != "cpu":
                waits.add(x.device)
            return out
        if isinstance(x, dict):
            return {k: copy(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return type(x)(copy(v) for v in x)
        return x

    out = copy(obj)
    for device in waits:
        torch.get_device_module(device.type).synchronize(device)
    return out


def snapshot(nets: Mapping[str, nn.Module], files: Mapping[str, str], specs: Mapping[str, dict],
             state: TrainerState) -> Snapshot:
    """What checkpoint ``state`` of ``nets`` (saved as ``files``; the generators' ``specs``) holds,
    copied to the host now."""
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
    if state.objective:
        trainer["objective"] = state.objective
    weights = host_copy({name: net.state_dict() for name, net in nets.items()}, row_major=True)
    trainer = host_copy(trainer)
    return Snapshot(weights, dict(files), dict(specs), trainer,
                    {"epoch": state.epoch, "batch": state.batch, "step": state.step})


def save(
    run_dir: Path, tag: str, nets: Mapping[str, nn.Module], files: Mapping[str, str], specs: Mapping[str, dict],
    state: TrainerState, keep: int = retention.KEEP, marked: Collection[int] = (),
) -> Path:
    """:func:`snapshot` then :func:`write`, in this thread."""
    return write(run_dir, tag, snapshot(nets, files, specs, state), keep, marked)


def _save_without_crc(obj, path: Path) -> None:
    """torch.save, without the CRC-32 of every record where this PyTorch lets it be turned off:
    torch.load never checks it, and computing it over the optimizer's moments (458 MB for pix2pix)
    is CPU time taken from the training the write runs beside. The setting is PyTorch's global
    one, put back at once; nothing else in ganctl calls torch.save while training runs."""
    get = getattr(torch.serialization, "get_crc32_options", None)
    set_ = getattr(torch.serialization, "set_crc32_options", None)
    if get is None or set_ is None:
        torch.save(obj, path)
        return
    before = get()
    set_(False)
    try:
        torch.save(obj, path)
    finally:
        set_(before)


def write(
    run_dir: Path, tag: str, snap: Snapshot, keep: int = retention.KEEP, marked: Collection[int] = (),
    gate: Callable[[], object] | None = None,
) -> Path:
    """Write checkpoint ``tag`` (replacing a folder of that name), point ``latest`` to it, then
    prune to the ``keep`` newest and the ``marked`` epochs (see :mod:`ganctl.store.retention`).
    ``gate``, when given, is called once the files are written and synced, and the checkpoint
    becomes visible under its name only when it returns (a background write waits there for
    what the checkpoint must not be published before)."""
    ckpt_root = run_dir / "checkpoints"
    ckpt_root.mkdir(parents=True, exist_ok=True)
    final = ckpt_root / tag
    tmp = Path(tempfile.mkdtemp(prefix=f".{tag}.", suffix=".tmp", dir=ckpt_root))
    try:
        for name, tensors in snap.networks.items():
            path = tmp / snap.files[name]
            path.parent.mkdir(exist_ok=True)
            spec = snap.specs.get(name)
            meta = spec if spec is not None else {"ganctl_version": __version__}
            _write(path, lambda p, t=tensors, m=meta: save_file(
                t, str(p), metadata={"ganctl": json.dumps(m, sort_keys=True)}))
            if spec is not None:
                _write(path.with_name(genspec.FILE), lambda p, m=spec: p.write_bytes(genspec.to_json(m)))
        _write(tmp / TRAINER, lambda p: _save_without_crc(snap.trainer, p))
        _write(tmp / POSITION, lambda p: p.write_text(json.dumps(snap.position) + "\n"))
        mode = _file_mode()
        for f in tmp.rglob("*"):
            os.chmod(f, mode | 0o111 if f.is_dir() else mode)
        os.chmod(tmp, mode | 0o111)  # mkdtemp makes it 0700
        for sub in (p for p in tmp.iterdir() if p.is_dir()):
            _fsync_dir(sub)
        _fsync_dir(tmp)
    except BaseException as e:
        full = disk_full(e, ckpt_root)  # asked before the rmtree frees what the save took
        shutil.rmtree(tmp, ignore_errors=True)
        if full:
            raise NoSpaceError(final) from e
        raise
    if gate is not None:
        gate()
    # A folder cannot replace a non-empty one in one rename: the old copy (a save whose `latest`
    # write was cut short, or a truncated one) goes aside first, for the moment between renames.
    aside = None
    if final.exists():
        aside = ckpt_root / f"{_OLD}{tag}"
        shutil.rmtree(aside, ignore_errors=True)
        os.rename(final, aside)
    os.rename(tmp, final)
    _fsync_dir(ckpt_root)
    atomic_write(ckpt_root / "latest", (tag + "\n").encode())
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)
    prune(ckpt_root, final, keep, marked)
    return final


# ---------------------------------------------------------------- reading


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
            objective=dict(data.get("objective") or {}),
        )
    except FileNotFoundError as e:
        raise CheckpointError(f"{path} is missing") from e
    except Exception as e:  # a truncated zip, or a pickle with code in it (refused by weights_only)
        raise CheckpointError(f"{path} cannot be read safely: {load_error_reason(e)[0]}") from e
