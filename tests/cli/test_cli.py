from __future__ import annotations

import json

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from ganctl import __version__
from ganctl.cli import app
from tests.conftest import make_image_folder

runner = CliRunner()

# tiny settings so a CLI training run takes about a second
FAST = ["--epochs", "1", "--batch-size", "8", "--image-size", "16"]


def invoke(*args, **kw):
    return runner.invoke(app, [str(a) for a in args], **kw)


def one_error_line(result, code=1):
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    return lines[0]


@pytest.fixture
def faces(tmp_path):
    # RGB images of mixed sizes, like a folder of photos
    make_image_folder(tmp_path / "faces", n=24, size=lambda i: (20 + i % 5, 16 + i % 7))
    return tmp_path / "faces"


def test_version_and_help():
    r = invoke("--version")
    assert r.exit_code == 0 and r.stdout.strip() == f"ganctl {__version__}"
    r = invoke("--help")
    assert r.exit_code == 0 and "train" in r.stdout and "interpolate" in r.stdout


def test_dcgan_folder_train_sample_interpolate(faces, tmp_path, _isolated_store):
    r = invoke("train", "dcgan", "--dataset", faces, *FAST)
    assert r.exit_code == 0, r.output
    run_dir = _isolated_store.resolve() / "runs" / "dcgan" / "faces"
    assert r.stdout.strip().splitlines()[-1] == str(run_dir)
    assert "epoch 1/1" in r.stderr  # one line per epoch when stderr is not a terminal
    cfg = json.loads((run_dir / "config.json").read_text())
    assert (cfg["channels"], cfg["image_size"], cfg["preset"]) == (3, 16, "rgb")

    grid = tmp_path / "grid.png"
    r = invoke("sample", "dcgan", "-n", 9, "-o", grid, "--seed", 1)
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == str(grid) and "using run dcgan/faces" in r.stderr
    img = Image.open(grid)
    assert img.mode == "RGB" and img.width == img.height  # 3x3 cells
    again = tmp_path / "again.png"
    invoke("sample", "dcgan", "-n", 9, "-o", again, "--seed", 1)
    assert again.read_bytes() == grid.read_bytes()  # same seed, same images

    r = invoke("sample", "dcgan", "-n", 3, "-o", str(tmp_path / "each") + "/", "--seed", 2)
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "each").iterdir()) == ["sample_000.png", "sample_001.png", "sample_002.png"]
    assert Image.open(tmp_path / "each" / "sample_000.png").size == (16, 16)

    strip = tmp_path / "walk.png"
    r = invoke("interpolate", "dcgan", "--steps", 5, "-o", strip, "--seed", 3)
    assert r.exit_code == 0, r.output
    w, h = Image.open(strip).size
    assert w > 4 * h  # one row of 5 frames
    gif = tmp_path / "walk.gif"
    r = invoke("interpolate", "dcgan", "--steps", 4, "--rows", 2, "--method", "slerp", "-o", gif)
    assert r.exit_code == 0, r.output
    anim = Image.open(gif)
    assert anim.format == "GIF" and anim.info.get("loop") == 0
    # (Pillow merges identical frames, and a 1-epoch model barely depends on z: the frame
    # count is checked in test_images with distinct frames)


def test_gan_on_digits_with_resume(_isolated_store):
    r = invoke("train", "gan", "--dataset", "digits", "--epochs", "1", "--name", "d")
    assert r.exit_code == 0, r.output
    r = invoke("train", "gan", "--resume", "--epochs", "2")
    assert r.exit_code == 0, r.output
    assert "resuming from checkpoints/epoch_0001" in r.stderr and "epoch 2/2" in r.stderr
    run_dir = _isolated_store.resolve() / "runs" / "gan" / "d"
    assert json.loads((run_dir / "config.json").read_text())["epochs"] == 2
    r = invoke("train", "gan", "--resume", "--name", "d", "--lr", "0.1")
    one_error_line(r)
    r = invoke("train", "gan", "--dataset", "digits", "--name", "d")
    assert "already exists" in one_error_line(r)
    r = invoke("sample", "gan", "--run", "d", "-o", run_dir.parent / "s.png", "--seed", "0")
    assert r.exit_code == 0, r.output
    assert Image.open(run_dir.parent / "s.png").mode == "L"


