"""From 'train FAMILY on DATASET' to a finished run: dataset, config, run folder, engine."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from ganctl import registry, runtime, seeds, store
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
        if entry.paired:
            raise DatasetError(f"{spec} is a set of image pairs for pix2pix: 'ganctl train pix2pix --dataset {spec}'")
        if not entry.is_present():
            if warn:
                warn(f"dataset {spec!r} is not in the store yet: downloading it")
            fetch.fetch(entry, mirror, progress_for)
    return datasets.load(spec, image_size, channels, warn=warn)


_WASSERSTEIN_ONLY = {"n_critic": "--n-critic", "clip": "--clip", "lambda_gp": "--lambda-gp"}
_PIX2PIX_ONLY = {
    "lambda_l1": "--lambda-l1", "no_gan": "--no-gan", "epochs_decay": "--epochs-decay", "direction": "--direction",
    "ngf": "--ngf", "ndf": "--ndf",
}


def load_paired_data(spec: str, image_size: int, load_size: int, mirror, progress_for, warn):
    """pix2pix: (train pairs at the jitter's load size, validation pairs at the training size)."""
    from ganctl.data import paired

    if not datasets.is_path_like(spec) and spec in catalog.CATALOG:
        entry = catalog.CATALOG[spec]
        if not entry.paired:
            paired_sets = ", ".join(catalog.paired_names())
            raise DatasetError(f"{spec} holds single images, not pairs: pix2pix trains on {paired_sets}, or a folder of pairs")
        if not entry.is_present():
            if warn:
                verb = "generating" if entry.layout == "generated" else "downloading"
                warn(f"dataset {spec!r} is not in the store yet: {verb} it")
            fetch.fetch(entry, mirror, progress_for)
    from ganctl.tasks import VAL_PAIRS

    train = paired.load_paired(spec, "train", load_size, warn=warn)
    val = None
    for split in ("val", "test"):  # only the pairs validation scores are decoded
        try:
            val = paired.load_paired(spec, split, image_size, warn=warn, limit=VAL_PAIRS)
            break
        except DatasetError:
            continue
    if val is None:  # a folder with one split: score on (unjittered) training pairs
        val = paired.load_paired(spec, "train", image_size, warn=warn, limit=VAL_PAIRS)
    return train, val


def _objective_overrides(fam: registry.Family, objective: str, **given) -> dict:
    """--n-critic / --clip / --lambda-gp: only for the Wasserstein families, and in range."""
    given = {k: v for k, v in given.items() if v is not None}
    for key in given:
        if objective != "wasserstein":
            raise GanctlError(f"{_WASSERSTEIN_ONLY[key]} applies to wgan, wgan-gp and cgan --arch conv, not {fam.name}")
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
    cfg = _checked_config(run)
    for key, value in given.items():
        if value is not None and value != getattr(cfg, key):
            raise GanctlError(
                f"--resume continues run {run.id} with its own config ({key} = {getattr(cfg, key)}); "
                f"leave out the {key} option, or start a new run with --name"
            )
    if epochs is not None:
        need = _epochs_reached(run.path)
        if epochs < need:
            raise GanctlError(
                f"--epochs {epochs} is fewer than run {run.id} has trained ({need} epochs reached): --epochs is the "
                f"total, so give at least {need}, or leave it out to keep {cfg.epochs}"
            )
        cfg = replace(cfg, epochs=epochs)
    return cfg, run.path


def _checked_config(run: store.RunInfo) -> TrainConfig:
    """The run's config, with a damaged config.json (or generator arguments that do not fit the
    arch) reported as one line naming the file."""
    from ganctl.models import check_args

    run.check()
    cfg = TrainConfig.from_json(run.config())
    try:
        check_args(cfg.arch, cfg.generator, "generator")
        check_args(cfg.arch, cfg.discriminator, "discriminator")
    except ValueError as e:
        raise GanctlError(
            f"run {run.id} is damaged: {run.path / 'config.json'}: {e}; delete it with 'ganctl rm {run.id}'"
        ) from e
    return cfg


def _epochs_reached(run_dir: Path) -> int:
    """The epochs a run's resumable checkpoint has begun: its completed epochs, plus one if it
    stopped inside an epoch (0 when nothing loads: resuming reports that)."""
    from ganctl import checkpoint
    from ganctl.errors import CheckpointError

    for ckpt in checkpoint.candidates(run_dir):
        try:
            state = checkpoint.load_trainer(ckpt)
        except CheckpointError:
            continue
        return state.epoch + (1 if state.batch else 0)
    return 0


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
    compile: bool = False,
    accel: bool = True,
    name: str | None = None,
    resume: bool = False,
    mirror: str | None = None,
    n_critic: int | None = None,
    clip: float | None = None,
    lambda_gp: float | None = None,
    arch: str | None = None,
    eval_every: int | None = None,
    direction: str | None = None,
    epochs_decay: int | None = None,
    lambda_l1: float | None = None,
    no_gan: bool = False,
    ngf: int | None = None,
    ndf: int | None = None,
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
    if eval_every is not None and eval_every < 0:
        raise GanctlError("--eval-every must be 0 (never) or more")
    if seed is not None:
        seeds.check(seed)
    arch_name, objective, _ = fam.variant(arch)
    overrides = _objective_overrides(fam, objective, n_critic=n_critic, clip=clip, lambda_gp=lambda_gp)
    p2p = {"lambda_l1": lambda_l1, "no_gan": no_gan or None, "epochs_decay": epochs_decay, "direction": direction, "ngf": ngf, "ndf": ndf}
    for key, value in p2p.items():
        if value is not None and not fam.paired:
            raise GanctlError(f"{_PIX2PIX_ONLY[key]} applies to pix2pix, not {family}")
    if fam.paired:
        _check_pix2pix_options(direction, epochs_decay, lambda_l1, no_gan, ngf, ndf, epochs)
        if lambda_l1 is not None:
            overrides["lambda_l1"] = lambda_l1
        if no_gan:
            overrides["gan"] = False
    if eval_every and fam.paired:
        raise GanctlError("--eval-every applies to the image families; pix2pix records validation L1/PSNR/SSIM every epoch")
    rt = runtime.resolve(device, precision, compile, accel)

    if resume:
        given = {"batch_size": batch_size, "lr": lr, "seed": seed, "image_size": image_size, "arch": arch_name if arch else None}
        cfg, run_dir = _resume_config(family, name, epochs, given)
        store.check_run_idle(run_dir, f"{family}/{cfg.run_name}")  # refused before the data is loaded
        for key, value in overrides.items():
            if cfg.objective_args.get(key) != value:
                raise GanctlError(f"--resume continues run {cfg.run_name} with its own {key} ({cfg.objective_args.get(key)}); leave out that option")
        if dataset is not None and dataset != cfg.dataset and Path(dataset).expanduser().resolve() != Path(cfg.dataset):
            raise GanctlError(f"--resume continues run {cfg.run_name} on its own dataset ({cfg.dataset}); leave out --dataset")
        for flag, have, want in (("--direction", cfg.data_args.get("direction"), direction),
                                 ("--ngf", cfg.generator.get("ngf"), ngf), ("--ndf", cfg.discriminator.get("ndf"), ndf)):
            if want is not None and want != have:
                raise GanctlError(f"--resume continues run {cfg.run_name} with its own {flag[2:]} ({have}); leave out {flag}")
        if eval_every is not None:
            cfg = replace(cfg, eval_every=eval_every)
        if fam.paired:
            if epochs_decay is not None:
                cfg = replace(cfg, objective_args={**cfg.objective_args, "epochs_decay": epochs_decay})
            if cfg.objective_args.get("epochs_decay", 0) >= cfg.epochs:
                raise GanctlError(f"--epochs-decay ({cfg.objective_args['epochs_decay']}) must be smaller than --epochs ({cfg.epochs})")
            data, val = load_paired_data(cfg.dataset, cfg.image_size, cfg.data_args["load_size"], mirror, progress_for, warn)
        else:
            data, val = load_training_data(cfg.dataset, cfg.image_size, cfg.channels, mirror, progress_for, warn), None
        return train(cfg, data, run_dir, rt, reporter, resume=True, val_data=val)  # writes config.json once locked

    if dataset is None:
        raise GanctlError(f"say what to train on: 'ganctl train {family} --dataset digits' (or mnist, or a folder)")
    if name is not None:
        store.check_name(name, "run name")
        store.check_run_idle(store.run_path(family, name), f"{family}/{name}")
        if store.run_path(family, name).exists():
            raise GanctlError(
                f"run {family}/{name} already exists: pass --resume to continue it, "
                "choose another --name, or delete it with 'ganctl rm'"
            )
    is_folder = datasets.is_path_like(dataset)
    if fam.paired:
        return _start_pix2pix(
            fam, dataset, is_folder, name, rt, reporter, mirror, progress_for, warn,
            epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, image_size=image_size, direction=direction,
            epochs_decay=epochs_decay, overrides=overrides, ngf=ngf, ndf=ndf,
        )
    # pick the preset (its size differs for RGB folders) from the headers, then decode at its size
    key0, p0 = fam.preset_for(dataset, datasets.channels_hint(dataset), arch=arch)
    data = load_training_data(dataset, image_size or p0.image_size, None, mirror, progress_for, warn)
    if eval_every and not data.classes:
        raise DatasetError(
            f"--eval-every scores samples with a classifier trained on the dataset's labels, and {dataset} has none: "
            "leave it out, or use digits, mnist, fashion-mnist or a folder with one sub-folder per class"
        )
    if fam.conditional and not data.classes:
        raise DatasetError(
            f"{family} learns one image distribution per class, and {dataset} has no labels: use digits, mnist, "
            "fashion-mnist, or a folder with one sub-folder per class"
        )
    key, preset = fam.preset_for(dataset, data.channels, arch=arch)
    size = image_size or preset.image_size
    if data.image_size != size:  # the headers sampled misjudged the channels: decode again, never upsample
        data = load_training_data(dataset, size, None, mirror, progress_for, None)
    if arch_name in ("dcgan", "cdcgan") and (size & (size - 1) or size < 16):
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
        arch=arch,
        eval_every=eval_every or 0,
    )
    run_dir = store.run_path(family, run_name)
    return train(cfg, data, run_dir, rt, reporter, resume=False)


