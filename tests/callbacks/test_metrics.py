"""The metrics log reads the device's metric tensors back in blocks, never one step at a time."""

from __future__ import annotations

import json

import torch

from ganctl.train.callbacks import LossChart, MetricsLog
from ganctl.train.engine import Loop, Position


def _loop(step=0, epoch=0):
    return Loop(epochs=1, batches=10, batch_size=4, position=Position(epoch, 0, step))


def _rows(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


class _Counting(torch.Tensor):
    """A 0-d tensor that counts how often it is read on the host one value at a time."""

    reads = 0

    def item(self):
        type(self).reads += 1
        return super().item()

    def __float__(self):
        type(self).reads += 1
        return super().__float__()


def test_rows_are_read_back_in_blocks_and_at_the_epoch_end(tmp_path):
    log = MetricsLog(tmp_path, resume=False, read_every=4)
    loop = _loop()
    log.on_fit_start(loop)
    log.on_epoch_start(loop)
    for step in range(1, 7):
        loop.position.step, loop.position.batch = step, step
        loss = torch.tensor(float(step)).as_subclass(_Counting)
        log.on_step_end(loop, {"d_loss": loss, "g_loss": loss * 2})
        written = _rows(tmp_path / "metrics.jsonl")
        assert len(written) == (4 if step >= 4 else 0)  # nothing until a block is full
    loop.epoch_seconds, loop.epoch_images = 2.0, 24
    loop.position.epoch, loop.position.batch = 1, 0
    loop.logs = {"epoch_numbers": {"val_l1": 0.25}}
    log.on_epoch_end(loop)
    log.on_fit_end(loop)
    rows = _rows(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6, 6]
    assert rows[2] == {"step": 3, "epoch": 1, "d_loss": 3.0, "g_loss": 6.0}
    assert rows[-1] == {"step": 6, "epoch": 1, "val_l1": 0.25}  # the epoch's numbers: one more row
    assert _Counting.reads == 0  # read back stacked, never value by value
    assert loop.logs["summary"]["d_loss"] == 3.5 and loop.logs["summary"]["images_per_s"] == 12.0


def test_a_resume_keeps_the_rows_up_to_its_checkpoint_and_a_torn_line_is_dropped(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "epoch": 1, "d_loss": 1.0}\n{"step": 2, "epoch": 1, "d_loss": 2.0}\n{"step": 3, "ep')
    log = MetricsLog(tmp_path, resume=True)
    log.on_fit_start(_loop(step=1))
    log.on_fit_end(_loop(step=1))
    assert _rows(path) == [{"step": 1, "epoch": 1, "d_loss": 1.0}]


def test_the_loss_chart_leaves_out_what_the_objective_says_is_no_loss(tmp_path, monkeypatch):
    from ganctl.core import images

    drawn = {}
    monkeypatch.setattr(images, "loss_chart", lambda series, path, title: drawn.update(series))
    log = MetricsLog(tmp_path, resume=False)
    log.rows = [{"step": 1, "epoch": 1, "d_loss": 1.0, "d_real": 0.6, "val_l1": 0.1}]
    LossChart(tmp_path, log, "t", not_charted=("d_real",)).on_epoch_end(_loop())
    assert list(drawn) == ["d_loss"]
