"""One training run from its config: networks, objective, feeder and callbacks, then ``engine.fit``.

Nothing here depends on the family's name or on how many networks it has: the registration
(:mod:`ganctl.families.registry`) names the networks, their init and the objective, and the family's data
kind (:class:`ganctl.families.familyspec.DataKind`) gives the feeder and the epoch pictures.

In a multi-process run (:mod:`ganctl.runtime.distributed`) every rank trains, and rank 0 alone writes: it
holds the run's lock, writes the config, restores a checkpoint and hands its state to the others,
and runs the callbacks (metrics, pictures, evaluation, checkpoints, progress). The others run only
:class:`EpochSync`, which waits at each epoch's end for rank 0 to finish what it writes then.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ganctl import models
from ganctl.augment_spec import describe as _describe_augment
from ganctl.config import TrainConfig
from ganctl.core.atomic import atomic_write_json
from ganctl.core.errors import DivergedError
from ganctl.core.timing import Stopwatch
from ganctl.families import registry
from ganctl.runtime import accel, distributed
from ganctl.runtime.runtime import Runtime
from ganctl.store import genspec
from ganctl.store.layout import run_lock
from ganctl.train import callbacks, engine, objectives
from ganctl.train.callbacks.animation import ProgressAnimation
from ganctl.train.callbacks.progress import NullReporter, Reporter
from ganctl.train.callbacks.trackers import build as build_trackers
from ganctl.train.tracking import TrackerStartError


@dataclass
class TrainResult:
    run_dir: Path
    epochs_done: int
    step: int
    interrupted: bool
    checkpoint: Path | None
    last_epoch: dict[str, float]


def uses_channels_last(cfg: TrainConfig, rt: Runtime) -> bool:
    return rt.channels_last(registry.networks(cfg.arch).convolutional)


def build_networks(cfg: TrainConfig, rt: Runtime) -> dict[str, torch.nn.Module]:
    """The networks of ``cfg`` by name, initialised from its seed, on the device in the runtime's layout."""
    torch.manual_seed(cfg.seed)
    nets = models.build_all(cfg.arch, cfg.generator, cfg.discriminator, cfg.init)
    channels_last = uses_channels_last(cfg, rt)
    for net in nets.values():
        net.to(rt.device)
        if channels_last:
            net.to(memory_format=torch.channels_last)
    accel.apply(rt, *nets.values())
    return nets


def build_objective(cfg: TrainConfig, nets: dict[str, torch.nn.Module], rt: Runtime) -> objectives.Objective:
    running = dict(nets)
    if rt.compile:
        # the objective trains compiled wrappers that share the parameters; checkpoints and
        # samples use the plain modules. The gradient penalty differentiates twice, which
        # compiled graphs do not support, so a WGAN-GP critic runs eagerly.
        roles = registry.networks(cfg.arch)
        for name, net in nets.items():
            if roles.role_of(name) == "generator" or not cfg.objective_args.get("lambda_gp"):
                running[name] = torch.compile(net)
    return objectives.build(running, cfg, rt)


def checkpoint_layout(cfg: TrainConfig) -> tuple[dict[str, str], dict[str, dict]]:
    """(file of each network inside a checkpoint folder, spec of each generator) of a run."""
    nets = registry.networks(cfg.arch)
    files = {name: nets.file(name) for name, _ in nets.named}
    direction_of = {name: direction for direction, name in nets.uses if direction}
    specs = {name: genspec.for_run(cfg, direction_of.get(name)) for name in nets.names("generator")}
    return files, specs