def test_checkpoint_option_takes_a_generator_file(faces, tmp_path, _isolated_store):
    assert invoke("train", "dcgan", "--dataset", faces, "--name", "x", *FAST).exit_code == 0
    gen = _isolated_store.resolve() / "runs" / "dcgan" / "x" / "checkpoints" / "epoch_0001" / "generator.safetensors"
    r = invoke("sample", "dcgan", "--checkpoint", gen, "-n", 4, "-o", tmp_path / "c.png")
    assert r.exit_code == 0, r.output
    r = invoke("sample", "gan", "--checkpoint", gen, "-o", tmp_path / "c2.png")
    assert "not 'gan'" in one_error_line(r)


def test_list_and_rm(faces, _isolated_store):
    assert invoke("train", "dcgan", "--dataset", faces, "--name", "keep", *FAST).exit_code == 0
    assert invoke("train", "dcgan", "--dataset", faces, "--name", "drop", *FAST).exit_code == 0
    r = invoke("list")
    assert r.exit_code == 0 and "dcgan/keep" in r.stderr and "1/1" in r.stderr and "digits" in r.stderr
    assert invoke("list", "--runs").stdout.split() == ["dcgan/keep", "dcgan/drop"]
    r = invoke("rm", "dcgan/drop", "--dry-run")
    assert "no files were deleted" in r.stderr and (_isolated_store / "runs" / "dcgan" / "drop").exists()
    r = invoke("rm", "dcgan/drop")  # no terminal to confirm on
    assert "--yes" in one_error_line(r)
    r = invoke("rm", "dcgan/drop", "--yes")
    assert r.exit_code == 0 and r.stdout.strip() == "dcgan/drop"
    assert not (_isolated_store / "runs" / "dcgan" / "drop").exists()
    assert invoke("list", "--runs").stdout.split() == ["dcgan/keep"]


def test_env_reports_store_and_device(_isolated_store):
    r = invoke("env")
    assert r.exit_code == 0
    assert str(_isolated_store.resolve()) in r.stdout and "torch" in r.stdout and "training device" in r.stdout


def test_ganctl_home_holds_everything(faces, tmp_path, monkeypatch):
    home = tmp_path / "elsewhere"
    monkeypatch.setenv("GANCTL_HOME", str(home))
    assert invoke("train", "dcgan", "--dataset", faces, *FAST).exit_code == 0
    assert (home / "runs" / "dcgan" / "faces" / "config.json").is_file()


@pytest.mark.parametrize(
    "args, expect",
    [
        (["train", "dcgn", "--dataset", "digits"], "Did you mean 'dcgan'"),
        (["train", "dcgan", "--dataset", "mnsit"], "Did you mean 'mnist'"),
        (["train", "dcgan"], "--dataset"),
        (["train", "dcgan", "--dataset", "digits", "--name", "../x"], "invalid run name"),
        (["train", "dcgan", "--dataset", "digits", "--epochs", "0"], "at least 1"),
        (["train", "dcgan", "--dataset", "digits", "--image-size", "48"], "power of two"),
        (["train", "dcgan", "--dataset", "./no/such/folder"], "does not exist"),
        (["train", "dcgan", "--dataset", "digits", "--device", "tpu"], "unknown device"),
        (["sample", "dcgan"], "no dcgan run"),
        (["sample", "stylegan"], "unknown model"),
        (["train", "dcgan", "--dataset", "digits", "--clip", "0.1"], "applies to wgan"),
        (["train", "wgan", "--dataset", "digits", "--n-critic", "0"], "at least 1"),
        (["interpolate", "dcgan", "--method", "cubic"], "lerp or slerp"),
        (["train", "gan", "--resume"], "no gan run to resume"),
        (["rm", "nothing"], "no run named 'nothing'"),
    ],
)
def test_bad_input_is_one_clear_line(args, expect):
    line = one_error_line(invoke(*args))
    assert expect in line


def test_empty_image_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    assert "no images found" in one_error_line(invoke("train", "gan", "--dataset", tmp_path / "empty"))


