"""The divergence trials of benchmarks/faults.py (issue 31, item 1), on its harness.

A run is made to diverge by setting its generator's weights to NaN right after its N-th generator
update: run as a script, this file is that run's process, ``ganctl ARGS`` with the objective
patched (ganctl has no hook for it):

    python benchmarks/divergence.py N train gan ...

:func:`diverged` starts it, checks what it left (its one-line error, ``latest`` on the last
checkpoint saved before update N, finite weights in every checkpoint), resumes it unpatched to the
end and compares the result with the uninterrupted run's, bit for bit.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from faults import (
    Reference,
    _complete,
    _env,
    check_checkpoints,
    final_state,
    ganctl,
    resume_args,
    run_dir,
    same,
    train_args,
)

BATCH = 4  # 48 images: 12 batches an epoch, so the metrics are read back inside an epoch (every 10 steps on a CPU)


def _ganctl_with_nan_after(after: int, args: list[str]) -> None:
    """``ganctl ARGS`` whose generator's weights become NaN right after its ``after``-th update,
    as a run's that diverges do: the benchmark's own patch of the objective, in this process only."""
    import torch

    from ganctl.cli import main as cli
    from ganctl.train import objectives

    real, done = objectives.Objective.update, [0]

    def update(self, loss, opt):
        real(self, loss, opt)
        if opt is self.opt_g:
            done[0] += 1
            if done[0] == after:
                with torch.no_grad():
                    for w in self.G.parameters():
                        w.fill_(float("nan"))

    objectives.Objective.update = update
    sys.argv = ["ganctl", *args]
    cli()


def _finite_weights(ckpt: Path) -> bool:
    import torch
    from safetensors.torch import load_file

    return all(bool(torch.isfinite(t).all()) for name in ("generator.safetensors", "discriminator.safetensors")
               for t in load_file(ckpt / name).values() if t.is_floating_point())


@dataclass
class Divergence:
    after: int  # the generator update after which the weights were NaN
    stopped: bool = False  # exit 1 with the one-line divergence error
    caught_by: str = ""  # "metrics" (a read-back of the losses) or "save" (the weights about to be saved)
    kept: str = ""  # what `latest` named after it ("" for none)
    kept_right: bool = False  # the last checkpoint saved before the divergence (or none, before the first save)
    all_finite: bool = False  # every checkpoint under a final name holds finite weights
    consistent: bool = False  # check_checkpoints: "ok"
    resumed: bool = False
    identical: bool = False
    detail: str = ""

    @property
    def ok(self) -> bool:
        return all((self.stopped, self.kept_right, self.all_finite, self.consistent, self.resumed, self.identical))


def diverged(workdir: Path, ref: Reference, after: int) -> Divergence:
    """Train ``ref``'s run with NaN weights after generator update ``after``, check what is left,
    then resume it (unpatched) to the end and compare with the uninterrupted run."""
    home = Path(tempfile.mkdtemp(prefix="nan-", dir=workdir))
    t = Divergence(after)
    args = train_args(ref.dataset, ref.epochs, ref.batch_size)
    r = subprocess.run([sys.executable, __file__, str(after), *args], env=_env(home), capture_output=True, text=True)
    last = (r.stderr.strip().splitlines() or [""])[-1]
    t.stopped = r.returncode == 1 and last.startswith("error: training diverged in epoch ") and "Traceback" not in r.stderr
    t.caught_by = "metrics" if "training metrics are not finite" in last else "save" if "weights are not finite" in last else ""
    if not t.stopped:
        t.detail = f"exit {r.returncode}: {last[:300]}"
    root = run_dir(home) / "checkpoints"
    latest = root / "latest"
    t.kept = latest.read_text().strip() if latest.is_file() else ""
    batches = 48 // ref.batch_size
    saved_before = (after - 1) // batches  # epochs whose end-of-epoch save came before update `after`
    t.kept_right = t.kept == (f"epoch_{saved_before:04d}" if saved_before else "")
    folders = [f for f in root.iterdir() if f.is_dir() and not f.name.startswith(".")] if root.is_dir() else []
    t.all_finite = all(_complete(f) and _finite_weights(f) for f in folders)
    t.consistent = check_checkpoints(run_dir(home)) == "ok"
    r = ganctl(home, resume_args(ref.epochs))
    t.resumed = r.returncode == 0
    if t.resumed:
        t.identical = same(final_state(home, ref.epochs), ref.state)
    elif not t.detail:
        t.detail = f"resume failed ({r.returncode}): {r.stderr.strip().splitlines()[-1:]}"
    shutil.rmtree(home, ignore_errors=True)
    return t


def summarise_divergence(trials: list[Divergence]) -> dict:
    return {
        "runs": len(trials),
        "stopped": sum(t.stopped for t in trials),
        "caught_by_metrics": sum(t.caught_by == "metrics" for t in trials),
        "caught_by_save": sum(t.caught_by == "save" for t in trials),
        "kept_right": sum(t.kept_right for t in trials),
        "all_finite": sum(t.all_finite for t in trials),
        "consistent": sum(t.consistent for t in trials),
        "resumed": sum(t.resumed for t in trials),
        "bit_identical": sum(t.identical for t in trials),
    }


if __name__ == "__main__":
    _ganctl_with_nan_after(int(sys.argv[1]), sys.argv[2:])
