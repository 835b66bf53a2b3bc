"""The one training loop, shared by every family. It knows nothing about GAN variants: the
objective owns the losses and updates, the reporter (given by the CLI) owns the display.

Exact resume: the batch order of epoch ``e`` is a permutation drawn from a generator seeded with
``(seed, e)``, so it never needs saving; the global RNG (noise, dropout) is saved in every
checkpoint with the optimizer states and the position (epoch, batch). Training 2 epochs, or 1
epoch then ``--resume`` for 1 more, gives bit-identical weights on the CPU.
"""

from __future__ import annotations

import json
import math
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch

from ganctl import __version__, accel, checkpoint, images, models, objectives, seeds, tasks
from ganctl.config import TrainConfig
from ganctl.errors import CheckpointError
from ganctl.runtime import Runtime
from ganctl.store import atomic_write, atomic_write_json, run_lock


class Reporter(Protocol):
    def start(self, cfg: TrainConfig, rt: Runtime, batches: int, start_epoch: int, start_batch: int) -> None: ...
    def step(self, epoch: int, batch: int, metrics: dict[str, float]) -> None: ...
    def epoch_end(self, epoch: int, summary: dict[str, float]) -> None: ...
    def message(self, text: str) -> None: ...
    def finish(self) -> None: ...


class NullReporter:
    def start(self, *a, **k) -> None: ...
    def step(self, *a, **k) -> None: ...
    def epoch_end(self, *a, **k) -> None: ...
    def message(self, *a, **k) -> None: ...
    def finish(self) -> None: ...


@dataclass
class TrainResult:
    run_dir: Path
    epochs_done: int
    step: int
    interrupted: bool
    checkpoint: Path | None
    last_epoch: dict[str, float]


def generator_meta(cfg: TrainConfig) -> dict:
    """What ``sample``/``interpolate``/``translate`` need to rebuild the generator from its file alone."""
    extra = {}
    if cfg.arch == "pix2pix":
        extra = {"direction": cfg.data_args.get("direction"), "load_size": cfg.data_args.get("load_size")}
    return {**extra,
        "family": cfg.family,
        "arch": cfg.arch,
        "generator": cfg.generator,
        "z_dim": cfg.z_dim,
        "image_size": cfg.image_size,
        "channels": cfg.channels,
        "classes": list(cfg.classes) if cfg.classes else None,
        "conditional": bool(cfg.generator.get("num_classes")),
        "dataset": cfg.dataset,
        "run": cfg.run_name,
        "ganctl_version": __version__,
    }


def epoch_permutation(seed: int, epoch: int, n: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seeds.derive(seed, epoch))
    return torch.randperm(n, generator=g)


def uses_channels_last(cfg: TrainConfig, rt: Runtime) -> bool:
    return rt.channels_last(cfg.arch != "mlp")


@contextmanager
def _deferred_sigint() -> Iterator[list[bool]]:
    """The first Ctrl-C sets a flag the loop checks between batches (so the checkpoint is at a
    clean position); a second one interrupts at once."""
    flag = [False]
    try:
        previous = signal.getsignal(signal.SIGINT)
    except ValueError:  # not the main thread: leave signals alone
        yield flag
        return

    def handler(signum, frame):
        if flag[0]:
            raise KeyboardInterrupt
        flag[0] = True

    try:
        signal.signal(signal.SIGINT, handler)
    except ValueError:
        yield flag
        return
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def _read_metrics(path: Path, upto_step: int) -> list[dict]:
    rows = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except (ValueError, RecursionError):  # a torn last line from a crash
                continue
            if isinstance(row, dict) and isinstance(row.get("step", 0), int) and row.get("step", 0) <= upto_step:
                rows.append(row)
    return rows


def train(
    cfg: TrainConfig,
    data,
    run_dir: Path,
    rt: Runtime,
    reporter: Reporter | None = None,
    resume: bool = False,
    val_data=None,
) -> TrainResult:
    """Train ``cfg`` on ``data`` (an ImageData, or PairedData with ``val_data`` for pix2pix).

    The run folder is locked for the whole training: a second trainer (or ``rm``) of the same run
    is refused before it writes anything, and the lock dies with the process, so a killed run resumes.
    """
    with run_lock(Path(run_dir), f"{cfg.family}/{cfg.run_name}", new=not resume):
        return _train(cfg, data, run_dir, rt, reporter, resume, val_data)


