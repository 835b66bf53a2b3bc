"""The generator spec: what a generator file says about itself, defined once.

Every ``generator.safetensors`` ganctl writes (checkpoints, imported pretrained models) carries
this spec twice: as ``config.json`` beside it (the diffusers convention: readable, and what
ganctl reads first) and in the safetensors header (so the file alone, copied elsewhere, still
describes itself). Files written before ``schema_version`` existed hold the same fields in the
header only; they are read as schema 1.

A spec with a key this version does not know, or a newer ``schema_version``, is refused with a
clear message rather than silently dropped. Nothing here imports torch.
"""

from __future__ import annotations

import json
from pathlib import Path

from ganctl import __version__
from ganctl.core.errors import CheckpointError

SCHEMA_VERSION = 1
FILE = "config.json"  # beside generator.safetensors
GENERATOR = "generator.safetensors"  # the generator file of a checkpoint and of a pretrained model

# every key, and the type check.py enforces on it (the TrainConfig fields are checked by config.check_fields)
KEYS: dict[str, object] = {
    "schema_version": int,
    "family": str,
    "arch": str,
    "generator": dict,
    "z_dim": int,
    "image_size": int,
    "channels": int,
    "classes": tuple[str, ...] | None,
    "conditional": bool,
    "dataset": str | None,
    "run": str | None,
    "ganctl_version": str,
    # pairs: which side is the input, and the size the training jitter resized to
    "direction": str | None,
    "load_size": int | None,
    # imported pretrained models
    "pretrained": str | None,
    "description": str | None,
    "source_url": str | None,
    "source_sha256": str | None,
}
REQUIRED = ("family", "arch", "generator")


def make(**fields: object) -> dict:
    """A spec of the current schema from ``fields`` (checked)."""
    spec = {"schema_version": SCHEMA_VERSION, "ganctl_version": __version__, **fields}
    return check(spec)


def for_run(cfg, direction: str | None = None) -> dict:
    """The spec of a generator a run trains (``cfg``: its TrainConfig); ``direction``: which way
    it translates, for a family with a generator each way (else the pairs' ``direction``)."""
    extra = {k: cfg.data_args[k] for k in ("direction", "load_size") if k in cfg.data_args}
    if direction is not None:
        extra["direction"] = direction
    return make(
        family=cfg.family,
        arch=cfg.arch,
        generator=cfg.generator,
        z_dim=cfg.z_dim,
        image_size=cfg.image_size,
        channels=cfg.channels,
        classes=list(cfg.classes) if cfg.classes else None,
        conditional=bool(cfg.generator.get("num_classes")),
        dataset=cfg.dataset,
        run=cfg.run_name,
        **extra,
    )


def check(spec: object) -> dict:
    """``spec`` if it is a generator spec this version reads; else ValueError saying why."""
    from ganctl.config import check_fields, type_problem

    if not isinstance(spec, dict):
        raise ValueError(f"it is {type(spec).__name__}, not an object")
    version = spec.get("schema_version", 1)
    if type_problem(version, int):
        raise ValueError(f"schema_version is {version!r:.40}, not an integer")
    if version > SCHEMA_VERSION:
        raise ValueError(f"it has schema_version {version}, written by a newer ganctl (this one reads up to "
                         f"{SCHEMA_VERSION}): upgrade ganctl")
    unknown = [k for k in spec if k not in KEYS]
    if unknown:
        raise ValueError(f"it has keys this ganctl does not know ({', '.join(map(repr, unknown[:3]))}): "
                         "it was written by another version; upgrade ganctl")
    for key in REQUIRED:
        if key not in spec:
            raise ValueError(f"it names no {key!r}")
    for key, hint in KEYS.items():
        if key in spec:
            want = type_problem(spec[key], hint)
            if want:
                raise ValueError(f"{key} is {spec[key]!r:.40}, not {want}")
    check_fields({k: spec[k] for k in ("family", "arch", "z_dim", "image_size", "channels") if k in spec}, partial=True)
    if spec.get("conditional") and not spec.get("classes"):
        raise ValueError("it is conditional but lists no classes")
    return spec


def to_json(spec: dict) -> bytes:
    return (json.dumps(check(spec), indent=2, sort_keys=True) + "\n").encode()


def read(generator: Path, header: dict) -> dict:
    """The spec of ``generator`` (a .safetensors file): ``config.json`` beside it when there is one
    that belongs to it, else ``header`` (the ganctl entry of its safetensors header, as the caller
    read it). Not checked: :func:`check` it (the caller's message names the file)."""
    from ganctl.config import parse_json

    generator = Path(generator)
    beside = generator.with_name(FILE)
    if generator.name.endswith(".safetensors") and beside.is_file():
        try:
            data = parse_json(beside.read_bytes())
        except (ValueError, OSError) as e:
            raise CheckpointError(f"{beside} is damaged: {e}") from e
        if not isinstance(data, dict) or "arch" in data or "schema_version" in data:  # else some other tool's config.json
            return data
    return header


MAX_HEADER = 100_000_000  # what safetensors itself accepts


def read_file_meta(path: Path) -> dict:
    """The ganctl entry of a ``.safetensors`` header, read without torch: the file is an 8-byte
    little-endian length, that many bytes of JSON, then the tensor data. A CheckpointError naming
    the file when it cannot be read, is no safetensors file, or is not complete (its size must be
    the header's plus the end of the last tensor's data)."""
    import os

    from ganctl.config import parse_meta
    from ganctl.core.errors import cannot_read

    path = Path(path)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(8)
            n = int.from_bytes(head, "little") if len(head) == 8 else -1
            if not 2 <= n <= min(MAX_HEADER, size - 8):
                raise ValueError("no safetensors header at its start")
            header = json.loads(f.read(n))
    except OSError as e:
        raise CheckpointError(f"{path} cannot be read: {cannot_read(path) or e.strerror or e}") from e
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise CheckpointError(f"{path} is not a readable safetensors file ({e})") from e
    try:
        ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"]
        meta = header.get("__metadata__") or {}
        if not isinstance(meta, dict):
            raise ValueError("its metadata is not an object")
    except (AttributeError, KeyError, IndexError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path} is not a readable safetensors file (a damaged header: {e})") from e
    if 8 + n + max(ends, default=0) != size:
        raise CheckpointError(f"{path} is not a readable safetensors file ({size:,} bytes where its header describes "
                              f"{8 + n + max(ends, default=0):,}); it may be truncated")
    return parse_meta(meta, path)


def read_file(path: Path) -> dict:
    """The checked spec of a generator file (``config.json`` beside it, else its header), without
    torch; a CheckpointError naming the file when the file or its spec is unreadable or foreign."""
    header = read_file_meta(path)
    try:
        return check(read(path, header))
    except ValueError as e:
        raise CheckpointError(f"{path} has damaged or foreign ganctl metadata: {e}") from e


def resolve_label(spec: str, classes: list[str] | tuple[str, ...]) -> int:
    """A class name (case-insensitive) or an index -> the index; anything else is an error that
    lists the valid labels."""
    from ganctl.core.errors import GanctlError

    names = [str(c) for c in classes]
    for i, name in enumerate(names):
        if spec.strip().lower() == name.lower():
            return i
    if spec.strip().lstrip("-").isdigit() and 0 <= int(spec) < len(names):
        return int(spec)
    valid = ", ".join(f"{i} ({n})" if n != str(i) else n for i, n in enumerate(names))
    raise GanctlError(f"unknown label {spec!r} for this model: use a class name or index, one of {valid}")
