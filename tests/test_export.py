"""`ganctl export --format onnx|pt2`: every family's generator as ONNX (run in onnxruntime) or a
torch.export program (loaded without ganctl), checked against PyTorch before it is written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ganctl import models
from ganctl.config import make_config
from ganctl.families import registry
from ganctl.store import checkpoint, genspec
from ganctl.use import inference
from tests.conftest import error_line, invoke, train_in_own_store

onnx = pytest.importorskip("onnx", reason='the export extra is not installed: pip install "ganctl[export]"')
ort = pytest.importorskip("onnxruntime", reason='the export extra is not installed: pip install "ganctl[export]"')
pytest.importorskip("onnxscript", reason='the export extra is not installed: pip install "ganctl[export]"')

CPU = torch.device("cpu")
TINY_P2P = ["--epochs", 1, "--image-size", 32, "--ngf", 2, "--ndf", 2, "--batch-size", 32]  # unet_32: multiples of 32


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One store with a tiny dcgan, cgan and pix2pix run, shared by the tests that only read it."""
    home = train_in_own_store(tmp_path_factory, "dcgan", "--dataset", "digits", "--epochs", 1, "--batch-size", 64,
                              "--image-size", 16, "--name", "d")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANCTL_HOME", str(home))
        for args in (["cgan", "--dataset", "digits", "--epochs", 1, "--batch-size", 64, "--image-size", 8, "--name", "c"],
                     ["pix2pix", "--dataset", "synthetic-facades", *TINY_P2P, "--name", "p"]):
            r = invoke("train", *args)
            assert r.exit_code == 0, r.output
    return home


@pytest.fixture
def runs(store, monkeypatch):
    monkeypatch.setenv("GANCTL_HOME", str(store))
    return store / "runs"


def exported(tmp_path, *args) -> tuple[Path, str]:
    """Run ``ganctl export ARGS -o tmp_path/out``; (the path on stdout, stderr)."""
    r = invoke("export", *args, "-o", str(tmp_path) + "/")
    assert r.exit_code == 0, r.output
    out = Path(r.stdout.strip())
    assert out.parent == tmp_path and out.is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]  # no temporary file left
    return out, r.stderr


def verified_difference(stderr: str) -> float:
    line = next(ln for ln in stderr.splitlines() if ln.startswith("verified: max abs difference"))
    return float(line.split("difference ")[1].split()[0])


def session(path: Path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def props(path: Path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


def generator_of(run: Path):
    return inference.load_generator(run / "checkpoints" / "epoch_0001" / genspec.GENERATOR, CPU)


DOCS = Path(__file__).resolve().parents[1] / "docs" / "export.md"


def docs_snippet(needle: str) -> str:
    """The python block of docs/export.md that contains ``needle``."""
    import re

    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), flags=re.S)
    return next(b for b in blocks if needle in b)


def dims(value_info) -> list:
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def test_dcgan_run_as_onnx_matches_pytorch(runs, tmp_path):
    out, err = exported(tmp_path, "dcgan/d", "--format", "onnx")
    assert out.name == "generator.onnx" and 0 <= verified_difference(err) <= 1e-3
    s = session(out)
    assert [i.name for i in s.get_inputs()] == ["z"] and [o.name for o in s.get_outputs()] == ["output"]
    model = onnx.load(str(out))
    assert dims(model.graph.input[0]) == ["batch", 100] and dims(model.graph.output[0]) == ["batch", 1, 16, 16]
    gen = generator_of(runs / "dcgan" / "d")
    z = inference.latents(5, 100, seed=7)  # a batch size it was neither traced nor checked at
    got = s.run(None, {"z": z.numpy()})[0]
    np.testing.assert_allclose(got, inference.generate(gen, z).numpy(), atol=1e-4)
    meta = props(out)
    assert (meta["family"], meta["z_dim"], meta["image_size"], meta["mode"], meta["inputs"]) == ("dcgan", "100", "16", "eval", "z")
    assert meta["ganctl_version"] == gen.meta["ganctl_version"] and "127.5" in meta["normalisation"]
    assert json.loads(meta["ganctl_spec"])["generator"] == gen.meta["generator"]


