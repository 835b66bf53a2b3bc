"""What ``ganctl train FAMILY --resume`` continues: which run, its config as saved (checked), the
options a resume may change and those it must leave as they were, how far the run got, and the
precision it goes on in."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ganctl import augment_spec
from ganctl.config import TrainConfig
from ganctl.core.errors import GanctlError
from ganctl.families import registry
from ganctl.store import layout


def run_to_resume(family: str, name: str | None) -> layout.RunInfo:
    if name:
        return layout.find_run(name, family)
    run = layout.newest_run(family)
    if run is None:
        raise GanctlError(f"there is no {family} run to resume: start one with {layout.train_hint(family)}")
    return run


def resume_config(run: layout.RunInfo, epochs: int | None, given: dict) -> tuple[TrainConfig, Path]:
    cfg = checked_config(run)
    for key, value in given.items():
        if value is not None and value != getattr(cfg, key):
            raise GanctlError(
                f"--resume continues run {run.id} with its own config ({key} = {getattr(cfg, key)}); "
                f"leave out the {key} option, or start a new run with --name"
            )
    if epochs is not None:
        need = epochs_reached(run.path)
        if epochs < need:
            raise GanctlError(
                f"--epochs {epochs} is fewer than run {run.id} has trained ({need} epochs reached): --epochs is the "
                f"total, so give at least {need}, or leave it out to keep {cfg.epochs}"
            )
        cfg = replace(cfg, epochs=epochs)
    return cfg, run.path


def checked_config(run: layout.RunInfo) -> TrainConfig:
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
            f"run {run.id} is damaged: {run.path / 'config.json'}: {e}; {layout.REPAIR_CONFIG}"
        ) from e
    return cfg


def epochs_reached(run_dir: Path) -> int:
    """The epochs a run's resumable checkpoint has begun: its completed epochs, plus one if it
    stopped inside an epoch (0 when nothing reads: resuming reports that). From the checkpoint's
    position.json: its optimizer states (457 MB for pix2pix) are not read for this."""
    from ganctl.core.errors import CheckpointError
    from ganctl.store import retention

    for ckpt in retention.candidates(run_dir):
        try:
            pos = retention.read_position(ckpt)
        except CheckpointError:
            continue
        return pos["epoch"] + (1 if pos["batch"] else 0)
    return 0


def continued_precision(run_dir: Path, device) -> tuple[str, str | None]:
    """``--resume`` without ``--precision``: the precision the run's last session trained in, where
    this device runs it natively (fp32 anywhere, fp16 on CUDA, bf16 where ``auto`` would pick it),
    so that a run started with ``--precision fp32`` goes on in fp32; otherwise this device's own
    choice, and a line that says so (None when nothing changes)."""
    from ganctl.report.rundata import read_sessions
    from ganctl.runtime import runtime

    here = runtime.resolve_precision("auto", device)
    sessions = read_sessions(run_dir)
    last = sessions[-1].get("precision") if sessions else None
    if last not in runtime.PRECISIONS or last in (here, "auto"):
        return here, None
    if last == "fp32" or (last == "fp16" and device.type == "cuda"):
        return last, f"continuing in {last}, the precision the run trained in ('--precision {here}' to change it)"
    return here, (f"the run trained in {last}, which this {device.type} does not run natively: continuing in {here} "
                  f"('--precision {last}' to keep it)")


def resume_options(fam: registry.Family, cfg: TrainConfig, given: dict) -> TrainConfig:
    """The run's config with the family options given to --resume: those that may change (a
    schedule) are applied, the others must match the run's own."""
    opts = {(o.into, o.key): o for o in fam.options()}
    groups = {"objective": dict(cfg.objective_args), "generator": dict(cfg.generator),
              "discriminator": dict(cfg.discriminator), "data": dict(cfg.data_args)}
    for (into, key), value in given.items():
        opt, have = opts[(into, key)], groups[into].get(key)
        if opt.on_resume:
            groups[into][key] = value
        elif value != have:
            raise GanctlError(f"--resume continues run {cfg.run_name} with its own {opt.flag[2:]} ({have}); leave out {opt.flag}")
    objective = fam.for_arch(cfg.arch).objective
    groups["objective"] = objective.settled(groups["objective"], cfg.epochs, frozenset(k for i, k in given if i == "objective"))
    return replace(cfg, objective_args=groups["objective"])


def check_augment(cfg: TrainConfig, aug: dict | None) -> None:
    """--augment given to --resume must be the run's own: an exact resume continues the same training."""
    if aug is None:
        return
    have = {k: v for k, v in cfg.augment.items() if k != "ramp_images"}
    if aug != have:
        raise GanctlError(f"--resume continues run {cfg.run_name} with its own augmentation "
                          f"({augment_spec.describe(cfg.augment)}); leave out --augment and --ada-target")
