"""progress.gif (every epoch's picture as one animation) and runtime.json (each session's fast paths)."""

from __future__ import annotations

import errno
import json
import os
from dataclasses import replace

import pytest
from PIL import Image

from ganctl.config import make_config
from ganctl.core.errors import NoSpaceError
from ganctl.data import datasets
from ganctl.report import progress_gif
from ganctl.train import trainer
from ganctl.train.callbacks.animation import ProgressAnimation
from ganctl.train.callbacks.session import SessionLog
from ganctl.train.engine import Loop, Position
from tests.test_engine import CPU, _InterruptAt


@pytest.fixture(scope="module")
def digits16():
    data = datasets.load("digits", 16)
    data.images, data.labels = data.images[:64], data.labels[:64]
    return data


def tiny_cfg(data, epochs):
    cfg = make_config("dcgan", "digits", "t", channels=1, classes=data.classes, preset_key="digits",
                      epochs=epochs, batch_size=16, image_size=16, seed=0)
    return replace(cfg, generator={**cfg.generator, "features": 4}, discriminator={**cfg.discriminator, "features": 4})


def pictures(run_dir, epochs, size=(40, 30), mode="L"):
    """Fake epoch pictures, each a different grey (so no two frames are alike)."""
    folder = run_dir / "samples"
    folder.mkdir(parents=True, exist_ok=True)
    for e in epochs:
        Image.new(mode, size, e % 256 if mode == "L" else (e % 256, 0, 0)).save(folder / f"epoch_{e:04d}.png")


def frames(path):
    with Image.open(path) as gif:
        return gif.n_frames, gif.size


def test_evenly_keeps_the_first_and_the_last_and_at_most_limit():
    items = list(range(1, 251))
    picked = progress_gif.evenly(items, 100)
    assert len(picked) == 100 and picked[0] == 1 and picked[-1] == 250
    assert picked == sorted(set(picked))  # evenly spaced, none twice
    assert progress_gif.evenly(items[:7], 100) == items[:7]


def test_a_long_run_is_subsampled_and_large_frames_are_scaled_down(tmp_path):
    pictures(tmp_path, range(1, 151), size=(1200, 600), mode="RGB")
    made = progress_gif.write(tmp_path)
    assert len(made.epochs) == progress_gif.MAX_FRAMES == 100 and made.epochs[0] == 1 and made.epochs[-1] == 150
    n, (w, h) = frames(tmp_path / "progress.gif")
    assert n == 100
    assert w == progress_gif.MAX_SIDE and h == progress_gif.MAX_SIDE // 2 + progress_gif.CAPTION


def test_each_frame_is_captioned_with_its_epoch_so_equal_pictures_stay_frames(tmp_path):
    folder = tmp_path / "samples"
    folder.mkdir()
    for e in (1, 2, 3):  # three identical pictures: a GIF writer would merge them without captions
        Image.new("L", (64, 64), 128).save(folder / f"epoch_{e:04d}.png")
    made = progress_gif.write(tmp_path)
    assert made.epochs == [1, 2, 3] and frames(made.path)[0] == 3


def test_unreadable_pictures_are_left_out_and_named(tmp_path):
    pictures(tmp_path, [1, 2, 3])
    bad = tmp_path / "samples" / "epoch_0002.png"
    bad.write_bytes(bad.read_bytes()[:20])
    made = progress_gif.write(tmp_path)
    assert made.epochs == [1, 3] and made.skipped == [bad]


def test_the_callback_shows_epochs_up_to_the_position_only(tmp_path):
    pictures(tmp_path, [1, 2, 3, 4])  # 3 and 4: from before a resume that went back to epoch 2
    ProgressAnimation(tmp_path).on_fit_end(Loop(epochs=5, batches=1, batch_size=1, position=Position(2, 0, 10)))
    assert frames(tmp_path / "progress.gif")[0] == 2


def test_no_picture_no_gif(tmp_path):
    ProgressAnimation(tmp_path).on_fit_end(Loop(epochs=1, batches=1, batch_size=1, position=Position(0, 3, 3)))
    assert not (tmp_path / "progress.gif").exists()


def _full_disk(*a, **k):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_failed_write_keeps_the_old_gif_whole_and_is_reported(tmp_path, monkeypatch):
    pictures(tmp_path, [1, 2])
    progress_gif.write(tmp_path)
    before = (tmp_path / "progress.gif").read_bytes()
    pictures(tmp_path, [3])
    monkeypatch.setattr(os, "fsync", _full_disk)
    with pytest.raises(NoSpaceError):
        ProgressAnimation(tmp_path).on_fit_end(Loop(epochs=3, batches=1, batch_size=1, position=Position(3, 0, 3)))
    assert (tmp_path / "progress.gif").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_while_an_error_ends_training_a_failed_gif_is_quiet_and_a_second_ctrl_c_writes_none(tmp_path, monkeypatch):
    pictures(tmp_path, [1])
    loop = Loop(epochs=3, batches=1, batch_size=1, position=Position(1, 0, 1))
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt:
        ProgressAnimation(tmp_path).on_fit_end(loop)
    assert not (tmp_path / "progress.gif").exists()
    monkeypatch.setattr(os, "fsync", _full_disk)
    try:
        raise RuntimeError("CUDA out of memory")
    except RuntimeError:
        ProgressAnimation(tmp_path).on_fit_end(loop)  # the training's error is the one to report
    assert not (tmp_path / "progress.gif").exists()


def test_ctrl_c_writes_the_gif_and_a_resume_adds_its_frames_and_its_session(digits16, tmp_path):
    run = tmp_path / "run"
    cfg = tiny_cfg(digits16, epochs=3)
    res = trainer.train(cfg, digits16, run, CPU, reporter=_InterruptAt(1, 2))  # Ctrl-C in epoch 2
    assert res.interrupted and res.epochs_done == 1
    assert frames(run / "progress.gif")[0] == 1
    sessions = json.loads((run / "runtime.json").read_text())["sessions"]
    assert len(sessions) == 1 and sessions[0]["step"] == 0
    assert sessions[0]["fast_paths"] == CPU.fast_paths(True) and sessions[0]["precision"] == "fp32"
    assert sessions[0]["device"].startswith("cpu (")

    trainer.train(cfg, digits16, run, CPU, resume=True)
    assert frames(run / "progress.gif")[0] == 3
    sessions = json.loads((run / "runtime.json").read_text())["sessions"]
    assert [s["step"] for s in sessions] == [0, res.step]


def test_a_new_run_starts_its_own_session_list(tmp_path):
    (tmp_path / "runtime.json").write_text(json.dumps({"sessions": [{"step": 0}, {"step": 9}]}))
    SessionLog(tmp_path, CPU, convolutional=False).on_fit_start(Loop(1, 1, 1, Position()))
    sessions = json.loads((tmp_path / "runtime.json").read_text())["sessions"]
    assert len(sessions) == 1 and "channels_last" not in sessions[0]["fast_paths"]
