from __future__ import annotations

import json
import os
import signal
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file

from ganctl.config import make_config
from ganctl.core.errors import CheckpointError
from ganctl.data import datasets
from ganctl.runtime import runtime
from ganctl.store import checkpoint
from ganctl.train import engine, objectives, trainer
from ganctl.train.augment.pipeline import Augment

CPU = runtime.Runtime(torch.device("cpu"), "fp32")


@pytest.fixture(scope="module")
def digits16():
    data = datasets.load("digits", 16)
    data.images, data.labels = data.images[:96], data.labels[:96]
    return data


def tiny_cfg(family, data, epochs, seed=0):
    cfg = make_config(family, "digits", "t", channels=1, classes=data.classes, preset_key="digits",
                      epochs=epochs, batch_size=16, image_size=16, seed=seed)
    if family == "dcgan":
        return replace(cfg, generator={**cfg.generator, "features": 4}, discriminator={**cfg.discriminator, "features": 4})
    return replace(cfg, generator={**cfg.generator, "hidden": [16, 16]}, discriminator={**cfg.discriminator, "hidden": [16]})


def weights(run_dir, tag):
    ck = run_dir / "checkpoints" / tag
    return load_file(ck / checkpoint.GENERATOR), load_file(ck / checkpoint.DISCRIMINATOR)


def assert_same_weights(a, b):
    for sa, sb in zip(a, b, strict=False):
        assert sa.keys() == sb.keys()
        for k in sa:
            assert torch.equal(sa[k], sb[k]), k


