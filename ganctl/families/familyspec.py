"""What a model family is made of, as plain data: its networks, weight init, objective, what it
trains on, its own command-line options, and its presets with their sources.

Nothing here imports torch: networks, initialisers and objectives are named as ``"module:attr"``
references, imported only when a run is built (``ganctl --help`` and every check before training
stay fast). The built-in families are declared with these in :mod:`ganctl.families`, one file
each, and registered in :mod:`ganctl.families.registry` (``docs/contributing.md`` walks through adding one).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ganctl.core.errors import GanctlError, did_you_mean


def resolve(ref: str) -> object:
    """The object a ``"package.module:attr"`` reference names (imports the module)."""
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class Preset:
    """Default hyperparameters of a family on one dataset, and where they come from. Derive a
    variation with ``dataclasses.replace(base, epochs=..., source=...)``."""

    source: str
    image_size: int
    epochs: int
    batch_size: int
    lr: float
    betas: tuple[float, float] = (0.9, 0.999)
    optimizer: str = "adam"
    z_dim: int = 100
    generator: dict = field(default_factory=dict)  # architecture arguments beyond z/channels/size
    discriminator: dict = field(default_factory=dict)
    objective: dict = field(default_factory=dict)
    init: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)  # how batches are prepared (pairs: direction, load and crop size)


@dataclass(frozen=True)
class Option:
    """A command-line option that only some families take (``ganctl train --lambda-gp``).

    Its value goes into one of the config's argument groups (``into``: objective, generator,
    discriminator or data) under ``key``. The range checks give the one-line errors.
    """

    flag: str  # "--lambda-gp"
    into: str  # "objective" | "generator" | "discriminator" | "data"
    key: str
    minimum: float | None = None  # value >= minimum
    positive: bool = False  # value > 0
    choices: tuple[str, ...] = ()
    switch_off: bool = False  # a flag that sets ``key`` to False (--no-gan)
    on_resume: bool = False  # may change when a run is resumed (schedules), else must match the run's
    help: str = ""  # ``ganctl train --help`` adds the families that take it
    type: type = float  # int, float or str (a switch_off flag is a bool)
    panel: str = ""  # the help panel it is listed under (default: the first family that takes it)

    @property
    def name(self) -> str:
        """The keyword ``training.run_training`` takes it as."""
        return self.flag[2:].replace("-", "_")

    def check(self, value: object) -> object:
        """The value to store, or a GanctlError saying what range the option takes."""
        if self.switch_off:
            return False
        if self.choices and value not in self.choices:
            raise GanctlError(f"{self.flag} must be {' or '.join(self.choices)} (got {value!r})")
        if self.positive and not value > 0:
            raise GanctlError(f"{self.flag} must be positive")
        if self.minimum is not None and value < self.minimum:
            raise GanctlError(f"{self.flag} must be {'at least 1' if self.minimum == 1 else f'{self.minimum:g} or more'}")
        return value


@dataclass(frozen=True)
class SizeRule:
    """Training image sizes the networks can be built for."""

    minimum: int = 8
    maximum: int | None = None
    power_of_two: bool = False
    multiple: int = 1  # sizes that divide by this (a ResNet generator's two stride-2 steps: 4)

    def problem(self, size: int) -> str | None:
        ok = size >= self.minimum and (self.maximum is None or size <= self.maximum)
        if self.multiple > 1:
            return None if ok and size % self.multiple == 0 else f"a multiple of {self.multiple} of at least {self.minimum}"
        if self.power_of_two:
            ok = ok and not size & (size - 1)
            span = f"from {self.minimum} to {self.maximum}" if self.maximum else f"from {self.minimum} up"
            return None if ok else f"a power of two {span}"
        return None if ok else f"at least {self.minimum}"


PAIR = (("generator", "generator"), ("discriminator", "discriminator"))  # (name, role) of a G/D family


@dataclass(frozen=True)
class Networks:
    """The networks a run trains (``cfg.arch`` names the set) and how to build them.

    ``named`` lists them as (name, role): each is built from its role's class and the config's
    arguments for that role (``cfg.generator``, ``cfg.discriminator``), in this order, then
    initialised in the same order (a seed gives the same weights as before names existed).
    ``uses`` says which generator a user samples or translates with: direction -> name, with
    direction "" for a family that maps one way only."""

    name: str
    generator: str  # "module:Class" of an nn.Module
    discriminator: str
    init: str = ""  # "module:function": called as init(module, **cfg.init) on each network; "": PyTorch's default
    translates: bool = False  # image in, image out: G takes an image, D sees (input, output) side by side
    convolutional: bool = True  # channels_last and the CPU convolution fast paths apply
    sizes: SizeRule = SizeRule()
    for_size: str = ""  # "module:function": generator arguments that follow from the training size
    options: tuple[Option, ...] = ()  # width options and the like (pix2pix: --ngf, --ndf)
    named: tuple[tuple[str, str], ...] = PAIR
    uses: tuple[tuple[str, str], ...] = (("", "generator"),)
    discriminator_inputs: int = 1  # images D sees side by side (pix2pix: the input and the output)

    def classes(self) -> tuple[type, type]:
        return resolve(self.generator), resolve(self.discriminator)

    def role_of(self, name: str) -> str:
        return dict(self.named)[name]

    def names(self, role: str | None = None) -> list[str]:
        return [n for n, r in self.named if role is None or r == role]

    def file(self, name: str) -> str:
        """A network's file inside a checkpoint folder: ``generator.safetensors`` and
        ``discriminator.safetensors`` for a G/D pair (as every checkpoint before named networks),
        ``NAME/ROLE.safetensors`` for a larger set, so that each generator's folder holds its
        ``config.json`` beside it, as a pair's checkpoint folder does."""
        role = self.role_of(name)
        return f"{role}.safetensors" if self.named == PAIR else f"{name}/{role}.safetensors"

    def generator_for(self, direction: str | None) -> tuple[str, str]:
        """(direction, generator name) a user's ``--direction`` picks (None: the first)."""
        uses = dict(self.uses)
        if direction is None:
            return self.uses[0]
        if direction not in uses:
            raise GanctlError(f"--direction must be {' or '.join(d for d in uses if d)} (got {direction!r})"
                              if any(uses) else "--direction applies to models that translate both ways")
        return direction, uses[direction]

    def arguments(self, preset: Preset, channels: int, size: int, num_classes: int,
                  generator: dict | None = None, discriminator: dict | None = None) -> tuple[dict, dict]:
        """The full constructor arguments of (G, D) for a run: the preset's, what follows from the
        image size, then the user's overrides."""
        derived = resolve(self.for_size)(size) if self.for_size else {}
        g_extra = {**preset.generator, **derived, **(generator or {})}
        d_extra = {**preset.discriminator, **(discriminator or {})}
        if self.translates:
            g = dict(in_channels=channels, out_channels=channels, **g_extra)
            d = dict(in_channels=self.discriminator_inputs * channels, **d_extra)
        else:
            g = dict(z_dim=preset.z_dim, channels=channels, image_size=size, **g_extra)
            d = dict(channels=channels, image_size=size, **d_extra)
        if num_classes:
            g["num_classes"] = d["num_classes"] = num_classes
        return g, d


