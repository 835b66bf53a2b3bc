"""Adding a family is a models file (here: none, it reuses the DCGAN networks), an objective and a
registration: this one is trained, sampled and resumed through the CLI without touching ganctl."""

from __future__ import annotations

import json

import pytest

from ganctl.families import registry
from tests.conftest import error_line, invoke
from tests.lsgan_family import LSGAN


@pytest.fixture
def lsgan():
    registry.register(LSGAN)
    yield LSGAN
    registry.unregister(LSGAN.name)


def test_a_registered_family_trains_samples_and_resumes_through_the_cli(lsgan, _isolated_store, tmp_path):
    r = invoke("train", "lsgan", "--dataset", "digits", "--epochs", "1", "--batch-size", "256", "--image-size", "16", "--name", "ls")
    assert r.exit_code == 0, r.output
    run = _isolated_store / "runs" / "lsgan" / "ls"
    cfg = json.loads((run / "config.json").read_text())
    assert (cfg["family"], cfg["arch"], cfg["objective"]) == ("lsgan", "dcgan", "least-squares")
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows and {"d_loss", "g_loss"} <= rows[-1].keys()

    r = invoke("sample", "lsgan", "-n", "4", "--seed", "1", "-o", tmp_path / "grid.png")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "grid.png").stat().st_size > 0

    r = invoke("train", "lsgan", "--resume", "--name", "ls", "--epochs", "2")
    assert r.exit_code == 0, r.output
    assert (run / "checkpoints" / "latest").read_text().strip() == "epoch_0002"


def test_options_of_other_families_are_refused_by_name(lsgan):
    line = error_line(invoke("train", "lsgan", "--dataset", "digits", "--lambda-gp", "5"))
    assert "--lambda-gp applies to wgan, wgan-gp and cgan --arch conv, not lsgan" in line


def test_a_family_cannot_be_registered_twice(lsgan):
    with pytest.raises(ValueError, match="registered twice"):
        registry.register(LSGAN)