def train(cfg: TrainConfig, data, run_dir: Path, rt: Runtime, reporter: Reporter | None = None,
          resume: bool = False, val_data=None, watch: Stopwatch | None = None, log: tuple[str, ...] = ()) -> TrainResult:
    """Train ``cfg`` on ``data`` (images, or pairs with ``val_data`` for validation), sending it
    to the experiment trackers named in ``log`` (checked by :func:`ganctl.train.tracking.check`).

    The run folder is locked for the whole training: a second trainer (or ``rm``) of the same run
    is refused before it writes anything, and the lock dies with the process, so a killed run resumes.
    In a multi-process run, rank 0 holds the lock and the other ranks write nothing.
    """
    if not distributed.is_main():
        return _train(cfg, data, Path(run_dir), rt, NullReporter(), resume, val_data, watch or Stopwatch(), ())
    with run_lock(Path(run_dir), f"{cfg.family}/{cfg.run_name}", new=not resume):
        try:
            return _train(cfg, data, Path(run_dir), rt, reporter or NullReporter(), resume, val_data,
                          watch or Stopwatch(), log)
        except TrackerStartError:
            if not resume:  # before the first step: the folder holds no training, and run_lock removes
                (Path(run_dir) / "config.json").unlink(missing_ok=True)  # a new one without a config
            raise


def _train(cfg: TrainConfig, data, run_dir: Path, rt: Runtime, reporter: Reporter, resume: bool, val_data,
           watch: Stopwatch, trackers: tuple[str, ...]) -> TrainResult:
    fam = registry.get(cfg.family)
    variant = fam.for_arch(cfg.arch)
    main = distributed.is_main()
    kind = fam.kind
    with watch.phase("networks"):
        nets = build_networks(cfg, rt)
        for net in nets.values() if distributed.world().active else ():
            # dropout masks drawn for the global batch, each rank keeping its rows
            distributed.global_dropout(net)
            if not kind.per_rank_norm:
                # the global batch's statistics, as one process training on it has. pix2pix keeps
                # its per-rank batch norm: its recipe is batch 1, where batch norm normalises each
                # image by itself, and its validation runs G in training mode on rank 0 alone.
                distributed.sync_batch_norm(net)
        obj = build_objective(cfg, nets, rt)
    files, specs = checkpoint_layout(cfg)
    saver = callbacks.Checkpointer(run_dir, nets, files, specs, obj, save_every=cfg.save_every, keep=cfg.keep,
                                   keep_epochs=cfg.keep_epochs)

    start = None
    if resume and main:
        atomic_write_json(run_dir / "config.json", cfg.to_json())  # --epochs/--eval-every may have changed
        with watch.phase("resume"):
            start = saver.restore(reporter.message)
        _warn_other_world(run_dir, reporter)
    elif main:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(run_dir / "config.json", cfg.to_json())
    if distributed.world().active:
        start = _share_state(nets, obj, start)

    channels_last = uses_channels_last(cfg, rt)
    feeder = registry.resolve(kind.feeder)(data, cfg, rt, channels_last)
    shows: list[engine.Callback] = registry.resolve(kind.pictures)(
        run_dir, nets, val_data if val_data is not None else data, cfg, rt, channels_last)

    # on a GPU every read-back waits for the queued steps: read in blocks; a CPU has nothing to wait for
    log = callbacks.MetricsLog(run_dir, resume=resume, read_every=10 if rt.device.type == "cpu" else 50)
    title = f"{cfg.family} on {Path(cfg.dataset).name}"
    if not main:  # rank 0 writes and shows; the others wait for it at each epoch's end
        steps: list[engine.Callback] = [EpochSync()]
        res = engine.fit(obj, feeder, steps, epochs=cfg.epochs, start=start, agree=distributed.any_rank)
        return TrainResult(run_dir, res.position.epoch, res.position.step, res.interrupted, None, {})
    steps = [
        # first: the state is copied at the epoch's end and written in the background while the
        # pictures and validation run (they restore the RNG state they seed, so the copy is the same)
        saver,
        *shows,
        log,
        # after the log (it looks at the rows read back), before the checkpoint is published
        callbacks.DivergenceGuard(log, nets, scaled=bool(obj.scalers())),
        callbacks.PublishCheckpoint(saver),  # after the log has the epoch's rows on disk
        callbacks.LossChart(run_dir, log, title, not_charted=variant.objective.not_charted),
        callbacks.Progress(reporter, cfg, rt, log),
        ProgressAnimation(run_dir),
        # after the metrics log (they send the rows it read back) and the pictures (they send the grid)
        *build_trackers(trackers, run_dir, cfg.to_json(), log, resume, reporter.message),
        callbacks.SessionLog(run_dir, rt, registry.networks(cfg.arch).convolutional, watch,  # last: it times the others
                             augment=_describe_augment(cfg.augment)),
    ]
    agree = None
    if distributed.world().active:
        steps.append(EpochSync())
        agree = distributed.any_rank
    try:
        res = engine.fit(obj, feeder, steps, epochs=cfg.epochs, start=start, agree=agree)
        if res.interrupted:  # a Ctrl-C always saves, also after an epoch that --save-every skipped
            saver.save_stop(res.position)
    except DivergedError as e:  # the fit has ended (its writes are on disk): say what is kept and what to try
        raise DivergedError(e.what, e.epoch, e.step, advice=_after_divergence(cfg, rt, run_dir)) from e
    return TrainResult(run_dir, res.position.epoch, res.position.step, res.interrupted, saver.last, log.summary)