def test_cgan_run_as_onnx_takes_the_label_as_a_second_input(runs, tmp_path, monkeypatch):
    out, err = exported(tmp_path, "cgan/c", "--format", "onnx")
    assert verified_difference(err) <= 1e-3
    s = session(out)
    assert [(i.name, i.type) for i in s.get_inputs()] == [("z", "tensor(float)"), ("label", "tensor(int64)")]
    gen = generator_of(runs / "cgan" / "c")
    z = inference.latents(4, gen.z_dim, seed=3)
    labels = torch.tensor([0, 9, 4, 4])
    got = s.run(None, {"z": z.numpy(), "label": labels.numpy()})[0]
    np.testing.assert_allclose(got, inference.generate(gen, z, labels).numpy(), atol=1e-4)
    other = s.run(None, {"z": z.numpy(), "label": np.zeros(4, dtype=np.int64)})[0]
    assert np.abs(other[1] - got[1]).max() > 1e-3  # the label changes the image
    meta = props(out)
    assert meta["inputs"] == "z, label" and json.loads(meta["classes"]) == [str(i) for i in range(10)]

    # the sampling snippet of docs/export.md draws a 7 with it
    (tmp_path / "digits.onnx").write_bytes(out.read_bytes())
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(docs_snippet("digits.onnx"), str(DOCS), "exec"), scope)
    z = torch.from_numpy(scope["z"])
    want = (inference.generate(gen, z, torch.full((8,), 7)) + 1) * 127.5
    np.testing.assert_allclose(scope["images"], want.numpy(), atol=1e-3)


