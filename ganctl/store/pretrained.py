"""Pretrained generators: the catalog of official pix2pix and CycleGAN models, the ones in the
store, and the digits demos shipped in the package (:mod:`ganctl.demos`, read in place).

The five pix2pix models of junyanz/pytorch-CycleGAN-and-pix2pix (``scripts/download_pix2pix_model.sh``)
are U-Net-256 generators, its eighteen CycleGAN models (``scripts/download_cyclegan_model.sh``)
one ResNet-9-blocks generator each (one direction of a trained pair); all are raw ``state_dict``s
saved with ``torch.save``. Three CycleGAN names are also pix2pix names (sat2map, map2sat,
facades_label2photo): the pix2pix models keep them, the CycleGAN ones are NAME_cyclegan. ganctl downloads one
with the one downloader (resume, retries, mirrors), reads it with ``torch.load(weights_only=True)``
only, renames its keys to :class:`~ganctl.models.pix2pix.UNetGenerator`'s, and stores it as
``pretrained/NAME/generator.safetensors`` whose metadata holds everything ``translate`` needs: the
architecture (read from the tensors' shapes), the direction the model was trained for, where the
file came from and its sha256 (the publisher gives no checksums, so ganctl records what it got).
The ``.pth`` itself is not kept: it is a pickle, and the safetensors file holds the same numbers.
Downloading and converting live in :mod:`ganctl.store.pretrained_install`, export to the official
layout in :mod:`ganctl.export.official`.

This module imports no torch at import time (the catalog and the store listing are plain data),
so ``ganctl list`` and ``ganctl download`` stay fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ganctl import demos
from ganctl.core.errors import CheckpointError, GanctlError, UnknownNameError, did_you_mean
from ganctl.core.storedirs import pretrained_dir
from ganctl.data.download import join_url
from ganctl.store import genspec
from ganctl.store.layout import check_name

BASE_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch/"
CYCLEGAN_BASE_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/"  # download_cyclegan_model.sh
BASE_URLS = {"pix2pix": BASE_URL, "cyclegan": CYCLEGAN_BASE_URL}
GENERATOR = genspec.GENERATOR  # the same file name as in a training checkpoint
SUFFIX = "_pretrained"  # the official folder name: checkpoints/NAME_pretrained/latest_net_G.pth
DIRECTIONS = ("AtoB", "BtoA")
OFFICIAL_FILE = "latest_net_G.pth"  # what the official test.py loads from checkpoints/NAME/


@dataclass(frozen=True)
class PretrainedModel:
    """One official pretrained generator. ``direction`` is the one it was trained for: for
    pix2pix, which half of the official side-by-side A|B images of ``dataset`` is the input
    (reference notes, section 3); for CycleGAN, which generator of the trained pair it is (AtoB:
    G_A, trainA -> trainB; BtoA: G_B)."""

    name: str
    direction: str
    description: str  # what it does: input kind -> output kind
    dataset: str  # the official dataset it was trained on (a ganctl catalog name for pix2pix)
    input: str
    output: str
    family: str = "pix2pix"  # the ganctl family of its generator: pix2pix (U-Net) or cyclegan (ResNet)
    official: str = ""  # the official file's stem where it differs from ``name``

    @property
    def file(self) -> str:
        return f"{self.official or self.name}.pth"

    @property
    def url(self) -> str:
        return join_url(BASE_URLS[self.family], self.file)

    @property
    def approx_size(self) -> int:
        """Bytes of the official file, for listings (none are published)."""
        return APPROX_FILE_SIZES[self.family]

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


def _cyclegan(official: str, direction: str, dataset: str, input: str, output: str) -> PretrainedModel:
    name = official + "_cyclegan" if official in _PIX2PIX_NAMES else official
    return PretrainedModel(name, direction, f"{input} -> {output}", dataset, input, output, "cyclegan",
                           official if name != official else "")


# All five are unet_256, batch norm, ngf 64, 3->3 channels, dropout on (the pix2pix defaults);
# ganctl reads that from the tensors rather than trusting this table. Each file is about 218 MB
# (54.4 M float32 parameters); no size or checksum is published.
_PIX2PIX = (
    _model("facades_label2photo", "BtoA", "facades", "facade label map", "photo"),
    _model("sat2map", "AtoB", "maps", "aerial photo", "map"),
    _model("map2sat", "BtoA", "maps", "map", "aerial photo"),
    _model("edges2shoes", "AtoB", "edges2shoes", "edge map", "shoe photo"),
    _model("day2night", "BtoA", "night2day", "daytime photo", "night photo"),
)
_PIX2PIX_NAMES = frozenset(m.name for m in _PIX2PIX)

# The official CycleGAN models: resnet_9blocks, instance norm, ngf 64, 3->3 channels, no dropout,
# trained at 256 pixels (the CycleGAN defaults), files from before torch 0.4 (with InstanceNorm
# statistics, dropped on conversion); read from the tensors, not from this table. Directions from
# the official unaligned datasets' A/B folders: trainA is the first domain of the dataset's name
# (horse2zebra: horses; monet2photo, cezanne2photo, ...: paintings), and for the CycleGAN copies of
# maps, cityscapes and facades trainA holds the photos (datasets/prepare_cityscapes_dataset.py
# writes photos to A and label maps to B; scripts/test_single.sh reads facade labels from testB).
_CYCLEGAN = (
    _cyclegan("apple2orange", "AtoB", "apple2orange", "apple photo", "orange photo"),
    _cyclegan("orange2apple", "BtoA", "apple2orange", "orange photo", "apple photo"),
    _cyclegan("summer2winter_yosemite", "AtoB", "summer2winter_yosemite", "summer Yosemite photo", "winter photo"),
    _cyclegan("winter2summer_yosemite", "BtoA", "summer2winter_yosemite", "winter Yosemite photo", "summer photo"),
    _cyclegan("horse2zebra", "AtoB", "horse2zebra", "horse photo", "zebra photo"),
    _cyclegan("zebra2horse", "BtoA", "horse2zebra", "zebra photo", "horse photo"),
    _cyclegan("monet2photo", "AtoB", "monet2photo", "Monet painting", "photo"),
    _cyclegan("style_monet", "BtoA", "monet2photo", "photo", "Monet-style painting"),
    _cyclegan("style_cezanne", "BtoA", "cezanne2photo", "photo", "Cezanne-style painting"),
    _cyclegan("style_ukiyoe", "BtoA", "ukiyoe2photo", "photo", "ukiyo-e-style print"),
    _cyclegan("style_vangogh", "BtoA", "vangogh2photo", "photo", "Van Gogh-style painting"),
    _cyclegan("sat2map", "AtoB", "maps", "aerial photo", "map"),
    _cyclegan("map2sat", "BtoA", "maps", "map", "aerial photo"),
    _cyclegan("cityscapes_photo2label", "AtoB", "cityscapes", "street photo", "colour label map"),
    _cyclegan("cityscapes_label2photo", "BtoA", "cityscapes", "colour label map", "street photo"),
    _cyclegan("facades_photo2label", "AtoB", "facades", "facade photo", "label map"),
    _cyclegan("facades_label2photo", "BtoA", "facades", "facade label map", "photo"),
    _cyclegan("iphone2dslr_flower", "AtoB", "iphone2dslr_flower", "iPhone flower photo", "DSLR-like photo"),
)


def _by_name(models: tuple[PretrainedModel, ...]) -> dict[str, PretrainedModel]:
    out: dict[str, PretrainedModel] = {}
    for m in models:
        if m.name in out:  # a name must mean one model; a duplicate is a mistake in this table
            raise ValueError(f"pretrained model {m.name!r} is in the catalog twice")
        out[m.name] = m
    return out


CATALOG: dict[str, PretrainedModel] = _by_name(_PIX2PIX + _CYCLEGAN)
APPROX_FILE_SIZE = 217_700_000  # bytes of one official unet_256 file, for listings
# resnet_9blocks, ngf 64: 11,378,179 float32 parameters (no size is published)
APPROX_FILE_SIZES = {"pix2pix": APPROX_FILE_SIZE, "cyclegan": 45_600_000}


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
    """The folder of pretrained model ``name`` in the store (the name checked, not looked up)."""
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
    """The generator spec of a generator file (config.json beside it, else the safetensors header),
    without importing torch, so listings stay fast. Not checked: see ``genspec.check``."""
    return genspec.read(path, genspec.read_file_meta(path))


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


def shipped() -> list[dict]:
    """The demos shipped in the package, as :func:`installed` lists the store's models (plus
    ``"shipped": True``)."""
    found = []
    for name in demos.DEMOS:
        path = demos.path(name)
        if path is None:
            continue
        try:
            meta = read_meta(path)
        except CheckpointError:
            meta = {}
        found.append({"name": name, "path": path, "meta": meta, "shipped": True})
    return found


def generator_path(name: str) -> Path:
    """The generator.safetensors of pretrained model ``name`` (or ``name_pretrained``) in the
    store, else of the shipped demo ``name`` (read in place, not copied)."""
    check_name(name, "pretrained model name")
    path = pretrained_dir() / name / GENERATOR
    if path.is_file():
        return path
    demo = demos.path(name)
    if demo is not None:
        return demo
    model = find(name)
    if model is not None and (pretrained_dir() / model.name / GENERATOR).is_file():
        return pretrained_dir() / model.name / GENERATOR
    if model is not None:
        raise CheckpointError(f"pretrained model {name} is not in the store: run 'ganctl download {model.download_name}'")
    have = [m["name"] for m in installed()]
    listing = f" In the store: {', '.join(have)}." if have else ""
    shipped = [n for n in demos.DEMOS if demos.path(n) is not None]
    hint = f" Shipped with ganctl: {', '.join(shipped)}." if shipped else ""
    raise UnknownNameError(
        f"pretrained model {name} is not in the store: run 'ganctl download' to see the official ones, "
        f"or 'ganctl import FILE.pth --name {name}' for your own.{listing}{hint}"
    )
