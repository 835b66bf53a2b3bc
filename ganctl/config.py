"""The training configuration: one frozen dataclass, saved as ``config.json`` in every run."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from ganctl import __version__, augment_spec
from ganctl.core.seeds import SEED_MAX, SEED_MIN
from ganctl.families import registry

# checkpoints (ganctl.store.retention)
SAVE_EVERY = 1  # epochs between checkpoints (the last epoch and a Ctrl-C always save)
# One checkpoint: a pix2pix one is 687 MB (weights 229 MB, Adam's two moments 458 MB), so keeping
# two made the 2-epoch quickstart 1.4 GB. Saves are atomic (a complete folder is renamed into
# place before the older one is pruned), so the newest alone is always a complete, resumable one.
KEEP = 1


@dataclass(frozen=True)
class TrainConfig:
    family: str
    dataset: str  # catalog name, or the absolute path of an image folder
    run_name: str
    epochs: int
    batch_size: int
    lr: float
    betas: tuple[float, float]
    optimizer: str
    seed: int
    image_size: int
    channels: int
    z_dim: int
    arch: str
    generator: dict  # full constructor arguments of the generator
    discriminator: dict
    objective: str
    objective_args: dict
    init: dict
    classes: tuple[str, ...] | None
    preset: str  # which registry preset the defaults came from, and its source
    preset_source: str
    created: str = ""
    ganctl_version: str = __version__
    data_args: dict = field(default_factory=dict)  # pix2pix: direction, load_size
    eval_every: int = 0  # epochs between quality evaluations (0: never)
    # checkpoints (ganctl.store.retention): saved every save_every epochs, the keep newest kept, and the
    # keep_epochs always; --resume may change them (absent from configs written before they existed)
    save_every: int = SAVE_EVERY
    keep: int = KEEP
    keep_epochs: tuple[int, ...] = ()
    # --augment (ganctl.augment_spec): {} for none, as in every config written before it existed
    augment: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> TrainConfig:
        """The config ``data`` describes; ValueError (saying which field is wrong) if it is not one."""
        check_json(data)
        known = {f.name for f in dataclasses.fields(cls)}
        data = {k: v for k, v in data.items() if k in known}
        data["betas"] = tuple(data["betas"])
        if data.get("classes") is not None:
            data["classes"] = tuple(data["classes"])
        if "keep_epochs" in data:
            data["keep_epochs"] = tuple(data["keep_epochs"])
        return cls(**data)

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        """Read a run's config.json; a damaged one is a StoreError naming the file and the fault."""
        from ganctl.core.errors import StoreError

        try:
            return cls.from_json(read_json(path))
        except (ValueError, OSError) as e:
            raise StoreError(f"{path} is damaged: {e}") from e


# ---------------------------------------------------------------- checks on read
#
# config.json and generator metadata are files a user (or a crash, or another version) may have
# changed; every field is checked here, so one bad file is an error about that file, not a
# TypeError deep inside some command.