def _train(cfg: TrainConfig, data, run_dir: Path, rt: Runtime, reporter, resume, val_data) -> TrainResult:
    reporter = reporter or NullReporter()
    run_dir = Path(run_dir)
    torch.manual_seed(cfg.seed)
    G = models.build_generator(cfg.arch, cfg.generator)
    D = models.build_discriminator(cfg.arch, cfg.discriminator)
    models.init_weights(cfg.arch, G, cfg.init)
    models.init_weights(cfg.arch, D, cfg.init)
    G.to(rt.device)
    D.to(rt.device)
    channels_last = uses_channels_last(cfg, rt)
    if channels_last:
        G.to(memory_format=torch.channels_last)
        D.to(memory_format=torch.channels_last)
    accel.apply(rt, G, D)  # the CPU fast paths' convolutions, where rt wants them
    G_run, D_run = G, D
    if rt.compile:
        # the objective trains compiled wrappers that share the parameters; checkpoints and
        # samples use the plain modules. The gradient penalty differentiates twice, which
        # compiled graphs do not support, so a WGAN-GP critic runs eagerly.
        G_run = torch.compile(G)
        if not cfg.objective_args.get("lambda_gp"):
            D_run = torch.compile(D)
    obj = objectives.build(G_run, D_run, cfg, rt)

    start_epoch = start_batch = step = 0
    metrics_path = run_dir / "metrics.jsonl"
    if resume:
        atomic_write_json(run_dir / "config.json", cfg.to_json())  # --epochs/--eval-every may have changed
        state = _restore(run_dir, G, D, obj, reporter)
        if state is not None:
            start_epoch, start_batch, step = state.epoch, state.batch, state.step
        rows = _read_metrics(metrics_path, step)
        atomic_write(metrics_path, "".join(json.dumps(r) + "\n" for r in rows).encode())
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(run_dir / "config.json", cfg.to_json())
        atomic_write(metrics_path, b"")
        rows = []

    if cfg.arch == "pix2pix":
        task = tasks.PairedTask(cfg, data, val_data if val_data is not None else data, rt, channels_last)
    else:
        task = tasks.ImageTask(cfg, data, rt, obj.G_conditional, channels_last)
    n = len(task)
    bs = min(cfg.batch_size, n)
    batches = n // bs  # drop the last partial batch: tiny batches upset batch norm

    reporter.start(cfg, rt, batches, start_epoch, start_batch)
    metrics_file = open(metrics_path, "a")
    interrupted, last_ckpt, summary = False, None, {}
    try:
        with _deferred_sigint() as stop:
            for epoch in range(start_epoch, cfg.epochs):
                perm = epoch_permutation(cfg.seed, epoch, n)
                first = start_batch if epoch == start_epoch else 0
                obj.set_epoch(epoch)
                t0, epoch_rows = time.perf_counter(), []
                for b in range(first, batches):
                    batch = task.batch(perm[b * bs : (b + 1) * bs], epoch, b)
                    if b + 1 < batches:  # the next batch is prepared while this one trains
                        task.prefetch(perm[(b + 1) * bs : (b + 2) * bs], epoch, b + 1)
                    g_now = (step + 1) % obj.n_critic == 0
                    m = obj.d_step(batch, for_g=g_now)
                    if g_now:
                        m.update(obj.g_step(batch))
                    step += 1
                    row = {"step": step, "epoch": epoch + 1, **{k: round(float(v), 6) for k, v in m.items()}}
                    rows.append(row)
                    epoch_rows.append(row)
                    metrics_file.write(json.dumps(row) + "\n")
                    reporter.step(epoch, b + 1, row)
                    if stop[0] and b + 1 < batches:
                        metrics_file.flush()
                        last_ckpt = _save(run_dir, f"step_{step:08d}", G, D, obj, cfg, epoch, b + 1, step)
                        interrupted = True
                        return TrainResult(run_dir, epoch, step, True, last_ckpt, summary)
                metrics_file.flush()
                seconds = time.perf_counter() - t0
                summary = _summarise(epoch_rows, seconds, (batches - first) * bs)
                extra = task.epoch_outputs(run_dir, epoch, G)
                if extra:  # validation / evaluation numbers: one more metrics row, at this step
                    extra = {k: round(v, 6) for k, v in extra.items()}
                    row = {"step": step, "epoch": epoch + 1, **extra}
                    rows.append(row)
                    metrics_file.write(json.dumps(row) + "\n")
                    metrics_file.flush()
                    summary.update(extra)
                _loss_chart(run_dir, rows, cfg)
                last_ckpt = _save(run_dir, f"epoch_{epoch + 1:04d}", G, D, obj, cfg, epoch + 1, 0, step)
                reporter.epoch_end(epoch, summary)
                if stop[0]:
                    interrupted = True
                    return TrainResult(run_dir, epoch + 1, step, True, last_ckpt, summary)
    finally:
        metrics_file.close()
        reporter.finish()
    return TrainResult(run_dir, cfg.epochs, step, interrupted, last_ckpt, summary)


