"""--augment: DiffAugment's and ADA's ops, their use by every family's objective, ADA's heuristic,
exact resume with ADA's state, and draws that do not depend on the number of processes."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from ganctl import augment_spec as spec
from ganctl.config import TrainConfig, make_config
from ganctl.core.errors import GanctlError
from ganctl.data import datasets
from ganctl.runtime import distributed, runtime
from ganctl.train import objectives, trainer
from ganctl.train.augment import ada, diffaugment
from ganctl.train.augment.pipeline import Augment
from tests.conftest import error_line, invoke

CPU = runtime.Runtime(torch.device("cpu"), "fp32")
ADA_CFG = {"policy": "ada", "target": 0.6, "interval": 4, "ramp_images": 640}


# ------------------------------------------------------------------ the policy, torch-free


def test_policies_parse_into_the_config_in_diffaugments_order():
    assert spec.parse("cutout, Color") == {"policy": "color,cutout"}
    assert spec.parse("none") == {} and spec.parse(None) == {}
    assert spec.parse("ada") == {"policy": "ada", "target": 0.6, "interval": 4}
    assert spec.parse("ada", 0.8)["target"] == 0.8


@pytest.mark.parametrize(("policy", "target", "words"), [
    ("colour", None, "Did you mean 'color'"),
    ("ada,color", None, "pass it alone"),
    ("ada", 1.5, "--ada-target must be between 0 and 1"),
    ("ada", -0.1, "--ada-target must be between 0 and 1"),
    ("color", 0.5, "--ada-target applies with --augment ada"),
    (",", None, "--augment needs a policy"),
])
def test_bad_policies_are_one_line_each(policy, target, words):
    with pytest.raises(GanctlError, match=words.replace("(", r"\(")):
        spec.parse(policy, target)


def test_translation_needs_16_pixels_but_colour_and_cutout_do_not():
    with pytest.raises(GanctlError, match="--image-size 16 or more"):
        spec.check_size(spec.parse("color,translation"), 8)
    with pytest.raises(GanctlError, match="--augment ada moves"):
        spec.check_size(spec.parse("ada"), 8)
    spec.check_size(spec.parse("color,cutout"), 8)
    spec.check_size(spec.parse("translation"), 16)


def test_ada_ramps_over_the_papers_500k_images_or_a_tenth_of_a_shorter_run():
    assert spec.ramp_images(100_000_000) == 500_000
    assert spec.ramp_images(128_000) == 12_800


def test_a_config_json_with_a_bad_augment_is_refused_and_an_old_one_has_none():
    cfg = make_config("dcgan", "digits", "t", channels=1, classes=None, preset_key="digits")
    data = cfg.to_json()
    del data["augment"]  # written before --augment existed
    assert TrainConfig.from_json(data).augment == {}
    with pytest.raises(ValueError, match="augment is"):
        TrainConfig.from_json({**data, "augment": {"policy": "colour"}})
    with pytest.raises(ValueError, match="ada target"):
        TrainConfig.from_json({**data, "augment": {**ADA_CFG, "target": 2}})


def test_the_cli_refuses_a_bad_policy_in_one_line():
    assert "Did you mean 'cutout'" in error_line(invoke("train", "dcgan", "--dataset", "digits", "--augment", "cutot"))
    line = error_line(invoke("train", "gan", "--dataset", "digits", "--image-size", "8", "--augment", "translation"))
    assert "--image-size 16 or more" in line


# ------------------------------------------------------------------ DiffAugment's ops


def test_translation_moves_each_image_by_whole_pixels_with_zeros_behind():
    x = torch.arange(1, 17, dtype=torch.float32).view(1, 1, 4, 4).repeat(2, 1, 1, 1)
    out = diffaugment.shift(x, torch.tensor([1, 0]), torch.tensor([0, -1]), pad=1)
    assert torch.equal(out[0, 0, 1:], x[0, 0, :3]) and torch.equal(out[0, 0, 0], torch.zeros(4))
    assert torch.equal(out[1, 0, :, :3], x[1, 0, :, 1:]) and torch.equal(out[1, 0, :, 3], torch.zeros(4))


def test_cutout_zeroes_a_square_of_half_the_side():
    torch.manual_seed(0)
    keep = diffaugment.cutout_mask(64, 16, 16, torch.device("cpu"))
    zeros = (~keep).sum(dim=(1, 2, 3))
    assert zeros.max() == 64 and zeros.min() > 0  # 8x8 inside the image, clipped at its border


def test_ops_keep_the_dtype_pass_gradients_and_give_both_halves_one_transform():
    torch.manual_seed(0)
    aug = Augment({"policy": "color,translation,cutout"}, torch.device("cpu"))
    x = torch.randn(8, 3, 16, 16, dtype=torch.bfloat16, requires_grad=True)
    a, b = aug(x, x)
    assert a.dtype == torch.bfloat16 and torch.equal(a, b) and not torch.equal(a, x)
    a.float().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_no_augmentation_draws_nothing_and_returns_its_arguments():
    aug = Augment({}, torch.device("cpu"))
    x = torch.randn(2, 1, 8, 8)
    state = torch.get_rng_state()
    assert aug(x) is x and aug(x, x) == (x, x)
    assert torch.equal(torch.get_rng_state(), state) and not aug


@pytest.mark.parametrize("config", [{"policy": "color,translation,cutout"}, ADA_CFG])
def test_two_processes_draw_what_one_process_draws_for_the_whole_batch(config, monkeypatch):
    x = torch.randn(8, 3, 16, 16)
    aug = Augment(config, torch.device("cpu"))
    if aug.p is not None:
        aug.p.fill_(0.7)
    torch.manual_seed(3)
    whole = aug(x)
    for rank in range(2):
        monkeypatch.setattr(distributed, "_world", distributed.World(rank=rank, size=2, local_size=2))
        torch.manual_seed(3)
        torch.testing.assert_close(aug(x[rank * 4:(rank + 1) * 4]), whole[rank * 4:(rank + 1) * 4])


# ------------------------------------------------------------------ ADA


def test_ada_at_p_0_is_the_identity():
    x = torch.randn(4, 3, 16, 16)
    torch.testing.assert_close(ada.apply([x], torch.zeros(()))[0], x, atol=1e-5, rtol=0)


def test_ada_blits_copy_pixels_exactly(monkeypatch):
    """With translation and scaling off, every image comes out as one of its 8 flips and quarter
    turns, pixel for pixel: the blits sample pixel centres."""
    monkeypatch.setattr(ada, "XINT_MAX", 0.0)
    monkeypatch.setattr(ada, "SCALE_STD", 0.0)
    torch.manual_seed(1)
    x = torch.randn(16, 1, 8, 8)
    out = ada.geometric([x], torch.ones(()))[0]
    for o, i in zip(out, x, strict=True):
        views = [torch.rot90(v, k, (1, 2)) for v in (i, i.flip(2)) for k in range(4)]
        assert any(torch.allclose(o, v, atol=1e-5) for v in views)
    assert not torch.allclose(out, x)


@pytest.mark.parametrize("shape", [(32, 1, 32, 32), (16, 3, 7, 7), (8, 2, 12, 20), (8, 1, 160, 160)])
@pytest.mark.parametrize("p", [0.5, 1.0])
def test_ada_resampling_is_grid_samples(shape, p):
    """The separable resampling of square images (and the float32 fallback of others) gives what
    affine_grid + grid_sample give for the same maps, reflection at the borders included."""
    import torch.nn.functional as F

    x = torch.randn(*shape, dtype=torch.float64)
    torch.manual_seed(5)
    out = ada.geometric([x], torch.tensor(p))[0]
    torch.manual_seed(5)
    theta = ada.inverse_maps(shape[0], shape[2], shape[3], torch.tensor(p), x.device).double()
    grid = F.affine_grid(theta, list(shape), align_corners=False)
    want = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    tol = 1e-10 if shape[2] == shape[3] <= ada.SEPARABLE_MAX else 5e-4  # the fallback: float32 coordinates
    torch.testing.assert_close(out, want, atol=tol, rtol=0)
    assert (theta[:, 0, 0] == 0).any() and (theta[:, 0, 0] != 0).any()  # odd and even quarter turns both drawn


def test_ada_bf16_backward_at_256_px_stays_in_bounds():
    """grid_sample's CPU backward from a bf16 grid wrote out of bounds at 256 px (heap corruption,
    torch 2.14, with these draws): bf16 images must give a finite gradient, every pixel's share of
    it summing to the output's."""
    torch.manual_seed(0)
    x = (torch.rand(8, 3, 256, 256) * 2 - 1).bfloat16().contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    out = ada.geometric([x], torch.ones(()))[0]
    assert out.dtype == torch.bfloat16 and out.shape == x.shape
    out.float().sum().backward()
    assert torch.isfinite(x.grad.float()).all()
    # each output pixel's weights sum to 1 (up to bf16 rounding), so the gradient's sum is the pixel count
    assert x.grad.float().sum().item() == pytest.approx(out.numel(), rel=1e-2)