def test_pix2pix_run_as_onnx_in_eval_and_paper_mode(runs, tmp_path, monkeypatch):
    gen = generator_of(runs / "pix2pix" / "p")
    x = torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(1)) * 2 - 1  # dynamic H and W
    out, err = exported(tmp_path / "eval", "pix2pix/p", "--format", "onnx")
    assert "on inputs 1x3x32x32, 2x3x32x64" in err
    s = session(out)
    assert dims(onnx.load(str(out)).graph.input[0]) == ["batch", 3, "32*height_blocks", "32*width_blocks"]
    eval_out = s.run(None, {"image": x.numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(eval_out, gen.net(x).numpy(), atol=1e-4)
    assert props(out)["size_multiple"] == "32" and props(out)["direction"] == "BtoA"

    # the ten lines of docs/export.md translate an image with it, as ganctl translate --mode eval does
    snippet = docs_snippet("facades.onnx")
    assert len(snippet.strip().splitlines()) <= 10
    monkeypatch.chdir(tmp_path)
    (tmp_path / "facades.onnx").write_bytes(out.read_bytes())
    from PIL import Image

    Image.new("RGB", (70, 40), (200, 30, 90)).save(tmp_path / "labels.png")
    exec(compile(snippet, str(DOCS), "exec"), {})
    photo = Image.open(tmp_path / "photo.png")
    assert photo.size == (64, 32) and photo.mode == "RGB"
    expected = inference.translate_image(gen, Image.open(tmp_path / "labels.png").resize((64, 32), Image.BICUBIC),
                                         mode="eval")
    assert np.abs(np.asarray(photo, dtype=int) - np.asarray(expected, dtype=int)).max() <= 1

    paper, err = exported(tmp_path / "paper", "pix2pix/p", "--format", "onnx", "--mode", "paper")
    assert verified_difference(err) <= 1e-3 and props(paper)["mode"] == "paper"
    one = x[:1]
    paper_out = session(paper).run(None, {"image": one.numpy()})[0]
    # what ganctl translate --mode paper computes (batch statistics), with dropout at its expectation
    for m in gen.net.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    with torch.no_grad(), inference.paper_mode(gen.net):
        np.testing.assert_allclose(paper_out, gen.net(one).numpy(), atol=1e-4)
    assert np.abs(paper_out - eval_out[:1]).max() > 1e-2  # the modes differ: stored vs the input's statistics


LOAD_WITHOUT_GANCTL = """
import sys
sys.modules["ganctl"] = None  # any import of ganctl now fails: the file must load without it
import torch
program = torch.export.load(sys.argv[1])
z = torch.load(sys.argv[2])
torch.save(program.module()(z), sys.argv[3])
print(sorted(m for m, v in sys.modules.items() if m.startswith("ganctl") and v is not None))
"""


def test_pt2_loads_in_a_process_without_ganctl(runs, tmp_path):
    out, err = exported(tmp_path / "pt2", "dcgan/d", "--format", "pt2")
    assert out.name == "generator.pt2" and verified_difference(err) <= 1e-3
    z = inference.latents(3, 100, seed=5)
    torch.save(z, tmp_path / "z.pt")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([sys.executable, "-c", LOAD_WITHOUT_GANCTL, out, tmp_path / "z.pt", tmp_path / "y.pt"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
    gen = generator_of(runs / "dcgan" / "d")
    torch.testing.assert_close(torch.load(tmp_path / "y.pt"), inference.generate(gen, z), atol=1e-5, rtol=0)
    extra = {"ganctl.json": ""}
    torch.export.load(out, extra_files=extra)
    assert json.loads(extra["ganctl.json"])["family"] == "dcgan"


def _generator_file(folder: Path, family: str, arch: str | None) -> Path:
    """A freshly initialised generator of ``family`` saved as ganctl does, with random batch-norm statistics."""
    key, _ = registry.get(family).preset_for("digits" if family != "pix2pix" else "facades")
    paired = family == "pix2pix"
    cfg = make_config(family, "digits", "t", channels=3 if paired else 1, preset_key=key, arch=arch,
                      classes=tuple("0123456789") if family == "cgan" else None, image_size=32 if paired else 16,
                      generator_overrides={"ngf": 2} if paired else None)
    torch.manual_seed(0)
    net = models.build_generator(cfg.arch, cfg.generator)
    for m in net.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
    path = folder / genspec.GENERATOR
    checkpoint.save_generator(path, net, genspec.for_run(cfg))
    return path


# with the runs above, every generator architecture: mlp (gan, cgan), dcgan (dcgan, wgan, wgan-gp),
# cdcgan (cgan --arch conv) and the U-Net (pix2pix)
@pytest.mark.parametrize(("family", "arch"), [("gan", None), ("wgan-gp", None), ("cgan", "conv")])
def test_every_architecture_exports_to_onnx(tmp_path, family, arch):
    from ganctl.export import exporter

    src = _generator_file(tmp_path, family, arch)
    done = exporter.export(src, "onnx", tmp_path / "g.onnx")
    assert done.path == tmp_path / "g.onnx" and 0 <= done.max_diff <= 1e-3
    assert props(done.path)["family"] == family


def test_a_mismatch_is_one_line_and_writes_nothing(runs, tmp_path, monkeypatch):
    from ganctl.export import graph

    prepare = graph.prepare

    def off_by_a_half(*args, **kwargs):
        traced = prepare(*args, **kwargs)
        traced.expected = [e + 0.5 for e in traced.expected]
        return traced

    monkeypatch.setattr(graph, "prepare", off_by_a_half)
    out = tmp_path / "o"
    out.mkdir()
    for fmt in ("onnx", "pt2"):
        line = error_line(invoke("export", "dcgan/d", "--format", fmt, "-o", out / f"g.{fmt}"))
        assert "differs from the PyTorch generator by 0.5 (max abs, limit 0.001)" in line and "nothing written" in line
    assert list(out.iterdir()) == []


def test_missing_onnx_libraries_name_the_extra(runs, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    line = error_line(invoke("export", "dcgan/d", "--format", "onnx", "-o", tmp_path / "g.onnx"))
    assert line == 'error: --format onnx needs onnxruntime, which is not installed: pip install "ganctl[export]"'
    assert not (tmp_path / "g.onnx").exists()


def test_corrupt_and_unknown_runs_and_wrong_options_are_one_line(runs, tmp_path):
    assert "no dcgan run named 'nope'" in error_line(invoke("export", "dcgan/nope", "--format", "onnx", "-o", tmp_path / "g.onnx"))
    line = error_line(invoke("export", "dcgan/d", "--format", "tflite", "-o", tmp_path / "g"))
    assert line == "error: unknown --format 'tflite': use one of onnx, pt2, official"
    line = error_line(invoke("export", "dcgan/d", "--format", "onnx", "--mode", "train", "-o", tmp_path / "g"))
    assert line == "error: unknown --mode 'train': use eval or paper"
    line = error_line(invoke("export", "dcgan/d", "--format", "onnx", "--mode", "paper", "-o", tmp_path / "g"))
    assert "--mode paper is pix2pix's test-time behaviour" in line
    assert "--mode applies to --format onnx and pt2" in error_line(invoke("export", "pix2pix/p", "--mode", "paper", "-o", tmp_path / "g"))
    assert "(--format onnx or pt2 export any generator)" in error_line(invoke("export", "dcgan/d", "-o", tmp_path / "g.pth"))

    corrupt = tmp_path / "corrupt" / genspec.GENERATOR
    corrupt.parent.mkdir()
    data = (runs / "dcgan" / "d" / "checkpoints" / "epoch_0001" / genspec.GENERATOR).read_bytes()
    corrupt.write_bytes(data[: len(data) // 2])
    line = error_line(invoke("export", "--checkpoint", corrupt, "--format", "onnx", "-o", tmp_path / "g.onnx"))
    assert "it may be truncated" in line
    assert not (tmp_path / "g.onnx").exists() and not (tmp_path / "g").exists()


def test_a_run_whose_only_checkpoint_is_damaged_is_one_line(runs, tmp_path):
    import shutil

    damaged = runs / "dcgan" / "damaged"
    shutil.copytree(runs / "dcgan" / "d", damaged)
    try:
        generator = damaged / "checkpoints" / "epoch_0001" / genspec.GENERATOR
        generator.write_bytes(generator.read_bytes()[:1000])
        line = error_line(invoke("export", "dcgan/damaged", "--format", "pt2", "-o", tmp_path / "g.pt2"))
        assert "run dcgan/damaged has no readable checkpoint" in line
        assert not (tmp_path / "g.pt2").exists()
    finally:
        shutil.rmtree(damaged)
