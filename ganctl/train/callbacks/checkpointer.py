"""Checkpoints of a run: saved at the end of every ``save_every``-th epoch, of the last one, of the
marked ones and on Ctrl-C, restored on ``--resume`` (see :mod:`ganctl.store.checkpoint` for the folder
layout and how a save stays atomic, :mod:`ganctl.store.retention` for which ones are kept)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import torch
from torch import nn

from ganctl.core.errors import CheckpointError, DivergedError
from ganctl.store import checkpoint, retention
from ganctl.train.engine import Callback, Loop, Position


def _mps_available() -> bool:
    return hasattr(torch, "mps") and hasattr(torch.mps, "get_rng_state") and torch.backends.mps.is_available()


def _until(gate: threading.Event) -> None:
    """Wait for ``gate``, or until the main thread is gone (an interpreter shutting down after an
    error that skipped :meth:`Checkpointer.wait`): a write never holds a process open."""
    while not gate.wait(0.5):
        if not threading.main_thread().is_alive():
            return


def _check_finite(snap: checkpoint.Snapshot, pos: Position) -> None:
    """A DivergedError when the snapshot's weights are not all finite: it is never written, so it
    neither replaces the last finite checkpoint as ``latest`` nor makes retention (``--keep``)
    prune it. Checked on the host copies the save makes anyway, so no step waits for it."""
    for name, tensors in snap.networks.items():
        bad = checkpoint.nonfinite(tensors)
        if bad is not None:
            epoch = pos.epoch if pos.batch == 0 else pos.epoch + 1  # the epoch just ended, or the one in progress
            raise DivergedError(f"the {name}'s weights are not finite ({bad} holds NaN or infinite values), "
                                "so they were not saved", epoch, pos.step)


class PublishCheckpoint(Callback):
    """Placed after the metrics log: once it has written the epoch's rows, the checkpoint saved at
    that epoch's end may be published (:meth:`Checkpointer.publish`)."""

    def __init__(self, saver: Checkpointer):
        self.saver = saver

    def on_epoch_end(self, loop: Loop) -> None:
        self.saver.publish()


