"""The console script's end (ganctl.cli.entry): Python's exit without the interpreter's teardown once
torch is loaded. What a normal exit guarantees must still hold: threads that are not daemons
finish, atexit handlers run, stdout and stderr reach their pipes, the exit status is the command's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import atexit, pathlib, sys, threading, time
out = pathlib.Path(sys.argv[1])
import torch  # loaded: entry ends the process itself
def late():
    time.sleep(0.5)
    (out / "thread").write_text("finished")
threading.Thread(target=late).start()
atexit.register(lambda: (out / "atexit").write_text("ran"))
sys.argv = ["ganctl", *sys.argv[2:]]
from ganctl.cli import entry
entry()
raise SystemExit(99)  # never reached: entry ends the process
"""


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "GANCTL_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path), *args], capture_output=True, text=True,
                          timeout=120, env=env, cwd=tmp_path)


@pytest.mark.parametrize("args, status", [(["env"], 0), (["sample", "dcgan", "--run", "nosuch"], 1)],
                         ids=["success", "error"])
def test_the_end_keeps_what_pythons_exit_guarantees(tmp_path, args, status):
    r = _run(tmp_path, *args)
    assert r.returncode == status, r.stderr
    assert (tmp_path / "thread").read_text() == "finished"  # waited for the thread that is not a daemon
    assert (tmp_path / "atexit").read_text() == "ran"
    if status == 0:
        assert "torch" in r.stdout  # `ganctl env`'s table, flushed into the pipe
    else:
        assert r.stderr.strip().splitlines()[-1].startswith("error: there is no dcgan run named 'nosuch'")


@pytest.mark.parametrize("code, status, stderr", [(None, 0, ""), (3, 3, ""), ("stopped: see above", 1, "stopped: see above")])
def test_exit_codes_as_sys_exit_gives_them(tmp_path, code, status, stderr):
    script = f"import torch\nfrom ganctl.cli import _end\n_end({code!r})\n"
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == status and r.stderr.strip() == stderr, r.stderr

