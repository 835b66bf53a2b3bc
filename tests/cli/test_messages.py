"""Messages: a full disk, a refused pickle, odd run names and --resume/--run mistakes are one clear line."""

from __future__ import annotations

import errno
import json
import os
import shutil
import tarfile

import pytest
import torch

from ganctl import atomic, checkpoint, store
from ganctl.data import archives
from ganctl.data import download as dl
from ganctl.errors import NoSpaceError, StoreError
from tests import httpserver
from tests.conftest import error_line, invoke, make_image_folder, targz, train_in_own_store

http_server = httpserver.http_server  # the fixture, for this module
FAST = ["--batch-size", "8", "--image-size", "16", "--seed", "1"]


def _enospc(*_a, **_k):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _clean(line):
    assert "internal error" not in line and "Traceback" not in line
    return line


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A store with dcgan run 'a', trained for 2 epochs once for the module."""
    faces = tmp_path_factory.mktemp("data") / "faces"
    make_image_folder(faces, n=16, size=(16, 16))
    return train_in_own_store(tmp_path_factory, "dcgan", "--dataset", faces, "--name", "a", "--epochs", "2", *FAST)


@pytest.fixture
def home(trained, _isolated_store):
    shutil.copytree(trained, _isolated_store)
    return _isolated_store


# ---------------------------------------------------------------- a full disk


def test_full_disk_writing_an_output_image_names_it(home, tmp_path, monkeypatch):
    from PIL import Image

    monkeypatch.setattr(Image.Image, "save", _enospc)
    out = tmp_path / "grid.png"
    line = _clean(error_line(invoke("sample", "dcgan", "-n", 4, "-o", out)))
    assert f"no space left on device writing {out}: free space" in line
    assert [p for p in tmp_path.iterdir() if "grid" in p.name] == []  # no temporary file left behind


def test_full_disk_in_an_atomic_store_write_suggests_another_home(home, monkeypatch):
    monkeypatch.setattr(type(home), "write_bytes", _enospc)
    dest = store.runs_dir() / "x.json"
    with pytest.raises(NoSpaceError) as info:
        atomic.atomic_write_json(dest, {"a": 1})
    assert str(info.value) == f"no space left on device writing {dest}: free space or set GANCTL_HOME to another disk"
    assert [p for p in dest.parent.iterdir() if "x.json" in p.name] == []


_statvfs = os.statvfs


def _full_disk_statvfs(path):
    st = _statvfs(path)
    return os.statvfs_result((st.f_bsize, st.f_frsize, st.f_blocks, 0, 0, *tuple(st)[5:]))


@pytest.mark.parametrize("writer", ["torch.save", "safetensors"])
def test_full_disk_while_saving_a_checkpoint_is_one_line(home, faces_folder, monkeypatch, writer):
    if writer == "torch.save":
        # torch.save given a path writes in C++: a full disk is a bare RuntimeError without errno
        def full(*_a, **_k):
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 496 vs 466")

        monkeypatch.setattr(checkpoint.torch, "save", full)
        monkeypatch.setattr(atomic.os, "statvfs", _full_disk_statvfs)
    else:
        from safetensors import SafetensorError

        def full(*_a, **_k):
            raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

        monkeypatch.setattr(checkpoint, "save_file", full)
    r = invoke("train", "dcgan", "--dataset", faces_folder, "--name", "full", "--epochs", "1", *FAST)
    line = _clean(error_line(r))
    assert "no space left on device writing " in line and "checkpoints" in line
    assert line.endswith("free space or set GANCTL_HOME to another disk")


@pytest.fixture
def faces_folder(tmp_path):
    make_image_folder(tmp_path / "faces", n=16, size=(16, 16))
    return tmp_path / "faces"


def test_full_disk_while_downloading_is_not_retried(http_server, tmp_path, monkeypatch):
    http_server.files["d.bin"] = b"x" * 1000
    monkeypatch.setattr(dl, "open", lambda path, mode="r", *a, **k: _FullFile() if "w" in mode or "a" in mode
                        else open(path, mode, *a, **k), raising=False)
    with pytest.raises(NoSpaceError, match=r"no space left on device writing .*d\.bin\.incomplete"):
        dl.download(dl.RemoteFile("d.bin", size=1000), [http_server.url], tmp_path / "d.bin", retries=3, timeout=5)
    assert len(http_server.requests) == 1  # asking the server again cannot free the disk


class _FullFile:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False

    def write(self, _data):
        _enospc()


@pytest.mark.parametrize("data_filter", [True, False], ids=["tarfile-data-filter", "older-python"])
def test_full_disk_while_extracting_names_the_folder(tmp_path, monkeypatch, data_filter):
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(targz({"facades/train/1.jpg": b"x" * 100}))
    if not data_filter:  # a Python before 3.10.12 / 3.11.4: archives writes the bytes itself
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    # the file an entry is written to: by tarfile (with the data filter), or by archives
    monkeypatch.setattr(tarfile.TarFile, "makefile", lambda *a, **k: _enospc())
    monkeypatch.setattr(archives, "open", lambda path, mode="r", *a, **k: _FullFile() if "w" in mode
                        else open(path, mode, *a, **k), raising=False)
    with pytest.raises(NoSpaceError, match="no space left on device writing .*extracted"):
        archives.extract(archive, tmp_path / "extracted")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tar.gz"]


def test_the_error_boundary_recognises_a_wrapped_full_disk(monkeypatch, tmp_path):
    from ganctl import sampling

    def wrapped(*_a, **_k):
        try:
            _enospc()
        except OSError as e:
            raise RuntimeError("writer failed") from e

    monkeypatch.setattr(sampling, "_generator", wrapped)
    line = _clean(error_line(invoke("sample", "dcgan", "-o", tmp_path / "x.png")))
    assert line.startswith("error: no space left on device writing")


# ---------------------------------------------------------------- refused pickles


class _System:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_import_of_a_pickle_calling_os_system_is_one_safe_line(tmp_path):
    src = tmp_path / "evil.pth"
    torch.save({"model.model.0.weight": _System()}, src)
    line = _clean(error_line(invoke("import", src, "--name", "evil")))
    assert "code ganctl will not run" in line and "system" in line and "only tensors are accepted" in line
    assert "weights_only" not in line and "Re-running" not in line


def test_a_trainer_state_with_code_in_it_is_refused_without_torchs_advice(home):
    ckpt = home / "runs" / "dcgan" / "a" / "checkpoints" / "epoch_0002"
    torch.save({"epoch": 2, "payload": _System()}, ckpt / checkpoint.TRAINER)
    with pytest.raises(checkpoint.CheckpointError) as info:
        checkpoint.load_trainer(ckpt)
    message = str(info.value)
    assert "code ganctl will not run" in message and "weights_only" not in message and "\n" not in message


# ---------------------------------------------------------------- run names


def test_a_run_name_with_a_trailing_newline_is_refused(faces_folder, _isolated_store):
    with pytest.raises(StoreError):
        store.check_name("a\n", "run name")
    line = _clean(error_line(invoke("train", "dcgan", "--dataset", faces_folder, "--name", "a\n", "--epochs", "1", *FAST)))
    assert "invalid run name" in line
    assert not (_isolated_store / "runs").exists()


def test_a_long_dataset_folder_gives_valid_default_run_names(tmp_path, _isolated_store):
    long = tmp_path / ("x" * 95 + "." + "y" * 30)
    make_image_folder(long, n=16, size=(16, 16))
    names = []
    for _ in range(2):
        r = invoke("train", "dcgan", "--dataset", long, "--epochs", "1", *FAST)
        assert r.exit_code == 0, r.output
        names.append(r.stdout.strip().splitlines()[-1].rsplit("/", 1)[-1])
    assert names[0] == "x" * 95 + ".yyyy" and names[1] == "x" * 95 + ".yy-2"
    for name in names:
        assert store.check_name(name) == name and len(name) <= 100


def test_next_run_name_cuts_the_base_to_fit_its_suffix(_isolated_store):
    base = "a" * 120
    first = store.next_run_name("dcgan", base)
    assert first == "a" * 100
    (store.runs_dir() / "dcgan" / first).mkdir(parents=True)
    assert store.next_run_name("dcgan", base) == "a" * 98 + "-2"
    assert store.next_run_name("dcgan", "_x..y-") == "x.y"


def test_resume_with_fewer_epochs_than_done_is_refused(home):
    config = home / "runs" / "dcgan" / "a" / "config.json"
    before = config.read_bytes()
    line = _clean(error_line(invoke("train", "dcgan", "--resume", "--name", "a", "--epochs", "1")))
    assert "--epochs 1 is fewer than run dcgan/a has trained (2 epochs reached)" in line
    assert config.read_bytes() == before
    assert json.loads(before)["epochs"] == 2


@pytest.mark.parametrize("ref", ["/etc", "/tmp/", "a/b/c", "../a", "a\n"])
def test_run_that_is_not_a_run_name_or_folder_says_so(home, tmp_path, ref):
    line = _clean(error_line(invoke("sample", "dcgan", "--run", ref, "-o", tmp_path / "x.png")))
    assert "not a run" in line and "FAMILY/NAME" in line
    line = _clean(error_line(invoke("rm", ref, "--yes")))
    assert "not a run" in line
    assert (home / "runs" / "dcgan" / "a").is_dir()


# ---------------------------------------------------------------- model names


@pytest.mark.parametrize("args", [["train", "dcgann", "--dataset", "digits"], ["sample", "DCGANN"], ["interpolate", "cgn"]])
def test_a_mistyped_model_is_answered_before_torch_is_imported(args):
    import subprocess
    import sys

    code = ("import sys\nfrom ganctl.cli import main\nsys.argv = ['ganctl'] + sys.argv[1:]\n"
            "try:\n    main()\nexcept SystemExit as e:\n    print(e.code, 'torch' in sys.modules)\n")
    r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60)
    assert r.stdout.split() == ["1", "False"], r.stdout + r.stderr
    assert "unknown model" in r.stderr and "Did you mean" in r.stderr


def test_model_names_are_case_insensitive(tmp_path):
    line = error_line(invoke("sample", "DCGAN", "-o", tmp_path / "x.png"))
    assert "no dcgan run in the store" in line
