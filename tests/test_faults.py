"""Fault injection (issue 15, item 10): a training SIGKILLed inside a checkpoint save, or at a random
moment, resumes with ``ganctl train --resume`` to the same final weights and metrics, bit for bit,
and ``latest`` never names an incomplete checkpoint. The harness is benchmarks/faults.py's; the
faults are injected from outside ganctl by benchmarks/faultinject/sitecustomize.py."""

from __future__ import annotations

import importlib
import importlib.util
import os
import random
import signal
import sys
from pathlib import Path

import pytest

from tests.conftest import invoke

_spec = importlib.util.spec_from_file_location("ganctl_bench_faults", Path(__file__).parent.parent / "benchmarks" / "faults.py")
faults = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = faults  # dataclasses look their module up
_spec.loader.exec_module(faults)

def test_a_kill_between_the_rename_and_latest_resumes_bit_identically(tmp_path, _isolated_store):
    """Killed right after the final checkpoint's rename, before `latest`: the old code kept
    `latest` on the previous epoch forever (the resume's save of that tag was skipped); now the
    resume's clean-up points `latest` at the complete epoch_0002 and continues from there."""
    data = faults.make_dataset(tmp_path / "images")
    args = faults.train_args(data, 2)
    r = invoke(*args)  # the uninterrupted run, in this process
    assert r.exit_code == 0, r.output
    want = faults.final_state(_isolated_store, 2)

    home = tmp_path / "killed"
    r = faults.ganctl(home, args, FAULTINJECT="save:epoch_0002:renamed")  # the temporary folder renamed onto epoch_0002
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert faults.check_checkpoints(faults.run_dir(home)) == "behind"  # epoch_0002 in place, latest epoch_0001

    os.environ["GANCTL_HOME"] = str(home)  # the autouse fixture restores it
    r = invoke(*faults.resume_args(2))
    assert r.exit_code == 0, r.output
    assert "resuming from checkpoints/epoch_0002" in r.stderr  # latest re-pointed at the complete folder
    assert faults.check_checkpoints(faults.run_dir(home)) == "ok"
    assert (faults.run_dir(home) / "checkpoints" / "latest").read_text().strip() == "epoch_0002"
    assert faults.same(faults.final_state(home, 2), want)
    leftovers = [p.name for p in (faults.run_dir(home) / "checkpoints").iterdir() if p.name.startswith(".")]
    assert leftovers == []


def _problem(t) -> str | None:
    if not t.killed:
        return f"not killed: {t.detail}"
    if not all(c in ("ok", "behind") for c in t.checks):
        return f"after the kill: {t.checks}"
    if not (t.resumed and t.identical and t.latest_final):
        return f"resumed={t.resumed} identical={t.identical} latest_final={t.latest_final} {t.detail}"
    return None


@pytest.mark.slow
def test_kills_at_every_save_point_and_at_random_moments(tmp_path):
    """Every fsync, rename and deletion of a 3-epoch run's saves and prunes, and a few random moments
    (about 10 minutes on 2 cores). Re-saves no longer happen after a kill (resume re-points
    `latest` at the newest complete folder), so there are no re-save chains to kill."""
    ref = faults.reference(tmp_path, faults.make_dataset(tmp_path / "images"), 3)
    assert any(":prune-epoch_0001-moved-aside" in p for p in ref.points)
    problems = []
    for n in range(1, len(ref.points) + 1):
        t = faults.injected(tmp_path, ref, n)
        if _problem(t):
            problems.append(f"{n} {ref.points[n - 1]}: {_problem(t)}")
    rng = random.Random(0)
    for _ in range(3):
        t = faults.random_kill(tmp_path, ref, rng)
        if t.killed and _problem(t):
            problems.append(f"{t.what}: {_problem(t)}")
    assert problems == []


@pytest.mark.slow
def test_a_run_that_diverges_keeps_its_last_finite_checkpoint_and_resumes(tmp_path):
    """benchmarks/divergence.py's trials (issue 31, item 1) at three moments of a 2-epoch run of 12
    batches: inside epoch 2 (a read-back of the losses catches it), at the end of epoch 1 and at
    the end of the run (the save catches it); about a minute on 2 cores."""
    divergence = importlib.import_module("divergence")  # benchmarks/ is on sys.path (faults.py puts it there)
    ref = faults.reference(tmp_path, faults.make_dataset(tmp_path / "images"), 2, divergence.BATCH)
    trials = {after: divergence.diverged(tmp_path, ref, after) for after in (15, 12, 24)}
    assert {a: (t.caught_by, t.kept) for a, t in trials.items()} == {
        15: ("metrics", "epoch_0001"), 12: ("save", ""), 24: ("save", "epoch_0001")}
    assert [a for a, t in trials.items() if not t.ok] == [], [t.detail for t in trials.values()]


@pytest.mark.slow
def test_a_kill_inside_a_cyclegan_save_resumes_bit_identically(tmp_path, _isolated_store):
    """A CycleGAN checkpoint is four networks in folders of their own (G_A/generator.safetensors,
    ...) and the image pools: killed after epoch 2's save wrote G_B, the folder is no checkpoint
    (the harness reads the run's layout to say so), and the resume from epoch_0001 ends where the
    uninterrupted run ends, bit for bit (about 20 s on 2 cores)."""
    data = faults.make_unpaired_dataset(tmp_path / "images")
    args = faults.train_args(data, 2, family="cyclegan")
    r = invoke(*args)
    assert r.exit_code == 0, r.output
    want = faults.final_state(_isolated_store, 2, "cyclegan")
    assert {"G_A.model.1.weight", "D_B.model.0.weight"} <= want[0].keys()

    home = tmp_path / "killed"
    r = faults.ganctl(home, args, FAULTINJECT="save:epoch_0002:G_B/generator.safetensors-synced")
    assert r.returncode == -signal.SIGKILL, r.stderr
    run = faults.run_dir(home, "cyclegan")
    assert faults.check_checkpoints(run) == "ok"  # latest: epoch_0001, complete in every network
    assert [p.name for p in (run / "checkpoints").iterdir() if p.name.endswith(".tmp")]  # the cut save

    os.environ["GANCTL_HOME"] = str(home)  # the autouse fixture restores it
    r = invoke(*faults.resume_args(2, "cyclegan"))
    assert r.exit_code == 0, r.output
    assert "resuming from checkpoints/epoch_0001" in r.stderr
    assert faults.check_checkpoints(run) == "ok"
    assert faults.same(faults.final_state(home, 2, "cyclegan"), want)
    assert [p.name for p in (run / "checkpoints").iterdir() if p.name.startswith(".")] == []