def test_ada_p_rises_while_the_discriminator_is_sure_of_the_reals_and_falls_after():
    h = ada.Heuristic(target=0.6, ramp_images=64, interval=2, device=torch.device("cpu"))
    for i in range(4):
        h.observe(torch.ones(8))  # every real image on the real side
        h.adjust(i, batch_images=8)
    assert h.p.item() == pytest.approx(0.5)  # 2 adjustments of 8 * 2 / 64
    for i in range(4, 6):
        h.observe(-torch.ones(8))
        h.adjust(i, batch_images=8)
    assert h.p.item() == pytest.approx(0.25)


# ------------------------------------------------------------------ every family's discriminators


class Spy(Augment):
    """Records how many images each call got, and returns them as they are."""

    def __init__(self):
        super().__init__({"policy": "color"}, torch.device("cpu"))
        self.calls: list[int] = []

    def __call__(self, *xs):
        self.calls.append(len(xs))
        self.used = True
        return xs[0] if len(xs) == 1 else xs


def _objective(family, arch=None, **over):
    if family == "pix2pix":
        cfg = make_config("pix2pix", "synthetic-facades", "t", channels=3, classes=None, preset_key="synthetic-facades",
                          batch_size=2, image_size=32, generator_overrides={"ngf": 2, "num_downs": 5},
                          discriminator_overrides={"ndf": 2}, data_overrides={"direction": "AtoB", "load_size": 36})
        batch = {"input": torch.randn(2, 3, 32, 32), "target": torch.randn(2, 3, 32, 32)}
    elif family == "cyclegan":
        cfg = make_config("cyclegan", "synthetic-facades-unpaired", "t", channels=3, classes=None,
                          preset_key="synthetic-facades-unpaired", batch_size=2, image_size=32,
                          generator_overrides={"ngf": 2, "n_blocks": 1}, discriminator_overrides={"ndf": 2})
        batch = {"A": torch.randn(2, 3, 32, 32), "B": torch.randn(2, 3, 32, 32)}
    else:
        classes = tuple(str(i) for i in range(10))
        cfg = make_config(family, "digits", "t", channels=1, classes=classes, preset_key="digits", arch=arch,
                          batch_size=4, image_size=16)
        batch = {"real": torch.randn(4, 1, 16, 16), "labels": torch.arange(4)}
    cfg = replace(cfg, **over)
    obj = objectives.build(trainer.build_networks(cfg, CPU), cfg, CPU)
    return obj, batch