def _after_divergence(cfg: TrainConfig, rt: Runtime, run_dir: Path) -> str:
    """What to try after a divergence, naming the checkpoint kept (the newest: a non-finite one is
    never saved). A resume in the same precision repeats the same steps (exact resume), so it is
    offered with fp32 where the run used less; a lower --lr needs a new run (--resume keeps the run's)."""
    from ganctl.store import retention

    lower = f"a lower --lr (this run's is {cfg.lr:g})"
    kept = retention.newest(run_dir / "checkpoints")
    if kept is None:
        fp32 = " or --precision fp32" if rt.precision != "fp32" else ""
        return f"no checkpoint was saved before it: start again with {lower}{fp32}"
    resume = f"'ganctl train {cfg.family} --resume --name {cfg.run_name}"
    if rt.precision != "fp32":
        return (f"checkpoints/{kept.name}, saved before it, is kept: continue from it in full precision with "
                f"{resume} --precision fp32', or start a new run with {lower}")
    return (f"checkpoints/{kept.name}, saved before it, is kept ({resume}' continues from it, but an exact resume "
            f"repeats the same steps): start a new run with {lower}")


def _warn_other_world(run_dir: Path, reporter: Reporter) -> None:
    """Another number of processes than the run's last session had splits the batches otherwise:
    the same sums in another order, so the result is not bit-identical to an uninterrupted run."""
    from ganctl.report.rundata import read_sessions

    sessions = read_sessions(run_dir)
    before = sessions[-1].get("processes", 1) if sessions else None
    now = distributed.world().size
    if before is not None and before != now:
        reporter.message(f"warning: this run trained with {before} process{'es' if before != 1 else ''} and resumes with "
                         f"{now}: it continues the same training, but not bit-identically to an uninterrupted run")


def _share_state(nets: dict[str, torch.nn.Module], obj: objectives.Objective,
                 start: engine.Position | None) -> engine.Position | None:
    """Rank 0's weights, objective state (optimizers, loss scalers, its own), RNG state and position
    (what it restored on --resume, or its fresh start) on every rank. Every rank draws from one
    random stream (:mod:`ganctl.runtime.distributed`), so rank 0's RNG state is everyone's."""
    distributed.broadcast_modules(*nets.values())
    state = distributed.broadcast_object({
        "start": start,
        "objective": obj.state_dict(),
        "rng_cpu": torch.get_rng_state(),
        "rng_device": torch.cuda.get_rng_state() if obj.rt.device.type == "cuda" else None,
    })
    if not distributed.is_main():
        obj.load_state_dict(state["objective"])
        torch.set_rng_state(state["rng_cpu"])
        if state["rng_device"] is not None:
            torch.cuda.set_rng_state(state["rng_device"])
    return state["start"]


class EpochSync(engine.Callback):
    """Last in every rank's list: at the end of each epoch every rank waits until
    rank 0 has written what it writes then (pictures, evaluation, the checkpoint's snapshot), so no
    rank runs ahead into a collective that would time out while rank 0 evaluates."""

    def on_epoch_end(self, loop: engine.Loop) -> None:
        distributed.wait_for_main(f"epoch-{loop.position.epoch}")
