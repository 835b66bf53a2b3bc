"""What ganctl export takes and writes, torch-free: the CLI checks its options against this first."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ganctl import __version__
from ganctl.core.errors import GanctlError

FORMATS = ("onnx", "pt2", "official")
MODES = ("eval", "paper")
SUFFIX = {"onnx": ".onnx", "pt2": ".pt2"}
TOLERANCE = 1e-3  # max abs difference allowed between the exported file and PyTorch, fp32, [-1, 1] images
PIP_EXTRA = 'pip install "ganctl[export]"'
NORMALISATION = ("images in [-1, 1]: input = pixel / 127.5 - 1, pixel = round((output + 1) * 127.5) clipped to "
                 "0..255; channels first (N, C, H, W), RGB or grayscale; z ~ N(0, I)")


class ExportError(GanctlError):
    """An export that could not be made, or that does not compute what the generator computes."""


@dataclass(frozen=True)
class Exported:
    path: Path  # the file written
    max_diff: float  # the largest |exported - PyTorch| over the check inputs
    checks: tuple[tuple[int, ...], ...]  # the shapes of the first input it was checked on
    meta: dict  # the generator's spec


def check_options(fmt: str, mode: str | None) -> None:
    """A one-line error for a format or mode ganctl does not export."""
    if fmt not in FORMATS:
        raise GanctlError(f"unknown --format {fmt!r}: use one of {', '.join(FORMATS)}")
    if mode is not None and mode not in MODES:
        raise GanctlError(f"unknown --mode {mode!r}: use eval or paper")
    if fmt == "official" and mode is not None:
        raise GanctlError("--mode applies to --format onnx and pt2: the official .pth holds weights only "
                          "(the official test.py chooses the mode)")


def output_path(output: str | os.PathLike, fmt: str) -> Path:
    """``-o``: a file, or a folder (an existing one, or a path ending in '/') that gets ``generator.onnx`` / ``.pt2``."""
    out = Path(output).expanduser()
    if out.is_dir() or str(output).endswith(("/", os.sep)):
        out = out / f"generator{SUFFIX[fmt]}"
    return out


def image_to_image(spec: dict) -> bool:
    """Whether the generator ``spec`` describes takes an image (pix2pix, CycleGAN), not noise: its
    family's data kind says so; a family this ganctl does not know, by its drawing no noise."""
    from ganctl.families import registry

    family = spec.get("family")
    if family in registry.FAMILIES:
        return registry.get(family).translates
    return not spec.get("z_dim")


def metadata(spec: dict, mode: str, size_multiple: int = 1, min_size: int = 0) -> dict[str, str]:
    """What the exported file says about itself (ONNX metadata_props, a pt2 extra file): strings
    only. ``size_multiple`` and ``min_size``: the sides an image-to-image generator takes."""
    g = spec.get("generator") or {}
    meta = {
        "family": spec["family"],
        "arch": spec["arch"],
        "ganctl_version": __version__,
        "mode": mode,
        "normalisation": NORMALISATION,
        "channels": str(g.get("out_channels", spec.get("channels", ""))),
    }
    if image_to_image(spec):
        meta.update(inputs="image", size_multiple=str(size_multiple), min_size=str(min_size or size_multiple),
                    image_size=str(spec.get("image_size", size_multiple)), in_channels=str(g["in_channels"]),
                    direction=str(spec.get("direction") or ""))
    else:
        meta.update(inputs="z, label" if spec.get("conditional") else "z", image_size=str(spec.get("image_size", "")),
                    z_dim=str(spec.get("z_dim", "")))
    if spec.get("classes"):
        meta["classes"] = json.dumps(list(spec["classes"]))
    if spec.get("dataset"):
        meta["dataset"] = str(spec["dataset"])
    meta["ganctl_spec"] = json.dumps(spec, sort_keys=True)
    return meta


def missing_onnx() -> str | None:
    """Which of the ONNX export's libraries is not installed (None: all are)."""
    import importlib.util

    for name in ("onnx", "onnxscript", "onnxruntime"):
        if importlib.util.find_spec(name) is None:
            return name
    return None