# (family, --arch, images D sees side by side, calls per D step and G step)
CASES = [("gan", None, 1, 3), ("dcgan", None, 1, 3), ("wgan-gp", None, 1, 3), ("cgan", "conv", 1, 3),
         ("pix2pix", None, 2, 3), ("cyclegan", None, 1, 6)]


@pytest.mark.parametrize(("family", "arch", "together", "calls"), CASES)
def test_every_family_augments_each_discriminator_input_and_nothing_else(family, arch, together, calls):
    obj, batch = _objective(family, arch)
    obj.n_critic = 1
    obj.augment = spy = Spy()
    obj.step(batch, 0)
    # real and generated in the D step, generated in the G step; cyclegan: 2 in G's step (one fake per
    # direction), 4 in D's; never the reconstructions, identities or the L1 target
    assert spy.calls == [together] * calls


def test_ada_p_is_logged_and_checkpointed_and_resumes_exactly(tmp_path):
    data = datasets.load("digits", 16)
    data.images, data.labels = data.images[:48], data.labels[:48]
    # target 0: the young discriminator is a little above its boundary on real images (r_t > 0), so p
    # rises at the first adjustment whatever else ran in this process (at 0.6 it would stay at 0)
    cfg = make_config("dcgan", "digits", "t", channels=1, classes=data.classes, preset_key="digits", epochs=2,
                      batch_size=16, image_size=16, augment={**ADA_CFG, "target": 0.0})
    cfg = replace(cfg, generator={**cfg.generator, "features": 4}, discriminator={**cfg.discriminator, "features": 4})
    trainer.train(cfg, data, tmp_path / "full", CPU)
    trainer.train(replace(cfg, epochs=1), data, tmp_path / "split", CPU)  # 3 steps: stops inside an interval of 4
    trainer.train(cfg, data, tmp_path / "split", CPU, resume=True)
    rows = {k: [json.loads(x) for x in (tmp_path / k / "metrics.jsonl").read_text().splitlines()] for k in ("full", "split")}
    assert rows["full"] == rows["split"]
    assert len({r["ada_p"] for r in rows["full"]}) > 1  # p moved
    state = {k: torch.load(tmp_path / k / "checkpoints" / "epoch_0002" / "trainer.pt", weights_only=True)["objective"]
             for k in ("full", "split")}
    assert torch.equal(state["full"]["augment"]["p"], state["split"]["augment"]["p"])
    session = json.loads((tmp_path / "full" / "runtime.json").read_text())["sessions"][0]
    assert session["augment"].startswith("ADA (target 0,")
    a = torch.load(tmp_path / "full" / "checkpoints" / "epoch_0002" / "trainer.pt", weights_only=True)
    b = torch.load(tmp_path / "split" / "checkpoints" / "epoch_0002" / "trainer.pt", weights_only=True)
    assert all(torch.equal(x, y) for x, y in zip(a["rng_cpu"], b["rng_cpu"], strict=True))


