"""From 'train FAMILY on DATASET' to a finished run: options, dataset, config, run folder, trainer.

What differs between families comes from their registration: the options they take (checked
here, before any data is read), the presets, the networks' size rule, and the data kind, which
says how the dataset is loaded (single images, or pairs with a validation split).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from ganctl import augment_spec
from ganctl.config import TrainConfig, make_config
from ganctl.core import seeds
from ganctl.core.errors import DatasetError, GanctlError
from ganctl.core.timing import Stopwatch
from ganctl.data import catalog, loading
from ganctl.families import registry
from ganctl.families.familyspec import FOLDER_PRESETS
from ganctl.runtime import distributed
from ganctl.store import layout
from ganctl.train import resume as resuming
from ganctl.train import tracking

if TYPE_CHECKING:  # what needs torch is imported once the checks that need none have passed
    from ganctl.train.callbacks.progress import Reporter
    from ganctl.train.trainer import TrainResult


def _check_common(epochs, batch_size, lr, image_size, eval_every, seed) -> None:
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


def _groups(given: dict[tuple[str, str], object]) -> dict[str, dict]:
    """{(into, key): value} -> {into: {key: value}}"""
    out: dict[str, dict] = {"objective": {}, "generator": {}, "discriminator": {}, "data": {}}
    for (into, key), value in given.items():
        out[into][key] = value
    return out


@dataclass(frozen=True)
class TrainRequest:
    """What ``ganctl train`` was asked, as given (None: not given, the preset's or the run's
    value applies); built once, at the command line's edge. ``options`` are the family's own
    (``n_critic=3``, ``direction="BtoA"``, ...), checked against its registration."""

    family: str
    dataset: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    seed: int | None = None
    image_size: int | None = None
    device: str = "auto"
    precision: str = "auto"
    compile: bool = False
    accel: bool = True
    name: str | None = None
    resume: bool = False
    mirror: str | None = None
    arch: str | None = None
    eval_every: int | None = None
    save_every: int | None = None
    keep: int | None = None
    keep_epochs: tuple[int, ...] | None = None
    dist_timeout: float = distributed.DEFAULT_TIMEOUT_S
    augment: str | None = None  # --augment POLICY (ganctl.augment_spec; None: the dataset's default, default_augment)
    ada_target: float | None = None  # --ada-target
    log: tuple[str, ...] = ()  # the experiment trackers to send the run to (--log; this session only)
    options: Mapping[str, object] = field(default_factory=dict)


def run_training(req: TrainRequest, *, reporter: Reporter | None = None, progress_for: Callable | None = None,
                 warn: Callable[[str], None] | None = None) -> TrainResult:
    """Train as ``req`` asks; ``reporter`` shows the training, ``progress_for`` downloads, ``warn`` notes.

    Started by torchrun (``RANK``, ``WORLD_SIZE``... in the environment), this process joins the
    job (:func:`ganctl.runtime.distributed.start`, with ``req.dist_timeout`` seconds for any collective) and
    trains its part of every batch; rank 0 alone checks the store, names the run and writes it.
    The caller leaves the job with :func:`ganctl.runtime.distributed.stop`."""
    family, dataset, epochs, batch_size, lr = req.family, req.dataset, req.epochs, req.batch_size, req.lr
    seed, image_size, name, resume, mirror, arch = req.seed, req.image_size, req.name, req.resume, req.mirror, req.arch
    eval_every, save_every, keep, keep_epochs = req.eval_every, req.save_every, req.keep, req.keep_epochs
    augment, ada_target = req.augment, req.ada_target
    fam = registry.get(family)
    _check_common(epochs, batch_size, lr, image_size, eval_every, seed)
    aug = augment_spec.parse(augment, ada_target) if augment is not None or ada_target is not None else None
    if aug is not None and image_size is not None:
        augment_spec.check_size(aug, image_size)
    log = tracking.check(req.log)  # a missing library is named before torch is imported
    _check_checkpoints(save_every, keep, keep_epochs)
    variant = fam.pick(arch)
    given = registry.checked_options(fam, arch, dict(req.options))
    if eval_every and fam.translates:
        raise GanctlError(f"--eval-every applies to the image families; {fam.name} records validation L1/PSNR/SSIM every epoch")
    if dataset is not None:
        registry.resolve(fam.kind.check)(dataset)
    if resume:
        run = resuming.run_to_resume(family, name)
    else:
        if dataset is None:
            raise GanctlError(f"say what to train on: 'ganctl train {family} --dataset digits' (or mnist, or a folder)")
        if name is not None:
            layout.check_name(name, "run name")
    # everything above reads no image and imports no torch: a typo is answered in a fraction of a second
    watch = Stopwatch()
    with watch.phase("imports"):
        from ganctl.runtime import runtime
        from ganctl.train.trainer import train
    with watch.phase("runtime"):
        precision, changed = req.precision, None
        if resume and precision == "auto":
            precision, changed = resuming.continued_precision(run.path, runtime.resolve_device(req.device))
        rt = distributed.start(runtime.resolve(req.device, precision, req.compile, req.accel), req.dist_timeout)
    main = distributed.is_main()
    if not main:
        warn = progress_for = None  # rank 0 says it
    if changed and warn:
        warn(changed)

    if resume:
        asked = {"batch_size": batch_size, "lr": lr, "seed": seed, "image_size": image_size,
                 "arch": variant.networks.name if arch else None}
        cfg, run_dir = resuming.resume_config(run, epochs, asked)
        resuming.check_augment(cfg, aug)
        if main:  # the others would see rank 0's lock
            layout.check_run_idle(run_dir, f"{family}/{cfg.run_name}")  # refused before the data is loaded
        if dataset is not None and registry.resolve(fam.kind.dataset_id)(dataset) != cfg.dataset:
            raise GanctlError(f"--resume continues run {cfg.run_name} on its own dataset ({cfg.dataset}); leave out --dataset")
        cfg = resuming.resume_options(fam, cfg, given)
        if eval_every is not None:
            cfg = replace(cfg, eval_every=eval_every)
        cfg = _checkpoint_options(cfg, save_every, keep, keep_epochs)
        _check_eval(cfg)
        with watch.phase("data"), distributed.main_first():
            data, val = _load_for(fam, cfg.dataset, cfg.image_size, cfg.channels, cfg.data_args, mirror, progress_for,
                                  warn)
        distributed.check_batch(min(cfg.batch_size, len(data)), distributed.world().size, "the run's --batch-size")
        return train(cfg, data, run_dir, rt, reporter, resume=True, val_data=val, watch=watch, log=log)  # writes config.json once locked

    if name is not None and main:
        layout.check_run_idle(layout.run_path(family, name), f"{family}/{name}")
        if layout.run_path(family, name).exists():
            raise GanctlError(
                f"run {family}/{name} already exists: pass --resume to continue it, "
                "choose another --name, or delete it with 'ganctl rm'"
            )
    with watch.phase("data"), distributed.main_first():
        cfg, data, val = _new_config(fam, variant, arch, dataset, name, given, mirror, progress_for, warn,
                                     epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, image_size=image_size,
                                     eval_every=eval_every, aug=aug)
    cfg = distributed.broadcast_object(_checkpoint_options(cfg, save_every, keep, keep_epochs))  # rank 0's run name
    _check_eval(cfg)
    distributed.check_batch(min(cfg.batch_size, len(data)), distributed.world().size,
                            "--batch-size" if batch_size else f"the {cfg.family} preset's batch size")
    return train(cfg, data, layout.run_path(family, cfg.run_name), rt, reporter, resume=False, val_data=val, watch=watch,
                 log=log)


def _check_eval(cfg) -> None:
    """--eval-every's needs (torch-fidelity; Inception's weights for its space), before the first epoch."""
    if cfg.eval_every:
        from ganctl.evaluation import evaluate

        evaluate.check_ready(cfg.dataset, cfg.channels)


def _check_checkpoints(save_every: int | None, keep: int | None, keep_epochs) -> None:
    if save_every is not None and save_every < 1:
        raise GanctlError("--save-every must be at least 1 (the last epoch and a Ctrl-C always save)")
    if keep is not None and keep < 1:
        raise GanctlError("--keep must be at least 1 (the newest checkpoint is always kept)")
    if keep_epochs is not None and any(e < 1 for e in keep_epochs):
        raise GanctlError("--keep-epochs takes epoch numbers of 1 or more")


def _checkpoint_options(cfg: TrainConfig, save_every, keep, keep_epochs) -> TrainConfig:
    """The checkpoint options given, onto the config's (the defaults, or the run's on --resume,
    where they may change); marked epochs add to those the run has, so none is ever unmarked."""
    marked = tuple(sorted({*cfg.keep_epochs, *(keep_epochs or ())}))
    return replace(cfg, save_every=save_every or cfg.save_every, keep=keep or cfg.keep, keep_epochs=marked)


def _load_for(fam, spec, image_size, channels, data_args, mirror, progress_for, warn):
    """(training data, what the epoch pictures show or None) of the family's data kind."""
    return registry.resolve(fam.kind.load)(spec, image_size, channels, data_args, mirror, progress_for, warn)


