"""Messages: a full disk, a refused pickle, odd run names and --resume/--run mistakes are one clear line."""

from __future__ import annotations

import errno
import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest
import torch

from ganctl.core import atomic, storedirs
from ganctl.core.errors import NoSpaceError, StoreError
from ganctl.data import archives
from ganctl.data import download as dl
from ganctl.store import checkpoint, layout
from tests import httpserver, test_images_input
from tests.conftest import error_line, invoke, make_image_folder, targz, train_in_own_store

http_server = httpserver.http_server  # the fixture, for this module
p2p_home, p2p = test_images_input.p2p_home, test_images_input.p2p  # fixtures: a tiny pix2pix store
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
    dest = storedirs.runs_dir() / "x.json"
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
    from ganctl.use import sampling

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


def test_import_of_a_protocol_4_pickle_is_ganctls_line_alone(tmp_path):
    import pickle
    import subprocess
    import sys

    src = tmp_path / "p4.pth"
    src.write_bytes(pickle.dumps({"model.0.weight": [1.0, 2.0]}, protocol=4))
    r = subprocess.run([sys.executable, "-m", "ganctl", "import", str(src), "--name", "p4"], capture_output=True,
                       text=True, timeout=120, env={**os.environ, "GANCTL_HOME": str(tmp_path / "home")},
                       cwd=Path(__file__).resolve().parents[2])
    assert r.returncode == 1
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {src} cannot be loaded safely"), r.stderr


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
        layout.check_name("a\n", "run name")
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
        assert layout.check_name(name) == name and len(name) <= 100


def test_next_run_name_cuts_the_base_to_fit_its_suffix(_isolated_store):
    base = "a" * 120
    first = layout.next_run_name("dcgan", base)
    assert first == "a" * 100
    (storedirs.runs_dir() / "dcgan" / first).mkdir(parents=True)
    assert layout.next_run_name("dcgan", base) == "a" * 98 + "-2"
    assert layout.next_run_name("dcgan", "_x..y-") == "x.y"


def test_resume_with_fewer_epochs_than_done_is_refused(home):
    config = home / "runs" / "dcgan" / "a" / "config.json"
    before = config.read_bytes()
    line = _clean(error_line(invoke("train", "dcgan", "--resume", "--name", "a", "--epochs", "1")))
    assert "--epochs 1 is fewer than run dcgan/a has trained (2 epochs reached)" in line
    assert config.read_bytes() == before
    assert json.loads(before)["epochs"] == 2


@pytest.mark.parametrize("ref, expect", [
    ("/etc", "/etc is a folder but not a run folder (it holds no config.json)"),
    ("/tmp/", "is a folder but not a run folder"),
    ("a/b/c", "there is no folder a/b/c"),
    ("../a", "there is no folder ../a"),
    ("a\n", "'a\\n' is not a run name"),
])
def test_run_that_is_not_a_run_name_or_folder_says_so(home, tmp_path, ref, expect):
    line = _clean(error_line(invoke("sample", "dcgan", "--run", ref, "-o", tmp_path / "x.png")))
    assert expect in line and "FAMILY/NAME" in line
    line = _clean(error_line(invoke("rm", ref, "--yes")))
    assert expect in line
    assert (home / "runs" / "dcgan" / "a").is_dir()


