"""FID, KID and precision/recall on Inception features (issue 19): the weights through ganctl's
downloader, from a server on 127.0.0.1; the numbers against torch-fidelity's own call.

The weights file is torch-fidelity's Inception-v3 with random weights, saved as the real file is
(:mod:`tests.inception_weights`); its sha256 is pinned in place of the real one for these tests.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganctl.evaluation import fidelity, weights
from tests.conftest import error_line, invoke, make_image_folder
from tests.httpserver import http_server  # noqa: F401
from tests.inception_weights import pin, random_inception_state, random_weights  # noqa: F401

pytest.importorskip("torch_fidelity")

FILE = weights.INCEPTION.file


@pytest.fixture
def served(http_server, random_weights, monkeypatch):  # noqa: F811
    """The random weights at <server>/mirror/<file>, pinned as the expected file."""
    data = random_weights.read_bytes()
    http_server.files[f"mirror/{FILE}"] = data
    pin(monkeypatch, data)
    return http_server, data


def _store_files(home: Path) -> list[Path]:
    return sorted(p for p in home.rglob("*") if p.is_file()) if home.exists() else []


def test_the_real_file_is_pinned_by_its_published_name_and_sha256():
    # torch.hub's naming: the file name carries the first 8 hex digits of the sha256
    w = weights.INCEPTION
    assert w.file == "pt_inception-2015-12-05-6726825d.pth" and w.sha256.startswith("6726825d") and len(w.sha256) == 64
    assert w.size == 95_628_359 and all(u.startswith("https://") for u in w.urls)


def test_random_weights_have_the_real_files_layout(random_weights):  # noqa: F811
    state = torch.load(random_weights, weights_only=True)
    assert len(state) == 566 and "Mixed_7c.branch_pool.conv.weight" in state and state["fc.weight"].shape == (1008, 2048)
    weights.check_inception_file(random_weights)  # loads as torch-fidelity's network


def test_download_inception_from_a_mirror_resumes_a_cut_transfer(served, _isolated_store):
    server, data = served
    server.truncate(f"mirror/{FILE}", after=len(data) // 3, times=1)
    r = invoke("download", "inception", "--mirror", server.url + "mirror")
    assert r.exit_code == 0, r.output
    path = Path(r.stdout.strip())
    assert path == _isolated_store.resolve() / "weights" / FILE and path.read_bytes() == data
    ranges = [q.range for q in server.requests_for(f"mirror/{FILE}")]
    assert ranges == [None, f"bytes={len(data) // 3}-"], ranges  # the second request resumed
    assert [p.name for p in _store_files(_isolated_store)] == ["CACHEDIR.TAG", FILE]
    r = invoke("download", "inception", "--mirror", server.url + "mirror")
    assert r.exit_code == 0 and "already in the store" in r.stderr
    assert len(server.requests_for(f"mirror/{FILE}")) == 2  # nothing fetched again


def test_a_wrong_checksum_is_one_error_and_leaves_nothing(served, monkeypatch, _isolated_store):
    server, data = served
    monkeypatch.setitem(weights.CATALOG, "inception", replace(weights.CATALOG["inception"], sha256="0" * 64))
    line = error_line(invoke("download", "inception", "--mirror", server.url + "mirror"))
    assert f"{FILE} from " in line and "failed verification: sha256" in line and "deleted" in line
    assert _store_files(_isolated_store) == []


@pytest.mark.parametrize("damage", ["garbage", "missing tensor"])
def test_a_file_that_is_not_the_network_is_one_error_and_leaves_nothing(damage, http_server, monkeypatch,  # noqa: F811
                                                                         tmp_path, _isolated_store):
    if damage == "garbage":
        data = b"PK\x03\x04" + bytes(range(256)) * 40  # starts like a zip (torch.save's format), is none
    else:
        state = random_inception_state()
        del state["Mixed_7c.branch_pool.conv.weight"]
        torch.save(state, tmp_path / "w.pth")
        data = (tmp_path / "w.pth").read_bytes()
    http_server.files[f"m/{FILE}"] = data
    pin(monkeypatch, data)  # the checksum matches: what is checked here is the content
    line = error_line(invoke("download", "inception", "--mirror", http_server.url + "m"))
    assert "is not the Inception network" in line and "deleted" in line, line
    assert _store_files(_isolated_store) == []


def _folders(root: Path, n: int = 5) -> tuple[Path, Path]:
    """Two folders of n RGB images whose distributions overlap (so precision and recall are not 0)."""
    g = np.random.default_rng(0)
    base = g.integers(0, 200, (2 * n, 20, 20, 3))
    for name, offset in (("fake", 0), ("real", n)):
        (root / name).mkdir()
        for i in range(n):
            img = base[(offset + i) % len(base)] + g.integers(0, 40, (20, 20, 3)) * (name == "fake")
            Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(root / name / f"{i:02d}.png")
    return root / "fake", root / "real"


def test_fid_kid_and_precision_recall_of_two_folders_equal_torch_fidelitys(random_weights, tmp_path):  # noqa: F811
    import torch_fidelity

    fake, real = _folders(tmp_path)
    ours = fidelity.compare_folders(fake, real, random_weights)
    theirs = torch_fidelity.calculate_metrics(
        input1=str(fake), input2=str(real), fid=True, kid=True, prc=True, feature_extractor="inception-v3-compat",
        feature_extractor_weights_path=str(random_weights), kid_subset_size=ours["kid_subset_size"],
        cuda=False, cache=False, verbose=False, save_cpu_ram=True)
    pairs = {"frechet_distance": "frechet_inception_distance", "kid_mean": "kernel_inception_distance_mean",
             "kid_std": "kernel_inception_distance_std", "precision": "precision", "recall": "recall"}
    for k, theirs_k in pairs.items():
        assert ours[k] == pytest.approx(theirs[theirs_k], rel=1e-3, abs=1e-9), (k, ours, theirs)
    assert ours["frechet_distance"] > 0 and ours["kid_subset_size"] == 5


def test_a_missing_torch_fidelity_is_one_line_naming_the_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch_fidelity", None)  # as if it were not installed
    with pytest.raises(fidelity.MissingDependencyError, match=r"pip install 'torch-fidelity"):
        fidelity.library()
    from ganctl.evaluation import evaluate
    from ganctl.use import inference

    meta = {"z_dim": 4, "image_size": 8, "channels": 1, "dataset": "digits", "conditional": False}
    gen = inference.LoadedGenerator(torch.nn.Identity(), meta, Path("g.safetensors"))
    with pytest.raises(fidelity.MissingDependencyError, match=r"pip install 'torch-fidelity"):
        evaluate.evaluate_generator(gen, n=4, device="cpu")  # before any data is loaded or image generated
    line = error_line(invoke("evaluate", "nope", "-n", 4))
    assert "no run named" in line  # a mistyped run is still answered first, before torch


def test_evaluate_an_rgb_run_with_inception(served, tmp_path, _isolated_store):
    server, _ = served
    folder = tmp_path / "faces"
    make_image_folder(folder, n=8, size=(20, 20))
    r = invoke("train", "dcgan", "--dataset", folder, "--epochs", 1, "--batch-size", 4, "--image-size", 16, "--name", "f")
    assert r.exit_code == 0, r.output

    line = error_line(invoke("evaluate", "dcgan/f", "-n", 5))
    assert "ganctl download inception" in line  # no hidden download: the user is told what to run
    assert invoke("download", "inception", "--mirror", server.url + "mirror").exit_code == 0

    r = invoke("evaluate", "dcgan/f", "-n", 5, "--json")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["feature_space"] == "inception" and res["n"] == 5
    for key in ("frechet_distance", "kid_mean", "kid_std", "precision", "recall"):
        assert isinstance(res[key], float), key
    p = res["protocol"]
    assert p["weights_sha256"] == weights.CATALOG["inception"].sha256 and p["generated"] == 5
    assert p["reference"] == {"dataset": str(folder), "split": "train", "images": 8}
    assert "bilinear" in p["resize"] and "299" in p["resize"] and p["kid"]["subset_size"] == 5
    assert "FID" in r.stderr and "precision" in r.stderr and "measuring 8 real images" in r.stderr
    saved = json.loads((_isolated_store.resolve() / "runs" / "dcgan" / "f" / "eval.json").read_text())
    assert saved["protocol"] == p and saved["frechet_distance"] == res["frechet_distance"]

    # the real side is cached in the store: the second evaluation measures only the generated images
    cached = list((_isolated_store / "evaluators" / "references").glob("*.safetensors"))
    assert len(cached) == 1 and "-train-16px-3ch-inception-" in cached[0].name
    again = invoke("evaluate", "dcgan/f", "-n", 5, "--json")
    assert again.exit_code == 0 and "measuring" not in again.stderr
    assert json.loads(again.stdout)["frechet_distance"] == res["frechet_distance"]


def test_eval_every_on_an_rgb_run_asks_for_the_weights_before_training(tmp_path, _isolated_store):
    folder = tmp_path / "faces"
    make_image_folder(folder, n=8, size=(20, 20))
    r = invoke("train", "dcgan", "--dataset", folder, "--epochs", 1, "--batch-size", 4, "--image-size", 16, "--eval-every", 1)
    assert "ganctl download inception" in error_line(r)
    assert not (_isolated_store / "runs").exists() or not any((_isolated_store / "runs").rglob("*.safetensors"))