@dataclass(frozen=True)
class Objective:
    """A training objective (``cfg.objective`` names it): a class of :mod:`ganctl.train.objectives`'
    protocol, the options it takes, and an optional hook that completes its arguments."""

    name: str
    ref: str  # "module:Class"
    options: tuple[Option, ...] = ()
    # "module:function"(args, epochs, given, epochs_given) -> args: fills in and checks arguments that
    # depend on the run's length or on each other (pix2pix: the learning-rate decay); GanctlError if
    # wrong. ``given``: the argument keys the user passed; ``epochs_given``: a new run's --epochs was.
    settle: str = ""
    not_charted: tuple[str, ...] = ()  # metrics left out of the loss chart (probabilities, not losses)

    def settled(self, args: dict, epochs: int, given: frozenset[str] = frozenset(), epochs_given: bool = False) -> dict:
        return resolve(self.settle)(dict(args), epochs, given, epochs_given) if self.settle else dict(args)


@dataclass(frozen=True)
class Variant:
    """What ``--arch`` chooses: networks, objective and presets (the family's default is one)."""

    networks: Networks
    objective: Objective
    presets: Mapping[str, Preset]  # dataset key -> Preset; "default" for grayscale folders, "rgb" for colour
    summary: str = ""
    # generator steps a run needs before its samples look like the data: folders train at least
    # this long (their epochs are raised to reach it) and a shorter run is warned about
    min_steps: int = 0
    # the --augment policy a folder of fewer than a thousand images is told to consider ("": none
    # suggested), from ganctl's measurements on small sets (docs/benchmarks.md, augmentation)
    small_folders: str = ""

    @property
    def options(self) -> tuple[Option, ...]:
        return self.objective.options + self.networks.options

    def preset_for(self, dataset: str, channels: int | None = None) -> tuple[str, Preset]:
        """The preset for a catalog dataset name, else by channel count for folders (key
        ``default`` or ``rgb``: see :data:`FOLDER_PRESETS`)."""
        if dataset in self.presets:
            return dataset, self.presets[dataset]
        key = "rgb" if channels == 3 and "rgb" in self.presets else "default"
        return key, self.presets[key]


