"""Weights of the official pix2pix U-Net generator (junyanz/pytorch-CycleGAN-and-pix2pix) in ganctl.

The official ``UnetGenerator`` is a recursive tree of ``UnetSkipConnectionBlock``s, so its keys
nest one ``model.N.model.`` per level (``model.model.0.weight``,
``model.model.1.model.3.model.1.weight``, ...). :class:`~ganctl.models.pix2pix.UNetGenerator`
is flat (``down.K.I.*``, ``up.J.I.*``) and computes the same function; this module renames keys
between the two layouts and infers the architecture from the tensors' shapes, so a downloaded
``latest_net_G.pth`` loads strictly with no flags to get wrong (the ``--norm``/``--netG``
mismatches that fill the official issue tracker).

Block layouts (Sequential indices), level 0 = outermost, level n-1 = innermost:

    outermost  [0 Conv, 1 sub, 2 ReLU, 3 ConvT(bias), 4 Tanh]
    middle     [0 LReLU, 1 Conv, 2 Norm, 3 sub, 4 ReLU, 5 ConvT, 6 Norm, (7 Dropout)]
    innermost  [0 LReLU, 1 Conv, 2 ReLU, 3 ConvT, 4 Norm]

Files are read with ``torch.load(weights_only=True)`` only: a ``.pth`` is a pickle, and ganctl
never runs code from one.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path

import torch

from ganctl.core.atomic import atomic_path
from ganctl.core.errors import CheckpointError, load_error_reason
from ganctl.models.pix2pix import UNetGenerator

EXPECTED = "an official pix2pix U-Net generator state_dict (keys like model.model.0.weight)"
_WRAPPER_KEYS = ("state_dict", "model", "netG")
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")  # DataParallel/DDP and torch.compile
# model.model. [1.model. [3.model.]*] INDEX.PARAM
_KEY_RE = re.compile(r"^model\.model\.((?:1\.model\.)(?:3\.model\.)*)?(\d+)\.([A-Za-z_]+)$")
_MAX_DOWNS = 16  # unet_65536; deeper keys are garbage, and would only exhaust recursion


def _official_prefix(level: int) -> str:
    """Key prefix of the Sequential of the block at ``level`` (0 = outermost)."""
    if level == 0:
        return "model.model."
    return "model.model.1.model." + "3.model." * (level - 1)


def _module_pairs(num_downs: int) -> list[tuple[str, str]]:
    """(official module name, ganctl module name) for every module that holds state,
    in the official state_dict order (outer down, inner blocks, outer up)."""
    inner = num_downs - 1

    def block(level: int) -> list[tuple[str, str]]:
        p = _official_prefix(level)
        j = inner - level  # the decoder block that undoes this level
        if level == 0:
            return [(p + "0", "down.0.0"), *block(1), (p + "3", f"up.{inner}.1")]
        if level == inner:
            return [(p + "1", f"down.{level}.1"), (p + "3", "up.0.1"), (p + "4", "up.0.2")]
        return [
            (p + "1", f"down.{level}.1"),
            (p + "2", f"down.{level}.2"),
            *block(level + 1),
            (p + "5", f"up.{j}.1"),
            (p + "6", f"up.{j}.2"),
        ]

    return block(0)


def _layout(arch: dict) -> list[tuple[str, str, tuple[int, ...]]]:
    """(official key, ganctl key, shape) for ``arch``, in official order. The shapes come from
    a UNetGenerator built on the meta device, so they cannot drift from the real network."""
    with torch.device("meta"):
        net = UNetGenerator(**arch)
    by_module: dict[str, list[tuple[str, tuple[int, ...]]]] = {}
    for key, t in net.state_dict().items():
        module, _, param = key.rpartition(".")
        by_module.setdefault(module, []).append((param, tuple(t.shape)))
    out = []
    for official, ours in _module_pairs(arch["num_downs"]):
        for param, shape in by_module.pop(ours, []):
            out.append((f"{official}.{param}", f"{ours}.{param}", shape))
    assert not by_module, f"unmapped modules {sorted(by_module)}"  # a bug here, not in the file
    return out


def _strip_wrappers(key: str) -> str:
    changed = True
    while changed:
        changed = False
        for prefix in _WRAPPER_PREFIXES:
            if key.startswith(prefix):
                key, changed = key[len(prefix) :], True
    return key


def _found(keys: list[str]) -> str:
    if not keys:
        return "an empty state_dict"
    shown = ", ".join(keys[:3])
    return f"{len(keys)} keys starting {shown}" + (", ..." if len(keys) > 3 else "")


def _guess(state: dict[str, torch.Tensor]) -> str:
    """A hint for the two other official networks people pass by mistake."""
    first = state.get("model.0.weight")
    if first is not None and first.dim() == 4 and first.shape[-1] == 4:
        return "; that is a PatchGAN discriminator (*_net_D.pth): give the generator, *_net_G.pth"
    first = state.get("model.1.weight")
    if first is not None and first.dim() == 4 and first.shape[-1] == 7:
        return "; that is a ResNet generator (--netG resnet_*, as in CycleGAN): ganctl.models.cyclegan_official reads it"
    return ""


def _refuse(what: str) -> CheckpointError:
    return CheckpointError(f"expected {EXPECTED}, but found {what}")


def _infer(state: dict[str, torch.Tensor]) -> dict:
    levels: list[int] = []
    for key in state:
        m = _KEY_RE.match(key)
        if m is None:
            if not any(k.startswith("model.model.") for k in state):
                raise _refuse(_found(list(state)) + _guess(state))
            raise _refuse(f"the key {key!r}, which is not part of one")
        levels.append(0 if m.group(1) is None else 1 + m.group(1).count("3.model."))
    first, last = state.get("model.model.0.weight"), state.get("model.model.3.weight")
    if first is None or last is None or first.dim() != 4 or last.dim() != 4 or 0 in first.shape[:2] or last.shape[1] == 0:
        raise _refuse(f"no usable model.model.0.weight and model.model.3.weight ({_found(list(state))})")
    # use_bias is on exactly for instance norm, so the outermost conv's bias tells the two apart
    if "model.model.0.bias" in state:
        norm = "instance"
    elif any(k.endswith(".running_mean") for k in state):
        norm = "batch"
    else:
        raise _refuse("a U-Net with neither batch-norm statistics nor conv biases (--norm none is not supported)")
    return {
        "in_channels": int(first.shape[1]),
        "out_channels": int(last.shape[1]),
        "ngf": int(first.shape[0]),
        "num_downs": max(levels) + 1,
        "norm": norm,
    }


def clean_state(state: object, refuse: Callable[[str], CheckpointError] | None = None) -> dict[str, torch.Tensor]:
    """The tensors of an official state_dict by key, ``module.``/``_orig_mod.`` prefixes stripped
    and non-tensor entries dropped; a CheckpointError (``refuse(what was found)``, by default the
    U-Net's) when it is no state_dict or holds none."""
    refuse = refuse or _refuse
    if not isinstance(state, Mapping):
        raise refuse(f"a {type(state).__name__}")
    clean: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            continue  # _metadata-style entries
        stripped = _strip_wrappers(key)
        if stripped in clean:
            raise refuse(f"the key {stripped!r} twice (with and without a module./_orig_mod. prefix)")
        clean[stripped] = value
    if not clean:
        raise refuse(_found([k for k in state if isinstance(k, str)]))
    return clean


def official_to_ganctl(state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict]:
    """Rename an official U-Net generator state_dict to ganctl's keys and infer its architecture.

    Returns ``(state, arch)``; ``UNetGenerator(**arch).load_state_dict(state)`` succeeds strictly.
    ``module.``/``_orig_mod.`` prefixes are stripped, non-tensor entries dropped, and a missing
    ``num_batches_tracked`` (files saved before torch 0.4.1) is filled with 0. Anything else that
    does not fit exactly raises :class:`CheckpointError`.
    """
    clean = clean_state(state)
    arch = _infer(clean)
    if not 5 <= arch["num_downs"] <= _MAX_DOWNS:
        raise _refuse(f"{arch['num_downs']} U-Net levels (the official U-Net has 5 to {_MAX_DOWNS})")
    if arch["norm"] == "instance":
        # InstanceNorm layers of pre-0.4 torch saved running stats; the official loader drops them too
        stale = (".running_mean", ".running_var", ".num_batches_tracked")
        clean = {k: v for k, v in clean.items() if not k.endswith(stale)}
    out: dict[str, torch.Tensor] = {}
    for official, ours, shape in _layout(arch):
        tensor = clean.pop(official, None)
        if tensor is None:
            if official.endswith(".num_batches_tracked"):
                tensor = torch.zeros((), dtype=torch.long)
            else:
                raise _refuse(f"no {official} (for {architecture_summary(arch)})")
        if tuple(tensor.shape) != shape:
            raise _refuse(
                f"{official} of shape {tuple(tensor.shape)} where {architecture_summary(arch)} needs {shape}"
            )
        out[ours] = tensor
    if clean:
        extra = sorted(clean)
        more = ", ..." if len(extra) > 3 else ""
        raise _refuse(f"unexpected keys for {architecture_summary(arch)}: {', '.join(extra[:3])}{more}")
    return out, arch


def ganctl_to_official(state: Mapping[str, torch.Tensor], arch: dict) -> dict[str, torch.Tensor]:
    """The inverse of :func:`official_to_ganctl`: a state_dict the official ``UnetGenerator``
    (``--netG unet_{2**num_downs} --norm {norm}``) loads strictly. The tensors are not copied."""
    arch = {k: arch[k] for k in ("in_channels", "out_channels", "ngf", "num_downs", "norm")}
    return to_official_keys(state, _layout(arch), architecture_summary(arch))


def to_official_keys(state: Mapping[str, torch.Tensor], layout, what: str) -> dict[str, torch.Tensor]:
    """``state`` checked against ``layout`` (``(official key, ganctl key, shape)`` triples) and keyed
    the official way; ``what`` names the architecture in the error. A batch norm's missing
    ``num_batches_tracked`` is let through (the official code does not save it either)."""
    wanted = {ours for _, ours, _ in layout}
    extra = sorted(set(state) - wanted)
    if extra:
        raise CheckpointError(f"the state_dict does not fit {what}: unexpected key {extra[0]}")
    out: dict[str, torch.Tensor] = {}
    for official, ours, shape in layout:
        if ours not in state:
            if ours.endswith(".num_batches_tracked"):
                continue
            raise CheckpointError(f"the state_dict does not fit {what}: no {ours}")
        if tuple(state[ours].shape) != shape:
            raise CheckpointError(f"the state_dict does not fit {what}: {ours} has shape {tuple(state[ours].shape)}, not {shape}")
        out[official] = state[ours]
    return out


def _unwrap(obj: object) -> object:
    # training scripts often save {"state_dict": ..., "epoch": ...}; unwrap up to twice
    for _ in range(2):
        if isinstance(obj, Mapping):
            inner = next((obj[k] for k in _WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
            if inner is not None:
                obj = inner
    return obj


def load_official_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Read an official ``.pth`` (a raw state_dict, or one wrapped under state_dict/model/netG).

    Only ``torch.load(weights_only=True)`` is used: a file that needs more than tensors and plain
    containers to unpickle is refused with :class:`CheckpointError`, and its code never runs.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path} does not exist")
    problem = not_a_torch_file(path)
    if problem:
        raise CheckpointError(f"{path} {problem}: expected {EXPECTED}, as saved by torch.save")
    try:
        with warnings.catch_warnings():
            # torch warns about any legacy pickle of protocol 3 or more (Python 3's torch.save writes
            # protocol 2): lines of its own before ganctl's answer, which says what went wrong if it did
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError (code in the pickle), RuntimeError (truncated zip), ...
        reason, code = load_error_reason(e)
        if code:
            raise CheckpointError(f"{path} cannot be loaded safely: {reason}; ganctl loads weights only, never code") from e
        raise CheckpointError(
            f"{path} cannot be loaded safely: {reason}; ganctl loads weights only, never code, "
            "so check that it is an official pix2pix .pth and download it again if it is truncated"
        ) from e
    state = _unwrap(obj)
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path} holds a {type(state).__name__}, not a state_dict: expected {EXPECTED}")
    return {k: v for k, v in state.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}


def not_a_torch_file(path: Path) -> str | None:
    """Why ``path`` cannot be a file of ``torch.save`` (read from its first bytes), or None if it may be
    one: a zip archive (torch >= 1.6) or a pickle (the legacy format). Said before ``torch.load``
    is tried, so a text file is not reported as an unsafe pickle."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError as e:
        return f"cannot be read ({e.strerror or e})"
    if head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":  # zip; pickle protocol 2+ (legacy torch.save)
        return None
    if not head:
        return "is empty, not a PyTorch file"
    if len(head) > 8 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 100_000_000:
        return "is a safetensors file (ganctl's own format), not a PyTorch .pth"
    try:
        head.decode("utf-8")
        return "is a text file, not a PyTorch file"
    except UnicodeDecodeError:
        return "is not a PyTorch file (neither a zip archive nor a pickle)"


def save_official_file(state: Mapping[str, torch.Tensor], path: str | Path) -> Path:
    """Write an official-layout state_dict as a ``.pth`` the official ``test.py`` loads; atomic."""
    path = Path(path)
    plain = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    with atomic_path(path) as tmp:
        torch.save(plain, tmp)
    return path


def architecture_summary(arch: Mapping) -> str:
    """E.g. 'unet_256, ngf 64, batch norm, 3->3 channels' (any official generator's:
    :func:`ganctl.models.cyclegan_official.summary`)."""
    return (
        f"unet_{2 ** arch['num_downs']}, ngf {arch['ngf']}, {arch['norm']} norm, "
        f"{arch['in_channels']}->{arch['out_channels']} channels"
    )
