"""Each training command appends where its wall time went to RUN/timings.jsonl."""

from __future__ import annotations

import json
import time

from ganctl import engine, timing
from ganctl.callbacks.timing import FILE, TimingLog
from tests.conftest import invoke


class _Objective:
    n_critic = 2

    def __init__(self):
        self.calls = 0

    def set_epoch(self, epoch):
        pass

    def d_step(self, batch, for_g=True):
        self.calls += 1
        time.sleep(0.02 if self.calls == 1 else 0.001)  # the first step warms up
        return {}

    def g_step(self, batch):
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
    engine.fit(_Objective(), _Feeder(), [_Slow(), TimingLog(tmp_path, watch)], epochs=2)
    row = json.loads((tmp_path / FILE).read_text())
    loop = row["loop_s"]
    assert loop["first step"] >= 0.02 and loop["steps"] < loop["first step"]  # 5 quick steps after the first
    assert loop["_Slow"] >= 0.06 and loop["batches"] >= 0.012
    assert row["before_fit_s"]["data"] >= 0.01 and row["steps"] == [0, 6] and row["epochs"] == [0, 2]
    assert sum(loop.values()) <= row["fit_s"] + 1e-3


def test_train_and_resume_each_append_a_line(tmp_path):
    assert invoke("train", "dcgan", "--dataset", "digits", "--epochs", "1", "--name", "t").exit_code == 0
    assert invoke("train", "dcgan", "--resume", "--name", "t", "--epochs", "2").exit_code == 0
    import os
    from pathlib import Path

    rows = [json.loads(x) for x in (Path(os.environ["GANCTL_HOME"]) / "runs/dcgan/t" / FILE).read_text().splitlines()]
    assert [r["steps"] for r in rows] == [[0, 23], [23, 46]]
    for r in rows:
        assert {"imports", "data", "networks"} <= set(r["before_fit_s"])
        assert {"first step", "steps", "batches", "SampleGrid", "Checkpointer", "MetricsLog"} <= set(r["loop_s"])
    assert "resume" in rows[1]["before_fit_s"] and "resume" not in rows[0]["before_fit_s"]


def test_process_start_is_before_now():
    assert 0 <= timing.since_process_start() < 3600
