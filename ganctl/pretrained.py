"""Pretrained pix2pix generators: the official models, users' own official ``.pth`` files, and export.

The five models of junyanz/pytorch-CycleGAN-and-pix2pix (``scripts/download_pix2pix_model.sh``)
are U-Net-256 generators saved as raw ``state_dict``s with ``torch.save``. ganctl downloads one
with the one downloader (resume, retries, mirrors), reads it with ``torch.load(weights_only=True)``
only, renames its keys to :class:`~ganctl.models.pix2pix.UNetGenerator`'s, and stores it as
``pretrained/NAME/generator.safetensors`` whose metadata holds everything ``translate`` needs: the
architecture (read from the tensors' shapes), the direction the model was trained for, where the
file came from and its sha256 (the publisher gives no checksums, so ganctl records what it got).
The ``.pth`` itself is not kept: it is a pickle, and the safetensors file holds the same numbers.

This module imports no torch at import time (the catalog and the store listing are plain data),
so ``ganctl list`` and ``ganctl download`` stay fast.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ganctl.data.download import ProgressFn, RemoteFile, download, file_digest, join_url, looks_like_html
from ganctl.errors import CheckpointError, GanctlError, StoreError, UnknownNameError, did_you_mean
from ganctl.store import atomic_dir, check_name, pretrained_dir, remove_if_empty

BASE_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch/"
GENERATOR = "generator.safetensors"  # the same file name as in a training checkpoint
SUFFIX = "_pretrained"  # the official folder name: checkpoints/NAME_pretrained/latest_net_G.pth
DIRECTIONS = ("AtoB", "BtoA")
OFFICIAL_FILE = "latest_net_G.pth"  # what the official test.py loads from checkpoints/NAME/


@dataclass(frozen=True)
class PretrainedModel:
    """One official pretrained generator. ``direction`` is the one it was trained for on the
    official side-by-side A|B images of ``dataset`` (reference notes, section 3)."""

    name: str
    direction: str
    description: str  # what it does: input kind -> output kind
    dataset: str  # the official dataset it was trained on (a ganctl catalog name)
    input: str
    output: str

    @property
    def file(self) -> str:
        return f"{self.name}.pth"

    @property
    def url(self) -> str:
        return join_url(BASE_URL, self.file)

    @property
    def alias(self) -> str:
        """The name that always means this model, even where a dataset has the bare name."""
        return self.name + SUFFIX

    @property
    def download_name(self) -> str:
        """What to pass to 'ganctl download': datasets are looked up first, so a model named like
        one (edges2shoes) is fetched by its alias (edges2shoes_pretrained)."""
        from ganctl.data.catalog import CATALOG as DATASETS

        return self.alias if self.name in DATASETS else self.name


def _model(name: str, direction: str, dataset: str, input: str, output: str) -> PretrainedModel:
    return PretrainedModel(name, direction, f"{input} -> {output}", dataset, input, output)


# All five are unet_256, batch norm, ngf 64, 3->3 channels, dropout on (the pix2pix defaults);
# ganctl reads that from the tensors rather than trusting this table. Each file is about 218 MB
# (54.4 M float32 parameters); no size or checksum is published.
CATALOG: dict[str, PretrainedModel] = {
    m.name: m
    for m in (
        _model("facades_label2photo", "BtoA", "facades", "facade label map", "photo"),
        _model("sat2map", "AtoB", "maps", "aerial photo", "map"),
        _model("map2sat", "BtoA", "maps", "map", "aerial photo"),
        _model("edges2shoes", "AtoB", "edges2shoes", "edge map", "shoe photo"),
        _model("day2night", "BtoA", "night2day", "daytime photo", "night photo"),
    )
}
APPROX_FILE_SIZE = 217_700_000  # bytes of one official unet_256 file, for listings


def download_names() -> list[str]:
    """The name that downloads each model: NAME, or NAME_pretrained where a dataset is NAME."""
    return [m.download_name for m in CATALOG.values()]


def names() -> list[str]:
    return list(CATALOG)


def find(name: str) -> PretrainedModel | None:
    """The catalog model called ``name`` or ``name_pretrained``; None if there is none."""
    if name in CATALOG:
        return CATALOG[name]
    if name.endswith(SUFFIX):
        return CATALOG.get(name[: -len(SUFFIX)])
    return None


def lookup(name: str) -> PretrainedModel:
    """Like :func:`find`, but an unknown name is an error that suggests the closest ones."""
    model = find(name)
    if model is None:
        raise did_you_mean("pretrained model", name, names())
    return model


def model_dir(name: str) -> Path:
    return pretrained_dir() / check_name(name, "pretrained model name")


def normalise_direction(direction: str | None) -> str | None:
    """'AtoB'/'BtoA' in any case, or None; anything else is an error."""
    if direction is None:
        return None
    for d in DIRECTIONS:
        if direction.strip().lower() == d.lower():
            return d
    raise GanctlError(f"unknown direction {direction!r}: use AtoB or BtoA (which half of an A|B pair is the input)")


# ---------------------------------------------------------------- the store


def read_meta(path: Path) -> dict:
    """The ganctl metadata of a safetensors file, as ``checkpoint.read_meta``, without importing
    torch (safe_open with framework="pt" imports it), so listings stay fast."""
    from safetensors import SafetensorError, safe_open

    from ganctl.config import parse_meta

    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path} is not a readable safetensors file ({e})") from e
    return parse_meta(meta, path)


def installed() -> list[dict]:
    """The pretrained models in the store, by name: ``{"name", "path", "meta"}`` each.

    ``path`` is the generator.safetensors file; ``meta`` its ganctl metadata ({} if unreadable).
    """
    root = pretrained_dir()
    if not root.is_dir():
        return []
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        path = folder / GENERATOR
        if not path.is_file():
            continue
        try:
            meta = read_meta(path)
        except CheckpointError:  # a damaged file is still listed, so the user sees it is there
            meta = {}
        found.append({"name": folder.name, "path": path, "meta": meta})
    return found


def generator_path(name: str) -> Path:
    """The generator.safetensors of pretrained model ``name`` (or ``name_pretrained``) in the store."""
    check_name(name, "pretrained model name")
    path = pretrained_dir() / name / GENERATOR
    if path.is_file():
        return path
    model = find(name)
    if model is not None and (pretrained_dir() / model.name / GENERATOR).is_file():
        return pretrained_dir() / model.name / GENERATOR
    if model is not None:
        raise CheckpointError(f"pretrained model {name} is not in the store: run 'ganctl download {model.download_name}'")
    have = [m["name"] for m in installed()]
    listing = f" In the store: {', '.join(have)}." if have else ""
    raise UnknownNameError(
        f"pretrained model {name} is not in the store: run 'ganctl download' to see the official ones, "
        f"or 'ganctl import FILE.pth --name {name}' for your own.{listing}"
    )


# ---------------------------------------------------------------- download and import


def fetch(
    name: str,
    mirror: str | None = None,
    progress_for: Callable[[str], ProgressFn] | None = None,
) -> Path:
    """Download an official model, convert it and store it; return its generator.safetensors.

    ``mirror`` (or ``GANCTL_MIRROR``) is a base URL serving ``NAME.pth``, in place of the official
    host. A model already in the store is returned as it is. The ``.pth`` is downloaded inside the
    pretrained folder (``NAME.pth.incomplete`` while in flight, so an interrupted transfer resumes
    on the next run) and deleted once converted; a file that is not a generator is deleted too.
    """
    model = lookup(name)
    final = pretrained_dir() / model.name / GENERATOR
    if final.is_file():
        return final
    base = mirror or os.environ.get("GANCTL_MIRROR") or BASE_URL
    url = join_url(base, model.file)
    root = pretrained_dir()
    original = root / model.file
    try:
        if not original.is_file():  # a complete one is left only by a run stopped while converting
            progress = progress_for(model.file) if progress_for else None
            download(RemoteFile(model.file), [base], original, progress=progress)
        try:
            return _install(
                original, model.name, direction=model.direction, dataset=model.dataset,
                description=model.description, source=url, force=False,
            )
        except CheckpointError as e:
            html = looks_like_html(original)
            original.unlink(missing_ok=True)
            if html:
                raise CheckpointError(
                    f"{url} sent an HTML page, not the {model.name} weights; nothing was installed: "
                    "try again later, or pass --mirror URL"
                ) from e
            detail = str(e).replace(f"{original} ", "it ")  # that file is gone: name the URL instead
            raise CheckpointError(
                f"the file from {url} is not a usable pix2pix generator: {detail}. It was deleted and nothing "
                "was installed: run the same command again, or pass --mirror URL"
            ) from e
        finally:
            if final.is_file():
                original.unlink(missing_ok=True)
    finally:
        remove_if_empty(root)


def import_file(
    path: str | Path,
    name: str,
    direction: str | None = None,
    source: str | None = None,
    force: bool = False,
) -> Path:
    """Convert a generator saved by the official code (any ngf, depth, batch or instance norm,
    ``module.``/``_orig_mod.`` prefixes, with or without ``num_batches_tracked``) into the store
    as pretrained model ``name``; return its generator.safetensors.

    A ``name`` of an official model (``sat2map``) takes its direction, dataset and description
    from the catalog (an offline install of a file downloaded by hand); ``direction`` overrides it.
    """
    check_name(name, "pretrained model name")
    direction = normalise_direction(direction)
    path = Path(path).expanduser()
    model = CATALOG.get(name)
    try:
        return _install(
            path, name,
            direction=direction or (model.direction if model else None),
            dataset=model.dataset if model else None,
            description=model.description if model else f"imported from {path.name}",
            source=source or str(path.resolve()),
            force=force,
        )
    except CheckpointError as e:
        if str(path) in str(e):
            raise
        raise CheckpointError(f"{path}: {e}") from e  # say which file, as the load errors do


def _install(
    original: Path, name: str, *, direction: str | None, dataset: str | None, description: str,
    source: str, force: bool,
) -> Path:
    from ganctl import __version__
    from ganctl.checkpoint import save_weights
    from ganctl.pix2pix_official import load_official_file, official_to_ganctl

    dest = model_dir(name)
    if dest.exists() and not force:
        raise StoreError(
            f"pretrained model {name} is already in the store ({dest}): pass --force to replace it, "
            "or choose another --name"
        )
    state, arch = official_to_ganctl(load_official_file(original))
    sha256 = file_digest(original)  # no checksums are published: record what was converted
    net = _unet(arch, state, str(original))
    meta = {
        "family": "pix2pix",
        "arch": "pix2pix",
        "generator": {**arch, "dropout": True},  # the pix2pix default; the file cannot tell
        "image_size": 2 ** arch["num_downs"],
        "channels": arch["in_channels"],
        "z_dim": 0,
        "classes": None,
        "conditional": False,
        "direction": direction,
        "dataset": dataset,
        "run": None,
        "pretrained": name,
        "description": description,
        "source_url": source,
        "source_sha256": sha256,
        "ganctl_version": __version__,
    }
    if dest.exists():  # --force: the file is replaced atomically, the folder stays
        save_weights(dest / GENERATOR, net, meta)
    else:
        with atomic_dir(dest) as tmp:
            save_weights(tmp / GENERATOR, net, meta)
    return dest / GENERATOR


def _unet(arch: dict, state: dict, where: str):
    """A UNetGenerator holding ``state`` (strict), without initialising weights it would overwrite."""
    import torch

    from ganctl.checkpoint import match_dtypes
    from ganctl.models import check_args
    from ganctl.models.pix2pix import UNetGenerator

    try:
        check_args("pix2pix", arch)
        with torch.device("meta"):
            net = UNetGenerator(**arch)
    except (TypeError, ValueError) as e:  # metadata edited by hand, or from another version
        raise CheckpointError(f"{where} describes no pix2pix U-Net ({arch}): {e}") from e
    try:
        match_dtypes(state, net)  # fp16/fp64 files: stored and run as the network's float32
        net.load_state_dict(state, strict=True, assign=True)
    except ValueError as e:
        raise CheckpointError(f"{where} does not fit {arch}: {e}") from e
    except RuntimeError as e:  # official_to_ganctl promises a fit; this makes sure of it
        first = str(e).strip().splitlines()
        raise CheckpointError(f"{where} does not fit {arch}: {first[-1].strip()}") from e
    return net


# ---------------------------------------------------------------- export


def resolve_generator(path: str | Path) -> Path:
    """A generator.safetensors file, or the one inside a checkpoint (or pretrained) folder."""
    src = Path(path).expanduser()
    if src.is_dir() and (src / GENERATOR).is_file():
        return src / GENERATOR
    if not src.is_file():
        raise CheckpointError(f"{src} holds no {GENERATOR}: give a generator file or a checkpoint folder")
    return src


def export(generator_path: str | Path, out_path: str | Path) -> tuple[Path, dict]:
    """Write a ganctl pix2pix generator (a generator.safetensors, or a folder holding one) as an
    official ``.pth`` that the official ``UnetGenerator`` loads strictly; return the file written
    and the generator's ganctl metadata.

    ``out_path`` may be a folder (or end in '/'): the file is then ``latest_net_G.pth`` inside it,
    the name the official ``test.py`` loads from ``checkpoints/NAME/``.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from ganctl.pix2pix_official import ganctl_to_official, save_official_file

    src = resolve_generator(generator_path)
    meta = read_meta(src)
    if meta.get("arch") != "pix2pix" or not isinstance(meta.get("generator"), dict):
        what = f"a {meta['family']!r} generator" if meta.get("family") else "no ganctl generator"
        raise CheckpointError(
            f"{src} holds {what}: only pix2pix U-Net generators have an official layout to export to"
        )
    arch = meta["generator"]
    try:
        state = load_file(str(src))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{src} is not a readable safetensors file ({e}); it may be truncated") from e
    net = _unet(arch, state, str(src))
    out = Path(out_path).expanduser()
    if out.is_dir() or str(out_path).endswith(("/", os.sep)):
        out = out / OFFICIAL_FILE
    return save_official_file(ganctl_to_official(net.state_dict(), arch), out), meta


def official_options(meta: dict) -> str:
    """The official test.py options that rebuild this generator, e.g. '--netG unet_256 --norm batch ...'."""
    g = meta["generator"]
    opts = [
        "--model pix2pix",
        f"--netG unet_{2 ** g['num_downs']}",
        f"--norm {g['norm']}",
        f"--ngf {g['ngf']}",
        f"--input_nc {g['in_channels']}",
        f"--output_nc {g['out_channels']}",
    ]
    if not g.get("dropout", True):
        opts.append("--no_dropout")
    if meta.get("direction"):
        opts.append(f"--direction {meta['direction']}")
    return " ".join(opts)
