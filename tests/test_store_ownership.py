"""Issue 15, items 1-2: ganctl never touches what is not its own, and one process writes a run.

- ``rm`` deletes only ``runs/FAMILY/NAME`` folders of the store, never a look-alike next to it.
- Outputs (``atomic_path``) replace regular files only: a symlink's target is replaced (the link
  stays), a FIFO or device is written through, a folder is refused with one line.
- A run folder is locked (``.lock``, flock) while it trains: a second trainer, a resume or ``rm``
  of it is refused; a killed holder leaves no stale lock. Two fetches of a dataset serialise.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from ganctl.core import atomic
from ganctl.core.errors import GanctlError, StoreError
from ganctl.store import layout
from tests.conftest import error_line, invoke, make_image_folder, targz

FAST = ["--epochs", "1", "--batch-size", "8", "--image-size", "16"]
ROOT = Path(__file__).resolve().parent.parent

# another process holding a run's lock the way a trainer does (flock on the run's .lock, pid inside),
# without importing ganctl, so the test states the protocol rather than borrowing the code under test
_HOLD = (
    "import fcntl, os, sys, time\n"
    "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)\n"
    "fcntl.flock(fd, fcntl.LOCK_EX)\n"
    "os.write(fd, b'%d\\n' % os.getpid())\n"
    "print('held', flush=True)\n"
    "time.sleep(300)\n"
)


def _home() -> Path:
    return Path(os.environ["GANCTL_HOME"]).resolve()


@pytest.fixture
def faces(tmp_path):
    make_image_folder(tmp_path / "faces", n=16, size=(20, 18))
    return tmp_path / "faces"


@pytest.fixture
def hold():
    """hold(lock_path) -> a process that holds the lock until killed (always killed at teardown)."""
    procs = []

    def start(lock: Path) -> subprocess.Popen:
        lock.parent.mkdir(parents=True, exist_ok=True)
        p = subprocess.Popen([sys.executable, "-c", _HOLD, str(lock)], stdout=subprocess.PIPE, text=True)
        procs.append(p)
        assert p.stdout.readline().strip() == "held"
        return p

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait(10)


def _snapshot(run: Path) -> dict[str, bytes]:
    return {p.relative_to(run).as_posix(): p.read_bytes() for p in sorted(run.rglob("*"))
            if p.is_file() and p.name != ".lock"}


# ---------------------------------------------------------------- rm stays inside runs/


def test_rm_refuses_a_run_folder_beside_the_store_runs(tmp_path):
    outside = _home() / "runs-backup" / "dcgan" / "a"  # shares the prefix ".../runs"
    outside.mkdir(parents=True)
    (outside / "config.json").write_text("{}")

    line = error_line(invoke("rm", outside, "--yes"))

    assert "is not a run in the store" in line and "only deletes its own runs" in line
    assert (outside / "config.json").is_file()

    # nor a run folder inside runs/ that links out of the store
    (_home() / "runs" / "dcgan").mkdir(parents=True)
    (_home() / "runs" / "dcgan" / "linked").symlink_to(outside)
    assert "is not a run in the store" in error_line(invoke("rm", "dcgan/linked", "--yes"))
    assert (outside / "config.json").is_file()


def test_delete_run_itself_refuses_a_folder_outside_runs(tmp_path):
    # the shared mechanism, not only the CLI: find_run accepts any folder with a config.json
    outside = tmp_path / "mine" / "dcgan" / "a"
    outside.mkdir(parents=True)
    (outside / "config.json").write_text("{}")
    run = layout.find_run(str(outside))
    with pytest.raises(StoreError, match="not a run in the store"):
        layout.delete_run(run)
    assert outside.is_dir()


# ---------------------------------------------------------------- outputs: only regular files are replaced


def _png_bytes() -> bytes:
    import io

    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (9, 8, 7)).save(buf, "PNG")
    return buf.getvalue()


def test_output_to_a_fifo_is_written_through(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()

    atomic.atomic_write(fifo, _png_bytes())

    reader.join(10)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode), "the FIFO was replaced by a file"
    assert got == [_png_bytes()]
    assert [p.name for p in tmp_path.iterdir()] == ["pipe.png"]  # no temporary file left beside it


def test_output_to_a_device_is_written_through_never_replaced(tmp_path):
    fake_null = tmp_path / "null"
    try:
        os.mknod(fake_null, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except (PermissionError, OSError, AttributeError):
        pytest.skip("cannot create a device node here (needs root / CAP_MKNOD)")

    atomic.atomic_write(fake_null, b"discarded")
    assert stat.S_ISCHR(os.lstat(fake_null).st_mode), "the device node was replaced by a file"

    # the real one, only now that writing through a device is shown to work
    if os.access("/dev/null", os.W_OK):
        atomic.atomic_write(Path("/dev/null"), b"discarded")
        assert stat.S_ISCHR(os.lstat("/dev/null").st_mode)


def test_output_through_a_symlink_replaces_the_target_and_keeps_the_link(tmp_path):
    (tmp_path / "dated").mkdir()
    target = tmp_path / "dated" / "grid-0412.png"
    target.write_bytes(b"old")
    link = tmp_path / "latest.png"
    link.symlink_to(Path("dated") / "grid-0412.png")  # relative, as users write them

    atomic.atomic_write(link, _png_bytes())

    assert link.is_symlink() and os.readlink(link) == str(Path("dated") / "grid-0412.png")
    assert target.read_bytes() == _png_bytes()
    assert sorted(p.name for p in (tmp_path / "dated").iterdir()) == ["grid-0412.png"]


def test_output_through_a_dangling_symlink_creates_its_target(tmp_path):
    link = tmp_path / "out.png"
    link.symlink_to(tmp_path / "new.png")
    atomic.atomic_write(link, b"x")
    assert link.is_symlink() and (tmp_path / "new.png").read_bytes() == b"x"


def test_output_onto_a_folder_is_one_clear_error(tmp_path):
    folder = tmp_path / "grid.png"
    folder.mkdir()
    with pytest.raises(StoreError, match="is a folder, not a file"):
        atomic.atomic_write(folder, b"x")
    assert folder.is_dir() and list(folder.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.png"]


def test_cli_sample_into_a_symlink_and_a_fifo(faces, tmp_path):
    assert invoke("train", "dcgan", "--dataset", faces, "--name", "s", *FAST).exit_code == 0
    target = tmp_path / "real.png"
    target.write_bytes(b"old")
    link = tmp_path / "link.png"
    link.symlink_to(target)
    r = invoke("sample", "dcgan", "--run", "s", "-n", 4, "-o", link)
    assert r.exit_code == 0, r.output
    assert link.is_symlink() and Image.open(target).size[0] > 0

    fifo = tmp_path / "fifo.png"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    r = invoke("sample", "dcgan", "--run", "s", "-n", 4, "-o", fifo)
    reader.join(10)
    assert r.exit_code == 0, r.output
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and got and got[0].startswith(b"\x89PNG")


# ---------------------------------------------------------------- one writer per run


def test_resume_and_new_run_refused_while_another_process_trains_it(faces, hold):
    assert invoke("train", "dcgan", "--dataset", faces, "--name", "x", *FAST).exit_code == 0
    run = _home() / "runs" / "dcgan" / "x"
    before = _snapshot(run)
    holder = hold(run / ".lock")

    line = error_line(invoke("train", "dcgan", "--resume", "--name", "x", "--epochs", "2"))
    assert f"run dcgan/x is being trained by another process (pid {holder.pid})" in line
    line = error_line(invoke("train", "dcgan", "--dataset", faces, "--name", "x", *FAST))
    assert "is being trained by another process" in line and "--name" in line
    assert _snapshot(run) == before  # config, metrics and weights untouched

    # a killed trainer leaves no stale lock: the run resumes
    holder.send_signal(signal.SIGKILL)
    holder.wait(10)
    r = invoke("train", "dcgan", "--resume", "--name", "x", "--epochs", "2")
    assert r.exit_code == 0, r.output
    assert json.loads((run / "config.json").read_text())["epochs"] == 2
    assert (run / "checkpoints" / "latest").read_text().strip() == "epoch_0002"


def test_engine_refuses_a_new_run_whose_folder_another_process_holds(tmp_path, hold):
    # the name was free when checked, and another process claimed it since: nothing is written
    from dataclasses import replace

    import torch

    from ganctl.config import make_config
    from ganctl.data import datasets
    from ganctl.runtime import runtime
    from ganctl.train import trainer

    data = datasets.load("digits", 16)
    data.images, data.labels = data.images[:32], data.labels[:32]
    cfg = make_config("dcgan", "digits", "x", channels=1, classes=data.classes, preset_key="digits",
                      epochs=1, batch_size=16, image_size=16, seed=0)
    cfg = replace(cfg, generator={**cfg.generator, "features": 4}, discriminator={**cfg.discriminator, "features": 4})
    run = tmp_path / "x"
    holder = hold(run / ".lock")

    with pytest.raises(GanctlError, match=f"being trained by another process \\(pid {holder.pid}\\)"):
        trainer.train(cfg, data, run, runtime.Runtime(torch.device("cpu"), "fp32"))
    assert sorted(p.name for p in run.iterdir()) == [".lock"]


def test_rm_refused_while_training_and_allowed_once_the_trainer_died(faces, hold):
    assert invoke("train", "dcgan", "--dataset", faces, "--name", "busy", *FAST).exit_code == 0
    run = _home() / "runs" / "dcgan" / "busy"
    holder = hold(run / ".lock")

    line = error_line(invoke("rm", "dcgan/busy", "--yes"))
    assert f"run dcgan/busy is being trained by another process (pid {holder.pid})" in line
    assert (run / "config.json").is_file()
    with pytest.raises(GanctlError, match="being trained"):  # the mechanism itself, past the CLI's early check
        layout.delete_run(layout.find_run("dcgan/busy"))
    assert (run / "config.json").is_file()

    holder.send_signal(signal.SIGKILL)
    holder.wait(10)
    r = invoke("rm", "dcgan/busy", "--yes")
    assert r.exit_code == 0 and r.stdout.strip() == "dcgan/busy"
    assert sorted(p.name for p in run.parent.iterdir()) == []


def test_lock_held_by_a_deleted_folder_is_not_taken(tmp_path):
    # a trainer that opened the lock file just before rm renamed the run away must not train into
    # a folder that no longer exists (it would recreate it without its config, blocking the name)
    run = tmp_path / "r"
    run.mkdir()
    (run / "config.json").write_text("{}")
    with layout.run_lock(run, "dcgan/r"):
        pass
    run.rename(tmp_path / ".deleting-r")
    with pytest.raises(StoreError, match="no longer exists"):
        with layout.run_lock(run, "dcgan/r"):
            pytest.fail("locked a run that is gone")
    assert not run.exists()


def test_second_ganctl_train_process_is_refused_and_a_killed_one_resumes(faces, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen(
        [sys.executable, "-m", "ganctl", "train", "dcgan", "--dataset", str(faces), "--name", "x",
         "--epochs", "500", "--batch-size", "8", "--image-size", "16"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    run = _home() / "runs" / "dcgan" / "x"
    try:
        deadline = time.monotonic() + 120
        while not (run / "checkpoints" / "latest").exists():
            assert first.poll() is None, first.stderr.read()
            assert time.monotonic() < deadline
            time.sleep(0.2)
        second = subprocess.run(
            [sys.executable, "-m", "ganctl", "train", "dcgan", "--resume", "--name", "x"],
            env=env, capture_output=True, text=True, timeout=60,
        )
        assert second.returncode == 1
        assert f"is being trained by another process (pid {first.pid})" in second.stderr
        assert json.loads((run / "config.json").read_text())["epochs"] == 500
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    done = int((run / "checkpoints" / "latest").read_text().strip().split("_")[1])
    r = invoke("train", "dcgan", "--resume", "--name", "x", "--epochs", done + 1)
    assert r.exit_code == 0, r.output


# ---------------------------------------------------------------- one download per dataset


def _jpeg(split: str, i: int) -> bytes:
    """A 32x16 A|B pair as a JPEG, different for each (split, i)."""
    import io

    img = Image.new("RGB", (32, 16), (len(split) * 20, i * 40, 90))
    buf = io.BytesIO()
    img.save(buf, "JPEG")
    return buf.getvalue()


def test_two_fetches_of_one_dataset_both_succeed(monkeypatch, capsys):
    import dataclasses

    from ganctl.data import catalog, fetch, install
    from tests import httpserver

    counts, served = {"train": 3, "val": 2, "test": 1}, "pix2pix/facades.tar.gz"
    entries = {f"facades/{split}/{i}.jpg": _jpeg(split, i) for split, n in counts.items() for i in range(n)}

    real_download = install.download

    def slow_download(*a, **k):  # widen the window in which a second process would collide
        time.sleep(0.5)
        return real_download(*a, **k)

    monkeypatch.setattr(install, "download", slow_download)
    with httpserver.FileServer() as server:
        server.files[served] = targz(entries)
        entry = dataclasses.replace(catalog.CATALOG["facades"], expected_counts=dict(counts),
                                    mirrors=(server.url + "pix2pix/",))
        results: dict[int, object] = {}

        def worker(i):
            try:
                results[i] = fetch.fetch(entry)
            except Exception as e:  # noqa: BLE001 - reported by the assertion below
                results[i] = e

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
        threads[0].start()
        time.sleep(0.2)
        threads[1].start()
        for t in threads:
            t.join(60)
        assert results[0] == results[1] == entry.data_dir(), results
        assert [r.path for r in server.requests] == [served]  # the second reused the first's download
    assert entry.is_present()
    err = capsys.readouterr().err
    assert f"waiting for another ganctl (pid {os.getpid()}) to finish downloading facades" in err


def test_the_holder_pid_is_read_from_the_first_line_even_over_a_longer_stale_one(tmp_path):
    # A holder that writes its pid without truncating leaves the tail of a longer pid written
    # before it; CI hit this when the test's holder had a shorter pid than the trainer before it.
    from ganctl.core.locks import holder_pid

    lock = tmp_path / ".lock"
    lock.write_bytes(b"497\n5\n")
    fd = os.open(lock, os.O_RDONLY)
    try:
        assert holder_pid(fd) == 497
    finally:
        os.close(fd)
    lock.write_bytes(b"")
    fd = os.open(lock, os.O_RDONLY)
    try:
        assert holder_pid(fd) is None
    finally:
        os.close(fd)