def _new_config(fam, variant, arch, dataset, name, given, mirror, progress_for, warn, *, epochs, batch_size, lr, seed,
                image_size, eval_every, aug=None) -> tuple[TrainConfig, object, object]:
    """The config of a new run, and its data (decoded at the run's size)."""
    groups = _groups(given)
    if fam.translates:
        key, preset = variant.preset_for(dataset)
        size = image_size or preset.image_size
        _check_size(fam, variant, size)
        # the paper's jitter resizes to 286 for 256 crops: keep that ratio at other sizes
        groups["data"]["load_size"] = round(size * 286 / 256)
        data, val = _load_for(fam, dataset, size, None, groups["data"], mirror, progress_for, warn)
        if len(data) < 1:
            raise DatasetError(f"{dataset} holds no training {'pairs' if fam.paired else 'images'}")
        if fam.paired:
            entry = catalog.CATALOG.get(dataset) if not catalog.is_path_like(dataset) else None
            groups["data"].setdefault("direction", preset.data.get("direction") or getattr(data, "default_direction", "")
                                      or (entry.default_direction if entry else "") or "AtoB")
        channels, classes = data.channels, None
    else:
        # pick the preset (its size differs for RGB folders) from the headers, then decode at its size
        from ganctl.data import datasets

        _, p0 = variant.preset_for(dataset, datasets.channels_hint(dataset))
        data, val = loading.load_training_data(dataset, image_size or p0.image_size, None, mirror, progress_for, warn), None
        if fam.conditional and not data.classes:
            raise DatasetError(
                f"{fam.name} learns one image distribution per class, and {dataset} has no labels: use digits, mnist, "
                "fashion-mnist, or a folder with one sub-folder per class"
            )
        key, preset = variant.preset_for(dataset, data.channels)
        size = image_size or preset.image_size
        if data.image_size != size:  # the headers sampled misjudged the channels: decode again, never upsample
            data = loading.load_training_data(dataset, size, None, mirror, progress_for, None)
        _check_size(fam, variant, size)
        if len(data) < 2:
            raise DatasetError(f"{dataset} holds {len(data)} image(s): a GAN needs at least 2")
        channels, classes = data.channels, data.classes
    batches = len(data) // min(batch_size or preset.batch_size, len(data))
    n_critic = int({**preset.objective, **groups["objective"]}.get("n_critic", 1))
    total = epochs if epochs is not None else preset.epochs
    if epochs is None and key in FOLDER_PRESETS and generator_steps(total, batches, n_critic) < variant.min_steps:
        total = epochs_for(variant.min_steps, batches, n_critic)
        if warn:
            warn(f"{dataset} makes {batches} batch{'es' if batches != 1 else ''} an epoch: training {total} epochs "
                 f"instead of the preset's {preset.epochs}, for the {variant.min_steps:,} generator steps {fam.name} needs")
    elif generator_steps(total, batches, n_critic) < variant.min_steps and warn:
        warn(f"this run takes {generator_steps(total, batches, n_critic):,} generator steps, and {fam.name} needs about "
             f"{variant.min_steps:,} before its samples look like the data: pass --epochs "
             f"{epochs_for(variant.min_steps, batches, n_critic)} for that")
    objective_args = variant.objective.settled({**preset.objective, **groups["objective"]}, total,
                                               frozenset(groups["objective"]), epochs_given=epochs is not None)
    if aug is None:
        aug = default_augment(dataset, len(data), size, variant.small_folders, warn)
    augment_spec.check_size(aug, size)
    if augment_spec.is_ada(aug):
        per_batch = min(batch_size or preset.batch_size, len(data))
        aug = {**aug, "ramp_images": augment_spec.ramp_images(total * batches * per_batch)}
    cfg = make_config(
        fam.name, registry.resolve(fam.kind.dataset_id)(dataset), name or layout.next_run_name(fam.name, data.name),
        channels=channels, classes=classes, preset_key=key, epochs=total, batch_size=batch_size, lr=lr,
        seed=seed if seed is not None else 0, image_size=size, arch=arch, eval_every=eval_every or 0,
        objective_overrides=objective_args, generator_overrides=groups["generator"] or None,
        discriminator_overrides=groups["discriminator"] or None, data_overrides=groups["data"], augment=aug,
    )
    return cfg, data, val


