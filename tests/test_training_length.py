"""A run is long enough for its family: folders train at least the family's generator steps, and a
run given fewer is warned about with the --epochs that would do."""

from __future__ import annotations

from ganctl.families import registry
from ganctl.train import setup
from tests.conftest import invoke, make_image_folder


def test_steps_and_epochs_count_generator_steps():
    assert setup.generator_steps(30, 23) == 690
    assert setup.generator_steps(150, 23, n_critic=5) == 690
    assert setup.epochs_for(600, 1) == 600
    assert setup.epochs_for(600, 23, n_critic=5) == 131  # 131 * 23 // 5 = 602 >= 600; 130 gives 598
    assert setup.generator_steps(setup.epochs_for(600, 23, 5), 23, 5) >= 600 > setup.generator_steps(130, 23, 5)
    assert setup.epochs_for(10, 1000) == 1


def test_a_small_colour_folder_trains_the_steps_its_family_needs(tmp_path):
    folder = tmp_path / "faces"
    make_image_folder(folder, n=50, size=(16, 16), mode="RGB")
    warnings = []
    fam = registry.get("dcgan")
    variant = fam.pick(None)
    cfg, data, _ = setup._new_config(fam, variant, None, str(folder), "t", {}, None, None, warnings.append,
                                        epochs=None, batch_size=None, lr=None, seed=None, image_size=16, eval_every=None)
    assert len(data) == 50 and cfg.batch_size == 64  # the rgb preset's batch: one batch of 50 an epoch
    assert cfg.epochs == variant.min_steps  # 50 epochs (the preset's) would be 50 steps
    assert any(f"training {variant.min_steps} epochs instead of the preset's 50" in w for w in warnings), warnings


def test_a_large_enough_folder_keeps_the_preset_epochs(tmp_path):
    folder = tmp_path / "faces"
    make_image_folder(folder, n=50, size=(16, 16), mode="RGB")
    warnings = []
    fam = registry.get("dcgan")
    cfg, _, _ = setup._new_config(fam, fam.pick(None), None, str(folder), "t", {}, None, None, warnings.append,
                                     epochs=None, batch_size=2, lr=None, seed=None, image_size=16, eval_every=None)
    assert cfg.epochs == 50  # 25 batches an epoch: 1,250 steps
    assert [w for w in warnings if "--augment" not in w] == []  # no word on its length (a small set: augment)


def test_a_run_shorter_than_its_family_needs_is_warned_about_with_the_epochs_to_pass(tmp_path):
    r = invoke("train", "dcgan", "--dataset", "digits", "--epochs", "1", "--name", "short")
    assert r.exit_code == 0, r.output
    assert "this run takes 23 generator steps, and dcgan needs about 400" in r.stderr
    assert "pass --epochs 18" in r.stderr  # 18 * 23 = 414


def test_a_run_as_long_as_its_family_needs_is_not_warned_about():
    fam = registry.get("dcgan")
    for epochs, warned in ((18, False), (17, True)):  # 414 and 391 steps against 400
        warnings = []
        setup._new_config(fam, fam.pick(None), None, "digits", "t", {}, None, None, warnings.append,
                             epochs=epochs, batch_size=None, lr=None, seed=None, image_size=None, eval_every=None)
        assert bool(warnings) is warned, (epochs, warnings)


def test_wasserstein_runs_count_generator_steps_not_batches():
    fam = registry.get("wgan-gp")
    warnings = []
    setup._new_config(fam, fam.pick(None), None, "digits", "t", {}, None, None, warnings.append,
                         epochs=27, batch_size=None, lr=None, seed=None, image_size=None, eval_every=None)
    assert warnings and "takes 124 generator steps" in warnings[0] and "--epochs 131" in warnings[0]
