"""The installed entry points, in real subprocesses (the only tests that spawn Python)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from ganctl import __version__


def run(*args, env=None, timeout=60):
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})


def test_python_m_ganctl():
    r = run(sys.executable, "-m", "ganctl", "--version")
    assert r.returncode == 0 and r.stdout.strip() == f"ganctl {__version__}"


def test_console_script_help():
    exe = shutil.which("ganctl", path=str(Path(sys.executable).parent)) or shutil.which("ganctl")
    assert exe, "the ganctl console script is not installed"
    r = run(exe, "--help")
    assert r.returncode == 0 and "Usage" in r.stdout


def test_cli_import_does_not_load_torch():
    code = "import sys, ganctl.cli; print('torch' in sys.modules, 'numpy' in sys.modules)"
    r = run(sys.executable, "-c", code)
    assert r.stdout.split() == ["False", "False"]


def test_ctrl_c_during_training_saves_a_checkpoint(tmp_path):
    env = {"GANCTL_HOME": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "ganctl", "train", "gan", "--dataset", "digits", "--epochs", "200", "--name", "c"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **env})
    metrics = tmp_path / "runs" / "gan" / "c" / "metrics.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and not (metrics.exists() and (tmp_path / "runs" / "gan" / "c" / "checkpoints").exists()):
        time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "Traceback" not in err and "--resume --name c" in err
    assert out.strip() == str(tmp_path.resolve() / "runs" / "gan" / "c")
    latest = (tmp_path / "runs" / "gan" / "c" / "checkpoints" / "latest").read_text().strip()
    assert (tmp_path / "runs" / "gan" / "c" / "checkpoints" / latest / "trainer.pt").is_file()