# Folders of fewer images than this get a line suggesting the family's --augment policy
# (Variant.small_folders), where it has one: the scale at which the DiffAugment and ADA papers
# report their gains (100-shot sets, MetFaces' 1,336 images); the catalogue's sets are thousands of
# images. Only suggested: no policy met the bar that would justify turning it on (half the gap to the
# real floor at 100 images; docs/benchmarks.md#augmentation-on-small-sets-quality). ada for the
# BCE discriminators (dcgan: a third to a half of the gap at 100 and 500 digits); DiffAugment's
# three for pix2pix (validation L1 2% lower at 50 and 100 pairs); none for the Wasserstein critics
# (cgan --arch conv on 100 digits: both policies behind none at every length; a critic separates
# real from fake from the start, which ADA's signal reads as memorising) and for cyclegan (not measured).
FEW_IMAGES = 1000
# below MIN_SHIFT_SIZE neither translation nor ADA applies; color,cutout was not measured
SUGGESTED_SMALL = "color,cutout"


def default_augment(dataset: str, images: int, size: int, suggested: str,
                    warn: Callable[[str], None] | None) -> dict:
    """The augmentation a run gets without --augment: none, and for a folder of fewer than
    :data:`FEW_IMAGES` images a line suggesting ``suggested`` (the variant's ``small_folders``; see
    docs/train.md for why it is suggested rather than on)."""
    if warn and suggested and catalog.is_path_like(dataset) and images < FEW_IMAGES:
        spec = augment_spec.parse(suggested)
        shifts = augment_spec.is_ada(spec) or "translation" in augment_spec.ops(spec)
        policy = SUGGESTED_SMALL if shifts and size < augment_spec.MIN_SHIFT_SIZE else suggested
        warn(f"{dataset} holds {images:,} training images: a discriminator memorises so few in a long run; "
             f"consider --augment {policy} (docs/train.md#augmentation---augment)")
    return {}


def generator_steps(epochs: int, batches: int, n_critic: int = 1) -> int:
    """Generator steps of a run: one after every ``n_critic``-th batch."""
    return epochs * batches // n_critic


def epochs_for(steps: int, batches: int, n_critic: int = 1) -> int:
    """The fewest epochs of ``batches`` batches that make ``steps`` generator steps."""
    return max(1, -(-steps * n_critic // max(batches, 1)))


def _check_size(fam, variant, size: int) -> None:
    problem = variant.networks.sizes.problem(size)
    if problem:
        raise GanctlError(f"{fam.name} needs --image-size to be {problem} (got {size})")