def test_an_objective_that_never_augments_is_refused_rather_than_trained_unaugmented():
    aug = Augment({"policy": "color"}, torch.device("cpu"))
    with pytest.raises(GanctlError, match="does not augment"):
        aug.end_step({}, 0, 4)
    aug(torch.zeros(1, 1, 4, 4))
    assert aug.end_step({}, 0, 4) == {}


def test_resume_keeps_the_runs_augmentation():
    from ganctl.train.resume import check_augment

    cfg = make_config("dcgan", "digits", "t", channels=1, classes=None, preset_key="digits", augment=ADA_CFG)
    check_augment(cfg, None)
    check_augment(cfg, spec.parse("ada"))  # the ramp follows from the run: not the user's to give
    with pytest.raises(GanctlError, match="its own augmentation"):
        check_augment(cfg, spec.parse("color"))


def test_a_small_folder_is_told_about_its_familys_augment_and_a_catalogue_set_is_not(tmp_path):
    from ganctl.families import registry
    from ganctl.train.setup import default_augment

    said: list[str] = []
    assert default_augment(str(tmp_path), 100, 32, "ada", said.append) == {}
    assert len(said) == 1 and "--augment ada" in said[0]
    assert default_augment(str(tmp_path), 100, 8, "ada", said.append) == {} and "--augment color,cutout" in said[1]
    default_augment("digits", 100, 32, "ada", said.append)
    default_augment(str(tmp_path), 5000, 32, "ada", said.append)
    default_augment(str(tmp_path), 100, 32, "", said.append)  # a family with no suggestion
    assert len(said) == 2
    # what each family suggests, from its registration (measured: docs/benchmarks.md)
    suggests = {(f.name, arch): v.small_folders for f, arch, v in registry.variants()}
    assert suggests[("dcgan", None)] == "ada" and suggests[("pix2pix", None)] == "color,translation,cutout"
    assert suggests[("cgan", "conv")] == suggests[("wgan-gp", None)] == suggests[("cyclegan", None)] == ""
    for policy in set(suggests.values()) - {""}:
        spec.parse(policy)  # each one a valid --augment


def test_the_report_says_what_augmentation_ran():
    from ganctl.report.page import _augmentation

    assert _augmentation({}) == "none"  # runs from before --augment
    assert _augmentation({"augment": {"policy": "color,cutout"}}) == "DiffAugment color,cutout"
    assert _augmentation({"augment": ADA_CFG}).startswith("ADA (target 0.6, p from 0 up to 1 in 640 images")