def metric_rows(run_dir):
    return [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("family", ["gan", "dcgan"])
def test_two_epochs_equal_one_plus_resume(family, digits16, tmp_path):
    cfg = tiny_cfg(family, digits16, epochs=2)
    full = trainer.train(cfg, digits16, tmp_path / "full", CPU)
    assert full.epochs_done == 2 and not full.interrupted
    trainer.train(replace(cfg, epochs=1), digits16, tmp_path / "split", CPU)
    assert not (tmp_path / "split" / "checkpoints" / "epoch_0002").exists()
    trainer.train(cfg, digits16, tmp_path / "split", CPU, resume=True)
    assert_same_weights(weights(tmp_path / "full", "epoch_0002"), weights(tmp_path / "split", "epoch_0002"))
    assert metric_rows(tmp_path / "full") == metric_rows(tmp_path / "split")


def test_different_seed_gives_different_weights(digits16, tmp_path):
    trainer.train(tiny_cfg("gan", digits16, 1, seed=0), digits16, tmp_path / "a", CPU)
    trainer.train(tiny_cfg("gan", digits16, 1, seed=1), digits16, tmp_path / "b", CPU)
    ga, gb = weights(tmp_path / "a", "epoch_0001")[0], weights(tmp_path / "b", "epoch_0001")[0]
    assert any(not torch.equal(ga[k], gb[k]) for k in ga)


class _InterruptAt:
    """Reporter that sends this process a real SIGINT (Ctrl-C) after a given batch."""

    def __init__(self, epoch, batch):
        self.at = (epoch, batch)
        self.messages = []

    def start(self, *a): ...
    def epoch_end(self, *a): ...
    def finish(self): ...

    def message(self, text):
        self.messages.append(text)

    def step(self, epoch, batch, metrics):
        if (epoch, batch) == self.at:
            os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_mid_epoch_saves_and_resumes_exactly(digits16, tmp_path):
    cfg = tiny_cfg("dcgan", digits16, epochs=2)
    trainer.train(cfg, digits16, tmp_path / "full", CPU)
    res = trainer.train(cfg, digits16, tmp_path / "cut", CPU, reporter=_InterruptAt(1, 2))
    assert res.interrupted and res.checkpoint.name == "step_00000008"
    assert (tmp_path / "cut" / "checkpoints" / "latest").read_text().strip() == "step_00000008"
    assert len(metric_rows(tmp_path / "cut")) == 8
    rep = _InterruptAt(-1, -1)
    trainer.train(cfg, digits16, tmp_path / "cut", CPU, reporter=rep, resume=True)
    assert any("step_00000008" in m for m in rep.messages)
    assert_same_weights(weights(tmp_path / "full", "epoch_0002"), weights(tmp_path / "cut", "epoch_0002"))
    assert metric_rows(tmp_path / "full") == metric_rows(tmp_path / "cut")
    # the interrupt checkpoint is pruned once a later epoch checkpoint exists
    assert not (tmp_path / "cut" / "checkpoints" / "step_00000008").exists()


def test_run_folder_contents(digits16, tmp_path):
    cfg = tiny_cfg("dcgan", digits16, epochs=3)
    run = tmp_path / "run"
    trainer.train(cfg, digits16, run, CPU)
    saved = json.loads((run / "config.json").read_text())
    assert saved["family"] == "dcgan" and saved["epochs"] == 3 and saved["preset_source"]
    rows = metric_rows(run)
    assert len(rows) == 3 * 6 and {"d_loss", "g_loss", "d_real", "d_fake"} <= rows[0].keys()
    assert all(torch.isfinite(torch.tensor([r["d_loss"], r["g_loss"]])).all() for r in rows)
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["epoch_0001.png", "epoch_0002.png", "epoch_0003.png"]
    assert (run / "losses.png").stat().st_size > 1000
    # by default only the newest checkpoint is kept: all an exact resume needs
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["epoch_0003", "latest"]
    meta = checkpoint.read_meta(run / "checkpoints" / "epoch_0003" / checkpoint.GENERATOR)
    assert meta["arch"] == "dcgan" and meta["z_dim"] == cfg.z_dim and meta["image_size"] == 16
    state = checkpoint.load_trainer(run / "checkpoints" / "epoch_0003")
    assert (state.epoch, state.batch, state.step) == (3, 0, 18)
    assert set(state.optimizers) == {"generator", "discriminator"}
    # the one hidden file is the run's lock (kept: deleting a lock file races with its next taker)
    leftovers = [p for p in run.rglob("*") if (p.name.startswith(".") or p.name.endswith(".tmp")) and p != run / ".lock"]
    assert leftovers == []


def test_resume_skips_a_corrupt_checkpoint(digits16, tmp_path):
    cfg = replace(tiny_cfg("gan", digits16, epochs=2), keep=2)
    run = tmp_path / "run"
    trainer.train(cfg, digits16, run, CPU)
    g = run / "checkpoints" / "epoch_0002" / checkpoint.GENERATOR
    g.write_bytes(g.read_bytes()[:100])  # truncated, as by a full disk
    rep = _InterruptAt(-1, -1)
    res = trainer.train(replace(cfg, epochs=3), digits16, run, CPU, reporter=rep, resume=True)
    assert any("skipping checkpoint epoch_0002" in m for m in rep.messages)
    assert any("resuming from checkpoints/epoch_0001" in m for m in rep.messages)
    assert res.epochs_done == 3


def test_resume_with_every_checkpoint_corrupt_is_an_error(digits16, tmp_path):
    cfg = tiny_cfg("gan", digits16, epochs=1)
    run = tmp_path / "run"
    trainer.train(cfg, digits16, run, CPU)
    (run / "checkpoints" / "epoch_0001" / checkpoint.TRAINER).write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="cannot resume"):
        trainer.train(replace(cfg, epochs=2), digits16, run, CPU, resume=True)


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/ganctl-pwned-by-pickle",))


def test_a_pickle_that_carries_code_is_refused(tmp_path):
    if os.path.exists("/tmp/ganctl-pwned-by-pickle"):
        os.remove("/tmp/ganctl-pwned-by-pickle")
    ck = tmp_path / "ck"
    ck.mkdir()
    torch.save({"epoch": 1, "payload": _Evil()}, ck / checkpoint.TRAINER)
    with pytest.raises(CheckpointError, match="cannot be read safely"):
        checkpoint.load_trainer(ck)
    assert not os.path.exists("/tmp/ganctl-pwned-by-pickle")


