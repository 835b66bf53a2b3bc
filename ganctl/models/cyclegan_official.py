"""Weights of the official CycleGAN ResNet generator (junyanz/pytorch-CycleGAN-and-pix2pix) in ganctl.

:class:`~ganctl.models.cyclegan.ResnetGenerator` is built like the official ``ResnetGenerator``
(one Sequential ``model``, blocks with a Sequential ``conv_block``), so the keys are the same in
both directions (``model.1.weight``, ``model.10.conv_block.5.bias``, ...). What this module adds
is what a downloaded ``latest_net_G_A.pth`` needs before it loads strictly:

- the architecture, read from the tensors' shapes (in/out channels, ngf, the number of blocks,
  batch or instance norm, dropout: it moves a block's second conv from index 5 to 6), so there
  are no ``--netG/--norm/--no_dropout`` flags to get wrong;
- the ``running_mean``/``running_var``/``num_batches_tracked`` keys that PyTorch before 0.4 saved
  for InstanceNorm layers (the published pretrained files have them), deleted as the official
  ``__patch_instance_norm_state_dict`` deletes them;
- ``module.``/``_orig_mod.`` prefixes stripped, and anything else that does not fit refused with
  one line.

Files are read with :func:`ganctl.models.pix2pix_official.load_official_file` (``torch.load(weights_only=True)``
only). :func:`official_kind` tells a U-Net file (pix2pix) from a ResNet one (CycleGAN).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from ganctl.core.errors import CheckpointError
from ganctl.models.cyclegan import ResnetGenerator
from ganctl.models.pix2pix_official import _found, _strip_wrappers, clean_state, to_official_keys
from ganctl.models.pix2pix_official import architecture_summary as pix2pix_summary

FAMILY = "cyclegan"
ARCH = "cyclegan"  # the Networks name a generator spec gives (registry arch of the cyclegan family)
EXPECTED = "an official CycleGAN ResNet generator state_dict (keys like model.1.weight, model.10.conv_block.1.weight)"
ARGS = ("in_channels", "out_channels", "ngf", "n_blocks", "norm", "dropout")
FIRST_BLOCK = 10  # Sequential index of the first residual block (pad, conv, norm, relu, then 2 x conv, norm, relu)
_KEY_RE = re.compile(r"^model\.(\d+)\.(?:conv_block\.(\d+)\.)?([A-Za-z_]+)$")
_STALE = ("running_mean", "running_var", "num_batches_tracked")


def _refuse(what: str) -> CheckpointError:
    return CheckpointError(f"expected {EXPECTED}, but found {what}")


def _guess(state: Mapping[str, torch.Tensor]) -> str:
    """A hint for the official networks people pass by mistake."""
    if any(k.startswith("model.model.") for k in state):
        return "; that is a pix2pix U-Net generator (ganctl.models.pix2pix_official reads it)"
    first = state.get("model.0.weight")
    if isinstance(first, torch.Tensor) and first.dim() == 4 and first.shape[-1] == 4:
        return "; that is a PatchGAN discriminator (*_net_D_A.pth): give a generator, *_net_G_A.pth or *_net_G_B.pth"
    return ""


def official_kind(state: Mapping[str, torch.Tensor]) -> str | None:
    """Which official generator ``state`` (a loaded state_dict) is: ``"unet"`` (pix2pix,
    ``model.model.*`` keys), ``"resnet"`` (CycleGAN: a 7x7 first conv at ``model.1`` and
    ``conv_block`` keys), or None when it is neither (a discriminator, another network).
    Only the keys and the first conv's shape are looked at: converting checks the rest."""
    keys = [_strip_wrappers(k) for k in state if isinstance(k, str)]
    if any(k.startswith("model.model.") for k in keys):
        return "unet"
    first = next((v for k, v in state.items() if isinstance(k, str) and _strip_wrappers(k) == "model.1.weight"), None)
    if (isinstance(first, torch.Tensor) and first.dim() == 4 and tuple(first.shape[-2:]) == (7, 7)
            and any(".conv_block." in k for k in keys)):
        return "resnet"
    return None


def _infer(state: dict[str, torch.Tensor]) -> dict:
    blocks: set[int] = set()
    for key in state:
        m = _KEY_RE.match(key)
        if m is None:
            if "model.1.weight" not in state or any(k.startswith("model.model.") for k in state):
                raise _refuse(_found(list(state)) + _guess(state))
            raise _refuse(f"the key {key!r}, which is not part of one")
        if m.group(2) is not None:
            blocks.add(int(m.group(1)))
    first = state.get("model.1.weight")
    if first is None or first.dim() != 4 or tuple(first.shape[-2:]) != (7, 7) or 0 in first.shape[:2]:
        raise _refuse(f"no usable 7x7 model.1.weight ({_found(list(state))}){_guess(state)}")
    n_blocks = len(blocks)
    if n_blocks == 0 or sorted(blocks) != list(range(FIRST_BLOCK, FIRST_BLOCK + n_blocks)):
        raise _refuse(f"residual blocks at model indices {sorted(blocks)[:6]} (they run from {FIRST_BLOCK} without gaps)")
    last = state.get(f"model.{FIRST_BLOCK + n_blocks + 7}.weight")
    if last is None or last.dim() != 4 or last.shape[0] == 0:
        raise _refuse(f"no model.{FIRST_BLOCK + n_blocks + 7}.weight, the last conv of {n_blocks} blocks")
    # use_bias is on exactly for instance norm, so the first conv's bias tells the two apart
    # (pre-0.4 instance-norm files also hold running statistics: the bias is the reliable sign)
    if "model.1.bias" in state:
        norm = "instance"
    elif "model.2.weight" in state or "model.2.running_mean" in state:
        norm = "batch"
    else:
        raise _refuse("a ResNet with neither batch-norm parameters nor conv biases (--norm none is not supported)")
    return {
        "in_channels": int(first.shape[1]),
        "out_channels": int(last.shape[0]),
        "ngf": int(first.shape[0]),
        "n_blocks": n_blocks,
        "norm": norm,
        # with dropout a block is [pad, conv, norm, relu, dropout, pad, conv, norm]: a conv's 4-D
        # weight at 6, where without it the block holds its second norm (pre-0.4 statistics, BN)
        "dropout": getattr(state.get(f"model.{FIRST_BLOCK}.conv_block.6.weight"), "ndim", 0) == 4,
    }


