from __future__ import annotations

import os
import zipfile

import pytest

from ganctl.data.archives import extract
from ganctl.errors import DatasetError
from tests.conftest import targz


def _zip(path, entries):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


def _tar(path, entries, links=()):
    path.write_bytes(targz(entries, tuple(links)))
    return path


@pytest.mark.parametrize("make", [_zip, _tar])
def test_good_archive_extracts(tmp_path, make):
    arc = make(tmp_path / "a.arc", {"set/train/1.jpg": b"x", "set/val/2.jpg": b"yy"})
    out = extract(arc, tmp_path / "out")
    assert (out / "set" / "train" / "1.jpg").read_bytes() == b"x"
    assert (out / "set" / "val" / "2.jpg").read_bytes() == b"yy"


@pytest.mark.parametrize("make", [_zip, _tar])
@pytest.mark.parametrize("bad", ["../evil.txt", "/abs/evil.txt", "set/../../evil.txt"])
def test_escaping_entries_are_refused_before_writing(tmp_path, make, bad):
    arc = make(tmp_path / "a.arc", {"set/ok.jpg": b"x", bad: b"pwned"})
    with pytest.raises(DatasetError, match="unsafe entry"):
        extract(arc, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "evil.txt").exists()
    assert sorted(os.listdir(tmp_path)) == ["a.arc"]


def test_symlink_in_tar_is_refused(tmp_path):
    arc = _tar(tmp_path / "a.tgz", {"set/ok.jpg": b"x"}, links=[("set/link", "/etc/passwd")])
    with pytest.raises(DatasetError, match="link entry"):
        extract(arc, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_truncated_archive_is_reported(tmp_path):
    arc = _tar(tmp_path / "a.tgz", {f"set/{i}.jpg": os.urandom(2000) for i in range(5)})
    arc.write_bytes(arc.read_bytes()[:3000])
    with pytest.raises(DatasetError, match="damaged|neither"):
        extract(arc, tmp_path / "out")
    assert not (tmp_path / "out").exists()
