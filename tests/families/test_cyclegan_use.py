"""Using a CycleGAN run (issue 32, parts 4 and 5): evaluate each way on the test split, export
either generator (ONNX, pt2, the official layout) and import it back, the report's pictures, and
list / prune / rm with the checkpoints' nested folders."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from PIL import Image

from ganctl.evaluation import scores
from ganctl.use import inference
from tests.conftest import error_line, invoke
from tests.families.test_cyclegan import TINY, _domain
from tests.inception_weights import random_weights  # noqa: F401

pytest.importorskip("torch_fidelity")


def _aligned_set(root):
    """The official layout: 4 + 4 training images, and 3 test scenes whose A and B sides are named
    as the CycleGAN maps archive names them (testA/1_A.png is the scene of testB/1_B.png)."""
    _domain(root / "trainA", 0, 4, (150, 20, 20))
    _domain(root / "trainB", 1, 4, (20, 20, 150))
    _domain(root / "testA", 2, 3, (150, 20, 20))
    _domain(root / "testB", 3, 3, (20, 20, 150))
    for side in "AB":
        for i in range(3):
            (root / f"test{side}" / f"{i}.png").rename(root / f"test{side}" / f"{i + 1}_{side}.png")
    return root


@pytest.fixture(scope="module")
def cyc(tmp_path_factory):
    """A store with a 2-epoch CycleGAN run ``c`` on an aligned set, both checkpoints kept."""
    home = tmp_path_factory.mktemp("cyc-home")
    data = _aligned_set(home / "data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANCTL_HOME", str(home))
        r = invoke("train", "cyclegan", "--dataset", data, *TINY, "--epochs", 2, "--keep", 2, "--name", "c", "-q")
    assert r.exit_code == 0, r.output
    return home, data


@pytest.fixture
def home(cyc, monkeypatch):
    monkeypatch.setenv("GANCTL_HOME", str(cyc[0]))
    return cyc[0]


def _ckpt(home, tag="epoch_0002"):
    return home / "runs" / "cyclegan" / "c" / "checkpoints" / tag


def _unit(path, size):
    img = Image.open(path).convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
    return torch.from_numpy(__import__("numpy").asarray(img).copy()).permute(2, 0, 1)[None].float() / 127.5 - 1


def _translated(home, data, way, size=32, names="{}_{}.png"):
    """G_A's translations of testA (or G_B's of testB) at ``size``, made here the plain way, with their truths."""
    src, dst, net = ("A", "B", "G_A") if way == "AtoB" else ("B", "A", "G_B")
    gen = inference.load_generator(_ckpt(home) / net / "generator.safetensors", "cpu")
    with torch.no_grad():
        return [(gen.net(_unit(data / f"test{src}" / f"{i}_{src}.png", size)),
                 _unit(data / f"test{dst}" / names.format(i, dst), size)) for i in (1, 2, 3)]


def test_each_direction_is_scored_against_the_truth_of_an_aligned_test_split(home, cyc):
    r = invoke("evaluate", "cyclegan/c", "--mode", "eval", "--json")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert (res["checkpoint"], res["epoch"], res["aligned"], res["split"]) == ("epoch_0002", 2, True, "test")
    assert set(res["directions"]) == {"AtoB", "BtoA"}
    for way, got in res["directions"].items():
        pairs = _translated(home, cyc[1], way)
        for k in ("l1", "psnr", "ssim"):
            want = sum(scores.image_scores(out, truth)[k] for out, truth in pairs) / 3
            assert got[k] == pytest.approx(want, abs=2e-4), (way, k)
        assert got["n"] == got["reference"] == 3 and got["frechet_distance"] is None
        assert got["generator"].endswith(f"epoch_0002/G_{way[0]}/generator.safetensors")
    assert "no FID or KID" in r.stderr and "AtoB" in r.stderr and "SSIM" in r.stderr
    saved = [json.loads(x) for x in (home / "runs" / "cyclegan" / "c" / "evaluations.jsonl").read_text().splitlines()]
    assert saved[-1]["directions"] == res["directions"]

    one = json.loads(invoke("evaluate", "cyclegan/c", "--mode", "eval", "--direction", "BtoA", "--json").stdout)
    assert list(one["directions"]) == ["BtoA"] and one["directions"]["BtoA"] == res["directions"]["BtoA"]
    older = json.loads(invoke("evaluate", "cyclegan/c", "-c", "epoch_0001", "--json", "-n", 2).stdout)
    assert older["checkpoint"] == "epoch_0001" and older["directions"]["AtoB"]["n"] == 2
    assert "epoch_0001/G_B/" in older["directions"]["BtoA"]["generator"]
    # a generator file alone is scored in its own direction
    alone = invoke("evaluate", "cyclegan/c", "-c", _ckpt(home) / "G_B" / "generator.safetensors", "--json")
    assert list(json.loads(alone.stdout)["directions"]) == ["BtoA"]
    line = error_line(invoke("evaluate", "cyclegan/c", "-c", _ckpt(home) / "G_B" / "generator.safetensors",
                             "--direction", "AtoB"))
    assert "translates BtoA, not AtoB" in line
    assert "--direction must be AtoB or BtoA" in error_line(invoke("evaluate", "cyclegan/c", "--direction", "up"))
    line = error_line(invoke("evaluate", "--pretrained", "x", "--dataset", "d", "--direction", "AtoB"))
    assert "a pretrained model translates one way" in line


@pytest.mark.slow  # two Frechet distances: torch-fidelity's eigenvalues of 2048x2048 matrices
def test_fid_and_kid_are_those_of_the_translations_against_the_other_domain(home, cyc, tmp_path,
                                                                         random_weights):  # noqa: F811
    import torch_fidelity

    from ganctl.core import images
    from ganctl.evaluation import weights

    store_file = weights.path_of(weights.INCEPTION)
    store_file.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(random_weights, store_file)
    _scramble(cyc[1])  # B's test images of other scenes: no ground truth, FID and KID are the numbers
    try:
        r = invoke("evaluate", "cyclegan/c", "--mode", "eval", "--direction", "AtoB", "--json")
        assert r.exit_code == 0, r.output
        res = json.loads(r.stdout)
        got = res["directions"]["AtoB"]
        assert res["aligned"] is False and got["l1"] is None and res["protocol"]["weights_sha256"]
        assert "FID" in r.stderr and "L1" not in r.stderr
        # torch-fidelity's own numbers for G_A's translations of testA, saved as files, against testB
        fake, real = tmp_path / "fake", tmp_path / "real"
        fake.mkdir()
        real.mkdir()
        for i, (out, truth) in enumerate(_translated(home, cyc[1], "AtoB", names="other{}.png")):
            for folder, x in ((fake, out), (real, truth)):
                Image.fromarray(images.to_uint8(x)[0].permute(1, 2, 0).numpy()).save(folder / f"{i}.png")
        want = torch_fidelity.calculate_metrics(input1=str(fake), input2=str(real), fid=True, kid=True,
                                                kid_subset_size=3, feature_extractor_weights_path=str(store_file),
                                                cuda=False, verbose=False)
        assert got["frechet_distance"] == pytest.approx(want["frechet_inception_distance"], rel=1e-3, abs=1e-3)
        assert got["kid_mean"] == pytest.approx(want["kernel_inception_distance_mean"], rel=1e-3, abs=1e-5)
    finally:
        store_file.unlink()
        _scramble(cyc[1], back=True)


def _scramble(data, back=False):
    for i in (1, 2, 3):
        a, b = data / "testB" / f"{i}_B.png", data / "testB" / f"other{i}.png"
        a, b = (b, a) if back else (a, b)
        if a.exists():
            a.rename(b)


def test_without_inception_weights_or_a_test_split_the_line_says_what_to_do(home, cyc):
    data = cyc[1]
    _scramble(data)
    try:
        line = error_line(invoke("evaluate", "cyclegan/c"))
        assert "the inception weights are not in the store: run 'ganctl download inception'" in line
    finally:
        _scramble(data, back=True)
    for side in "AB":
        (data / f"test{side}").rename(data / f"held{side}")
    try:
        line = error_line(invoke("evaluate", "cyclegan/c"))
        assert line.startswith("error: data has no test split (testA/ and testB/) to score on")
    finally:
        for side in "AB":
            (data / f"held{side}").rename(data / f"test{side}")


def test_official_files_of_both_generators_import_back_and_score_as_the_run(home, cyc, tmp_path):
    from ganctl.models.cyclegan_official import ganctl_to_official
    from ganctl.models.pix2pix_official import load_official_file

    r = invoke("export", "cyclegan/c", "-o", tmp_path / "h2z")
    assert r.exit_code == 0, r.output
    assert r.stdout.split() == [str(tmp_path / "h2z" / "latest_net_G_A.pth"), str(tmp_path / "h2z" / "latest_net_G_B.pth")]
    assert "--model_suffix _B" in r.stderr
    for net in ("G_A", "G_B"):
        gen = inference.load_generator(_ckpt(home) / net / "generator.safetensors", "cpu")
        want = ganctl_to_official(gen.net.state_dict(), gen.meta["generator"])
        got = load_official_file(tmp_path / "h2z" / f"latest_net_{net}.pth")
        assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want), net

    assert "names a file, and this model has a generator each way" in error_line(
        invoke("export", "cyclegan/c", "-o", tmp_path / "one.pth"))
    r = invoke("export", "cyclegan/c", "--direction", "BtoA", "-o", tmp_path / "b2a.pth")
    assert r.exit_code == 0 and (tmp_path / "b2a.pth").is_file()

    # the official name says the direction: G_B translates B -> A
    r = invoke("import", tmp_path / "h2z" / "latest_net_G_B.pth", "--name", "b2a")
    assert r.exit_code == 0, r.output
    assert "direction BtoA" in r.stderr
    mine = json.loads(invoke("evaluate", "--pretrained", "b2a", "--dataset", cyc[1], "--mode", "eval").stdout)
    # an imported file says nothing of its training size: it is scored at the official 256 pixels
    assert (mine["pretrained"], mine["image_size"], list(mine["directions"])) == ("b2a", 256, ["BtoA"])
    want = sum(scores.image_scores(out, truth)["l1"] for out, truth in _translated(home, cyc[1], "BtoA", 256)) / 3
    assert mine["directions"]["BtoA"]["l1"] == pytest.approx(want, abs=2e-4)
    two = f"{cyc[1] / 'trainA'}:{cyc[1] / 'trainB'}"
    line = error_line(invoke("evaluate", "--pretrained", "b2a", "--dataset", two))
    assert "has no test split" in line and "A_DIR:B_DIR are training images only" in line


def test_pt2_of_either_direction_computes_its_generator(home, tmp_path):
    r = invoke("export", "cyclegan/c", "--format", "pt2", "--direction", "BtoA", "-o", tmp_path / "b2a.pt2")
    assert r.exit_code == 0, r.output
    assert "on inputs 1x3x8x8, 2x3x8x12" in r.stderr  # the ResNet's smallest image: two multiples of 4
    program = torch.export.load(tmp_path / "b2a.pt2").module()
    gen = inference.load_generator(_ckpt(home) / "G_B" / "generator.safetensors", "cpu")
    x = torch.rand(3, 3, 20, 28) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(program(x), gen.net(x), atol=1e-4, rtol=1e-4)
    extra = {"ganctl.json": ""}
    torch.export.load(tmp_path / "b2a.pt2", extra_files=extra)
    meta = json.loads(extra["ganctl.json"])
    assert (meta["inputs"], meta["direction"], meta["size_multiple"], meta["min_size"]) == ("image", "BtoA", "4", "8")
    line = error_line(invoke("export", "--pretrained", "x", "--direction", "AtoB", "--format", "pt2", "-o", tmp_path / "x"))
    assert "a pretrained model translates one way" in line


@pytest.mark.slow
def test_onnx_of_the_default_direction(home, tmp_path):
    onnx = pytest.importorskip("onnx")
    r = invoke("export", "cyclegan/c", "--format", "onnx", "-o", tmp_path / "a2b.onnx")
    assert r.exit_code == 0, r.output
    props = {p.key: p.value for p in onnx.load(tmp_path / "a2b.onnx").metadata_props}
    assert (props["family"], props["direction"], props["inputs"]) == ("cyclegan", "AtoB", "image")


def test_the_report_heads_each_band_of_the_pictures_and_shows_the_val_numbers(home, tmp_path):
    r = invoke("report", "cyclegan/c", "-o", tmp_path / "r")
    assert r.exit_code == 0, r.output
    html = (tmp_path / "r" / "index.html").read_text()
    band_a = '<div class="cols"><span>A</span><span>A-&gt;B</span><span>A-&gt;B-&gt;A</span></div>'
    band_b = '<div class="cols"><span>B</span><span>B-&gt;A</span><span>B-&gt;A-&gt;B</span></div>'
    # A's heads above each picture (its first rows), B's below it (its last rows)
    assert html.count(band_a) == html.count(band_b) == 2
    assert html.index(band_a) < html.index('alt="cyclegan/c epoch 1"') < html.index(band_b)
    assert "Translations each way and back, every epoch" in html and "input</span>" not in html
    for key in ("val_l1", "val_psnr", "val_ssim"):
        assert f"<th>{key}</th>" in html
    assert "cyclegan/c progress" in html  # progress.gif


def test_list_prune_and_rm_take_the_nested_checkpoint_folders(cyc, tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("GANCTL_HOME", str(home))
    r = invoke("train", "cyclegan", "--dataset", cyc[1], *TINY, "--epochs", 2, "--keep", 2, "--name", "p", "-q")
    assert r.exit_code == 0, r.output
    root = home / "runs" / "cyclegan" / "p" / "checkpoints"
    listing = invoke("list").output
    assert "cyclegan/p" in listing and "2/2" in listing

    # a damaged G_B of the newest checkpoint: translate falls back a checkpoint, resume moves it aside
    (root / "epoch_0002" / "G_B" / "generator.safetensors").write_bytes(b"\0" * 64)
    r = invoke("translate", cyc[1] / "testB" / "1_B.png", "-o", tmp_path / "o.png", "--direction", "BtoA", "--mode", "eval")
    assert r.exit_code == 0, r.output
    assert "skipping" in r.stderr and "epoch_0001" in r.stderr
    r = invoke("train", "cyclegan", "--resume", "--name", "p", "--epochs", 2, "--precision", "fp32", "-q")
    assert r.exit_code == 0, r.output
    assert "skipping checkpoint epoch_0002" in r.stderr and (root / ".broken-epoch_0002").is_dir()

    r = invoke("prune", "cyclegan/p", "--dry-run")
    assert "delete  epoch_0001" in r.stderr and "delete  .broken-epoch_0002  " in r.stderr
    assert "keep    epoch_0002" in r.stderr  # the resume saved it again
    assert invoke("prune", "cyclegan/p", "--keep", 1, "--yes").exit_code == 0
    assert sorted(p.name for p in root.iterdir()) == ["epoch_0002", "latest"]
    assert sorted(p.name for p in (root / "epoch_0002").iterdir()) == [
        "D_A", "D_B", "G_A", "G_B", "position.json", "trainer.pt"]
    assert invoke("rm", "cyclegan/p", "--yes").exit_code == 0
    assert not (home / "runs" / "cyclegan" / "p").exists()
