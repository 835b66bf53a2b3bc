"""A run that diverges (issue 31, item 1): training stops with one line when its losses or weights
go NaN or infinite, a non-finite checkpoint is never saved over the last finite one, and
sample / interpolate / translate / evaluate / export refuse a generator whose weights are not finite."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from ganctl import models
from ganctl.config import make_config
from ganctl.core.errors import DivergedError
from ganctl.store import checkpoint, genspec
from ganctl.train import objectives
from ganctl.train.callbacks import Checkpointer, DivergenceGuard
from ganctl.train.engine import Loop, Position
from tests.callbacks.test_checkpointer import _Objective
from tests.conftest import error_line, invoke, make_image_folder, train_in_own_store


def _train(data: Path, batch: int, epochs: int, *extra) -> list[str]:
    return ["train", "gan", "--dataset", data, "--image-size", 8, "--batch-size", batch, "--epochs", epochs,
            "--device", "cpu", "--precision", "fp32", "--name", "d", *extra]


def _nan_after_generator_step(monkeypatch, at: int) -> None:
    """The generator's weights become NaN right after its ``at``-th step (1-based), as a run that
    diverges has them; the test's own patch of the objective, nothing in the save path."""
    real, done = objectives.BCEObjective.g_step, [0]

    def g_step(self, batch):
        out = real(self, batch)
        done[0] += 1
        if done[0] == at:
            with torch.no_grad():
                for p in self.G.parameters():
                    p.fill_(float("nan"))
        return out

    monkeypatch.setattr(objectives.BCEObjective, "g_step", g_step)


def _finite(path: Path) -> bool:
    return all(torch.isfinite(t).all() for t in load_file(path).values() if t.is_floating_point())


def _checkpoints(run: Path) -> tuple[str, list[str]]:
    root = run / "checkpoints"
    return (root / "latest").read_text().strip(), sorted(p.name for p in root.iterdir() if p.name != "latest")


@pytest.fixture
def data(tmp_path):
    folder = tmp_path / "images"
    make_image_folder(folder, n=48, size=(8, 8), mode="L")
    return folder


def test_weights_gone_nan_stop_training_and_the_last_finite_checkpoint_survives(data, monkeypatch, _isolated_store):
    """3 steps an epoch, NaN after step 8 (epoch 3): the save at the end of epoch 3 refuses them.
    The old code trained on and saved them over epoch_0002 (--keep 1 pruned it), exit 0."""
    _nan_after_generator_step(monkeypatch, 8)
    line = error_line(invoke(*_train(data, 16, 4)))
    assert "training diverged in epoch 3 (found at step 9)" in line
    assert "generator's weights are not finite" in line and "checkpoints/epoch_0002, saved before it, is kept" in line
    assert "a lower --lr (this run's is 0.0002)" in line
    run = _isolated_store / "runs" / "gan" / "d"
    assert _checkpoints(run) == ("epoch_0002", ["epoch_0002"])
    assert _finite(run / "checkpoints" / "epoch_0002" / checkpoint.GENERATOR)

    monkeypatch.undo()  # the objective as it is; the store stays (undo removed GANCTL_HOME too)
    monkeypatch.setenv("GANCTL_HOME", str(_isolated_store))
    r = invoke("train", "gan", "--resume", "--name", "d", "--device", "cpu", "--precision", "fp32")
    assert r.exit_code == 0, r.output
    assert "resuming from checkpoints/epoch_0002" in r.stderr
    assert _checkpoints(run) == ("epoch_0004", ["epoch_0004"])
    assert _finite(run / "checkpoints" / "epoch_0004" / checkpoint.GENERATOR)