def _summarise(rows: list[dict], seconds: float, images_seen: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for key in dict.fromkeys(k for r in rows for k in r):
        if key not in ("step", "epoch"):
            vals = [r[key] for r in rows if key in r]
            out[key] = sum(vals) / len(vals)
    out["seconds"] = seconds
    out["images_per_s"] = images_seen / seconds if seconds > 0 else math.nan
    return out


_NOT_CHARTED = ("step", "epoch", "d_real", "d_fake")


def _loss_chart(run_dir, rows, cfg) -> None:
    skip = ("step", "epoch") if cfg.arch == "pix2pix" else _NOT_CHARTED  # pix2pix's d_real/d_fake are losses
    keys = dict.fromkeys(k for r in rows[-50:] for k in r if k not in skip and not k.startswith(("val_", "eval_")))
    series = {k: [r[k] for r in rows if k in r] for k in keys}
    images.loss_chart(series, run_dir / "losses.png", title=f"{cfg.family} on {Path(cfg.dataset).name}")


def _scalers(obj) -> dict:
    """The objective's fp16 loss scalers by network (none outside fp16)."""
    pairs = (("generator", getattr(obj, "scale_g", None)), ("discriminator", getattr(obj, "scale_d", None)))
    return {name: s for name, s in pairs if s is not None}


def _mps_available() -> bool:
    return hasattr(torch, "mps") and hasattr(torch.mps, "get_rng_state") and torch.backends.mps.is_available()


def _save(run_dir, tag, G, D, obj, cfg, epoch, batch, step) -> Path:
    state = checkpoint.TrainerState(
        epoch=epoch,
        batch=batch,
        step=step,
        optimizers={k: o.state_dict() for k, o in obj.optimizers().items()},
        rng_cpu=torch.get_rng_state(),
        rng_cuda=torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        scalers={k: s.state_dict() for k, s in _scalers(obj).items()},
        rng_mps=torch.mps.get_rng_state() if _mps_available() else None,
    )
    return checkpoint.save(run_dir, tag, G, D, generator_meta(cfg), state)


def _restore(run_dir: Path, G, D, obj, reporter) -> checkpoint.TrainerState | None:
    """Load the newest checkpoint that loads; None when the run stopped before its first save
    (it then starts from the beginning, as a fresh run with its seed would)."""
    problems = []
    for gone in checkpoint.clean(run_dir):  # what a killed save or prune left
        reporter.message(f"removed {gone.relative_to(run_dir)} (left by an interrupted save)")
    for ckpt in checkpoint.candidates(run_dir):
        try:
            checkpoint.load_weights(ckpt / checkpoint.GENERATOR, G)
            checkpoint.load_weights(ckpt / checkpoint.DISCRIMINATOR, D)
            state = checkpoint.load_trainer(ckpt)
            for name, opt in obj.optimizers().items():
                opt.load_state_dict(state.optimizers[name])
            for name, scaler in _scalers(obj).items():
                if name in state.scalers:  # absent in older checkpoints and in non-fp16 runs
                    scaler.load_state_dict(state.scalers[name])
        except (CheckpointError, KeyError, ValueError) as e:
            problems.append(f"{ckpt.name}: {e}")
            # moved aside, so it is no candidate again and the next save of its tag starts afresh
            try:
                where = f"moved to {checkpoint.move_aside(ckpt).relative_to(run_dir)}"
            except OSError as moving:
                where = f"could not move it aside: {moving.strerror}"
            reporter.message(f"warning: skipping checkpoint {ckpt.name}: {e} ({where})")
            continue
        torch.set_rng_state(state.rng_cpu)
        if state.rng_cuda and torch.cuda.is_available():
            # a machine with fewer GPUs than the one that saved gets the states of those it has
            n = min(len(state.rng_cuda), torch.cuda.device_count())
            for i in range(n):
                torch.cuda.set_rng_state(state.rng_cuda[i], i)
        if state.rng_mps is not None and _mps_available():
            torch.mps.set_rng_state(state.rng_mps)
        reporter.message(f"resuming from {ckpt.relative_to(run_dir)} (epoch {state.epoch + 1}, batch {state.batch})")
        return state
    if not problems:
        reporter.message("no checkpoint to resume from (the run stopped before its first save): starting it from the beginning")
        return None
    raise CheckpointError(f"cannot resume {run_dir}: {'; '.join(problems)}. Start a new run without --resume.")
