"""Small generators trained by ganctl on the embedded digits, shipped in the package.

Each demo is a folder here, ``NAME/generator.safetensors`` with its ``config.json`` (the generator
spec, as a checkpoint's), made by ``python benchmarks/make_demos.py``. ganctl reads them in place
(``--pretrained digits-cgan``): they are never copied into the store, and ``ganctl rm`` cannot
delete them. The weights are stored as float16 and loaded as the network's float32.

Nothing here imports torch.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent
GENERATOR = "generator.safetensors"  # as in the store and in checkpoints

# name -> the family it samples; the folders benchmarks/make_demos.py writes
DEMOS: dict[str, str] = {"digits-dcgan": "dcgan", "digits-cgan": "cgan"}


def path(name: str) -> Path | None:
    """The shipped generator file of demo ``name`` (any case), or None if there is none."""
    name = name.lower()
    if name not in DEMOS:
        return None
    file = ROOT / name / GENERATOR
    return file if file.is_file() else None


def for_family(family: str) -> list[str]:
    """The names of the shipped demos that sample ``family``."""
    return [name for name, fam in DEMOS.items() if fam == family and path(name) is not None]