def _check_pix2pix_options(direction, epochs_decay, lambda_l1, no_gan, ngf, ndf, epochs) -> None:
    if direction is not None and direction not in ("AtoB", "BtoA"):
        raise GanctlError(f"--direction must be AtoB or BtoA (got {direction!r})")
    if epochs_decay is not None and epochs_decay < 0:
        raise GanctlError("--epochs-decay must be 0 or more")
    if epochs is not None and epochs_decay is not None and epochs_decay >= epochs:
        raise GanctlError(f"--epochs-decay ({epochs_decay}) must be smaller than --epochs ({epochs}): --epochs is the total")
    if lambda_l1 is not None and lambda_l1 < 0:
        raise GanctlError("--lambda-l1 must be 0 or more")
    if no_gan and lambda_l1 == 0:
        raise GanctlError("--no-gan with --lambda-l1 0 leaves nothing to learn: drop one of them")
    for flag, v in (("--ngf", ngf), ("--ndf", ndf)):
        if v is not None and v < 1:
            raise GanctlError(f"{flag} must be at least 1")


def _start_pix2pix(fam, dataset, is_folder, name, rt, reporter, mirror, progress_for, warn, *, epochs, batch_size, lr,
                   seed, image_size, direction, epochs_decay, overrides, ngf, ndf) -> TrainResult:
    key, preset = fam.preset_for(dataset)
    size = image_size or preset.image_size
    # U-Net-256 for 256-pixel crops (8 downsamplings to 1x1), U-Net-128 for 128 (7), and so on
    num_downs = size.bit_length() - 1
    if size & (size - 1) or not 32 <= size <= 1024:
        raise GanctlError(f"pix2pix needs --image-size to be a power of two from 32 to 1024 (got {size})")
    # the paper's jitter resizes to 286 for 256 crops: keep that ratio at other sizes
    load_size = round(size * 286 / 256)
    train_pairs, val_pairs = load_paired_data(dataset, size, load_size, mirror, progress_for, warn)
    if len(train_pairs) < 1:
        raise DatasetError(f"{dataset} holds no training pairs")
    entry = catalog.CATALOG.get(dataset) if not is_folder else None
    direction = direction or preset.data.get("direction") or getattr(train_pairs, "default_direction", "") or (entry.default_direction if entry else "") or "AtoB"
    dataset_id = str(Path(dataset).expanduser().resolve()) if is_folder else dataset
    run_name = name or store.next_run_name(fam.name, train_pairs.name)
    total = epochs if epochs is not None else preset.epochs
    decay = epochs_decay if epochs_decay is not None else (total // 2 if epochs is not None else preset.objective["epochs_decay"])
    if decay >= total:
        raise GanctlError(f"--epochs-decay ({decay}) must be smaller than --epochs ({total}): --epochs is the total")
    channels = train_pairs.channels
    g_over = {"num_downs": num_downs, **({"ngf": ngf} if ngf else {})}
    cfg = make_config(
        fam.name, dataset_id, run_name, channels=channels, classes=None, preset_key=key, epochs=total,
        batch_size=batch_size, lr=lr, seed=seed if seed is not None else 0, image_size=size,
        objective_overrides={**overrides, "epochs_decay": decay}, generator_overrides=g_over,
        discriminator_overrides={"ndf": ndf} if ndf else None, data_overrides={"direction": direction, "load_size": load_size},
    )
    return train(cfg, train_pairs, store.run_path(fam.name, run_name), rt, reporter, resume=False, val_data=val_pairs)
