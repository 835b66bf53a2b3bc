"""The digits demos shipped in the package (ganctl/demos/), used as pretrained models in place, and
what sample, interpolate and translate say and do around them. No training: the shipped files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from ganctl import demos
from ganctl.store import genspec, pretrained
from tests.conftest import error_line, invoke, train_in_own_store

ROOT = Path(__file__).resolve().parent.parent


def store_files(home: Path) -> list[str]:
    return sorted(p.relative_to(home).as_posix() for p in home.rglob("*") if p.is_file()) if home.exists() else []


@pytest.mark.parametrize("name", list(demos.DEMOS))
def test_each_demo_is_shipped_as_float16_with_its_spec(name):
    from safetensors.torch import load_file

    path = demos.path(name)
    assert path is not None and path.parent == demos.ROOT / name
    spec = json.loads(path.with_name(genspec.FILE).read_text())
    assert genspec.check(spec) == pretrained.read_meta(path)  # config.json and the header agree
    assert spec["family"] == demos.DEMOS[name] and spec["pretrained"] == name and spec["dataset"] == "digits"
    floats = [t for t in load_file(str(path)).values() if t.is_floating_point()]
    assert floats and all(str(t.dtype) == "torch.float16" for t in floats)


def test_the_demos_are_small_and_pip_install_ships_them():
    tomllib = pytest.importorskip("tomllib")
    total = sum(p.stat().st_size for p in demos.ROOT.rglob("*") if p.is_file())
    assert total < 5_000_000
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["ganctl.demos"]
    shipped = {p for g in globs for p in demos.ROOT.glob(g)}
    for name in demos.DEMOS:
        assert {demos.ROOT / name / demos.GENERATOR, demos.ROOT / name / genspec.FILE} <= shipped


def test_a_demo_loads_as_float32(_isolated_store):
    from ganctl.use import generators

    gen = generators.load("cgan", "cpu", pretrained="digits-cgan")
    assert {p.dtype for p in gen.net.parameters()} == {__import__("torch").float32}
    assert gen.path == demos.path("digits-cgan")


def test_sample_and_interpolate_use_a_demo_in_place_in_an_empty_store(_isolated_store, tmp_path):
    r = invoke("sample", "cgan", "--pretrained", "digits-cgan", "-o", tmp_path / "grid.png", "--seed", "1")
    assert r.exit_code == 0, r.output
    assert "using pretrained model digits-cgan" in r.stderr
    grid = Image.open(tmp_path / "grid.png")
    assert grid.height > grid.width > 0  # ten labelled rows of six

    r = invoke("interpolate", "cgan", "--label", "5", "--pretrained", "digits-cgan", "-o", tmp_path / "five.gif")
    assert r.exit_code == 0, r.output
    gif = Image.open(tmp_path / "five.gif")
    assert gif.n_frames >= 10  # the ten steps (and back)

    r = invoke("sample", "DCGAN", "--pretrained", "digits-dcgan", "-n", "16", "-o", tmp_path / "d.png")
    assert r.exit_code == 0, r.output
    assert store_files(_isolated_store) == []  # read from the package, nothing copied into the store


def test_a_demo_of_another_family_is_refused(_isolated_store, tmp_path):
    line = error_line(invoke("sample", "dcgan", "--pretrained", "digits-cgan", "-o", tmp_path / "x.png"))
    assert "holds a 'cgan' generator, not 'dcgan'" in line and "ganctl sample cgan" in line


@pytest.mark.parametrize("command", [["sample", "cgan"], ["interpolate", "cgan", "--label", "5"], ["sample", "dcgan"]])
def test_with_no_run_the_demo_is_named_not_used(_isolated_store, tmp_path, command):
    family = command[1]
    out = tmp_path / "x.png"
    line = error_line(invoke(*command, "-o", out))
    demo = demos.for_family(family)[0]
    assert line == (f"error: no {family} run in the store: train one with 'ganctl train {family} --dataset digits', "
                    f"or use the shipped demo: --pretrained {demo}")
    assert not out.exists()


def test_a_family_without_a_demo_is_told_to_train_or_pass_a_checkpoint(_isolated_store, tmp_path):
    line = error_line(invoke("sample", "wgan", "-o", tmp_path / "x.png"))
    assert line.endswith("train one with 'ganctl train wgan --dataset digits', or pass --checkpoint")


def test_no_run_is_answered_before_torch_is_imported(_isolated_store):
    code = ("import sys\nfrom ganctl.cli import main\nsys.argv = ['ganctl'] + sys.argv[1:]\n"
            "try:\n    main()\nexcept SystemExit as e:\n    print(e.code, 'torch' in sys.modules)\n")
    r = subprocess.run([sys.executable, "-c", code, "interpolate", "cgan", "--label", "5"], capture_output=True,
                       text=True, timeout=60, cwd=ROOT)
    assert r.stdout.split() == ["1", "False"], r.stdout + r.stderr
    assert "--pretrained digits-cgan" in r.stderr


def test_an_unknown_pretrained_name_lists_the_shipped_demos(_isolated_store, tmp_path):
    line = error_line(invoke("sample", "cgan", "--pretrained", "digits-cgn", "-o", tmp_path / "x.png"))
    assert "Shipped with ganctl: digits-dcgan, digits-cgan." in line


def test_list_shows_the_shipped_demos(_isolated_store):
    r = invoke("list")
    assert r.exit_code == 0, r.output
    rows = {ln.split()[0]: ln for ln in r.stderr.splitlines() if ln.strip()}
    for name in demos.DEMOS:
        assert "shipped" in rows[name]
    assert [m["name"] for m in pretrained.installed()] == []  # the store's own listing stays the store's



def test_list_with_no_runs_suggests_a_full_training_or_the_demo(_isolated_store):
    r = invoke("list")
    said = " ".join((r.stdout + r.stderr).split())  # rich may wrap the line
    assert "'ganctl train dcgan --dataset digits'" in said and "--epochs 2" not in said  # 2 epochs sample noise
    assert "--pretrained digits-dcgan" in said

# ---------------------------------------------------------------- translate: an input the user has


def test_write_example_writes_a_synthetic_facades_label_map(_isolated_store, tmp_path):
    from ganctl.data.synthetic_facades import FACADES_PALETTE

    out = tmp_path / "labels.png"
    r = invoke("translate", "--write-example", out)
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == str(out)
    img = Image.open(out)
    assert img.size == (256, 256) and img.mode == "RGB"
    assert {c for _, c in img.getcolors()} <= set(FACADES_PALETTE)
    assert store_files(_isolated_store) == []  # drawn, not read from the store


def test_translate_without_source_is_a_usage_error(_isolated_store):
    r = invoke("translate")
    assert r.exit_code == 2 and "Missing argument 'SOURCE...'" in r.output and "Usage:" in r.output


@pytest.fixture(scope="module")
def p2p_home(tmp_path_factory):
    return train_in_own_store(tmp_path_factory, "pix2pix", "--dataset", "synthetic-facades", "--epochs", "1",
                              "--image-size", "32", "--ngf", "2", "--ndf", "2", "--batch-size", "32")


def test_translate_warns_once_about_an_a_b_pair(p2p_home, monkeypatch, tmp_path):
    monkeypatch.setenv("GANCTL_HOME", str(p2p_home))
    pair = next((p2p_home / "datasets").rglob("val/1.png"))  # a dataset image: rendering | label map
    r = invoke("translate", pair, "-o", tmp_path / "out.png")
    assert r.exit_code == 0, r.output
    warnings = [ln for ln in r.stderr.splitlines() if ln.startswith("warning:")]
    assert len(warnings) == 1 and "looks like an A|B pair" in warnings[0] and "--write-example" in warnings[0]

    r = invoke("translate", "--write-example", tmp_path / "labels.png")
    r = invoke("translate", tmp_path / "labels.png", "-o", tmp_path / "facade.png")
    assert r.exit_code == 0, r.output
    assert "warning" not in r.stderr and Image.open(tmp_path / "facade.png").size == (256, 256)
