from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from ganctl.config import make_config
from ganctl.core.errors import GanctlError
from ganctl.families import registry
from ganctl.models.conditional import ConditionalDCGANCritic, ConditionalDCGANGenerator
from ganctl.models.mlp import MLPGenerator
from ganctl.runtime import runtime
from ganctl.store import genspec
from ganctl.train import objectives
from ganctl.use import inference
from tests.conftest import error_line, invoke, make_image_folder, train_in_own_store

CPU = runtime.Runtime(torch.device("cpu"), "fp32")




def test_cgan_presets_follow_vanerk_and_fidan():
    mlp = make_config("cgan", "mnist", "t", channels=1, classes=tuple("0123456789"), preset_key="mnist")
    assert (mlp.arch, mlp.objective, mlp.z_dim, mlp.lr, mlp.betas, mlp.batch_size, mlp.epochs) == (
        "mlp", "bce", 100, 3e-4, (0.9, 0.999), 32, 50)
    assert mlp.generator["embed_dim"] == 10 and mlp.generator["num_classes"] == 10
    assert mlp.discriminator["hidden"] == (256, 784)
    conv = make_config("cgan", "mnist", "t", channels=1, classes=tuple("0123456789"), preset_key="mnist", arch="conv")
    assert (conv.arch, conv.objective, conv.image_size, conv.betas) == ("cdcgan", "wasserstein", 64, (0.0, 0.9))
    assert conv.objective_args == {"n_critic": 5, "lambda_gp": 10.0} and conv.generator["features"] == 16
    with pytest.raises(GanctlError, match="Did you mean 'conv'"):
        registry.get("cgan").variant("cnv")


def test_generator_receives_the_requested_label():
    torch.manual_seed(0)
    G = MLPGenerator(z_dim=4, channels=1, image_size=4, hidden=(8,), batch_norm=False, num_classes=3, embed_dim=2)
    seen = []
    G.embed.register_forward_hook(lambda m, inp, out: seen.append(inp[0].clone()))
    z = torch.randn(2, 4)
    G(z, torch.tensor([2, 1]))
    assert seen[0].tolist() == [2, 1]
    # different labels, same z: different images; forward_embedded is the same computation
    a, b = G(z[:1], torch.tensor([0])), G(z[:1], torch.tensor([1]))
    assert not torch.allclose(a, b)
    assert torch.allclose(G.forward_embedded(z[:1], G.embed(torch.tensor([1]))), b)


def test_conditional_critic_takes_the_label_as_a_channel():
    C = ConditionalDCGANCritic(channels=1, image_size=16, features=4, num_classes=3)
    x = torch.randn(2, 1, 16, 16)
    assert C.body.net[0].in_channels == 2
    assert not torch.allclose(C(x, torch.tensor([0, 0])), C(x, torch.tensor([1, 1])))
    G = ConditionalDCGANGenerator(z_dim=8, channels=1, image_size=16, features=4, num_classes=3, embed_dim=5)
    assert G(torch.randn(2, 8), torch.tensor([0, 2])).shape == (2, 1, 16, 16)


def test_fakes_use_the_batch_labels(monkeypatch):
    cfg = make_config("cgan", "digits", "t", channels=1, classes=tuple("abc"), preset_key="digits", image_size=8)
    from ganctl import models

    G = models.build_generator(cfg.arch, cfg.generator)
    D = models.build_discriminator(cfg.arch, cfg.discriminator)
    got = []
    orig = G.forward
    monkeypatch.setattr(G, "forward", lambda z, labels=None: got.append(labels.clone()) or orig(z, labels))
    obj = objectives.build({"generator": G, "discriminator": D}, cfg, CPU)
    labels = torch.tensor([2, 0, 1, 2])
    obj.d_step({"real": torch.rand(4, 1, 8, 8) * 2 - 1, "labels": labels})
    assert got and torch.equal(got[0], labels)


def test_resolve_label_by_name_or_index():
    classes = ["t-shirt", "trouser", "sneaker"]
    assert genspec.resolve_label("sneaker", classes) == 2
    assert genspec.resolve_label("Trouser", classes) == 1
    assert genspec.resolve_label("0", classes) == 0
    with pytest.raises(GanctlError, match="unknown label 'boot'.*0 \\(t-shirt\\), 1 \\(trouser\\), 2 \\(sneaker\\)"):
        genspec.resolve_label("boot", classes)
    with pytest.raises(GanctlError, match="unknown label '3'"):
        genspec.resolve_label("3", classes)
    assert genspec.resolve_label("7", [str(i) for i in range(10)]) == 7


@pytest.fixture(scope="module")
def cgan_run(tmp_path_factory):
    """One tiny cgan run on digits, shared by the CLI tests below."""
    return train_in_own_store(tmp_path_factory, "cgan", "--dataset", "digits", "--epochs", 1, "--batch-size", 64, "--image-size", 8)


@pytest.fixture
def with_run(cgan_run, monkeypatch):
    monkeypatch.setenv("GANCTL_HOME", str(cgan_run))
    return cgan_run