MAX_JSON_BYTES = 4 << 20  # ganctl writes a few KB; anything this large is not its file
_MINIMUM = {"epochs": 1, "batch_size": 1, "image_size": 1, "channels": 1, "z_dim": 0, "eval_every": 0, "save_every": 1,
            "keep": 1}


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def type_problem(value: object, hint: object) -> str | None:
    """None if ``value`` (parsed JSON) fits the type ``hint``; else what it should have been."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        problems = [type_problem(value, a) for a in args if a is not type(None)]
        return None if None in problems else problems[0] + (" or null" if type(None) in args else "")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            return "a list"
        items = args[:1] * len(value) if len(args) == 2 and args[1] is Ellipsis else args
        if len(items) != len(value):
            return f"a list of {len(items)}"
        bad = [type_problem(v, h) for v, h in zip(value, items, strict=True)]
        return next((f"a list of {p.removeprefix('a ').removeprefix('an ')}s" for p in bad if p), None)
    if hint is bool:
        return None if isinstance(value, bool) else "true or false"
    if hint is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else "an integer"
    if hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        return None if ok else "a number"
    if hint is str:
        return None if isinstance(value, str) else "a string"
    if hint is dict or origin is dict:
        return None if isinstance(value, dict) else "an object"
    return None


def check_fields(data: dict, partial: bool = False) -> dict:
    """Check the TrainConfig fields in ``data`` (types, ranges, known family and arch); with
    ``partial``, only those present (generator metadata holds a subset). ValueError says which."""
    hints = typing.get_type_hints(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        if f.name not in data:
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            if required and not partial:
                raise ValueError(f"it has no {f.name!r} field")
            continue
        value = data[f.name]
        want = type_problem(value, hints[f.name])
        if want:
            raise ValueError(f"{f.name} is {_show(value)}, not {want}")
        if f.name in _MINIMUM and value < _MINIMUM[f.name]:
            raise ValueError(f"{f.name} is {_show(value)}, below its minimum {_MINIMUM[f.name]}")
    if "seed" in data and not SEED_MIN <= data["seed"] <= SEED_MAX:
        raise ValueError(f"seed is {_show(data['seed'])}, outside {SEED_MIN}..{SEED_MAX}")
    if "keep_epochs" in data and any(e < 1 for e in data["keep_epochs"]):
        raise ValueError(f"keep_epochs is {_show(data['keep_epochs'])}, not a list of epochs (1 or more)")
    bad_augment = augment_spec.check(data["augment"]) if "augment" in data else None
    if bad_augment:
        raise ValueError(f"augment is {_show(data['augment'])}: {bad_augment}")
    if "lr" in data and not data["lr"] > 0:
        raise ValueError(f"lr is {_show(data['lr'])}, not a positive number")
    if "family" in data and data["family"] not in registry.FAMILIES:
        raise ValueError(f"family is {_show(data['family'])}, not one of {', '.join(registry.FAMILIES)}")
    if "arch" in data and data["arch"] not in registry.arch_names():
        raise ValueError(f"arch is {_show(data['arch'])}, not one of {', '.join(sorted(registry.arch_names()))}")
    return data


def check_json(data: object) -> dict:
    """``data`` if it is a config.json object ganctl can use; else ValueError saying why."""
    if not isinstance(data, dict):
        raise ValueError(f"it holds {'a list' if isinstance(data, list) else _show(data)}, not an object of settings")
    check_fields(data)
    if registry.get(data["family"]).translates and type_problem(data["data_args"].get("load_size"), int):
        raise ValueError(f"data_args.load_size is {_show(data['data_args'].get('load_size'))}, not an integer")
    return data


def parse_json(text: str | bytes) -> object:
    """json.loads, with every way it fails (including nesting too deep for the parser's recursion)
    as a ValueError, and text of more than :data:`MAX_JSON_BYTES` refused unread."""
    if len(text) > MAX_JSON_BYTES:
        raise ValueError(f"it is {len(text):,} bytes of JSON, far more than ganctl writes")
    if not text.strip():
        raise ValueError("it is empty")
    try:
        return json.loads(text)
    except RecursionError as e:
        raise ValueError("its JSON is nested too deeply") from e
    except ValueError as e:
        raise ValueError(f"it is not valid JSON ({e})") from e


def read_json(path: Path) -> dict:
    """A run's config.json, checked; ValueError (or OSError) says what is wrong with it."""
    path = Path(path)
    if path.stat().st_size > MAX_JSON_BYTES:
        raise ValueError(f"it is {path.stat().st_size:,} bytes, far more than a run's config")
    return check_json(parse_json(path.read_bytes()))


def make_config(
    family: str,
    dataset: str,
    run_name: str,
    *,
    channels: int,
    classes: tuple[str, ...] | None,
    preset_key: str,
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    seed: int = 0,
    image_size: int | None = None,
    objective_overrides: dict | None = None,
    arch: str | None = None,
    generator_overrides: dict | None = None,
    discriminator_overrides: dict | None = None,
    data_overrides: dict | None = None,
    eval_every: int = 0,
    save_every: int | None = None,
    keep: int | None = None,
    keep_epochs: tuple[int, ...] | None = None,
    augment: dict | None = None,
) -> TrainConfig:
    """Registry defaults for (family, dataset), overridden by whatever the user gave."""
    fam = registry.get(family)
    variant = fam.pick(arch)
    p = variant.presets[preset_key]
    size = image_size or p.image_size
    num_classes = len(classes) if (fam.conditional and classes) else 0
    g, d = variant.networks.arguments(p, channels, size, num_classes, generator_overrides, discriminator_overrides)
    return TrainConfig(
        family=family,
        dataset=dataset,
        run_name=run_name,
        epochs=epochs if epochs is not None else p.epochs,
        batch_size=batch_size if batch_size is not None else p.batch_size,
        lr=lr if lr is not None else p.lr,
        betas=tuple(p.betas),
        optimizer=p.optimizer,
        seed=seed,
        image_size=size,
        channels=channels,
        z_dim=p.z_dim,
        arch=variant.networks.name,
        generator=g,
        discriminator=d,
        objective=variant.objective.name,
        objective_args={**p.objective, **(objective_overrides or {})},
        init=dict(p.init),
        classes=classes,
        preset=preset_key,
        preset_source=p.source,
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        data_args={**p.data, **{k: v for k, v in (data_overrides or {}).items() if v is not None}},
        eval_every=eval_every,
        save_every=save_every or SAVE_EVERY,
        keep=keep or KEEP,
        keep_epochs=tuple(keep_epochs or ()),
        augment=dict(augment or {}),
    )


def parse_meta(header: dict, path: Path) -> dict:
    """The ganctl entry of a safetensors header as a dict ({} when there is none); a CheckpointError
    naming ``path`` when it is not a JSON object (too large, too deeply nested, not JSON)."""
    from ganctl.core.errors import CheckpointError

    if "ganctl" not in header:
        return {}
    try:
        data = parse_json(header["ganctl"])
    except ValueError as e:
        raise CheckpointError(f"{path} has unreadable ganctl metadata: {e}") from e
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} has unreadable ganctl metadata: it is {type(data).__name__}, not an object")
    return data