class Checkpointer(Callback):
    """Saves ``checkpoints/epoch_NNNN`` after every ``save_every``-th epoch, the last one and the
    ``keep_epochs``, and ``checkpoints/step_NNNNNNNN`` when a Ctrl-C stops an epoch; each save
    prunes to the ``keep`` newest plus the ``keep_epochs``. ``last`` is the newest folder saved.

    Off the critical path: at the save point the state is copied into host memory (a snapshot),
    and a background thread writes, fsyncs and renames it while training goes on. One write is in
    flight at a time: the next save, the end of the fit (also after Ctrl-C or an error) and
    :meth:`wait` wait for it, and a failed write (a full disk) is raised there. A save is atomic
    either way (:func:`ganctl.store.checkpoint.write`), so a process killed mid-write resumes from the
    previous checkpoint. ``background=False`` writes in the caller's thread.

    The save comes first at an epoch's end, so its write overlaps the pictures and validation;
    the metrics log writes the epoch's last rows after them. A background write therefore
    renames its folder into place only once :meth:`publish` is called (by
    :class:`PublishCheckpoint`, after the metrics log, or by :meth:`wait`): a checkpoint never
    covers steps whose rows a kill kept out of ``metrics.jsonl``, which a resume from it would
    then never write (the run would not be the same as an uninterrupted one)."""

    def __init__(self, run_dir: Path, nets: Mapping[str, nn.Module], files: Mapping[str, str], specs: Mapping[str, dict],
                 objective, *, save_every: int = retention.SAVE_EVERY, keep: int = retention.KEEP,
                 keep_epochs: tuple[int, ...] = (), background: bool = True):
        """``nets`` by name, saved as ``files`` (name -> file inside a checkpoint folder); ``specs``:
        the generators' specs by name; ``objective``: whose :meth:`state_dict` goes into ``trainer.pt``."""
        self.run_dir, self.nets, self.files, self.specs = Path(run_dir), dict(nets), dict(files), dict(specs)
        self.objective = objective
        self.save_every, self.keep, self.keep_epochs = save_every, keep, frozenset(keep_epochs)
        self.last: Path | None = None
        self._saved_at: tuple[int, int, int] | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ganctl-checkpoint") if background else None
        self._writing: Future | None = None
        self._gate: threading.Event | None = None

    def publish(self) -> None:
        """Let the write in flight make its checkpoint visible (rename it into place, point
        ``latest`` at it) once its files are on disk."""
        if self._gate is not None:
            self._gate.set()

    def wait(self) -> None:
        """Until the write in flight (if any) is on disk and published; its error, if it failed."""
        self.publish()
        writing, self._writing = self._writing, None
        if writing is not None:
            writing.result()

    def on_fit_end(self, loop: Loop) -> None:
        self.wait()

    def save(self, tag: str, pos: Position) -> Path:
        own = self.objective.state_dict()
        state = checkpoint.TrainerState(
            epoch=pos.epoch,
            batch=pos.batch,
            step=pos.step,
            optimizers=own["optimizers"],
            rng_cpu=torch.get_rng_state(),
            rng_cuda=torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            scalers=own["scalers"],
            rng_mps=torch.mps.get_rng_state() if _mps_available() else None,
            objective=own["state"],
        )
        self.wait()  # one write at a time, in order; a failed one stops training here
        snap = checkpoint.snapshot(self.nets, self.files, self.specs, state)
        _check_finite(snap, pos)
        args = (self.run_dir, tag, snap, self.keep, self.keep_epochs)
        if self._pool is None:
            checkpoint.write(*args)
        else:
            gate = self._gate = threading.Event()
            self._writing = self._pool.submit(checkpoint.write, *args, gate=lambda: _until(gate))
        self.last = self.run_dir / "checkpoints" / tag
        self._saved_at = (pos.epoch, pos.batch, pos.step)
        return self.last

    def on_epoch_end(self, loop: Loop) -> None:
        if retention.due(loop.position.epoch, loop.epochs, self.save_every, self.keep_epochs):
            self.save(f"epoch_{loop.position.epoch:04d}", loop.position)

    def on_interrupt(self, loop: Loop) -> None:
        self.save(f"step_{loop.position.step:08d}", loop.position)

    def save_stop(self, pos: Position) -> None:
        """After a Ctrl-C: the loop stops at once inside an epoch (:meth:`on_interrupt` saved), but
        after the epoch in which it came when that epoch ended: save it if it was not due a save."""
        if self._saved_at != (pos.epoch, pos.batch, pos.step):
            self.save(f"epoch_{pos.epoch:04d}" if pos.batch == 0 else f"step_{pos.step:08d}", pos)
        self.wait()

    def restore(self, say: Callable[[str], None]) -> Position | None:
        """Load the newest checkpoint that loads into the networks, the optimizers and the RNGs;
        None when the run stopped before its first save (it then starts from the beginning, as a
        fresh run with its seed would). A checkpoint that does not load is moved aside."""
        run_dir, problems = self.run_dir, []
        for gone in checkpoint.clean(run_dir):  # what a killed save or prune left
            say(f"removed {gone.relative_to(run_dir)} (left by an interrupted save)")
        for ckpt in checkpoint.candidates(run_dir):
            try:
                for name, net in self.nets.items():
                    checkpoint.load_weights(ckpt / self.files[name], net)
                    # saved by a ganctl that did not refuse them: resuming would only diverge again
                    checkpoint.check_finite(ckpt / self.files[name], net, advice="")
                state = checkpoint.load_trainer(ckpt)
                self.objective.load_state_dict(
                    {"optimizers": state.optimizers, "scalers": state.scalers, "state": state.objective})
            except (CheckpointError, KeyError, ValueError) as e:
                problems.append(f"{ckpt.name}: {e}")
                # moved aside, so it is no candidate again and the next save of its tag starts afresh
                try:
                    where = f"moved to {checkpoint.move_aside(ckpt).relative_to(run_dir)}"
                except OSError as moving:
                    where = f"could not move it aside: {moving.strerror}"
                say(f"warning: skipping checkpoint {ckpt.name}: {e} ({where})")
                continue
            torch.set_rng_state(state.rng_cpu)
            if state.rng_cuda and torch.cuda.is_available():
                # a machine with fewer GPUs than the one that saved gets the states of those it has
                n = min(len(state.rng_cuda), torch.cuda.device_count())
                for i in range(n):
                    torch.cuda.set_rng_state(state.rng_cuda[i], i)
            if state.rng_mps is not None and _mps_available():
                torch.mps.set_rng_state(state.rng_mps)
            say(f"resuming from {ckpt.relative_to(run_dir)} (epoch {state.epoch + 1}, batch {state.batch})")
            return Position(state.epoch, state.batch, state.step)
        if not problems:
            say("no checkpoint to resume from (the run stopped before its first save): starting it from the beginning")
            return None
        raise CheckpointError(f"cannot resume {run_dir}: {'; '.join(problems)}. Start a new run without --resume.")
