"""Mistakes that need no torch to find are answered before torch is imported (in well under a
second): one process runs every case, and torch must still be absent after all of them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# (arguments, words the one error line must contain)
TRAIN_CASES = [
    (["train", "dcgann", "--dataset", "digits"], "unknown model"),
    (["train", "dcgan", "--dataset", "digitz"], "Did you mean 'digits'"),
    (["train", "dcgan", "--dataset", "./no/such/folder"], "does not exist"),
    (["train", "dcgan", "--dataset", "README.md"], "is a file"),
    (["train", "dcgan", "--dataset", "digits", "--lambda-gp", "5"], "--lambda-gp applies to"),
    (["train", "dcgan", "--dataset", "digits", "--epochs", "0"], "--epochs must be at least 1"),
    (["train", "dcgan", "--dataset", "digits", "--batch-size", "0"], "--batch-size"),
    (["train", "dcgan", "--dataset", "digits", "--direction", "AtoB"], "--direction applies to pix2pix"),
    (["train", "pix2pix", "--dataset", "digits"], "not pairs"),
    (["train", "dcgan", "--dataset", "facades"], "image pairs for pix2pix"),
    (["train", "dcgan"], "say what to train on"),
    (["train", "dcgan", "--dataset", "digits", "--name", "a/b"], "invalid run name"),
    (["train", "dcgan", "--resume"], "no dcgan run to resume"),
    (["train", "dcgan", "--resume", "--name", "nosuch"], "nosuch"),
    (["train", "dcgan", "--dataset", "digits", "--seed", str(2**64)], "--seed"),
    (["train", "dcgan", "--dataset", "digits", "--keep", "0"], "--keep must be at least 1"),
    (["train", "dcgan", "--dataset", "digits", "--log", "tensorbord"], "Did you mean 'tensorboard'"),
    (["train", "dcgan", "--dataset", "digits", "--augment", "colour"], "Did you mean 'color'"),
    (["train", "dcgan", "--dataset", "digits", "--augment", "ada", "--ada-target", "1.5"], "--ada-target must be between 0 and 1"),
    (["train", "gan", "--dataset", "digits", "--image-size", "8", "--augment", "translation"], "--image-size 16 or more"),
    (["sample", "dcgan"], "no dcgan run in the store"),
    (["sample", "cgan", "--pretrained", "nosuch"], "nosuch"),
    (["sample", "cgan", "--pretrained", "digits-cgan", "--label", "12"], "unknown label '12'"),
    (["interpolate", "cgan", "--pretrained", "digits-cgan", "--label", "5", "--to-label", "seven"], "unknown label 'seven'"),
    (["sample", "dcgan", "--pretrained", "digits-dcgan", "--label", "3"], "needs a conditional model"),
    (["interpolate", "cgn"], "unknown model"),
    (["sample", "dcgan", "--run", "nosuch"], "nosuch"),
    (["translate", "no-such-image.png", "-o", "x.png"], "does not exist"),
    (["evaluate", "nosuch"], "nosuch"),
    (["prune", "nosuch"], "nosuch"),
    (["report", "nosuch"], "nosuch"),
]

_RUNNER = """
import io, json, sys, contextlib
from ganctl.cli import main
out = []
for args, _ in json.loads(sys.argv[1]):
    err = io.StringIO()
    sys.argv = ["ganctl", *args]
    with contextlib.redirect_stderr(err):
        try:
            main()
            code = 0
        except SystemExit as e:
            code = e.code
    out.append([code, err.getvalue()])
print(json.dumps({"results": out, "torch": "torch" in sys.modules}))
"""


def run_cases(cases, cwd, env) -> dict:
    r = subprocess.run([sys.executable, "-c", _RUNNER, json.dumps(cases)], capture_output=True, text=True,
                       timeout=120, cwd=cwd, env=env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.splitlines()[-1])


def test_mistakes_are_answered_before_torch_is_imported(tmp_path, monkeypatch):
    import os

    (tmp_path / "README.md").write_text("not a folder")
    root = str(Path(__file__).resolve().parents[2])  # this checkout, even when run from another folder
    env = {**os.environ, "GANCTL_HOME": str(tmp_path / "home"), "GANCTL_DISABLE_PROGRESS_BARS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    got = run_cases(TRAIN_CASES, tmp_path, env)
    for (args, words), (code, err) in zip(TRAIN_CASES, got["results"], strict=True):
        assert code not in (0, None), (args, err)
        assert words in err, (args, err)
        assert "Traceback" not in err, (args, err)
    assert got["torch"] is False, "a check imported torch before answering"