def test_corrupt_checkpoint_is_one_clear_line(tmp_path):
    bad = tmp_path / "generator.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    assert "not a readable safetensors file" in one_error_line(invoke("sample", "dcgan", "--checkpoint", bad))
    missing = tmp_path / "nope.safetensors"
    assert "does not exist" in one_error_line(invoke("sample", "dcgan", "--checkpoint", missing))


def test_usage_errors_exit_2():
    r = invoke("train", "dcgan", "--epochs", "many")
    assert r.exit_code == 2


def test_debug_shows_the_traceback(monkeypatch):
    monkeypatch.setenv("GANCTL_DEBUG", "1")
    r = invoke("train", "dcgn", "--dataset", "digits")
    assert r.exit_code != 0 and r.exception is not None and type(r.exception).__name__ == "UnknownNameError"


def test_a_truncated_weights_file_in_a_run_is_reported(faces, tmp_path, _isolated_store):
    assert invoke("train", "dcgan", "--dataset", faces, "--name", "t", *FAST).exit_code == 0
    g = _isolated_store.resolve() / "runs" / "dcgan" / "t" / "checkpoints" / "epoch_0001" / "generator.safetensors"
    g.write_bytes(g.read_bytes()[: len(g.read_bytes()) // 2])
    line = one_error_line(invoke("sample", "dcgan", "-o", tmp_path / "x.png"))
    assert "generator.safetensors" in line
    assert not (tmp_path / "x.png").exists()
    assert torch.__version__  # torch is importable in tests; the CLI import-time check is in test_smoke


@pytest.mark.parametrize("family", ["wgan", "wgan-gp"])
def test_wasserstein_on_rgb_folder_with_a_corrupt_file(family, faces, tmp_path):
    (faces / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    r = invoke("train", family, "--dataset", faces, *FAST, "--n-critic", "2")
    assert r.exit_code == 0, r.output
    assert "corrupt.jpg" in r.stderr and "skipped 1 unreadable" in r.stderr
    assert "wasserstein=" in r.stderr and "critic_loss=" in r.stderr
    assert ("gp=" in r.stderr) == (family == "wgan-gp")
    grid = tmp_path / f"{family}.png"
    r = invoke("sample", family, "-n", 4, "-o", grid)
    assert r.exit_code == 0, r.output
    assert Image.open(grid).mode == "RGB"
    r = invoke("interpolate", family, "--steps", 3, "-o", tmp_path / f"{family}.gif")
    assert r.exit_code == 0, r.output


def test_resume_goes_on_in_the_precision_the_run_trained_in(_isolated_store):
    """--resume without --precision keeps the run's own (here fp32, which auto would not pick on a
    CPU with fast bf16), says so where it differs from this machine's choice, and records it."""
    r = invoke("train", "gan", "--dataset", "digits", "--epochs", "1", "--name", "p", "--precision", "fp32")
    assert r.exit_code == 0, r.output
    r = invoke("train", "gan", "--resume", "--name", "p", "--epochs", "2")
    assert r.exit_code == 0, r.output
    sessions = json.loads((_isolated_store.resolve() / "runs" / "gan" / "p" / "runtime.json").read_text())["sessions"]
    assert [s["precision"] for s in sessions] == ["fp32", "fp32"]


@pytest.mark.parametrize(("last", "fast_bf16", "device", "want", "says"), [
    ("fp32", True, "cpu", "fp32", "continuing in fp32"),
    ("bf16", True, "cpu", "bf16", None),
    ("bf16", False, "cpu", "fp32", "does not run natively"),  # emulated bf16 would be many times slower
    ("fp32", False, "cpu", "fp32", None),
    (None, True, "cpu", "bf16", None),  # a run without runtime.json: this machine's choice
])
def test_continued_precision(tmp_path, monkeypatch, last, fast_bf16, device, want, says):
    from ganctl.runtime import runtime
    from ganctl.train import resume

    monkeypatch.setattr(runtime, "cpu_has_fast_bf16", lambda: fast_bf16)
    if last:
        (tmp_path / "runtime.json").write_text(json.dumps({"sessions": [{"precision": "bf16"}, {"precision": last}]}))
    got, line = resume.continued_precision(tmp_path, torch.device(device))
    assert got == want
    assert (line is None) if says is None else (says in line)