def test_a_file_given_as_a_run_is_named_as_a_file(home, tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("x")
    assert f"{f} is a file, not a run folder" in _clean(error_line(invoke("rm", f, "--yes")))


@pytest.mark.parametrize("args, expect", [
    (["rm", "wgan/a", "--yes"], "there is no wgan run named 'a' in {runs}; there are no wgan runs yet (other runs: dcgan/a)"),
    (["rm", "nope", "--yes"], "there is no run named 'nope' in {runs}; runs: dcgan/a"),
    (["sample", "dcgan", "--run", "nope"], "there is no dcgan run named 'nope' in {runs}; dcgan runs: dcgan/a"),
    (["rm", "foo/a", "--yes"], "there is no run 'foo/a': unknown model 'foo'"),
    (["sample", "wgan", "--run", "dcgan/a"], "dcgan/a names a dcgan run, not a wgan one"),
    (["train", "wgan", "--resume", "--name", "dcgan/a"], "dcgan/a names a dcgan run, not a wgan one"),
    (["evaluate", "wgan/a"], "there are no wgan runs yet (other runs: dcgan/a)"),
])
def test_a_run_that_is_not_found_is_not_called_the_first(home, args, expect):
    line = _clean(error_line(invoke(*args)))
    assert expect.format(runs=home.resolve() / "runs") in line
    assert "no runs yet" not in line.lower().replace("no wgan runs yet", "")


def test_a_family_in_a_run_reference_is_case_insensitive(home):
    r = invoke("rm", "DCGAN/a", "--dry-run")
    assert r.exit_code == 0, r.output
    assert "dcgan/a" in r.stderr


def test_an_empty_store_suggests_a_train_command_that_works(_isolated_store):
    line = _clean(error_line(invoke("rm", "x", "--yes")))
    assert line.endswith("there are no runs yet: train one with 'ganctl train dcgan --dataset digits'")
    line = _clean(error_line(invoke("evaluate", "pix2pix/x")))
    assert line.endswith("train one with 'ganctl train pix2pix --dataset synthetic-facades'")


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


# ---------------------------------------------------------------- usage and --help


def _commands():
    import typer

    from ganctl.cli import app

    return sorted(typer.main.get_command(app).commands)


@pytest.mark.parametrize("width", [80, 120])
def test_flags_show_no_bool_metavar_in_help(monkeypatch, width):
    monkeypatch.setenv("COLUMNS", str(width))
    for args in ([], *([c] for c in _commands())):
        r = invoke(*args, "--help")
        assert r.exit_code == 0, r.output
        assert "<bool>" not in r.output and "--help" in r.output, (args, r.output)


@pytest.mark.parametrize("args", [["translate", "x.png", "--pretrained"], ["export", "--pretrained"],
                                  ["train", "dcgan", "--quiet=yes"]])
def test_an_option_used_wrongly_gets_the_usage_line(args):
    r = invoke(*args)
    assert r.exit_code == 2, r.output
    assert f"Usage: root {args[0]} [OPTIONS]" in r.stderr and f"Try 'root {args[0]} -h' for help." in r.stderr
    assert "requires an argument" in r.stderr or "does not take a value" in r.stderr


# ---------------------------------------------------------------- files that are not what they should be


@pytest.mark.parametrize("content, expect", [
    (b"latest_net_G.pth\nis somewhere else\n", "is a text file, not a PyTorch file"),
    (b"", "is empty, not a PyTorch file"),
    (b"\x01\xff\xfe\x00" * 40, "is not a PyTorch file (neither a zip archive nor a pickle)"),
    (b"\x10\x00\x00\x00\x00\x00\x00\x00{\"__metadata__\":{}}", "is a safetensors file (ganctl's own format), not a PyTorch .pth"),
])
def test_import_of_a_file_that_is_no_pytorch_file_says_what_it_is(tmp_path, _isolated_store, content, expect):
    src = tmp_path / "net_G.pth"
    src.write_bytes(content)
    line = _clean(error_line(invoke("import", src, "--name", "x")))
    assert line.startswith(f"error: {src} {expect}: expected an official pix2pix U-Net generator")
    assert "safely" not in line and "unsafe" not in line
    assert not (_isolated_store / "pretrained").exists() or list((_isolated_store / "pretrained").iterdir()) == []


def _unreadable(path):
    """Make ``path`` unreadable; skip when this user reads it anyway (root)."""
    path.chmod(0)
    try:
        path.read_bytes()
    except PermissionError:
        return path
    pytest.skip("this user reads files whatever their permissions (root)")


def test_an_unreadable_checkpoint_says_which_and_why(home, tmp_path):
    gens = sorted((home / "runs" / "dcgan" / "a" / "checkpoints").glob("epoch_*/generator.safetensors"))
    try:
        for gen in gens:
            _unreadable(gen)
        line = _clean(error_line(invoke("sample", "dcgan", "-o", tmp_path / "x.png")))
    finally:
        for gen in gens:
            gen.chmod(0o644)
    assert f"{gens[-1]} cannot be read: Permission denied" in line and "No such file" not in line
    assert "ganctl rm" not in line and "make a file readable or restore it from a copy" in line


def test_a_reader_that_misreports_why_a_file_cannot_be_read_is_corrected(tmp_path):
    from ganctl.core import images
    from ganctl.store import pretrained

    folder = tmp_path / "generator.safetensors"  # a folder: open() says why
    folder.mkdir()
    for read in (checkpoint.read_meta, pretrained.read_meta, images.open_image):
        with pytest.raises(Exception, match=f"^{folder} cannot be read: Is a directory$"):
            read(folder)


def test_an_unreadable_image_says_which_and_why(tmp_path):
    from PIL import Image

    from ganctl.core import images

    path = tmp_path / "x.png"
    Image.new("RGB", (4, 4)).save(path)
    try:
        _unreadable(path)
        with pytest.raises(images.ImageReadError, match=f"^{path} cannot be read: Permission denied$"):
            images.open_image(path)
    finally:
        path.chmod(0o644)


def test_train_help_lists_the_families_and_who_takes_each_option():
    import typer

    from ganctl.cli import app
    from ganctl.families import registry

    params = {o: p for p in typer.main.get_command(app).commands["train"].params for o in p.opts}
    assert all(name in params["model"].help for name in registry.names())
    flags = {o.flag for f in registry.FAMILIES.values() for o in f.all_options()}
    assert {"--clip", "--lambda-gp", "--n-critic", "--direction", "--ngf"} <= flags
    for flag in flags:
        takers = {f"{fam.name} --arch {arch}" if arch else fam.name for fam, arch, v in registry.variants()
                  if any(o.flag == flag for o in fam.options_of(v))}
        said = params[flag].help.rsplit(" For ", 1)[1].rstrip(".").replace(" and ", ", ").split(", ")
        assert set(said) == takers, (flag, params[flag].help)
    for fam in registry.FAMILIES.values():
        for arch in fam.variants:
            assert f"{fam.name}: {fam.arch}, the default, or {arch}" in params["--arch"].help


# ---------------------------------------------------------------- output folders that do not exist yet
# sample, interpolate and translate all create a missing output folder (with its parents) and say so


def test_sample_and_interpolate_into_a_missing_folder_say_they_created_it(home, tmp_path):
    r = invoke("sample", "dcgan", "-n", 4, "-o", tmp_path / "new" / "grid.png")
    assert r.exit_code == 0, r.output
    assert f"created folder {tmp_path / 'new'}" in r.stderr and (tmp_path / "new" / "grid.png").is_file()
    r = invoke("sample", "dcgan", "-n", 4, "-o", tmp_path / "new" / "grid.png")
    assert r.exit_code == 0 and "created folder" not in r.stderr  # it exists now
    r = invoke("sample", "dcgan", "-n", 3, "-o", f"{tmp_path / 'each'}/")
    assert r.exit_code == 0, r.output
    assert f"wrote 3 images into a new folder, {tmp_path / 'each'}" in r.stderr
    r = invoke("interpolate", "dcgan", "--steps", 3, "-o", tmp_path / "walks" / "w.gif")
    assert r.exit_code == 0 and f"created folder {tmp_path / 'walks'}" in r.stderr, r.output


def test_translate_into_a_missing_folder_says_it_created_it(p2p, tmp_path):
    from PIL import Image

    Image.new("RGB", (40, 30), "blue").save(tmp_path / "in.png")
    r = invoke("translate", tmp_path / "in.png", "-o", tmp_path / "out" / "x.png")
    assert r.exit_code == 0, r.output
    assert f"created folder {tmp_path / 'out'}" in r.stderr and (tmp_path / "out" / "x.png").is_file()
    (tmp_path / "many").mkdir()
    Image.new("RGB", (40, 30), "red").save(tmp_path / "many" / "a.png")
    r = invoke("translate", tmp_path / "many", "-o", tmp_path / "many_out")
    assert r.exit_code == 0, r.output
    assert f"translated 1 of 1 images into a new folder, {tmp_path / 'many_out'}" in r.stderr
