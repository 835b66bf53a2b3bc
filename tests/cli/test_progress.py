"""What `ganctl train` shows while it trains: the run's steps, an estimate of its time, bars that fit
the terminal, and lines often enough when stderr is not a terminal. A fake clock drives the time."""

from __future__ import annotations

import json
import re
from io import StringIO
from types import SimpleNamespace

import pytest
from rich.console import Console

from ganctl.cli import pace, ui
from ganctl.train.callbacks.progress import Plan
from tests.cli.test_cli import invoke
from tests.conftest import make_image_folder

CFG = SimpleNamespace(family="dcgan", dataset="digits", image_size=28, channels=1, epochs=3, arch="dcgan")
RT = SimpleNamespace(describe=lambda convolutional: "cpu (2 threads), fp32")
LOSSES = {"step": 9, "epoch": 1, "d_loss": 1.2345, "d_real": 0.5, "d_fake": 0.4, "g_loss": 0.8765}
SUMMARY = {**LOSSES, "seconds": 60.0, "images_per_s": 1000.0}


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def reporter(width=120, terminal=False, **kw):
    out = StringIO()
    clock = Clock()
    rep = ui.TrainProgress(console=Console(width=width, force_terminal=terminal, file=out, soft_wrap=True), clock=clock, **kw)
    return rep, clock, out


def train(rep, clock, plan, epochs=None, warmup_s=3.0, step_s=0.5, stop_at=None):
    """Drive ``rep`` as the engine does: the first two steps take ``warmup_s`` each, the rest ``step_s``."""
    rep.start(CFG, RT, plan)
    done = 0
    for epoch in range(plan.start_epoch, epochs or plan.epochs):
        first = plan.start_batch if epoch == plan.start_epoch else 0
        for batch in range(first + 1, plan.batches + 1):
            clock.now += warmup_s if done < 2 else step_s
            done += 1
            rep.step(epoch, batch, LOSSES)
            if (epoch, batch) == stop_at:
                return
        rep.epoch_end(epoch, SUMMARY)


def lines(out: StringIO) -> list[str]:
    return [ln for ln in re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue()).splitlines() if ln.strip()]


# -- the first line: the run's optimizer steps --------------------------------------------------


@pytest.mark.parametrize("plan, says", [
    (Plan(3, 469, 128), "3 epochs of 469 batches of 128 = 1,407 steps (each a D and a G update)"),
    # resumed after epoch 1: what is left
    (Plan(3, 469, 128, start_epoch=1, start_step=469), "= 1,407 steps (each a D and a G update), 938 left"),
    # WGAN: a generator step after every 5th critic step, counted over the whole run
    (Plan(2, 10, 64, n_critic=5), "= 20 critic steps and 4 generator steps (1 per 5 critic steps)"),
    # resumed at step 7: steps 8..20 are left, with generator steps at 10, 15, 20
    (Plan(2, 10, 64, start_batch=7, start_step=7, n_critic=5),
     "20 critic steps and 4 generator steps (1 per 5 critic steps), 13 critic and 3 generator steps left"),
])
def test_the_first_line_says_how_many_optimizer_steps(plan, says):
    rep, _, out = reporter()
    rep.start(CFG, RT, plan)
    first = lines(out)[0]
    assert first.startswith("training dcgan on digits (28x28, 1 channel) - cpu (2 threads), fp32 - ")
    assert first.endswith(says), first


