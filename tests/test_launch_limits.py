"""``ganctl train --nproc-per-node``: jobs the machine cannot hold are refused before any process
starts, and a signal ends a job within seconds, whatever its workers do with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from ganctl.core.errors import GanctlError
from ganctl.runtime import distributed, launch, runtime
from tests.conftest import error_line, invoke

ROOT = Path(__file__).resolve().parents[1]
GIB = 2**30


@pytest.fixture
def nothing_starts(monkeypatch):
    """Fails the test if the launcher gets as far as starting torchrun."""
    def started(*args, **kwargs):
        raise AssertionError("torchrun was started")

    monkeypatch.setattr(launch, "run_torchrun", started)


def test_more_processes_than_cores_is_refused_before_any_starts(monkeypatch, nothing_starts):
    monkeypatch.setattr(distributed, "usable_cpus", lambda: 2)
    t0 = time.perf_counter()
    r = invoke("train", "dcgan", "--dataset", "digits", "--device", "cpu", "--nproc-per-node", 99)
    line = error_line(r)
    assert "--nproc-per-node 99 starts 99 processes" in line and "2 CPU core(s): use at most 2" in line, line
    assert time.perf_counter() - t0 < 10


def test_more_processes_than_gpus_is_refused(monkeypatch, nothing_starts):
    monkeypatch.setattr(runtime, "resolve_device", lambda requested="auto": torch.device("cuda"))
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    line = error_line(invoke("train", "dcgan", "--dataset", "digits", "--nproc-per-node", 2))
    assert "one per GPU, and this machine has 1 GPU(s): use at most 1" in line, line


def test_memory_for_the_workers_is_checked_where_linux_says_it(monkeypatch, nothing_starts):
    with pytest.raises(GanctlError, match=r"needs at least 27\.7 GiB .*0\.28 GiB a process.*24\.0 GiB available: use at most 85"):
        launch.check_memory(99, int(0.28 * GIB), 24 * GIB)
    with pytest.raises(GanctlError, match="free some memory first"):
        launch.check_memory(2, GIB, GIB // 2)
    launch.check_memory(2, GIB, 2 * GIB)  # fits
    launch.check_memory(99, None, GIB)  # unknown: nothing to say
    launch.check_memory(99, GIB, None)
    # through the command: two processes on two cores, but memory for one only
    monkeypatch.setattr(distributed, "usable_cpus", lambda: 2)
    monkeypatch.setattr(launch, "available_bytes", lambda: GIB)
    monkeypatch.setattr(launch, "worker_floor_bytes", lambda: int(0.6 * GIB))
    line = error_line(invoke("train", "dcgan", "--dataset", "digits", "--device", "cpu", "--nproc-per-node", 2))
    assert "use at most 1" in line, line


def test_two_processes_on_two_cores_is_the_normal_case(monkeypatch):
    monkeypatch.setattr(distributed, "usable_cpus", lambda: 2)
    launch.check_capacity(2, "cpu")  # this machine's real memory holds two bare workers
    assert launch.worker_floor_bytes() is None or launch.worker_floor_bytes() > 50 * 2**20
    assert launch.available_bytes() is None or launch.available_bytes() > 0


# ---------------------------------------------------------------- signals

# a worker that ignores SIGTERM and SIGINT (as one stuck in a collective, or swapping, in effect does)
STUBBORN = """
import os, signal, sys, time
from pathlib import Path
signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.signal(signal.SIGINT, signal.SIG_IGN)
Path(sys.argv[1], "pid-" + os.environ["RANK"]).write_text(str(os.getpid()))
time.sleep(300)
"""

LAUNCHER = """
import sys
from ganctl.runtime import launch
launch.run_torchrun(["--nproc-per-node", "2", "--nnodes", "1", "--standalone", "--max-restarts", "0",
                     sys.argv[1], sys.argv[2]], grace_s=float(sys.argv[3]))
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _stubborn_job(tmp_path: Path, grace_s: float) -> tuple[subprocess.Popen, list[int]]:
    worker = tmp_path / "worker.py"
    worker.write_text(STUBBORN)
    out = tmp_path / "pids"
    out.mkdir()
    job = subprocess.Popen([sys.executable, "-c", textwrap.dedent(LAUNCHER), str(worker), str(out), str(grace_s)],
                           cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
    deadline = time.monotonic() + 60
    while len(list(out.glob("pid-*"))) < 2:
        assert job.poll() is None and time.monotonic() < deadline, "the workers did not start"
        time.sleep(0.05)
    time.sleep(0.3)  # the agent is now watching them
    return job, [int(p.read_text()) for p in out.glob("pid-*")]


def _ends(job: subprocess.Popen, pids: list[int], within_s: float) -> None:
    try:
        job.wait(timeout=within_s)
    finally:
        for pid in pids:  # never leave a stubborn process behind, whatever the outcome
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
                raise AssertionError(f"worker {pid} outlived the launcher")


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="Linux /proc")
def test_sigterm_ends_a_job_whose_workers_ignore_it_after_the_grace(tmp_path):
    job, pids = _stubborn_job(tmp_path, grace_s=2)
    t0 = time.monotonic()
    job.send_signal(signal.SIGTERM)
    _ends(job, pids, within_s=10)
    assert time.monotonic() - t0 < 8


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="Linux /proc")
def test_a_second_sigint_ends_the_job_at_once(tmp_path):
    # the first Ctrl-C gives the workers their grace; the second, during it, ends them now (torchrun
    # alone would leave them running, the agent interrupted in its wait)
    job, pids = _stubborn_job(tmp_path, grace_s=120)
    t0 = time.monotonic()
    job.send_signal(signal.SIGINT)
    time.sleep(0.5)
    job.send_signal(signal.SIGINT)
    _ends(job, pids, within_s=10)
    assert time.monotonic() - t0 < 8