@dataclass(frozen=True)
class DataKind:
    """What a family trains on, as one object: how its dataset loads, how batches are made, what
    each epoch shows, its own options. Declared in :mod:`ganctl.families.kinds`; the functions are
    ``"module:function"`` references (torch is imported only when a run is built).

    - ``check(spec)``: the checks of a ``--dataset`` value that read no image (no torch);
      ``dataset_id(spec) -> str``: what the run records (a catalog name, absolute folders);
    - ``load(spec, image_size, channels, data_args, mirror, progress_for, warn) -> (train, val)``: a catalog
      set (fetched when missing) or a folder; ``val`` is what the epoch pictures show (None: the
      training data itself serves, as for image families);
    - ``feeder(data, cfg, rt, channels_last) -> engine.Feeder``;
    - ``pictures(run_dir, nets, val, cfg, rt, channels_last) -> list[engine.Callback]``;
    - ``evaluate(generators, dataset, *, n, seed, mode, device, progress) -> dict``: how ``ganctl
      evaluate`` scores a model of this kind, given its generators by direction ("": the generator
      files score themselves, as images and pairs do: :mod:`ganctl.evaluation.evaluate`)."""

    name: str
    catalog: str  # the catalog entries it takes: "images", "pairs" or "unpaired"
    check: str
    dataset_id: str
    load: str
    feeder: str
    pictures: str
    options: tuple[Option, ...] = ()
    translates: bool = False  # image in, image out: translate, not sample
    conditional: bool = False  # class labels
    # batch norm keeps per-rank statistics in a multi-process run (batch-1 recipes normalise each
    # image by itself); the other kinds normalise over the global batch
    per_rank_norm: bool = False
    evaluate: str = ""
    # the heads of the columns of an epoch picture (``ganctl report``), one row of heads for each
    # band of rows the picture holds: pairs show input | output | target, unpaired sets a band each way
    columns: tuple[tuple[str, ...], ...] = ()


_IMAGES = dict(catalog="images", check="ganctl.data.loading:check_images_spec", dataset_id="ganctl.data.loading:dataset_id",
               load="ganctl.data.loading:load_images", feeder="ganctl.data.feeders:image_feeder",
               pictures="ganctl.train.callbacks.pictures:image_pictures")
# what a family trains on, by the name its registration gives (``Family.data``)
KINDS: Mapping[str, DataKind] = MappingProxyType({k.name: k for k in (
    DataKind("images", **_IMAGES),  # single images
    DataKind("labelled", conditional=True, **_IMAGES),  # images with class labels (sub-folders, or the set's)
    DataKind(  # aligned (input, target) pairs, trained with the paper's jitter
        "pairs", catalog="pairs", check="ganctl.data.loading:check_pairs_spec", dataset_id="ganctl.data.loading:dataset_id",
        load="ganctl.data.loading:load_pairs", feeder="ganctl.data.feeders:pair_feeder",
        pictures="ganctl.train.callbacks.pictures:pair_pictures", translates=True, per_rank_norm=True,
        columns=(("input", "output", "target"),),
        options=(Option("--direction", "data", "direction", choices=("AtoB", "BtoA"), type=str,
                        help="AtoB or BtoA: which side of each pair is the input (default: the dataset's)."),),
    ),
    DataKind(  # two sets of images, A and B, with no pairing between them
        "unpaired", catalog="unpaired", check="ganctl.data.unpaired_spec:check_unpaired_spec",
        dataset_id="ganctl.data.unpaired_spec:canonical_spec", load="ganctl.data.loading:load_unpaired", feeder="ganctl.data.feeders:unpaired_feeder",
        pictures="ganctl.train.callbacks.pictures:cycle_pictures", translates=True, per_rank_norm=True,
        evaluate="ganctl.evaluation.unpaired:score",
        columns=(("A", "A->B", "A->B->A"), ("B", "B->A", "B->A->B")),  # CycleValidation's rows: A's, then B's
    ),
)})
DATA_KINDS = tuple(KINDS)

