"""The training configuration: one frozen dataclass, saved as ``config.json`` in every run."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
from dataclasses import dataclass, field
from pathlib import Path

from ganctl import __version__, registry


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

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        data = {k: v for k, v in data.items() if k in known}
        data["betas"] = tuple(data["betas"])
        if data.get("classes") is not None:
            data["classes"] = tuple(data["classes"])
        return cls(**data)

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        return cls.from_json(json.loads(Path(path).read_text()))


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
) -> TrainConfig:
    """Registry defaults for (family, dataset), overridden by whatever the user gave."""
    fam = registry.get(family)
    arch_name, objective, presets = fam.variant(arch)
    p = presets[preset_key]
    size = image_size or p.image_size
    num_classes = len(classes) if (fam.conditional and classes) else 0
    if arch_name == "pix2pix":  # image in, image out: the discriminator sees both side by side
        g = dict(in_channels=channels, out_channels=channels, **{**p.generator, **(generator_overrides or {})})
        d = dict(in_channels=2 * channels, **{**p.discriminator, **(discriminator_overrides or {})})
    else:
        g = dict(z_dim=p.z_dim, channels=channels, image_size=size, **{**p.generator, **(generator_overrides or {})})
        d = dict(channels=channels, image_size=size, **{**p.discriminator, **(discriminator_overrides or {})})
    if num_classes:
        g["num_classes"] = d["num_classes"] = num_classes
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
        arch=arch_name,
        generator=g,
        discriminator=d,
        objective=objective,
        objective_args={**p.objective, **(objective_overrides or {})},
        init=dict(p.init),
        classes=classes,
        preset=preset_key,
        preset_source=p.source,
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        data_args={**p.data, **{k: v for k, v in (data_overrides or {}).items() if v is not None}},
        eval_every=eval_every,
    )
