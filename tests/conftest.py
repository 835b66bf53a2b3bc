from __future__ import annotations

import os

import pytest

# keep test runs small and deterministic on a 2-core machine
os.environ.setdefault("OMP_NUM_THREADS", "2")


def pytest_collection_modifyitems(config, items):
    """Tests marked ``slow`` (over about 10 s) run only with GANCTL_RUN_SLOW=1."""
    if os.environ.get("GANCTL_RUN_SLOW"):
        return
    skip = pytest.mark.skip(reason="slow: set GANCTL_RUN_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _isolated_store(tmp_path, monkeypatch):
    """Every test gets its own store, plain output, and no progress bars."""
    home = tmp_path / "ganctl-home"
    monkeypatch.setenv("GANCTL_HOME", str(home))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("GANCTL_DOWNLOAD_BACKOFF", "0")
    monkeypatch.delenv("GANCTL_MIRROR", raising=False)
    monkeypatch.delenv("GANCTL_DEBUG", raising=False)
    return home


def make_image_folder(root, n=12, size=(20, 24), mode="RGB", classes=None, seed=0):
    """Write n small random images (PNG) under root, optionally in class sub-folders."""
    import random

    from PIL import Image

    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        w, h = size if not callable(size) else size(i)
        folder = root / classes[i % len(classes)] if classes else root
        folder.mkdir(parents=True, exist_ok=True)
        channels = {"RGB": 3, "L": 1}[mode]
        data = bytes(rng.randrange(256) for _ in range(w * h * channels))
        path = folder / f"img_{i:03d}.png"
        Image.frombytes(mode, (w, h), data).save(path)
        paths.append(path)
    return paths


def invoke(*args):
    """Run the CLI in-process (typer's CliRunner) with every argument as a string."""
    from typer.testing import CliRunner

    from ganctl.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def train_in_own_store(tmp_path_factory, *args):
    """``ganctl train ARGS`` once, in a store of its own, for module-scoped fixtures (the autouse
    store fixture is per test and not active yet). Returns the store's root."""
    home = tmp_path_factory.mktemp("store")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANCTL_HOME", str(home))
        r = invoke("train", *args)
    assert r.exit_code == 0, r.output
    return home


def error_line(result, code=1):
    """The command failed with ``code`` and one 'error:' line, the last thing on stderr (info lines
    such as 'using run ...' may come before it), and no traceback. Returns the line."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    return errors[0]


def targz(entries: dict, links: tuple = ()) -> bytes:
    """A .tar.gz (bytes) of ``entries`` (name -> content) and symbolic ``links`` (name, target)."""
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in links:
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tf.addfile(info)
    return buf.getvalue()
