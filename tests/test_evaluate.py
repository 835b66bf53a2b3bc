from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch
from torch import nn

from ganctl.core.errors import DatasetError, GanctlError
from ganctl.data import datasets
from ganctl.evaluation import cache, classifier, evaluate, splits
from ganctl.evaluation.fidelity import frechet as frechet_distance  # torch-fidelity's, as evaluate uses it
from ganctl.use import inference
from tests.conftest import error_line, invoke, make_image_folder

SIZE = 16  # every digits test here runs at 16 px: one classifier, trained once per session
CPU = torch.device("cpu")




# ---------------------------------------------------------------- Frechet distance


def _gaussian(n, d, seed, mean=0.0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) + mean


def test_frechet_distance_of_a_set_to_itself_is_zero():
    a = _gaussian(500, 16, 0) @ _gaussian(16, 16, 1)  # correlated features
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_frechet_distance_of_a_shifted_set_is_the_squared_shift():
    a = _gaussian(400, 8, 0)
    a = a - a.mean(0)  # centred, so that 2 * a has the same mean
    shift = torch.tensor([1.0, -2.0, 0.5, 0, 0, 0, 0, 3.0], dtype=torch.float64)
    # same covariance exactly, so only the means differ: 1 + 4 + 0.25 + 9
    assert frechet_distance(a, a + shift) == pytest.approx(14.25, rel=1e-9)
    # scaled by 2: Sb = 4 Sa, and Tr(Sa + 4 Sa - 2 (4 Sa^2)^1/2) = Tr(Sa)
    cov_trace = float(torch.cov(a.T).trace())
    assert frechet_distance(a, 2 * a) == pytest.approx(cov_trace, rel=1e-6)


def test_frechet_distance_of_gaussian_samples_matches_the_analytic_value():
    # N(0, I) vs N(mu, I) in 4-d: ||mu||^2 = 5, up to sampling noise of order d^2 / n
    a, b = _gaussian(20000, 4, 0), _gaussian(20000, 4, 1, mean=torch.tensor([1.0, 2.0, 0.0, 0.0], dtype=torch.float64))
    assert frechet_distance(a, b) == pytest.approx(5.0, abs=0.05)


def test_frechet_distance_is_symmetric_and_matches_a_general_reference():
    a = _gaussian(300, 6, 0) @ _gaussian(6, 6, 2)
    b = _gaussian(200, 6, 1) @ _gaussian(6, 6, 3) + 0.3
    d = frechet_distance(a, b)
    assert d == pytest.approx(frechet_distance(b, a), rel=1e-9)
    # reference: Tr (Sa Sb)^1/2 from the (real, non-negative) eigenvalues of the non-symmetric product
    sa, sb = torch.cov(a.T), torch.cov(b.T)
    tr = torch.linalg.eigvals(sa @ sb).real.clamp_min(0).sqrt().sum()
    ref = (a.mean(0) - b.mean(0)).square().sum() + sa.trace() + sb.trace() - 2 * tr
    assert d == pytest.approx(float(ref), rel=1e-6)


def test_frechet_distance_with_fewer_samples_than_features():
    a, b = _gaussian(10, 64, 0), _gaussian(12, 64, 1)
    # singular covariances: the library's general eigenvalues leave rounding of about 1e-6 around 0
    assert frechet_distance(a, a.clone()) == pytest.approx(0.0, abs=1e-5)
    d = frechet_distance(a.float(), b.float())  # float32 in, float64 inside
    assert d > 0 and d == d  # finite, not NaN
    with pytest.raises(ValueError):
        frechet_distance(a[:1], b)
    with pytest.raises(ValueError):
        frechet_distance(a, b[:, :10])


# ---------------------------------------------------------------- the classifier


def test_classifier_takes_any_size_from_8_px_and_1_or_3_channels():
    for channels, size in ((1, 8), (3, 13), (1, 28), (3, 64)):
        net = classifier.DatasetClassifier(channels, num_classes=5)
        x = torch.rand(2, channels, size, size) * 2 - 1
        assert net.features(x).shape == (2, classifier.FEATURE_DIM)
        assert net(x).shape == (2, 5)