def test_nan_losses_stop_training_at_the_next_read_back(data, monkeypatch, _isolated_store):
    """12 steps an epoch, NaN after step 15: the metrics read back at step 22 (every 10 on a CPU,
    counted from the read-back at the end of epoch 1) show it, so training stops there, before the
    end of epoch 2 (step 24) and its save."""
    _nan_after_generator_step(monkeypatch, 15)
    line = error_line(invoke(*_train(data, 4, 3)))
    assert "training diverged in epoch 2 (found at step 16): the training metrics are not finite (d_loss = nan" in line
    run = _isolated_store / "runs" / "gan" / "d"
    assert _checkpoints(run) == ("epoch_0001", ["epoch_0001"])
    steps = [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert max(steps) == 22


# ---------------------------------------------------------------- the checkpointer


def _saver(tmp_path, G, D, keep=1):
    spec = genspec.make(family="gan", arch="mlp", generator={"z_dim": 4, "channels": 1, "image_size": 3})
    return Checkpointer(tmp_path / "run", {"generator": G, "discriminator": D}, checkpoint.PAIR_FILES,
                        {"generator": spec}, _Objective(G, D), keep=keep)


@pytest.mark.parametrize("net", ["G", "D"])
def test_a_non_finite_snapshot_is_never_written_nor_prunes_the_finite_one(tmp_path, net):
    G, D = nn.Linear(4, 3), nn.Linear(3, 1)
    saver = _saver(tmp_path, G, D, keep=1)
    saver.save("epoch_0001", Position(1, 0, 3))
    with torch.no_grad():
        {"G": G, "D": D}[net].weight[0, 0] = float("inf")
    with pytest.raises(DivergedError, match=r"in epoch 2 \(found at step 6\).*weight holds NaN or infinite"):
        saver.save("epoch_0002", Position(2, 0, 6))
    # a Ctrl-C inside epoch 3: the stop-save is refused alike
    with pytest.raises(DivergedError, match=r"in epoch 3 \(found at step 7\)"):
        saver.save_stop(Position(2, 1, 7))
    saver.wait()
    root = tmp_path / "run" / "checkpoints"
    assert (root / "latest").read_text().strip() == "epoch_0001"
    assert sorted(p.name for p in root.iterdir()) == ["epoch_0001", "latest"]  # nor a temporary folder


# ---------------------------------------------------------------- the guard


class _Log:
    def __init__(self):
        self.rows = []


def _guard(scaled: bool):
    G, D = nn.Linear(2, 2), nn.Linear(2, 1)
    log = _Log()
    guard = DivergenceGuard(log, {"generator": G, "discriminator": D}, scaled=scaled)
    guard.on_fit_start(Loop(epochs=1, batches=4, batch_size=1, position=Position()))
    return guard, log, G


def _row(step, **values):
    return {"step": step, "epoch": 1, **values}


def test_without_loss_scaling_a_non_finite_metric_is_divergence():
    guard, log, _ = _guard(scaled=False)
    log.rows += [_row(1, d_loss=0.7), _row(2, d_loss=math.inf, g_loss=math.nan)]
    with pytest.raises(DivergedError, match=r"found at step 2\): the training metrics are not finite \(d_loss = inf, g_loss = nan\)"):
        guard.on_step_end(None, {})


def test_a_measured_infinity_is_no_divergence():
    guard, log, _ = _guard(scaled=False)
    log.rows += [_row(1, d_loss=0.7), {"step": 1, "epoch": 1, "val_psnr": math.inf}]
    guard.on_epoch_end(None)  # the PSNR of identical images


def test_with_fp16_loss_scaling_only_weights_that_went_non_finite_count():
    """An overflow step the scaler skipped has an infinite loss and untouched weights."""
    guard, log, G = _guard(scaled=True)
    log.rows += [_row(1, d_loss=math.inf)]
    guard.on_step_end(None, {})  # weights finite: the scaler's business
    with torch.no_grad():
        G.bias[1] = float("nan")
    log.rows += [_row(2, d_loss=math.nan), _row(3, d_loss=math.nan)]
    with pytest.raises(DivergedError, match=r"found at step 3\): the generator's weights \(bias\) are not finite \(d_loss = nan at step 2\)"):
        guard.on_step_end(None, {})


def test_nonfinite_names_the_tensor_and_is_not_fooled_by_a_sum_that_overflows():
    big = torch.full((4,), 3e38)  # finite, but its sum overflows float32
    assert checkpoint.nonfinite({"a": big, "n": torch.tensor([1, 2])}) is None
    assert checkpoint.nonfinite({"a": big, "b": torch.tensor([1.0, -math.inf])}) == "b"


# ---------------------------------------------------------------- using a non-finite generator


def _poison(path: Path) -> None:
    """Every floating-point weight of the generator file NaN, its metadata kept."""
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    tensors = {k: torch.full_like(v, math.nan) if v.is_floating_point() else v for k, v in load_file(path).items()}
    save_file(tensors, str(path), metadata=meta)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data") / "images"
    make_image_folder(folder, n=16, size=(8, 8), mode="L")
    return train_in_own_store(tmp_path_factory, *_train(folder, 16, 1)[1:])


@pytest.fixture
def poisoned(trained, _isolated_store):
    shutil.copytree(trained, _isolated_store)
    path = _isolated_store / "runs" / "gan" / "d" / "checkpoints" / "epoch_0001" / checkpoint.GENERATOR
    _poison(path)
    return path


@pytest.mark.parametrize("args", [["sample", "gan"], ["interpolate", "gan"], ["evaluate", "d", "-n", 8],
                                  ["export", "d", "--format", "pt2"]])
def test_commands_refuse_a_run_whose_generator_is_not_finite(poisoned, tmp_path, args):
    """Before: sample wrote a two-valued picture with exit 0; export blamed itself ("please report it")."""
    out = tmp_path / "out"
    line = error_line(invoke(*args, "-o", out) if args[0] != "evaluate" else invoke(*args))
    assert f"the weights in {poisoned} are not finite (net.0.weight holds NaN or infinite values)" in line
    assert "use an earlier checkpoint with --checkpoint, or train again with a lower --lr" in line
    assert not out.exists()


def _pix2pix_file(folder: Path) -> Path:
    cfg = make_config("pix2pix", "facades", "t", channels=3, classes=None, preset_key="facades", image_size=32,
                      generator_overrides={"ngf": 2})
    path = folder / genspec.GENERATOR
    checkpoint.save_generator(path, models.build_generator(cfg.arch, cfg.generator), genspec.for_run(cfg))
    return path


@pytest.mark.parametrize("args", [["translate", "{image}", "-o", "{out}/t.png"],
                                  ["export", "--checkpoint", "{gen}", "-o", "{out}/", "--format", "official"]])
def test_pix2pix_commands_refuse_a_generator_that_is_not_finite(tmp_path, args):
    from PIL import Image

    gen = _pix2pix_file(tmp_path)
    _poison(gen)
    image, out = tmp_path / "in.png", tmp_path / "out"
    Image.new("RGB", (32, 32)).save(image)
    filled = [a.format(image=image, out=out, gen=gen) for a in args]
    if filled[0] == "translate":
        filled += ["--checkpoint", str(gen)]
    line = error_line(invoke(*filled))
    assert f"the weights in {gen} are not finite" in line
    assert not out.exists()


@pytest.mark.parametrize(("precision", "saved", "want"), [
    ("fp32", False, "no checkpoint was saved before it: start again with a lower --lr (this run's is 0.0002)"),
    ("bf16", False, "no checkpoint was saved before it: start again with a lower --lr (this run's is 0.0002) or --precision fp32"),
    ("bf16", True, "checkpoints/epoch_0003, saved before it, is kept: continue from it in full precision with "
                   "'ganctl train gan --resume --name r --precision fp32', or start a new run with a lower --lr"),
])
def test_what_to_try_names_the_kept_checkpoint_and_full_precision(tmp_path, precision, saved, want):
    from ganctl.runtime.runtime import Runtime
    from ganctl.train.trainer import _after_divergence

    cfg = make_config("gan", "digits", "r", channels=1, classes=None, preset_key="digits")
    if saved:
        (tmp_path / "checkpoints" / "epoch_0003").mkdir(parents=True)
        (tmp_path / "checkpoints" / "latest").write_text("epoch_0003\n")
    assert want in _after_divergence(cfg, Runtime(torch.device("cpu"), precision, False, True), tmp_path)


def test_resume_skips_a_non_finite_checkpoint_an_older_ganctl_saved(tmp_path):
    """Before this check ganctl saved NaN weights; a resume from them only diverges again, so it
    takes the newest finite checkpoint (the NaN one is moved aside, as a damaged one is)."""
    G, D = nn.Linear(4, 3), nn.Linear(3, 1)
    saver = _saver(tmp_path, G, D, keep=2)
    saver.save("epoch_0001", Position(1, 0, 3))
    saver.save("epoch_0002", Position(2, 0, 6))
    saver.wait()
    _poison(tmp_path / "run" / "checkpoints" / "epoch_0002" / checkpoint.GENERATOR)
    said = []
    assert _saver(tmp_path, G, D, keep=2).restore(said.append) == Position(1, 0, 3)
    assert "warning: skipping checkpoint epoch_0002: the weights in" in said[0]
    assert "are not finite (weight holds NaN or infinite values) (moved to checkpoints/.broken-epoch_0002)" in said[0]
    assert said[1] == "resuming from checkpoints/epoch_0001 (epoch 2, batch 0)"