def test_cgan_run_records_classes(with_run):
    cfg = json.loads((with_run / "runs" / "cgan" / "digits" / "config.json").read_text())
    assert cfg["classes"] == [str(i) for i in range(10)] and cfg["generator"]["num_classes"] == 10
    grid = Image.open(with_run / "runs" / "cgan" / "digits" / "samples" / "epoch_0001.png")
    assert grid.height > grid.width / 2  # ten labelled rows of six


def test_sample_one_label_and_class_rows(with_run, tmp_path):
    out = tmp_path / "fives.png"
    r = invoke("sample", "cgan", "--label", 5, "-n", 16, "-o", out, "--seed", 1)
    assert r.exit_code == 0, r.output
    assert Image.open(out).size[0] == Image.open(out).size[1]  # 4x4 grid, no label margin
    each = tmp_path / "each"
    r = invoke("sample", "cgan", "-n", 20, "-o", str(each) + "/", "--seed", 1)
    assert r.exit_code == 0, r.output
    assert len(list(each.iterdir())) == 20  # 10 classes x 2
    rows = tmp_path / "rows.png"
    r = invoke("sample", "cgan", "-n", 30, "-o", rows, "--seed", 1)
    assert r.exit_code == 0, r.output
    w, h = Image.open(rows).size
    assert h > w  # 10 rows of 3, plus a margin with the class names


def test_label_reaches_the_generator(with_run, tmp_path, monkeypatch):
    seen = []
    orig = inference.generate
    monkeypatch.setattr(inference, "generate", lambda gen, z, labels=None, **k: seen.append(labels) or orig(gen, z, labels, **k))
    r = invoke("sample", "cgan", "--label", 7, "-n", 4, "-o", tmp_path / "s.png", "--seed", 0)
    assert r.exit_code == 0, r.output
    assert seen[0].tolist() == [7, 7, 7, 7]


def test_unknown_label_lists_the_valid_ones(with_run, tmp_path):
    line = error_line(invoke("sample", "cgan", "--label", "sneaker", "-o", tmp_path / "x.png"))
    assert "unknown label 'sneaker'" in line and "0, 1, 2, 3, 4, 5, 6, 7, 8, 9" in line
    line = error_line(invoke("interpolate", "cgan", "--label", 11, "-o", tmp_path / "x.png"))
    assert "unknown label '11'" in line


def test_interpolate_with_fixed_label_and_between_labels(with_run, tmp_path):
    gif = tmp_path / "five.gif"
    r = invoke("interpolate", "cgan", "--label", 5, "-o", gif, "--seed", 2)
    assert r.exit_code == 0, r.output
    assert Image.open(gif).format == "GIF"
    strip = tmp_path / "3to8.png"
    r = invoke("interpolate", "cgan", "--label", 3, "--to-label", 8, "--steps", 6, "-o", strip, "--seed", 2)
    assert r.exit_code == 0, r.output
    w, h = Image.open(strip).size
    assert w > 5 * h
    line = error_line(invoke("interpolate", "cgan", "--to-label", 8, "-o", strip))
    assert "--to-label needs --label" in line


def test_label_on_an_unconditional_model_is_refused(tmp_path):
    r = invoke("train", "gan", "--dataset", "digits", "--epochs", 1, "--batch-size", 64)
    assert r.exit_code == 0, r.output
    line = error_line(invoke("sample", "gan", "--label", 3, "-o", tmp_path / "x.png"))
    assert "needs a conditional model" in line


def test_cgan_needs_labels(tmp_path):
    make_image_folder(tmp_path / "flat", n=6, size=(8, 8))
    line = error_line(invoke("train", "cgan", "--dataset", tmp_path / "flat", "--epochs", 1))
    assert "has no labels" in line


def test_cgan_conv_on_a_class_folder(tmp_path):
    make_image_folder(tmp_path / "pets", n=12, size=(20, 20), classes=["cat", "dog"])
    r = invoke("train", "cgan", "--arch", "conv", "--dataset", tmp_path / "pets", "--epochs", 1, "--batch-size", 4,
               "--image-size", 16, "--n-critic", 2)
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in (tmp_path / "ganctl-home" / "runs" / "cgan" / "pets" / "metrics.jsonl").read_text().splitlines()]
    assert "gp" in rows[0] and "wasserstein" in rows[0]
    out = tmp_path / "dogs.png"
    r = invoke("sample", "cgan", "--label", "dog", "-n", 4, "-o", out)
    assert r.exit_code == 0, r.output
    assert Image.open(out).mode == "RGB"
    r = invoke("interpolate", "cgan", "--label", "cat", "--to-label", "dog", "--steps", 3, "-o", tmp_path / "w.png")
    assert r.exit_code == 0, r.output


def test_eval_every_records_quality_during_training(tmp_path):
    r = invoke("train", "cgan", "--dataset", "digits", "--epochs", 2, "--batch-size", 128, "--image-size", 8, "--eval-every", 2)
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in (tmp_path / "ganctl-home" / "runs" / "cgan" / "digits" / "metrics.jsonl").read_text().splitlines()]
    evals = [x for x in rows if "eval_frechet_distance" in x]
    assert [x["epoch"] for x in evals] == [2]  # every 2nd epoch only
    assert evals[0]["eval_frechet_distance"] > 0 and 0 <= evals[0]["eval_label_accuracy"] <= 1
    assert "eval_label_accuracy" in r.stderr  # shown in the epoch line
