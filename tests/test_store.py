from __future__ import annotations

import pytest

from ganctl.core import atomic, storedirs
from ganctl.core.errors import StoreError, UnknownNameError
from ganctl.store import layout


def test_home_is_resolved_at_call_time(monkeypatch, tmp_path):
    monkeypatch.setenv("GANCTL_HOME", str(tmp_path / "a"))
    assert layout.home() == (tmp_path / "a").resolve()
    monkeypatch.setenv("GANCTL_HOME", str(tmp_path / "b"))
    assert storedirs.runs_dir() == (tmp_path / "b").resolve() / "runs"


def test_home_defaults_to_platformdirs(monkeypatch):
    from platformdirs import user_data_path

    monkeypatch.delenv("GANCTL_HOME")
    assert layout.home() == user_data_path("ganctl", appauthor=False)


@pytest.mark.parametrize("bad", ["../x", "a/b", "..", ".hidden", "", "x" * 101, "a b", "-rf", "a\\b"])
def test_names_that_could_escape_are_refused(bad):
    with pytest.raises(StoreError):
        layout.check_name(bad)


@pytest.mark.parametrize("good", ["digits", "run-2", "My_run.v1", "0"])
def test_plain_names_are_accepted(good):
    assert layout.check_name(good) == good


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    dest = tmp_path / "f.bin"
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(dest) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("crash mid-write")
    assert list(tmp_path.iterdir()) == []
    atomic.atomic_write(dest, b"whole")
    assert dest.read_bytes() == b"whole"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_atomic_dir_is_renamed_only_when_complete(tmp_path):
    with pytest.raises(ValueError):
        with atomic.atomic_dir(tmp_path / "ck") as tmp:
            (tmp / "a").write_text("x")
            raise ValueError
    assert not (tmp_path / "ck").exists() and list(tmp_path.iterdir()) == []
    with atomic.atomic_dir(tmp_path / "ck") as tmp:
        (tmp / "a").write_text("x")
    assert (tmp_path / "ck" / "a").read_text() == "x"


def _fake_run(family, name, created):
    # a complete config: one with fields missing is listed as damaged (tests/test_store_validation.py)
    from ganctl.config import make_config
    from ganctl.families import registry

    path = layout.run_path(family, name)
    path.mkdir(parents=True)
    key, _ = registry.get(family).preset_for("digits")
    cfg = make_config(family, "digits", name, channels=1, classes=None, preset_key=key, epochs=1).to_json()
    atomic.atomic_write_json(path / "config.json", {**cfg, "created": created})
    return path


def test_runs_are_listed_newest_last_and_found_by_name():
    _fake_run("dcgan", "b", "2026-01-02T00:00:00")
    _fake_run("dcgan", "a", "2026-01-01T00:00:00")
    _fake_run("gan", "c", "2026-01-03T00:00:00")
    assert [r.id for r in layout.list_runs()] == ["dcgan/a", "dcgan/b", "gan/c"]
    assert layout.newest_run("dcgan").name == "b"
    assert layout.find_run("gan/c").family == "gan"
    assert layout.find_run("a", "dcgan").id == "dcgan/a"
    with pytest.raises(UnknownNameError, match="dcgan/a"):
        layout.find_run("zzz", "dcgan")


def test_next_run_name_numbers_duplicates():
    assert layout.next_run_name("gan", "digits") == "digits"
    _fake_run("gan", "digits", "x")
    assert layout.next_run_name("gan", "digits") == "digits-2"
    assert layout.next_run_name("gan", "my photos!") == "my-photos"


def test_delete_run_removes_everything():
    path = _fake_run("gan", "x", "t")
    (path / "checkpoints").mkdir()
    (path / "checkpoints" / "w").write_bytes(b"1" * 10)
    layout.delete_run(layout.find_run("gan/x"))
    assert not path.exists()
    assert list(path.parent.iterdir()) == []


def test_the_cache_paths_are_those_the_writers_use(tmp_path):
    """``rm --cache`` and ``list`` find the caches where datasets.py and evaluation/cache.py write them."""
    from ganctl.data import datasets
    from ganctl.evaluation import cache

    (tmp_path / "a.png").write_bytes(b"")
    assert datasets._cache_path(tmp_path, [tmp_path / "a.png"], 16).parent == storedirs.folder_cache_dir()
    assert datasets._cache_path(tmp_path, [tmp_path / "a.png"], 16).name.startswith("folder-")
    assert cache.classifier_dir("digits", 16, 1).parent == storedirs.evaluators_dir()
    assert cache.CLASSIFIER_FILE == layout.CLASSIFIER_FILE


def test_dir_size_skips_what_vanishes_and_is_zero_for_nothing(tmp_path, monkeypatch):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a").write_bytes(b"x" * 10)
    (tmp_path / "d" / "b").write_bytes(b"x" * 5)
    real = layout.Path.stat

    def vanished(self, *a, **k):
        if self.name == "b":
            raise FileNotFoundError(self)
        return real(self, *a, **k)

    assert storedirs.dir_size(tmp_path / "missing") == 0
    assert storedirs.dir_size(tmp_path / "d") == 15
    monkeypatch.setattr(layout.Path, "stat", vanished)
    assert storedirs.dir_size(tmp_path / "d") == 10
