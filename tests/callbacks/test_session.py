"""Each training session records where its wall time went in RUN/runtime.json."""

from __future__ import annotations

import json
import time

from ganctl.core import timing
from ganctl.runtime import runtime
from ganctl.train import engine
from ganctl.train.callbacks.session import SessionLog
from tests.conftest import invoke


class _Objective:
    n_critic = 2

    def __init__(self):
        self.calls = 0

    def set_epoch(self, epoch):
        pass

    def step(self, batch, index):
        self.calls += 1
        time.sleep(0.02 if self.calls == 1 else 0.001)  # the first step warms up
        return {}


class _Feeder:
    batch_size = 4

    def batches_per_epoch(self):
        return 3

    def epoch(self, epoch, first):
        for _ in range(first, 3):
            time.sleep(0.002)
            yield {}


class _Slow(engine.Callback):
    def on_epoch_end(self, loop):
        time.sleep(0.03)


def test_the_loop_splits_its_time_between_steps_batches_and_each_callback(tmp_path):
    watch = timing.Stopwatch()
    with watch.phase("data"):
        time.sleep(0.01)
    cpu = runtime.resolve("cpu", "fp32", False, False)
    engine.fit(_Objective(), _Feeder(), [_Slow(), SessionLog(tmp_path, cpu, False, watch)], epochs=2)
    session = json.loads((tmp_path / "runtime.json").read_text())["sessions"][0]
    row = session["timings"]
    loop = row["loop_s"]
    assert loop["first step"] >= 0.02 and loop["steps"] < loop["first step"]  # 5 quick steps after the first
    assert loop["_Slow"] >= 0.06 and loop["batches"] >= 0.012
    assert row["before_fit_s"]["data"] >= 0.01
    assert (session["step"], session["end_step"], session["epoch"], session["end_epoch"]) == (0, 6, 0, 2)
    assert sum(loop.values()) <= row["fit_s"] + 1e-3


def test_train_and_resume_each_add_a_session_with_its_timings(tmp_path):
    assert invoke("train", "dcgan", "--dataset", "digits", "--epochs", "1", "--name", "t").exit_code == 0
    assert invoke("train", "dcgan", "--resume", "--name", "t", "--epochs", "2").exit_code == 0
    import os
    from pathlib import Path

    sessions = json.loads((Path(os.environ["GANCTL_HOME"]) / "runs/dcgan/t/runtime.json").read_text())["sessions"]
    assert [(s["step"], s["end_step"]) for s in sessions] == [(0, 23), (23, 46)]
    rows = [s["timings"] for s in sessions]
    for r in rows:
        assert {"imports", "data", "networks"} <= set(r["before_fit_s"])
        assert {"first step", "steps", "batches", "SampleGrid", "Checkpointer", "MetricsLog"} <= set(r["loop_s"])
    assert "resume" in rows[1]["before_fit_s"] and "resume" not in rows[0]["before_fit_s"]


def test_process_start_is_before_now():
    assert 0 <= timing.since_process_start() < 3600