@pytest.fixture(scope="session")
def digits_classifier(tmp_path_factory):
    """Train the digits classifier once for the session, through get_classifier, in its own store."""
    home = tmp_path_factory.mktemp("classifier-home")
    messages = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANCTL_HOME", str(home))
        _, info = cache.get_classifier("digits", SIZE, 1, None, CPU, progress=messages.append)
    return Path(info["path"]), info, messages


@pytest.fixture
def cached_classifier(digits_classifier, _isolated_store):
    """Put the session's digits classifier into this test's store, where evaluate looks for it."""
    dest = cache.classifier_dir("digits", SIZE, 1) / cache.CLASSIFIER_FILE
    dest.parent.mkdir(parents=True)
    shutil.copy(digits_classifier[0], dest)
    return dest


def test_digits_classifier_trains_and_is_accurate(digits_classifier):
    path, info, messages = digits_classifier
    assert path.name == "classifier.safetensors" and path.parent.name == f"digits-{SIZE}px-1ch"
    assert path.parent.parent.name == "evaluators" and (path.parent.parent / "CACHEDIR.TAG").is_file()
    assert info["cached"] is False and any("cached for next time" in m for m in messages)
    assert info["test_accuracy"] > 0.85, info
    assert (info["train_images"], info["test_images"]) == (1797 - datasets.DIGITS_TEST, datasets.DIGITS_TEST)
    assert info["classes"] == [str(i) for i in range(10)]


def test_cached_classifier_is_reused_and_a_corrupt_one_retrained(cached_classifier, digits_classifier, monkeypatch):
    mtime = cached_classifier.stat().st_mtime_ns
    trained = []
    real_train = classifier.train_classifier
    monkeypatch.setattr(classifier, "train_classifier", lambda *a, **k: trained.append(1) or real_train(*a, **k))
    model, info = cache.get_classifier("digits", SIZE, 1, tuple(str(i) for i in range(10)), CPU)
    assert info["cached"] is True and not trained and cached_classifier.stat().st_mtime_ns == mtime
    assert info["test_accuracy"] == digits_classifier[1]["test_accuracy"]
    # the cached weights are the trained ones: same accuracy on the test split
    test = datasets.load("digits", SIZE, 1, split="test")
    assert classifier.accuracy(model, test, CPU) == pytest.approx(info["test_accuracy"], abs=1e-4)

    monkeypatch.setattr(classifier, "MAX_EPOCHS", 2)  # retraining is what is tested here, not accuracy
    cached_classifier.write_bytes(b"not a safetensors file")
    messages = []
    _, info = cache.get_classifier("digits", SIZE, 1, None, CPU, progress=messages.append)
    assert info["cached"] is False and len(trained) == 1 and info["epochs"] == 2
    assert any("unreadable" in m for m in messages)
    assert cache.get_classifier("digits", SIZE, 1, None, CPU)[1]["cached"] is True  # a valid file again

    # a classifier of another version is retrained too
    from ganctl.store import checkpoint

    meta = checkpoint.read_meta(cached_classifier)
    net = classifier.DatasetClassifier(1, 10)
    checkpoint.save_weights(cached_classifier, net, {**meta, "classifier_version": -1})
    assert cache.get_classifier("digits", SIZE, 1, None, CPU)[1]["cached"] is False and len(trained) == 2


def test_classes_that_differ_from_the_models_are_refused(cached_classifier):
    with pytest.raises(DatasetError, match="not the ones the model was trained with"):
        cache.get_classifier("digits", SIZE, 1, ("a", "b"), CPU)


# ---------------------------------------------------------------- evaluation on real data


