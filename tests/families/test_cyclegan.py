"""CycleGAN as a family like the others: a run of four named networks, its epoch pictures, exact
resume with its image pools, translate both ways, and the official recipe in its registration."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from ganctl.config import make_config
from ganctl.families import registry
from ganctl.runtime import runtime
from ganctl.train import objectives
from ganctl.train.objectives.cyclegan import ImagePool
from tests.conftest import error_line, invoke

CPU = runtime.Runtime(torch.device("cpu"), "fp32")
# 32-pixel crops, 4 base channels, 1 residual block: an epoch of 6 images in well under a second
TINY = ["--image-size", 32, "--ngf", 4, "--ndf", 4, "--n-blocks", 1, "--precision", "fp32"]


def _domain(folder, seed, n, colour):
    g = torch.Generator().manual_seed(seed)
    folder.mkdir(parents=True)
    for i in range(n):
        x = (torch.rand(3, 36, 36, generator=g) * 80).to(torch.uint8) + torch.tensor(colour, dtype=torch.uint8)[:, None, None]
        Image.fromarray(x.permute(1, 2, 0).numpy(), "RGB").save(folder / f"{i}.png")


@pytest.fixture
def two_folders(tmp_path):
    _domain(tmp_path / "reds", 0, 6, (150, 20, 20))
    _domain(tmp_path / "blues", 1, 4, (20, 20, 150))
    return f"{tmp_path / 'reds'}:{tmp_path / 'blues'}"


def _train(dataset, *extra):
    r = invoke("train", "cyclegan", "--dataset", dataset, *TINY, *extra)
    assert r.exit_code == 0, r.output
    return r


def test_a_run_saves_each_network_in_a_folder_of_its_own(two_folders, tmp_path):
    from ganctl.store import layout

    _train(two_folders, "--epochs", 2, "--name", "rb")
    run = layout.find_run("rb", "cyclegan").path
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["arch"] == "cyclegan" and cfg["objective_args"] == {
        "lambda_cycle": 10.0, "lambda_identity": 0.5, "pool_size": 50, "epochs_decay": 1}
    assert cfg["generator"]["n_blocks"] == 1 and cfg["discriminator"]["in_channels"] == 3
    ckpt = run / "checkpoints" / "epoch_0002"
    for name, role in (("G_A", "generator"), ("G_B", "generator"), ("D_A", "discriminator"), ("D_B", "discriminator")):
        assert (ckpt / name / f"{role}.safetensors").is_file()
    specs = {n: json.loads((ckpt / n / "config.json").read_text()) for n in ("G_A", "G_B")}
    assert (specs["G_A"]["direction"], specs["G_B"]["direction"]) == ("AtoB", "BtoA")
    trainer_state = torch.load(ckpt / "trainer.pt", weights_only=True)
    assert set(trainer_state["optimizers"]) == {"generators", "discriminators"}
    assert len(trainer_state["objective"]["pool_A"]) == 12 == len(trainer_state["objective"]["pool_B"])  # 2 x 6 steps
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert {"g_a", "g_b", "cycle_a", "cycle_b", "idt_a", "idt_b", "d_a", "d_b"} <= rows[0].keys()
    pic = Image.open(run / "samples" / "epoch_0002.png")
    assert pic.height > pic.width  # rows A -> B -> A, then B -> A -> B, three columns


def test_two_epochs_equal_one_then_a_resume(two_folders, tmp_path):
    from ganctl.store import layout

    # a constant learning rate: the decay is half of a new run's --epochs, which differ here
    _train(two_folders, "--epochs", 2, "--name", "whole", "--epochs-decay", 0)
    _train(two_folders, "--epochs", 1, "--name", "parts", "--epochs-decay", 0)
    _train(two_folders, "--epochs", 2, "--name", "parts", "--resume")
    whole = layout.find_run("whole", "cyclegan").path / "checkpoints" / "epoch_0002"
    parts = layout.find_run("parts", "cyclegan").path / "checkpoints" / "epoch_0002"
    for f in ("G_A/generator.safetensors", "G_B/generator.safetensors", "D_A/discriminator.safetensors"):
        a, b = load_file(whole / f), load_file(parts / f)
        assert all(torch.equal(a[k], b[k]) for k in a), f
    pa = torch.load(whole / "trainer.pt", weights_only=True)["objective"]
    pb = torch.load(parts / "trainer.pt", weights_only=True)["objective"]
    assert all(torch.equal(x, y) for x, y in zip(pa["pool_B"], pb["pool_B"], strict=True))


def test_translate_picks_the_generator_of_each_direction(two_folders, tmp_path):
    _train(two_folders, "--epochs", 1, "--name", "rb")
    src = tmp_path / "in.png"
    Image.new("RGB", (24, 16), (200, 30, 30)).save(src)
    outs = {}
    for d in ("AtoB", "BtoA"):
        r = invoke("translate", src, "-o", tmp_path / f"{d}.png", "--direction", d, "--mode", "eval")
        assert r.exit_code == 0, r.output
        assert f"G_{d[0]}, {d}" in r.output
        outs[d] = torch.from_numpy(__import__("numpy").asarray(Image.open(tmp_path / f"{d}.png")).copy())
    assert Image.open(tmp_path / "AtoB.png").size == (24, 16)
    assert not torch.equal(outs["AtoB"], outs["BtoA"])
    r = invoke("translate", src, "-o", tmp_path / "x.png", "--direction", "sideways")
    assert r.exit_code != 0 and "--direction must be AtoB or BtoA" in error_line(r)
    r = invoke("sample", "cyclegan")
    assert r.exit_code != 0 and "translate" in error_line(r)


def test_the_generators_update_first_with_the_discriminators_frozen(monkeypatch):
    cfg = make_config("cyclegan", "x", "t", channels=3, classes=None, preset_key="default", image_size=32,
                      generator_overrides={"ngf": 4, "n_blocks": 1}, discriminator_overrides={"ndf": 4},
                      data_overrides={"load_size": 36})
    from ganctl import models

    torch.manual_seed(0)
    nets = models.build_all(cfg.arch, cfg.generator, cfg.discriminator, cfg.init)
    obj = objectives.build(nets, cfg, CPU)
    seen = []
    real_update = obj.update

    def update(loss, opt):
        name = next(k for k, o in obj.optimizers().items() if o is opt)
        d_grads = [p.grad is not None for n in ("D_A", "D_B") for p in nets[n].parameters()]
        seen.append((name, any(d_grads)))
        real_update(loss, opt)

    monkeypatch.setattr(obj, "update", update)
    batch = {"A": torch.rand(1, 3, 32, 32) * 2 - 1, "B": torch.rand(1, 3, 32, 32) * 2 - 1}
    metrics = obj.step(batch, 0)
    assert [s[0] for s in seen] == ["generators", "discriminators"]
    assert seen[0][1] is False  # the generators' loss left no gradient on the discriminators
    assert set(metrics) == {"g_a", "g_b", "cycle_a", "cycle_b", "idt_a", "idt_b", "d_a", "d_b"}
    # one optimizer over both generators, one over both discriminators (the official pairing)
    g_params = {id(p) for n in ("G_A", "G_B") for p in nets[n].parameters()}
    assert {id(p) for g in obj.opt_g.param_groups for p in g["params"]} == g_params


def _tiny_objective(lambda_identity=0.5, norm="instance", dtype=torch.float64):
    cfg = make_config("cyclegan", "x", "t", channels=3, classes=None, preset_key="default", image_size=32,
                      generator_overrides={"ngf": 4, "n_blocks": 1, "norm": norm},
                      discriminator_overrides={"ndf": 4, "norm": norm}, data_overrides={"load_size": 36},
                      objective_overrides={"lambda_identity": lambda_identity, "pool_size": 2})
    from ganctl import models

    torch.manual_seed(0)
    nets = {k: n.to(dtype) for k, n in models.build_all(cfg.arch, cfg.generator, cfg.discriminator, cfg.init).items()}
    return objectives.build(nets, cfg, CPU), nets


@pytest.mark.parametrize("lambda_identity", [0.5, 0.0])
def test_stacked_network_calls_train_what_one_image_per_call_trains(lambda_identity):
    # each network sees its images of a step in one call (3 generator calls, not 6): instance
    # norm is per image, so the losses, the updates and the pools are those of separate calls
    runs = []
    for stacked in (True, False):
        obj, nets = _tiny_objective(lambda_identity)
        assert obj.stack_calls
        obj.stack_calls = stacked
        torch.manual_seed(1)
        metrics = [obj.step({k: torch.rand(2, 3, 32, 32, dtype=torch.float64) * 2 - 1 for k in "AB"}, i)
                   for i in range(3)]  # pools of 2: the third step swaps
        runs.append((metrics, nets, obj.pool_A.images + obj.pool_B.images))
    (m1, n1, p1), (m2, n2, p2) = runs
    assert len(m1[0]) == (8 if lambda_identity else 6)
    for a, b in zip(m1, m2, strict=True):
        assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], rtol=1e-9, atol=1e-12) for k in a)
    for name in n1:  # the biases before instance norm have gradients of rounding noise, which Adam
        # turns into steps of up to lr * noise / eps: 1e-11 here, against steps of lr = 2e-4
        for (key, x), y in zip(n1[name].state_dict().items(), n2[name].state_dict().values(), strict=True):
            assert torch.allclose(x, y, rtol=1e-9, atol=1e-9), f"{name}.{key}"
    assert len(p1) == 4 and all(torch.allclose(x, y, rtol=1e-9, atol=1e-12) for x, y in zip(p1, p2, strict=True))


def test_batch_norm_networks_see_one_image_per_call():
    obj, _ = _tiny_objective(norm="batch", dtype=torch.float32)
    assert not obj.stack_calls  # batch statistics would mix the stacked images


def test_the_image_pool_stores_then_swaps_half_the_time():
    torch.manual_seed(0)
    pool = ImagePool(3)
    first = torch.arange(3.0).view(3, 1, 1, 1)
    assert torch.equal(pool.query(first), first) and len(pool.images) == 3
    given = [torch.full((1, 1, 1, 1), 100.0 + i) for i in range(200)]
    returned = [pool.query(x) for x in given]
    as_given = sum(torch.equal(r, x) for r, x in zip(returned, given, strict=True))
    assert 70 < as_given < 130  # each new image is returned as it is with probability 1/2
    # nothing is lost or made up: what came back plus what is stored is what went in
    out = sorted([r.item() for r in returned] + [t.item() for t in pool.images])
    assert out == sorted([0.0, 1.0, 2.0] + [x.item() for x in given])
    copy = ImagePool(3)
    copy.load_state_dict(pool.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(copy.images, pool.images, strict=True))
    with pytest.raises(ValueError, match="more than --pool-size"):
        ImagePool(2).load_state_dict(pool.state_dict())
    assert torch.equal(ImagePool(0).query(first), first)


def test_the_registration_states_the_official_recipe():
    fam = registry.get("cyclegan")
    preset = fam.presets["default"]
    assert (preset.lr, preset.betas, preset.batch_size, preset.epochs, preset.image_size) == (2e-4, (0.5, 0.999), 1, 200, 256)
    assert preset.objective == {"lambda_cycle": 10.0, "lambda_identity": 0.5, "pool_size": 50, "epochs_decay": 100}
    assert preset.data["load_size"] == 286 and preset.generator["norm"] == "instance" and not preset.generator["dropout"]
    nets = fam.default.networks
    assert nets.names("generator") == ["G_A", "G_B"] and dict(nets.uses) == {"AtoB": "G_A", "BtoA": "G_B"}
    cfg = make_config("cyclegan", "x", "t", channels=3, classes=None, preset_key="default", data_overrides={"load_size": 286})
    assert cfg.generator["n_blocks"] == 9
    small = make_config("cyclegan", "x", "t", channels=3, classes=None, preset_key="default", image_size=128)
    assert small.generator["n_blocks"] == 6  # resnet_6blocks for 128-pixel images, as the official README


def test_every_preset_builds_and_translates_at_its_size():
    from ganctl import models

    for key, preset in registry.get("cyclegan").presets.items():
        assert preset.source, f"cyclegan/{key} has no source"
        cfg = make_config("cyclegan", key, "t", channels=3, classes=None, preset_key=key,
                          generator_overrides={"ngf": 2, "n_blocks": 1}, discriminator_overrides={"ndf": 2},
                          data_overrides={"load_size": 72})
        G, D = models.build_generator(cfg.arch, cfg.generator), models.build_discriminator(cfg.arch, cfg.discriminator)
        with torch.no_grad():
            x = G(torch.rand(1, 3, cfg.image_size, cfg.image_size) * 2 - 1)
            assert x.shape == (1, 3, cfg.image_size, cfg.image_size) and D(x).dim() == 4


def test_family_options_are_checked_and_named(two_folders):
    r = invoke("train", "pix2pix", "--dataset", "synthetic-facades", "--lambda-cycle", 5)
    assert r.exit_code != 0 and "--lambda-cycle applies to cyclegan, not pix2pix" in error_line(r)
    r = invoke("train", "cyclegan", "--dataset", two_folders, "--pool-size", -1)
    assert r.exit_code != 0 and "--pool-size must be" in error_line(r)
    r = invoke("train", "cyclegan", "--dataset", two_folders, "--image-size", 34)
    assert r.exit_code != 0 and "multiple of 4" in error_line(r)
    r = invoke("train", "--help")
    assert "--lambda-identity" in r.output and "--n-critic" in r.output