FOLDER_PRESETS = ("default", "rgb")  # the preset keys a folder of images gets


@dataclass(frozen=True)
class Family:
    name: str
    summary: str
    data: str  # one of DATA_KINDS: what it trains on
    default: Variant
    variants: Mapping[str, Variant] = field(default_factory=lambda: MappingProxyType({}))  # --arch NAME -> Variant

    def __post_init__(self) -> None:
        if self.data not in DATA_KINDS:
            raise ValueError(f"family {self.name!r}: data must be one of {', '.join(DATA_KINDS)}, not {self.data!r}")
        for v in (self.default, *self.variants.values()):
            if "default" not in v.presets:
                raise ValueError(f"family {self.name!r} has no 'default' preset (used for folders)")

    # the shape the rest of ganctl reads
    @property
    def arch(self) -> str:
        return self.default.networks.name

    @property
    def objective(self) -> str:
        return self.default.objective.name

    @property
    def presets(self) -> Mapping[str, Preset]:
        return self.default.presets

    @property
    def kind(self) -> DataKind:
        return KINDS[self.data]

    @property
    def conditional(self) -> bool:
        return self.kind.conditional

    @property
    def paired(self) -> bool:
        """Trains on aligned (input, target) pairs."""
        return self.data == "pairs"

    @property
    def translates(self) -> bool:
        """Image in, image out (pairs or unpaired sets): ``translate``, not ``sample``."""
        return self.kind.translates

    def arch_names(self) -> list[str]:
        return [self.arch, *self.variants]

    def pick(self, arch: str | None) -> Variant:
        """The variant ``--arch`` names (None: the family's default)."""
        if arch is None or arch == self.arch:
            return self.default
        if arch not in self.variants:
            raise did_you_mean(f"--arch for {self.name}", arch, self.arch_names())
        return self.variants[arch]

    def variant(self, arch: str | None) -> tuple[str, str, Mapping[str, Preset]]:
        """(arch, objective, presets) for ``--arch`` (None: the family's default)."""
        v = self.pick(arch)
        return v.networks.name, v.objective.name, v.presets

    def for_arch(self, arch_name: str) -> Variant:
        """The variant whose networks are ``arch_name`` (as a run's config.json stores it)."""
        for v in (self.default, *self.variants.values()):
            if v.networks.name == arch_name:
                return v
        raise GanctlError(f"{self.name} has no {arch_name!r} networks")

    def preset_for(self, dataset: str, channels: int | None = None, arch: str | None = None) -> tuple[str, Preset]:
        return self.pick(arch).preset_for(dataset, channels)

    def options_of(self, variant: Variant) -> tuple[Option, ...]:
        """The options ``variant`` takes: its objective's and networks', and its data kind's."""
        return variant.options + self.kind.options

    def options(self, arch: str | None = None) -> tuple[Option, ...]:
        return self.options_of(self.pick(arch))

    def all_options(self) -> tuple[Option, ...]:
        """Every option any variant of the family takes."""
        seen: dict[str, Option] = {}
        for v in (self.default, *self.variants.values()):
            for o in self.options_of(v):
                seen.setdefault(o.flag, o)
        return tuple(seen.values())


def presets(**kw: Preset) -> MappingProxyType:
    """A preset table; keyword ``fashion_mnist`` is the dataset ``fashion-mnist``."""
    return MappingProxyType({k.replace("_", "-"): v for k, v in kw.items()})