class ImagePool(nn.Module):
    """A fake generator that returns images from a pool: in order, or (conditional) one of the
    requested label each time."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor | None = None, z_dim: int = 4):
        super().__init__()
        self.z_dim = z_dim
        self.register_buffer("pool", images.float() / 127.5 - 1)
        self.labels = labels
        self.anchor = nn.Parameter(torch.zeros(()))  # inference.generate reads the device from it
        self.count = 0

    def forward(self, z, labels=None):
        if labels is None or self.labels is None:
            idx = (torch.arange(len(z)) + self.count) % len(self.pool)
        else:  # the next image of each requested label, cycling through that class
            of_class = [(self.labels == y).nonzero().flatten() for y in labels.cpu()]
            idx = torch.stack([c[(self.count + i) % len(c)] for i, c in enumerate(of_class)])
        self.count += len(z)
        return self.pool[idx] + 0 * self.anchor


class Noise(nn.Module):
    z_dim = 4

    def __init__(self):
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(()))

    def forward(self, z, labels=None):
        g = torch.Generator().manual_seed(int(z.abs().sum() * 1000) % 2**31)
        return torch.rand(len(z), 1, SIZE, SIZE, generator=g) * 2 - 1


def _fake(net, conditional=False):
    meta = {
        "family": "fake", "arch": "fake", "generator": {}, "z_dim": 4, "image_size": SIZE, "channels": 1,
        "classes": [str(i) for i in range(10)], "conditional": conditional, "dataset": "digits",
    }
    return inference.LoadedGenerator(net, meta, Path("fake.safetensors"))


@pytest.fixture(scope="module")
def digits_test():
    return datasets.load("digits", SIZE, 1, split="test")


def test_real_test_images_score_zero_and_noise_scores_far_above_the_floor(cached_classifier, digits_test):
    n = len(digits_test)  # the fake generator returns exactly the test split
    real = evaluate.evaluate_generator(_fake(ImagePool(digits_test.images)), n=n, device=CPU)
    assert real["frechet_distance"] == pytest.approx(0.0, abs=1e-3)
    floor = real["real_train_vs_test_frechet_distance"]
    assert floor > 0 and real["label_accuracy"] is None
    assert (real["n"], real["seed"], real["dataset"], real["image_size"]) == (n, 0, "digits", SIZE)
    assert real["classifier"] == f"digits-{SIZE}px-1ch" and real["classifier_test_accuracy"] > 0.85

    noise = evaluate.evaluate_generator(_fake(Noise()), n=300, device=CPU)
    assert noise["frechet_distance"] > 20 * floor, (noise, floor)


def test_label_accuracy_of_conditional_generators(cached_classifier, digits_test):
    obeys = evaluate.evaluate_generator(_fake(ImagePool(digits_test.images, digits_test.labels), conditional=True), n=300, device=CPU)
    assert obeys["label_accuracy"] > 0.85
    ignores = evaluate.evaluate_generator(_fake(ImagePool(digits_test.images), conditional=True), n=300, device=CPU)
    assert 0.02 < ignores["label_accuracy"] < 0.2  # chance is 0.1
    # both draw real images: a low distance either way (the label accuracy tells them apart)
    assert ignores["frechet_distance"] < 3 * ignores["real_train_vs_test_frechet_distance"] + 1


def test_evaluate_during_training_restores_mode_and_random_state(cached_classifier, digits_test):
    G = ImagePool(digits_test.images)
    G.train()
    state = torch.get_rng_state()
    meta = _fake(G).meta
    res = evaluate.evaluate_during_training(G, meta, n=100, device=CPU)
    assert G.training and torch.equal(torch.get_rng_state(), state)
    assert res["n"] == 100 and res["frechet_distance"] >= 0
    G.eval()
    evaluate.evaluate_during_training(G, meta, n=100, device=CPU)
    assert not G.training


def test_repeated_evaluations_load_the_real_data_once(cached_classifier, digits_test, monkeypatch):
    # training evaluates every few epochs: the splits and real features are kept between calls
    meta = _fake(ImagePool(digits_test.images)).meta
    loads = []
    load_splits = splits.load_splits
    monkeypatch.setattr(splits, "load_splits", lambda *a, **k: loads.append(a) or load_splits(*a, **k))
    references = {}  # a new pool each time: ImagePool hands out its images in turn
    first = evaluate.evaluate_during_training(ImagePool(digits_test.images), meta, n=100, device=CPU, references=references)
    again = evaluate.evaluate_during_training(ImagePool(digits_test.images), meta, n=100, device=CPU, references=references)
    fresh = evaluate.evaluate_during_training(ImagePool(digits_test.images), meta, n=100, device=CPU)
    assert len(loads) == 2  # the first call and the one without a cache
    assert first == again == fresh


def test_folder_datasets_hold_out_every_tenth_image_per_class(tmp_path, monkeypatch):
    labels = torch.tensor([0] * 25 + [1] * 3 + [2] * 1)
    mask = splits.holdout(labels, 3)
    assert mask.nonzero().flatten().tolist() == [9, 19, 27]  # 10th and 20th of class 0; class 1's last; none of 1

    monkeypatch.setattr(classifier, "MAX_EPOCHS", 2)
    folder = tmp_path / "shapes"
    make_image_folder(folder, n=40, size=(10, 10), classes=["circle", "square"])
    state = torch.get_rng_state()
    model, info = cache.get_classifier(str(folder), 8, 3, None, CPU)
    assert torch.equal(torch.get_rng_state(), state)  # training used its own seeded generators
    assert (info["train_images"], info["test_images"]) == (36, 4) and info["classes"] == ["circle", "square"]
    again, _ = classifier.train_classifier(splits.load_splits(str(folder), 8, 3), CPU)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True))
    path = Path(info["path"])
    assert path.parent.name.startswith("shapes-") and path.parent.name.endswith("-8px-3ch")
    assert cache.get_classifier(str(folder), 8, 3, None, CPU)[1]["cached"] is True
    make_image_folder(folder, n=2, size=(10, 10), classes=["circle", "square"], seed=5)  # edited folder
    assert cache.get_classifier(str(folder), 8, 3, None, CPU)[1]["cached"] is False


def test_unlabelled_datasets_are_refused(tmp_path):
    make_image_folder(tmp_path / "flat", n=6, size=(10, 10))
    with pytest.raises(DatasetError, match="labelled dataset.*one sub-folder per class"):
        cache.get_classifier(str(tmp_path / "flat"), 8, 3, None, CPU)
    with pytest.raises(DatasetError, match="celeba has no class labels"):
        splits.load_splits("celeba", 8, 3)
    with pytest.raises(GanctlError, match="at least 2"):
        evaluate.evaluate_generator(_fake(Noise()), n=1, device=CPU)


# ---------------------------------------------------------------- the command


def test_evaluate_command_on_a_trained_run(cached_classifier, _isolated_store):
    r = invoke("train", "dcgan", "--dataset", "digits", "--epochs", 1, "--batch-size", 64, "--image-size", SIZE, "--name", "d")
    assert r.exit_code == 0, r.output
    run_dir = _isolated_store.resolve() / "runs" / "dcgan" / "d"

    r = invoke("evaluate", "dcgan/d", "-n", 200)
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == str(run_dir / "eval.json")
    assert "Frechet distance" in r.stderr and "real training vs test" in r.stderr and "training the" not in r.stderr
    res = json.loads((run_dir / "eval.json").read_text())
    for key in ("frechet_distance", "real_train_vs_test_frechet_distance", "label_accuracy", "classifier_test_accuracy", "n", "seed", "dataset", "image_size", "run", "checkpoint", "epoch"):
        assert key in res, key
    assert (res["run"], res["checkpoint"], res["epoch"], res["n"], res["dataset"]) == ("dcgan/d", "epoch_0001", 1, 200, "digits")
    assert res["frechet_distance"] > res["real_train_vs_test_frechet_distance"] > 0 and res["label_accuracy"] is None

    r = invoke("evaluate", run_dir, "-n", 200, "--checkpoint", "epoch_0001", "--seed", 1)  # a run folder, a checkpoint by name
    assert r.exit_code == 0, r.output
    history = [json.loads(line) for line in (run_dir / "evaluations.jsonl").read_text().splitlines()]
    assert [h["seed"] for h in history] == [0, 1] and history[0]["frechet_distance"] == res["frechet_distance"]
    assert json.loads((run_dir / "eval.json").read_text())["seed"] == 1  # the latest result


@pytest.mark.slow
def test_an_n_larger_than_the_dataset_says_so_in_the_result(cached_classifier, _isolated_store):
    r = invoke("train", "dcgan", "--dataset", "digits", "--epochs", 1, "--batch-size", 512, "--image-size", SIZE, "--name", "d")
    assert r.exit_code == 0, r.output
    r = invoke("evaluate", "dcgan/d", "-n", 10_000_000, "--json")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert (res["n"], res["n_requested"]) == (1500, 10_000_000), res
    assert res["n_limit"] == "digits has 1,500 training images, the real floor's sample size"
    assert "1,500 samples (of 10,000,000 asked: digits has 1,500 training images" in " ".join(r.stderr.split())
    saved = json.loads((_isolated_store / "runs" / "dcgan" / "d" / "eval.json").read_text())
    assert saved["n_requested"] == 10_000_000


def test_fewer_images_than_asked_are_said_in_the_result_and_its_table():
    from ganctl.cli.evaluate import _asked
    from ganctl.evaluation.evaluate import fewer_than_asked

    assert fewer_than_asked({"n": 200}, 200, "x") == {"n": 200}  # what was asked for: nothing more to say
    r = fewer_than_asked({"n": 1500}, 10_000_000, "digits has 1,500 training images")
    assert r == {"n": 1500, "n_requested": 10_000_000, "n_limit": "digits has 1,500 training images"}
    assert _asked(r) == " (of 10,000,000 asked: digits has 1,500 training images)" and _asked({"n": 3}) == ""


def test_evaluate_command_errors(tmp_path, _isolated_store):
    assert "no run named 'nope'" in error_line(invoke("evaluate", "nope"))
    assert "at least 2" in error_line(invoke("evaluate", "nope", "-n", 1))
    make_image_folder(tmp_path / "flat", n=16, size=(12, 12))
    r = invoke("train", "dcgan", "--dataset", tmp_path / "flat", "--epochs", 1, "--batch-size", 8, "--image-size", 16)
    assert r.exit_code == 0, r.output
    # an unlabelled folder is scored on Inception features; the classifier space needs classes
    line = error_line(invoke("evaluate", "dcgan/flat", "-n", 20, "--features", "classifier"))
    assert "labelled dataset" in line and "one sub-folder per class" in line
    assert "ganctl download inception" in error_line(invoke("evaluate", "dcgan/flat", "-n", 20))
    assert "unknown --features 'x'" in error_line(invoke("evaluate", "dcgan/flat", "--features", "x"))


# ---------------------------------------------------------------- KID and the floor at the same N (issue 19)


def test_classifier_space_gives_kid_beside_fd_and_the_floor_at_the_same_n(cached_classifier, digits_test, _isolated_store):
    from ganctl.evaluation import reference

    train_n = 1797 - datasets.DIGITS_TEST
    noise = evaluate.evaluate_generator(_fake(Noise()), n=5000, device=CPU)  # more than the training split holds
    assert noise["feature_space"] == "classifier" and noise["n"] == train_n
    p = noise["protocol"]
    assert p["generated"] == p["floor"]["images"] == train_n and p["reference"] == {"dataset": "digits", "split": "test", "images": datasets.DIGITS_TEST}
    assert p["kid"]["subset_size"] == datasets.DIGITS_TEST and p["weights_sha256"] == hashlib.sha256(cached_classifier.read_bytes()).hexdigest()
    assert noise["kid_mean"] > 20 * max(noise["real_train_vs_test_kid_mean"], 1e-3) and noise["kid_std"] > 0
    assert noise["frechet_distance"] > 20 * noise["real_train_vs_test_frechet_distance"]
    # the real side's features are cached in the store (test split, and the floor's training images)
    files = sorted(p.name for p in reference.references_dir().glob("*.safetensors"))
    assert len(files) == 2 and any("-test-16px-1ch-classifier-" in f for f in files), files
    again = evaluate.evaluate_generator(_fake(Noise()), n=5000, device=CPU)
    assert again == noise


def test_the_library_path_gives_the_classifiers_own_features(cached_classifier, digits_test):
    from ganctl.evaluation import fidelity, in_domain

    model, _ = cache.get_classifier("digits", SIZE, 1, None, CPU)
    ours, logits = classifier.features_and_logits(model, digits_test.images, CPU)
    via = fidelity.features(in_domain.extractor(model, CPU), fidelity.UInt8Images(digits_test.images, rgb=False), CPU,
                            in_domain.LAYERS)
    assert torch.allclose(via["features"], ours, atol=1e-5) and torch.allclose(via["logits"], logits, atol=1e-5)