def _layout(arch: Mapping) -> tuple[dict[str, tuple[int, ...]], set[str]]:
    """(key -> shape of every state_dict entry, names of the InstanceNorm modules) of ``arch``,
    from a ResnetGenerator built on the meta device, so they cannot drift from the real network."""
    with torch.device("meta"):
        net = ResnetGenerator(**{k: arch[k] for k in ARGS})
    shapes = {k: tuple(t.shape) for k, t in net.state_dict().items()}
    instance = {name for name, m in net.named_modules() if isinstance(m, torch.nn.InstanceNorm2d)}
    return shapes, instance


def official_to_ganctl(state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict]:
    """Check an official ResNet generator state_dict and infer its architecture.

    Returns ``(state, arch)``; ``ResnetGenerator(**arch).load_state_dict(state)`` succeeds
    strictly. Prefixes are stripped, non-tensor entries dropped, InstanceNorm statistics of
    pre-0.4 files deleted, a missing batch-norm ``num_batches_tracked`` filled with 0; anything
    else that does not fit exactly raises :class:`CheckpointError`.
    """
    clean = clean_state(state, _refuse)
    arch = _infer(clean)
    try:
        shapes, instance = _layout(arch)
    except ValueError as e:  # a norm or width the constructor refuses
        raise _refuse(f"an architecture ganctl cannot build ({e})") from e
    for name in instance:  # what the official loader's InstanceNorm patch deletes
        for stat in _STALE:
            clean.pop(f"{name}.{stat}", None)
    out: dict[str, torch.Tensor] = {}
    for key, shape in shapes.items():
        tensor = clean.pop(key, None)
        if tensor is None:
            if key.endswith(".num_batches_tracked"):
                tensor = torch.zeros((), dtype=torch.long)  # files saved before torch 0.4.1
            else:
                raise _refuse(f"no {key} (for {architecture_summary(arch)})")
        if tuple(tensor.shape) != shape:
            raise _refuse(f"{key} of shape {tuple(tensor.shape)} where {architecture_summary(arch)} needs {shape}")
        out[key] = tensor
    if clean:
        extra = sorted(clean)
        more = ", ..." if len(extra) > 3 else ""
        raise _refuse(f"unexpected keys for {architecture_summary(arch)}: {', '.join(extra[:3])}{more}")
    return out, arch


def ganctl_to_official(state: Mapping[str, torch.Tensor], arch: Mapping) -> dict[str, torch.Tensor]:
    """A state_dict the official ``ResnetGenerator`` (``--netG resnet_{n_blocks}blocks --norm
    {norm}``, ``--no_dropout`` unless ``dropout``) loads strictly: the same keys, checked against
    ``arch``. The tensors are not copied."""
    shapes, _ = _layout(arch)
    return to_official_keys(state, [(key, key, shape) for key, shape in shapes.items()], architecture_summary(arch))


def summary(arch: Mapping) -> str:
    """Any official generator's arguments in words: a ResNet's (with ``n_blocks``) or a U-Net's."""
    return architecture_summary(arch) if "n_blocks" in arch else pix2pix_summary(arch)


def architecture_summary(arch: Mapping) -> str:
    """E.g. 'resnet_9blocks, ngf 64, instance norm, 3->3 channels'."""
    dropout = ", dropout" if arch.get("dropout") else ""
    return (
        f"resnet_{arch['n_blocks']}blocks, ngf {arch['ngf']}, {arch['norm']} norm, "
        f"{arch['in_channels']}->{arch['out_channels']} channels{dropout}"
    )


def official_options(arch: Mapping) -> str:
    """The official test.py options that rebuild this generator for one direction, e.g.
    '--model test --netG resnet_9blocks --norm instance --ngf 64 --input_nc 3 --output_nc 3 --no_dropout'.
    The official --netG offers 6 and 9 blocks only."""
    opts = [
        "--model test",
        f"--netG resnet_{arch['n_blocks']}blocks",
        f"--norm {arch['norm']}",
        f"--ngf {arch['ngf']}",
        f"--input_nc {arch['in_channels']}",
        f"--output_nc {arch['out_channels']}",
    ]
    if not arch.get("dropout"):
        opts.append("--no_dropout")
    return " ".join(opts)