@pytest.mark.parametrize("family", ["gan", "dcgan", "wgan-gp"])
def test_generator_step_leaves_the_discriminator_gradients_alone(family, digits16):
    """G's step backpropagates through D without computing D's weight gradients (the next D step
    would throw them away): D's gradients after g_step are exactly those its own step left, and
    D's parameters still require grad."""
    from ganctl import models
    from ganctl.train import objectives

    cfg = tiny_cfg("dcgan" if family == "wgan-gp" else family, digits16, 1)
    if family == "wgan-gp":
        cfg = replace(make_config("wgan-gp", "digits", "t", channels=1, classes=None, preset_key="digits",
                                  epochs=1, batch_size=8, image_size=16),
                      generator={**cfg.generator}, discriminator={**cfg.discriminator, "norm": "instance"})
    torch.manual_seed(0)
    G = models.build_generator(cfg.arch, cfg.generator)
    D = models.build_discriminator(cfg.arch, cfg.discriminator)
    obj = objectives.build({"generator": G, "discriminator": D}, cfg, CPU)
    real = torch.as_tensor(digits16.images[:8]).float().div(127.5).sub(1).reshape(8, 1, 16, 16)
    if cfg.arch == "mlp":
        real = real.flatten(1)
    batch = {"real": real, "labels": None}
    obj.d_step(batch)
    after_d = {n: p.grad.clone() for n, p in D.named_parameters()}
    g_before = [p.detach().clone() for p in G.parameters()]
    obj.g_step(batch)
    for n, p in D.named_parameters():
        assert p.requires_grad, n
        assert torch.equal(p.grad, after_d[n]), n
    assert any(not torch.equal(a, p) for a, p in zip(g_before, G.parameters(), strict=True))  # G did learn


# ---------------------------------------------------------------- fit() alone, with no family


class _Objective:
    """Records the updates fit() asks for, in GANObjective's rhythm (a G step after every
    ``n_critic``-th D step, counted over the run by the step index fit() passes)."""

    n_critic = 3
    step = objectives.GANObjective.step
    augment = Augment({}, torch.device("cpu"))  # no --augment: the identity

    def __init__(self):
        self.calls = []

    def set_epoch(self, epoch):
        self.calls.append(("epoch", epoch))

    def d_step(self, batch, for_g=True):
        self.calls.append(("d", batch["i"], for_g))
        return {"d": torch.tensor(1.0)}

    def g_step(self, batch):
        self.calls.append(("g", batch["i"]))
        return {"g": torch.tensor(2.0)}


class _Feeder:
    batch_size = 2

    def batches_per_epoch(self):
        return 4

    def epoch(self, epoch, first=0):
        for b in range(first, 4):
            yield {"i": (epoch, b)}


class _Recorder(engine.Callback):
    def __init__(self):
        self.events = []

    def on_fit_start(self, loop):
        self.events.append(("start", loop.position.epoch, loop.position.batch))

    def on_step_end(self, loop, metrics):
        self.events.append(("step", loop.position.step, sorted(metrics)))

    def on_epoch_end(self, loop):
        self.events.append(("epoch_end", loop.position.epoch, loop.epoch_images))

    def on_fit_end(self, loop):
        self.events.append(("end", loop.position.step))


def test_fit_runs_n_critic_steps_per_generator_step_and_tells_the_callbacks():
    obj, rec = _Objective(), _Recorder()
    res = engine.fit(obj, _Feeder(), [rec], epochs=2)
    assert (res.position.epoch, res.position.step, res.interrupted) == (2, 8, False)
    g_steps = [c for c in obj.calls if c[0] == "g"]
    assert [c[1] for c in g_steps] == [(0, 2), (1, 1)]  # after every 3rd discriminator step
    assert ("d", (0, 2), True) in obj.calls and ("d", (0, 1), False) in obj.calls
    assert rec.events[0] == ("start", 0, 0) and rec.events[-1] == ("end", 8)
    assert ("epoch_end", 1, 8) in rec.events and ("step", 3, ["d", "g"]) in rec.events


def test_fit_resumes_inside_an_epoch():
    obj, rec = _Objective(), _Recorder()
    engine.fit(obj, _Feeder(), [rec], epochs=1, start=engine.Position(0, 2, 2))
    assert [c[1] for c in obj.calls if c[0] == "d"] == [(0, 2), (0, 3)]
    assert ("epoch_end", 1, 4) in rec.events  # two batches of two images this time
