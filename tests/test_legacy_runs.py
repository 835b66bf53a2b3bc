"""Runs written before the redesign (tests/fixtures/legacy-runs, made by ganctl a3d9e21) still sample,
translate and resume, and a resumed run continues bit for bit as the old code did."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import torch
from PIL import Image
from safetensors.torch import load_file

from ganctl.config import TrainConfig
from ganctl.data import datasets
from ganctl.runtime import runtime
from ganctl.store import checkpoint
from ganctl.train import trainer
from tests.conftest import invoke

LEGACY = Path(__file__).parent / "fixtures" / "legacy-runs"


def _install(home: Path) -> Path:
    shutil.copytree(LEGACY / "runs", home / "runs")
    return home / "runs"


def test_a_legacy_dcgan_run_samples_and_resumes(_isolated_store, tmp_path):
    runs = _install(_isolated_store)
    r = invoke("sample", "dcgan", "--run", "old", "-n", "4", "--seed", "1", "-o", tmp_path / "grid.png")
    assert r.exit_code == 0, r.output
    assert Image.open(tmp_path / "grid.png").size[0] > 16
    r = invoke("train", "dcgan", "--resume", "--name", "old", "--epochs", "2", "--device", "cpu", "--precision", "fp32")
    assert r.exit_code == 0, r.output
    assert (runs / "dcgan" / "old" / "checkpoints" / "latest").read_text().strip() == "epoch_0002"
    # the checkpoint the new code wrote has the readable spec beside the generator
    assert (runs / "dcgan" / "old" / "checkpoints" / "epoch_0002" / "config.json").is_file()


def test_a_legacy_run_resumes_bit_identically_to_the_old_code(_isolated_store):
    """make.py trained the same run for 2 epochs in one go with the old code: resuming its 1-epoch
    copy with the new trainer gives the same weights, bit for bit."""
    runs = _install(_isolated_store)
    run = runs / "dcgan" / "old"
    cfg = replace(TrainConfig.load(run / "config.json"), epochs=2)
    data = datasets.load("digits", 16)
    data.images, data.labels = data.images[:64], data.labels[:64]
    trainer.train(cfg, data, run, runtime.Runtime(torch.device("cpu"), "fp32"), resume=True)
    for net in ("generator", "discriminator"):
        new = load_file(run / "checkpoints" / "epoch_0002" / f"{net}.safetensors")
        old = load_file(LEGACY / "reference" / f"dcgan-2epochs-{net}.safetensors")
        assert new.keys() == old.keys()
        for k in old:
            # bit for bit on the CPU that made the fixture; another CPU's kernels (an H200 host's
            # Intel AMX, say) round differently. A lost optimizer or RNG state moves weights by
            # about the learning rate (2e-4), far outside this tolerance.
            torch.testing.assert_close(new[k], old[k], rtol=1e-4, atol=2e-6, msg=f"{net} {k}")


def test_a_legacy_pix2pix_run_translates_and_resumes(_isolated_store, tmp_path):
    runs = _install(_isolated_store)
    Image.new("RGB", (40, 32), (200, 30, 30)).save(tmp_path / "labels.png")
    r = invoke("translate", tmp_path / "labels.png", "--run", "old", "-o", tmp_path / "out.png")
    assert r.exit_code == 0, r.output
    assert Image.open(tmp_path / "out.png").size == (40, 32)
    r = invoke("train", "pix2pix", "--resume", "--name", "old", "--epochs", "2", "--device", "cpu", "--precision", "fp32")
    assert r.exit_code == 0, r.output
    gen = runs / "pix2pix" / "old" / "checkpoints" / "epoch_0002" / checkpoint.GENERATOR
    assert checkpoint.read_spec(gen)["direction"] == "AtoB"
