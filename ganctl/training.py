"""From 'train FAMILY on DATASET' to a finished run: dataset, config, run folder, engine."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from ganctl import registry, runtime, store
from ganctl.config import TrainConfig, make_config
from ganctl.data import catalog, datasets, fetch
from ganctl.engine import Reporter, TrainResult, train
from ganctl.errors import DatasetError, GanctlError


def load_training_data(
    spec: str,
    image_size: int,
    channels: int | None,
    mirror: str | None,
    progress_for: Callable | None,
    warn: Callable[[str], None] | None,
) -> datasets.ImageData:
    """A catalog dataset (downloaded first when missing) or a folder of images."""
    if not datasets.is_path_like(spec) and spec in catalog.CATALOG:
        entry = catalog.CATALOG[spec]
        if not entry.is_present():
            if warn:
                warn(f"dataset {spec!r} is not in the store yet: downloading it")
            fetch.fetch(entry, mirror, progress_for)
    return datasets.load(spec, image_size, channels, warn=warn)


_WASSERSTEIN_ONLY = {"n_critic": "--n-critic", "clip": "--clip", "lambda_gp": "--lambda-gp"}


def _objective_overrides(fam: registry.Family, **given) -> dict:
    """--n-critic / --clip / --lambda-gp: only for the Wasserstein families, and in range."""
    given = {k: v for k, v in given.items() if v is not None}
    for key in given:
        if fam.objective != "wasserstein":
            raise GanctlError(f"{_WASSERSTEIN_ONLY[key]} applies to wgan and wgan-gp, not {fam.name}")
    if given.get("n_critic", 1) < 1:
        raise GanctlError("--n-critic must be at least 1")
    if given.get("clip", 1.0) <= 0:
        raise GanctlError("--clip must be positive")
    if given.get("lambda_gp", 0.0) < 0:
        raise GanctlError("--lambda-gp must be 0 or more")
    return given


def _resume_config(family: str, name: str | None, epochs: int | None, given: dict) -> tuple[TrainConfig, Path]:
    if name:
        run = store.find_run(name, family)
    else:
        run = store.newest_run(family)
        if run is None:
            raise GanctlError(f"there is no {family} run to resume: start one with 'ganctl train {family} --dataset D'")
    cfg = TrainConfig.load(run.path / "config.json")
    for key, value in given.items():
        if value is not None and value != getattr(cfg, key):
            raise GanctlError(
                f"--resume continues run {run.id} with its own config ({key} = {getattr(cfg, key)}); "
                f"leave out the {key} option, or start a new run with --name"
            )
    if epochs is not None:
        cfg = replace(cfg, epochs=epochs)
    return cfg, run.path


def run_training(
    family: str,
    dataset: str | None,
    *,
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    seed: int | None = None,
    image_size: int | None = None,
    device: str = "auto",
    precision: str = "auto",
    name: str | None = None,
    resume: bool = False,
    mirror: str | None = None,
    n_critic: int | None = None,
    clip: float | None = None,
    lambda_gp: float | None = None,
    reporter: Reporter | None = None,
    progress_for: Callable | None = None,
    warn: Callable[[str], None] | None = None,
) -> TrainResult:
    fam = registry.get(family)
    if epochs is not None and epochs < 1:
        raise GanctlError("--epochs must be at least 1")
    if batch_size is not None and batch_size < 1:
        raise GanctlError("--batch-size must be at least 1")
    if lr is not None and not lr > 0:
        raise GanctlError("--lr must be positive")
    if image_size is not None and image_size < 8:
        raise GanctlError("--image-size must be at least 8")
    overrides = _objective_overrides(fam, n_critic=n_critic, clip=clip, lambda_gp=lambda_gp)
    rt = runtime.resolve(device, precision)

    if resume:
        given = {"batch_size": batch_size, "lr": lr, "seed": seed, "image_size": image_size}
        cfg, run_dir = _resume_config(family, name, epochs, given)
        for key, value in overrides.items():
            if cfg.objective_args.get(key) != value:
                raise GanctlError(f"--resume continues run {cfg.run_name} with its own {key} ({cfg.objective_args.get(key)}); leave out that option")
        if dataset is not None and dataset != cfg.dataset and Path(dataset).expanduser().resolve() != Path(cfg.dataset):
            raise GanctlError(f"--resume continues run {cfg.run_name} on its own dataset ({cfg.dataset}); leave out --dataset")
        data = load_training_data(cfg.dataset, cfg.image_size, cfg.channels, mirror, progress_for, warn)
        store.atomic_write_json(run_dir / "config.json", cfg.to_json())
        return train(cfg, data, run_dir, rt, reporter, resume=True)

    if dataset is None:
        raise GanctlError(f"say what to train on: 'ganctl train {family} --dataset digits' (or mnist, or a folder)")
    if name is not None:
        store.check_name(name, "run name")
        if store.run_path(family, name).exists():
            raise GanctlError(
                f"run {family}/{name} already exists: pass --resume to continue it, "
                "choose another --name, or delete it with 'ganctl rm'"
            )
    is_folder = datasets.is_path_like(dataset)
    # load at the requested size (or the family's default for this dataset), then pick the preset
    key0, p0 = fam.preset_for(dataset)
    data = load_training_data(dataset, image_size or p0.image_size, None, mirror, progress_for, warn)
    key, preset = fam.preset_for(dataset, data.channels)
    size = image_size or preset.image_size
    if data.image_size != size:
        data.images = datasets.resize_uint8(data.images, size)
    if fam.arch == "dcgan" and (size & (size - 1) or size < 16):
        raise GanctlError(f"{family} needs --image-size to be a power of two from 16 up (got {size})")
    if len(data) < 2:
        raise DatasetError(f"{dataset} holds {len(data)} image(s): a GAN needs at least 2")
    dataset_id = str(Path(dataset).expanduser().resolve()) if is_folder else dataset
    run_name = name or store.next_run_name(family, data.name)
    cfg = make_config(
        family,
        dataset_id,
        run_name,
        channels=data.channels,
        classes=data.classes,
        preset_key=key,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed if seed is not None else 0,
        image_size=size,
        objective_overrides=overrides,
    )
    run_dir = store.run_path(family, run_name)
    return train(cfg, data, run_dir, rt, reporter, resume=False)
