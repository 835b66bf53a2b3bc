"""Bringing official generators into the store: the official pix2pix and CycleGAN models
downloaded, users' own official ``.pth`` files imported; both converted to
``pretrained/NAME/generator.safetensors``.

A ``.pth`` is read with ``torch.load(weights_only=True)`` only; a U-Net (pix2pix) has its keys
renamed to :class:`~ganctl.models.pix2pix.UNetGenerator`'s, a ResNet (CycleGAN) is checked
against :class:`~ganctl.models.cyclegan.ResnetGenerator`, whose keys are the official ones; the
architecture is read from the tensors' shapes. torch is imported only when a file is converted.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from ganctl.core.atomic import atomic_dir
from ganctl.core.errors import CheckpointError, StoreError
from ganctl.core.storedirs import pretrained_dir, remove_if_empty
from ganctl.data.download import ProgressFn, RemoteFile, download, file_digest, join_url, looks_like_html
from ganctl.store.layout import check_name
from ganctl.store.pretrained import BASE_URLS, CATALOG, GENERATOR, lookup, model_dir, normalise_direction


def fetch(
    name: str,
    mirror: str | None = None,
    progress_for: Callable[[str], ProgressFn] | None = None,
) -> Path:
    """Download an official model, convert it and store it; return its generator.safetensors.

    ``mirror`` (or ``GANCTL_MIRROR``) is a base URL serving ``NAME.pth`` (the official file name),
    in place of the official folder of the model's family. A model already in the store is returned as it is. The ``.pth`` is downloaded inside the
    pretrained folder (``NAME.pth.incomplete`` while in flight, so an interrupted transfer resumes
    on the next run) and deleted once converted; a file that is not a generator is deleted too.
    """
    model = lookup(name)
    final = pretrained_dir() / model.name / GENERATOR
    if final.is_file():
        return final
    base = mirror or os.environ.get("GANCTL_MIRROR") or BASE_URLS[model.family]
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
                description=model.description, source=url, force=False, family=model.family,
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
                f"the file from {url} is not a usable {model.family} generator: {detail}. It was deleted and nothing "
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
    """Convert a generator saved by the official code (a pix2pix U-Net or a CycleGAN ResNet: any
    ngf, depth, batch or instance norm, ``module.``/``_orig_mod.`` prefixes, with or without
    ``num_batches_tracked``, pre-0.4 InstanceNorm statistics) into the store as pretrained model
    ``name``; return its generator.safetensors.

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
            family=model.family if model else None,
        )
    except CheckpointError as e:
        if str(path) in str(e):
            raise
        raise CheckpointError(f"{path}: {e}") from e  # say which file, as the load errors do


def _install(
    original: Path, name: str, *, direction: str | None, dataset: str | None, description: str,
    source: str, force: bool, family: str | None = None,
) -> Path:
    """Convert ``original`` into the store as ``name``. ``family`` (pix2pix or cyclegan), when
    given, is what the file must hold (a catalog model); None takes whichever generator it is."""
    from ganctl.models.cyclegan_official import official_kind
    from ganctl.models.pix2pix_official import load_official_file
    from ganctl.store import genspec
    from ganctl.store.checkpoint import save_generator

    dest = model_dir(name)
    if dest.exists() and not force:
        raise StoreError(
            f"pretrained model {name} is already in the store ({dest}): pass --force to replace it, "
            "or choose another --name"
        )
    state = load_official_file(original)
    found = "cyclegan" if official_kind(state) == "resnet" else "pix2pix"  # else the U-Net checks say why not
    if family and found != family:
        # a mirror serving one family's folder for the other: sat2map.pth is both a pix2pix and a CycleGAN name
        what = "CycleGAN ResNet" if found == "cyclegan" else "pix2pix U-Net"
        raise CheckpointError(f"{original} holds a {what} generator, not the {family} model {name} (is the mirror "
                              f"the {family} folder?)")
    sha256 = file_digest(original)  # no checksums are published: record what was converted
    if found == "cyclegan":
        from ganctl.models.cyclegan_official import ARCH, official_to_ganctl

        state, arch = official_to_ganctl(state)
        net = build_generator("cyclegan", arch, state, str(original))
        # the official cycle_gan model saves G_A (A -> B) and G_B (B -> A) as *_net_G_A.pth, *_net_G_B.pth
        named = re.search(r"_net_G_([AB])\.pth$", original.name)
        direction = direction or (("AtoB" if named.group(1) == "A" else "BtoA") if named else None)
        # the official --crop_size of every CycleGAN model; a ResNet takes any multiple of 4
        fields = dict(family="cyclegan", arch=ARCH, generator=arch, image_size=256)
    else:
        from ganctl.models.pix2pix_official import official_to_ganctl

        state, arch = official_to_ganctl(state)
        net = build_generator("pix2pix", arch, state, str(original))
        fields = dict(family="pix2pix", arch="pix2pix", generator={**arch, "dropout": True},  # the pix2pix default; the file cannot tell
                      image_size=2 ** arch["num_downs"])
    spec = genspec.make(
        **fields,
        channels=arch["in_channels"],
        z_dim=0,
        classes=None,
        conditional=False,
        direction=direction,
        dataset=dataset,
        run=None,
        pretrained=name,
        description=description,
        source_url=source,
        source_sha256=sha256,
    )
    if dest.exists():  # --force: each file is replaced atomically, the folder stays
        save_generator(dest / GENERATOR, net, spec)
    else:
        with atomic_dir(dest) as tmp:
            save_generator(tmp / GENERATOR, net, spec)
    return dest / GENERATOR


def build_generator(family: str, arch: dict, state: dict, where: str):
    """The ``family``'s generator (pix2pix: a U-Net; cyclegan: a ResNet) holding ``state``
    (strict), without initialising weights it would overwrite."""
    import torch

    from ganctl.models import build_generator as build
    from ganctl.models import check_args
    from ganctl.store.checkpoint import match_dtypes

    try:
        check_args(family, arch)
        with torch.device("meta"):
            net = build(family, arch)
    except (TypeError, ValueError) as e:  # metadata edited by hand, or from another version
        raise CheckpointError(f"{where} describes no {family} generator ({arch}): {e}") from e
    try:
        match_dtypes(state, net)  # fp16/fp64 files: stored and run as the network's float32
        net.load_state_dict(state, strict=True, assign=True)
    except ValueError as e:
        raise CheckpointError(f"{where} does not fit {arch}: {e}") from e
    except RuntimeError as e:  # official_to_ganctl promises a fit; this makes sure of it
        first = str(e).strip().splitlines()
        raise CheckpointError(f"{where} does not fit {arch}: {first[-1].strip()}") from e
    return net
