from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# keep test runs small and deterministic on a 2-core machine
os.environ.setdefault("OMP_NUM_THREADS", "2")


# ---------------------------------------------------------------- the user's real store stays untouched
#
# Every test gets a GANCTL_HOME of its own (``_isolated_store``). Should one lose it (a
# ``monkeypatch.undo()``, a fixture that runs before it, a subprocess without the variable), ganctl
# falls back to platformdirs' user data dir: for the session that is pointed (XDG_DATA_HOME) at a
# temporary folder, each test fails if anything appears there, and the session fails if the real
# store (the user data dir, and a GANCTL_HOME the suite was started with) changed at all.


def _real_stores() -> list[Path]:
    from platformdirs import user_data_path

    found = [user_data_path("ganctl", appauthor=False)]
    if os.environ.get("GANCTL_HOME"):
        found.append(Path(os.environ["GANCTL_HOME"]).expanduser())
    return found


def _snapshot(folders: list[Path]) -> dict[str, tuple[int, int]]:
    """Every path under ``folders`` (and the folders) with its size and modification time."""
    seen = {}
    for root in folders:
        for p in (root, *(root.rglob("*") if root.is_dir() else ())):
            try:
                st = p.lstat()
            except OSError:
                continue
            seen[str(p)] = (st.st_size if not p.is_dir() else 0, st.st_mtime_ns)
    return seen


REAL_STORES = _real_stores()
_REAL_BEFORE = _snapshot(REAL_STORES)
_FALLBACK_ROOT = Path(tempfile.mkdtemp(prefix="ganctl-tests-xdg-"))
os.environ["XDG_DATA_HOME"] = str(_FALLBACK_ROOT)  # platformdirs' user data dir on Linux and BSDs
os.environ.pop("GANCTL_HOME", None)
# settings of the shell the suite runs in must not change what the tests see (bars, tracebacks)
for _name in ("GANCTL_DISABLE_PROGRESS_BARS", "GANCTL_DEBUG"):
    os.environ.pop(_name, None)


def store_writes(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> list[str]:
    """What changed between two snapshots: paths added, removed or modified."""
    return sorted(p for p in after.keys() | before.keys() if before.get(p) != after.get(p))


def fallback_store_writes() -> list[Path]:
    """Files a test wrote into the fallback store (the platformdirs dir ganctl would use without GANCTL_HOME)."""
    from platformdirs import user_data_path

    fallback = user_data_path("ganctl", appauthor=False)
    return sorted(fallback.rglob("*")) if fallback.is_relative_to(_FALLBACK_ROOT) and fallback.exists() else []


@pytest.fixture(autouse=True)
def _no_default_store_writes(request):
    """Fail the test that wrote into the default store (it lost its GANCTL_HOME)."""
    yield
    written = fallback_store_writes()
    if written:
        import shutil

        shutil.rmtree(_FALLBACK_ROOT / "ganctl", ignore_errors=True)  # the next test starts clean
        pytest.fail(f"{request.node.nodeid} wrote into the user data dir ganctl uses without GANCTL_HOME: "
                    f"{', '.join(map(str, written[:5]))}", pytrace=False)


def pytest_sessionfinish(session, exitstatus):
    import shutil

    shutil.rmtree(_FALLBACK_ROOT, ignore_errors=True)
    changed = store_writes(_REAL_BEFORE, _snapshot(REAL_STORES))
    if changed:
        listing = "\n  ".join(changed[:20])
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = (f"FAILED: the real ganctl store ({', '.join(map(str, REAL_STORES))}) changed during the test "
                   f"session; no test may write there (or another ganctl process used it meanwhile):\n  {listing}")
        if reporter:
            reporter.write_line(message, red=True)
        else:
            print(message)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


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
