"""``-o`` of sample, interpolate, translate, export and report: one behaviour for all five. A
read-only file is refused, as a shell's ``>`` refuses it; a device is written through."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest
from PIL import Image

from ganctl.core import atomic
from ganctl.core.errors import StoreError
from tests import test_images_input
from tests.conftest import error_line, invoke, make_image_folder, train_in_own_store

p2p_home = test_images_input.p2p_home  # fixture: a tiny pix2pix store


@pytest.fixture(scope="module")
def both(tmp_path_factory, p2p_home):
    """One store with dcgan run 'a' and the tiny pix2pix run."""
    faces = tmp_path_factory.mktemp("data") / "faces"
    make_image_folder(faces, n=16, size=(16, 16))
    home = train_in_own_store(tmp_path_factory, "dcgan", "--dataset", faces, "--name", "a", "--epochs", "1",
                              "--batch-size", "8", "--image-size", "16")
    shutil.copytree(p2p_home / "runs" / "pix2pix", home / "runs" / "pix2pix")
    return home


@pytest.fixture
def home(both, monkeypatch, tmp_path):
    monkeypatch.setenv("GANCTL_HOME", str(both))
    Image.new("RGB", (40, 30), "blue").save(tmp_path / "in.png")
    return both


def _p2p(home: Path) -> str:
    return "pix2pix/" + next((home / "runs" / "pix2pix").iterdir()).name


def _commands(home: Path, tmp_path: Path, out: Path) -> dict[str, list]:
    return {
        "sample": ["sample", "dcgan", "--run", "a", "-n", 4, "-o", out],
        "interpolate": ["interpolate", "dcgan", "--run", "a", "--steps", 3, "-o", out],
        "translate": ["translate", tmp_path / "in.png", "--run", _p2p(home), "-o", out],
        "export": ["export", _p2p(home), "-o", out],
        "report": ["report", "dcgan/a", "-o", out],
    }


COMMANDS = ("sample", "interpolate", "translate", "export", "report")
SUFFIX = {"export": ".pth", "report": ".html"}


@pytest.mark.parametrize("command", COMMANDS)
def test_a_read_only_output_file_is_refused_and_kept(home, tmp_path, command):
    out = tmp_path / f"kept{SUFFIX.get(command, '.png')}"
    out.write_bytes(b"keep me")
    out.chmod(0o444)
    line = error_line(invoke(*_commands(home, tmp_path, out)[command]))
    assert line == f"error: {out} is read-only: make it writable (chmod u+w) or write to another path", line
    assert out.read_bytes() == b"keep me" and stat.S_IMODE(out.stat().st_mode) == 0o444


@pytest.mark.parametrize("command", COMMANDS)
def test_a_character_device_is_written_through_by_every_command(home, tmp_path, command):
    if not os.access("/dev/null", os.W_OK):
        pytest.skip("no writable /dev/null")
    r = invoke(*_commands(home, tmp_path, Path("/dev/null"))[command])
    assert r.exit_code == 0, r.output
    assert stat.S_ISCHR(os.lstat("/dev/null").st_mode)
    assert not list(Path("/dev").glob(".null.*"))  # nothing written beside it


def test_a_replaced_output_keeps_its_mode_as_a_shell_redirection_does(tmp_path):
    out = tmp_path / "private.png"
    out.write_bytes(b"old")
    out.chmod(0o600)
    atomic.atomic_write(out, b"new")
    assert out.read_bytes() == b"new" and stat.S_IMODE(out.stat().st_mode) == 0o600
    # through a link, the target's mode, and a read-only target is refused
    link = tmp_path / "link.png"
    link.symlink_to(out)
    out.chmod(0o444)
    with pytest.raises(StoreError, match="is read-only"):
        atomic.atomic_write(link, b"newer")
    assert out.read_bytes() == b"new" and link.is_symlink()


@pytest.mark.parametrize("command", ("sample", "interpolate", "translate"))
@pytest.mark.parametrize("case", ("read-only", "under a file"))
def test_an_unwritable_output_is_refused_before_the_model_is_loaded(home, tmp_path, monkeypatch, command, case):
    from ganctl.use import inference

    def loaded(*a, **k):
        raise AssertionError("the model was loaded before -o was checked")

    monkeypatch.setattr(inference, "load_generator", loaded)
    if case == "read-only":
        out = tmp_path / "kept.png"
        out.write_bytes(b"keep me")
        out.chmod(0o444)
        want = f"error: {out} is read-only: make it writable (chmod u+w) or write to another path"
    else:
        (tmp_path / "file").write_bytes(b"")
        out = tmp_path / "file" / "sub" / "out.png"
        want = f"error: cannot write {out}: {tmp_path / 'file'} is a file, not a folder"
    assert error_line(invoke(*_commands(home, tmp_path, out)[command])) == want
