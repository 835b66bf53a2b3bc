"""Every CUDA path, end to end: precisions, channels_last, data on the device, the pinned prefetch
of lazily decoded pix2pix sets, torch.compile, and inference. Skipped without a CUDA GPU; on a GPU
session run ``python -m pytest tests/test_cuda.py``."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from ganctl.config import make_config
from ganctl.data import feeders, paired
from ganctl.runtime import runtime
from ganctl.store import checkpoint
from ganctl.train import trainer
from tests.conftest import invoke

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

SMALL = ["--device", "cuda", "--epochs", "2", "--batch-size", "32", "--image-size", "32"]


def _finite_fp32_weights(run_dir):
    state = load_file(run_dir / "checkpoints" / "epoch_0002" / checkpoint.GENERATOR)
    floats = [t for t in state.values() if t.is_floating_point()]  # not BatchNorm's step counters
    assert floats and all(t.dtype == torch.float32 and torch.isfinite(t).all() for t in floats)


def _last_losses(run_dir):
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {k: v for k, v in rows[-1].items() if k not in ("step", "epoch")}


def test_auto_runtime_on_the_gpu():
    rt = runtime.resolve("cuda", "auto")
    major = torch.cuda.get_device_capability()[0]
    assert rt.precision == ("bf16" if major >= 8 and torch.cuda.is_bf16_supported() else "fp32")
    assert torch.backends.cudnn.benchmark
    assert "cudnn.benchmark" in rt.fast_paths(True) and "channels_last" in rt.fast_paths(True)


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_dcgan_trains_in_every_precision(_isolated_store, precision):
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    r = invoke("train", "dcgan", "--dataset", "digits", *SMALL, "--precision", precision, "--name", precision)
    assert r.exit_code == 0, r.output
    assert f"cuda ({torch.cuda.get_device_name()})" in r.stderr and f"), {precision}" in r.stderr
    run_dir = _isolated_store / "runs" / "dcgan" / precision
    _finite_fp32_weights(run_dir)
    assert all(math.isfinite(v) for v in _last_losses(run_dir).values())
    out = _isolated_store / f"{precision}.png"
    assert invoke("sample", "dcgan", "--run", precision, "-o", out, "--device", "cuda").exit_code == 0
    assert out.is_file()


def test_wgan_gp_and_conditional_conv_on_the_gpu(_isolated_store):
    # the gradient penalty's double backward, and the label planes of the conditional critic
    for args in (["wgan-gp"], ["cgan", "--arch", "conv"]):
        r = invoke("train", *args, "--dataset", "digits", *SMALL, "--name", "g")
        assert r.exit_code == 0, r.output
    out = _isolated_store / "five.png"
    assert invoke("interpolate", "cgan", "--run", "g", "--label", "5", "-o", out, "--device", "cuda").exit_code == 0


def test_compiled_training_on_the_gpu(_isolated_store):
    r = invoke("train", "dcgan", "--dataset", "digits", *SMALL, "--compile", "--name", "c")
    assert r.exit_code == 0, r.output
    assert "torch.compile" in r.stderr
    _finite_fp32_weights(_isolated_store / "runs" / "dcgan" / "c")


def _pix2pix_cfg():
    return make_config("pix2pix", "synthetic-facades", "t", channels=3, classes=None, preset_key="synthetic-facades",
                       epochs=2, batch_size=8, image_size=32, generator_overrides={"ngf": 8, "num_downs": 5},
                       discriminator_overrides={"ndf": 8}, data_overrides={"direction": "AtoB", "load_size": 36})


def test_pix2pix_in_memory_set_lives_on_the_gpu(_isolated_store, tmp_path):
    train = paired.load_paired("synthetic-facades", "train", 36)
    val = paired.load_paired("synthetic-facades", "val", 32)
    rt = runtime.resolve("cuda", "auto")
    cfg = _pix2pix_cfg()
    task = feeders.PairFeeder(train, cfg.batch_size, cfg.seed, rt, "AtoB", cfg.image_size, channels_last=True)
    assert task.on_device and task.a.device.type == "cuda"
    batch = task.batch(torch.arange(8), 0, 0)
    assert batch["input"].device.type == "cuda" and batch["input"].is_contiguous(memory_format=torch.channels_last)
    res = trainer.train(_pix2pix_cfg(), train, tmp_path / "run", rt, val_data=val)
    assert math.isfinite(res.last_epoch["val_l1"])


def test_pix2pix_lazy_set_is_prefetched_into_pinned_memory(_isolated_store, tmp_path, monkeypatch):
    lazy = paired.load_paired("synthetic-facades", "train", 36, memory_budget=1)
    val = paired.load_paired("synthetic-facades", "val", 32)
    rt = runtime.resolve("cuda", "auto")
    pinned = []
    host_batch = feeders.PairFeeder._host_batch

    def spy(self, *args):
        x, y = host_batch(self, *args)
        pinned.append(x.is_pinned() and y.is_pinned())
        return x, y

    monkeypatch.setattr(feeders.PairFeeder, "_host_batch", spy)
    res = trainer.train(_pix2pix_cfg(), lazy, tmp_path / "run", rt, val_data=val)
    assert math.isfinite(res.last_epoch["val_l1"])
    assert pinned and all(pinned)


def test_translate_on_the_gpu(_isolated_store, tmp_path):
    from PIL import Image

    r = invoke("train", "pix2pix", "--dataset", "synthetic-facades", "--device", "cuda", "--epochs", "1",
               "--image-size", "64", "--ngf", "8", "--ndf", "8", "--batch-size", "8")
    assert r.exit_code == 0, r.output
    src = tmp_path / "labels.png"
    Image.new("RGB", (100, 80), (20, 200, 40)).save(src)
    out = tmp_path / "out.png"
    r = invoke("translate", src, "-o", out, "--device", "cuda")
    assert r.exit_code == 0, r.output
    assert Image.open(out).size == (100, 80)


def _sync_check():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "sync_check.py"
    spec = importlib.util.spec_from_file_location("sync_check", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("family", ["dcgan", "pix2pix"])
def test_no_host_sync_per_training_step(tmp_path, family):
    # set_sync_debug_mode("warn") after the warm-up: a step and its batch queue work and never wait
    # for the device; metrics are read back in blocks by a callback, not by the step
    sync_check = _sync_check()
    watch = sync_check.check(family, sync_check.RUNS[family], 10, tmp_path)
    assert watch.watched_steps > 20
    per_step = {k: n for k, n in watch.found.items() if k[0] in ("step", "feeder", "step or feeder")}
    assert not per_step, per_step
    in_callbacks = sum(n for (phase, _), n in watch.found.items() if phase.startswith("on_step_end"))
    assert in_callbacks <= watch.watched_steps / 10, watch.found


def test_collectives_over_nccl_queue_work_and_never_wait(monkeypatch):
    # A lent machine has one GPU, and NCCL refuses two ranks on one device; so the NCCL paths run
    # here in a one-rank job that calls every collective (a world of one otherwise skips them):
    # global batch norm, the gradient all-reduce, the broadcast, and the Ctrl-C flag on the gloo side group
    import torch.distributed as dist
    from torch import nn

    from ganctl.runtime import distributed

    class OneRankJob(distributed.World):
        @property
        def active(self) -> bool:
            return True

    dev = torch.device("cuda", 0)
    dist.init_process_group("nccl", store=dist.HashStore(), rank=0, world_size=1, device_id=dev)
    try:
        monkeypatch.setattr(distributed, "_world", OneRankJob())
        monkeypatch.setattr(distributed, "_control", dist.new_group(backend="gloo"))
        torch.manual_seed(0)
        plain = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.LeakyReLU(0.2)).to(dev)
        synced = distributed.sync_batch_norm(nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.LeakyReLU(0.2)).to(dev))
        synced.load_state_dict(plain.state_dict())
        distributed.broadcast_modules(synced)
        x = torch.randn(16, 3, 12, 12, device=dev)
        for _ in range(2):  # warm-up: NCCL's first collective sets up its communicator
            synced(x).square().mean().backward()
        synced.zero_grad()
        synced.load_state_dict(plain.state_dict())
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            y = synced(x)
            y.square().mean().backward()
            distributed.average_gradients(synced.parameters())
        finally:
            torch.cuda.set_sync_debug_mode("default")
        want = plain(x)
        want.square().mean().backward()
        torch.testing.assert_close(y, want, rtol=1e-4, atol=1e-5)
        for a, b in zip(synced.parameters(), plain.parameters(), strict=True):
            torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(synced[1].running_var, plain[1].running_var)
        assert distributed.any_rank(True) and not distributed.any_rank(False)
    finally:
        dist.destroy_process_group()