def test_the_step_counts_are_the_rows_of_metrics_jsonl(tmp_path, _isolated_store):
    make_image_folder(tmp_path / "faces", n=24, size=(16, 16))
    r = invoke("train", "wgan", "--dataset", tmp_path / "faces", "--epochs", "3", "--batch-size", "8",
               "--image-size", "16", "--n-critic", "2")
    assert r.exit_code == 0, r.output
    first = next(x for x in r.stderr.splitlines() if x.startswith("training "))  # after any warning
    assert first.endswith("3 epochs of 3 batches of 8 = 9 critic steps and 4 generator steps (1 per 2 critic steps)"), first
    rows = [json.loads(x) for x in (_isolated_store / "runs" / "wgan" / "faces" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 9 and len([x for x in rows if "g_loss" in x]) == 4


# -- the estimate ------------------------------------------------------------------------------


@pytest.mark.parametrize("terminal", [False, True], ids=["lines", "bars"])
def test_one_estimate_after_the_warm_up_then_the_actual_time(terminal):
    rep, clock, out = reporter(terminal=terminal)
    train(rep, clock, Plan(3, 100, 64))  # 2 warm-up steps of 3 s, then 298 of 0.5 s: 155 s in all
    rep.finish()
    said = [ln for ln in lines(out) if "estimated" in ln]
    # the warm-up is not taken as the pace: 6 s of warm-up + 298 steps at 0.5 s
    assert said[0] == "estimated time: about 2 min 35 s for 3 epochs (0.5 s/step, timed after the first 2 steps)"
    assert said[1:] == ["trained 300 steps in 2 min 35 s (estimated: about 2 min 35 s)"]
    assert rep.estimate == pytest.approx(155.0)


def test_the_estimate_waits_for_enough_timed_steps():
    rep, clock, out = reporter()
    rep.start(CFG, RT, Plan(1, 100, 64))
    for batch in range(1, 13):  # 2 warm-up steps, then 10 steps of 1 s: 10 s timed
        clock.now += 1.0
        rep.step(0, batch, LOSSES)
        assert (rep.estimate is not None) == (batch == 12)
    rep, clock, out = reporter()
    train(rep, clock, Plan(1, 4, 64), step_s=1.0)  # too short to time: no estimate, no closing line
    rep.finish()
    assert not [ln for ln in lines(out) if "estimated" in ln]


def test_a_resumed_run_estimates_the_steps_left():
    rep, clock, out = reporter()
    train(rep, clock, Plan(3, 100, 64, start_epoch=1, start_batch=50, start_step=150), step_s=1.0)
    said = next(ln for ln in lines(out) if "estimated" in ln)
    assert said.startswith("estimated time: about 2 min 34 s for the 150 steps left (1 s/step")


def test_quiet_shows_only_the_first_line():
    rep, clock, out = reporter(quiet=True)
    train(rep, clock, Plan(2, 100, 64), step_s=1.0)
    rep.finish()
    assert len(lines(out)) == 1 and lines(out)[0].startswith("training dcgan")


# -- bars on a terminal ------------------------------------------------------------------------


def bar_rows(bars, width) -> list[str]:
    shown = Console(width=width, file=StringIO(), color_system=None)
    shown.print(bars.make_tasks_table(bars.tasks))
    return [row.rstrip() for row in shown.file.getvalue().splitlines()]


@pytest.mark.parametrize("width", [120, 80, 60, 45, 40])
def test_bars_keep_counts_rate_and_eta_at_any_width(width):
    rep, clock, _ = reporter(width=width, terminal=True)
    train(rep, clock, Plan(3, 469, 128), stop_at=(1, 200))
    bars = rep.progress
    rep.finish()
    epoch_row, batch_row = bar_rows(bars, width)
    for row in (epoch_row, batch_row):
        assert len(row) <= width and "…" not in row, row
    assert re.search(r"^epoch .*1/3 .*eta 0:06:09$", epoch_row), epoch_row  # 738 steps left at 0.5 s
    assert re.search(r"^batch .*200/469 2\.0 it/s .*eta 0:02:14", batch_row), batch_row
    bar = len(re.match(r"batch (.*) 200/469", batch_row)[1]) if "━" in batch_row else 0
    if width >= 120:  # room for the bar, the elapsed time and the first losses that fit
        assert bar == 30 and "0:01:39" in batch_row
        assert batch_row.endswith("eta 0:02:14 d_loss=1.234 d_real=0.500 d_fake=0.400")
    if width == 80:  # the losses go first
        assert bar == 30 and "0:01:39" in batch_row and "loss" not in batch_row
    if width == 60:  # then the elapsed time, then the bar narrows
        assert bar == 25 and "0:01:39" not in batch_row
    if width == 45:
        assert bar == ui.MIN_BAR_WIDTH
    if width == 40:  # too narrow for a bar
        assert batch_row == "batch 200/469 2.0 it/s eta 0:02:14"


def test_the_batch_bar_ends_full_not_empty():
    rep, clock, _ = reporter(width=100, terminal=True)
    train(rep, clock, Plan(2, 50, 64), epochs=1)  # the first epoch has just ended
    bars = rep.progress
    epoch_row, batch_row = bar_rows(bars, 100)
    assert " 1/2 " in epoch_row and " 50/50 " in batch_row
    clock.now += 0.5
    rep.step(1, 1, LOSSES)  # the next epoch's first step starts the bar again
    assert "  1/50 " in bar_rows(bars, 100)[1]
    for batch in range(2, 51):
        rep.step(1, batch, LOSSES)
    rep.epoch_end(1, SUMMARY)
    rep.finish()
    epoch_row, batch_row = bar_rows(bars, 100)
    assert " 2/2 " in epoch_row and " 50/50 " in batch_row and "eta 0:00:00" in epoch_row


# -- lines when stderr is not a terminal -------------------------------------------------------


def test_long_epochs_print_a_line_at_least_every_heartbeat():
    rep, clock, out = reporter(heartbeat_s=30)
    train(rep, clock, Plan(2, 100, 64), warmup_s=1.0, step_s=1.0)
    shown = lines(out)
    beats = [ln for ln in shown if " batch " in ln]
    # the estimate at 12 s, then a line 30 s after the last one; the epoch's line at 100 s
    assert [int(re.search(r"batch (\d+)/100", ln)[1]) for ln in beats] == [42, 72, 30, 60, 90]
    assert beats[0] == "epoch 1/2 batch 42/100 1.0 it/s, eta 2 min 38 s d_loss=1.234 d_real=0.500 d_fake=0.400 g_loss=0.876"
    assert "epoch 1/2 d_loss=1.234 d_real=0.500 d_fake=0.400 g_loss=0.876 60.0s 1000 img/s, eta 1 min 40 s" in shown
    assert ui.HEARTBEAT_S == 30  # the default


def test_short_epochs_print_only_their_lines():
    rep, clock, out = reporter()
    train(rep, clock, Plan(3, 10, 64), warmup_s=1.0, step_s=1.0)
    assert not [ln for ln in lines(out) if " batch " in ln]


# -- the pieces --------------------------------------------------------------------------------


def test_pace_leaves_out_the_warm_up_and_follows_the_recent_steps():
    p = pace.Pace(warmup=2, window=10)
    now = 0.0
    for done in range(1, 40):
        now += 5.0 if done <= 2 else (0.5 if done <= 20 else 1.0)
        p.tick(done, now)
    assert p.timed() == (pytest.approx(0.5 * 18 + 19.0), 37)
    assert p.per_step(overall=True) == pytest.approx((0.5 * 18 + 19.0) / 37)
    assert p.per_step() == pytest.approx(1.0)  # the last 10 s were all 1 s steps


@pytest.mark.parametrize("seconds, text", [(0.2, "1 s"), (44.6, "45 s"), (190, "3 min 10 s"), (180, "3 min"),
                                           (3600 * 2 + 300, "2 h 5 min"), (3600 * 3 + 10, "3 h")])
def test_durations_are_worded(seconds, text):
    assert pace.duration(seconds) == text


def test_the_first_line_says_what_augmentation_runs():
    rep, _, out = reporter()
    rep.start(SimpleNamespace(**vars(CFG), augment={"policy": "color,cutout"}), RT, Plan(1, 2, 64))
    assert lines(out)[0].endswith("(each a D and a G update) - augment: DiffAugment color,cutout")
