from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile

import pytest

from ganctl.core.errors import DatasetError
from ganctl.data.archives import extract
from tests.conftest import targz


def _zip(path, entries):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


def _tar(path, entries, links=()):
    path.write_bytes(targz(entries, tuple(links)))
    return path


@pytest.fixture(params=[True, False], ids=["tarfile-data-filter", "older-python"])
def data_filter(request, monkeypatch):
    """Tar extraction with tarfile's data filter, and as on a Python that has none; the entries
    the data filter saw, when it is there."""
    if not request.param:
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
        return None
    seen, real = [], tarfile.data_filter
    monkeypatch.setattr(tarfile, "data_filter", lambda member, path: seen.append(member.name) or real(member, path))
    return seen


@pytest.mark.parametrize("make", [_zip, _tar])
def test_good_archive_extracts(tmp_path, make, data_filter):
    arc = make(tmp_path / "a.arc", {"set/train/1.jpg": b"x", "set/val/2.jpg": b"yy"})
    out = extract(arc, tmp_path / "out")
    assert (out / "set" / "train" / "1.jpg").read_bytes() == b"x"
    assert (out / "set" / "val" / "2.jpg").read_bytes() == b"yy"


@pytest.mark.parametrize("make", [_zip, _tar])
@pytest.mark.parametrize("bad", ["../evil.txt", "/abs/evil.txt", "set/../../evil.txt"])
def test_escaping_entries_are_refused_before_writing(tmp_path, make, bad, data_filter):
    arc = make(tmp_path / "a.arc", {"set/ok.jpg": b"x", bad: b"pwned"})
    with pytest.raises(DatasetError, match="unsafe entry"):
        extract(arc, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "evil.txt").exists()
    assert sorted(os.listdir(tmp_path)) == ["a.arc"]


def test_symlink_in_tar_is_refused(tmp_path, data_filter):
    arc = _tar(tmp_path / "a.tgz", {"set/ok.jpg": b"x"}, links=[("set/link", "/etc/passwd")])
    with pytest.raises(DatasetError, match="link entry"):
        extract(arc, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_truncated_archive_is_reported(tmp_path, data_filter):
    arc = _tar(tmp_path / "a.tgz", {f"set/{i}.jpg": os.urandom(2000) for i in range(5)})
    arc.write_bytes(arc.read_bytes()[:3000])
    with pytest.raises(DatasetError, match="damaged|neither"):
        extract(arc, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def _tar_with(path, members, mode="w:gz"):
    """A tar of (TarInfo, bytes or None) members, written as given (types, modes, link names)."""
    with tarfile.open(path, mode) as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _info(name, type_=tarfile.REGTYPE, size=0, mode=0o644, linkname=""):
    info = tarfile.TarInfo(name)
    info.type, info.size, info.mode, info.linkname = type_, size, mode, linkname
    return info


@pytest.mark.parametrize(
    ("member", "refusal"),
    [
        (_info("set/hard", tarfile.LNKTYPE, linkname="set/ok.jpg"), "link entry"),  # inside the folder: still refused
        (_info("set/inner", tarfile.SYMTYPE, linkname="ok.jpg"), "link entry"),
        (_info("set/fifo", tarfile.FIFOTYPE), "special entry"),
        (_info("set/dev", tarfile.CHRTYPE), "special entry"),
    ],
)
def test_links_and_special_entries_are_refused_even_inside_the_folder(tmp_path, data_filter, member, refusal):
    # tarfile's data filter allows links that stay inside the target; ganctl refuses every link
    arc = _tar_with(tmp_path / "a.tgz", [(_info("set/ok.jpg", size=1), b"x"), (member, None)])
    with pytest.raises(DatasetError, match=refusal):
        extract(arc, tmp_path / "out")
    assert sorted(os.listdir(tmp_path)) == ["a.tgz"]


@pytest.mark.parametrize("mode", ["w:gz", "w:bz2", "w:xz", "w"])
def test_every_tar_compression_extracts_in_one_pass(tmp_path, data_filter, mode, monkeypatch):
    arc = _tar_with(tmp_path / "a.tar", [
        (_info("set", tarfile.DIRTYPE, mode=0o700), None),
        (_info("set/a.jpg", size=3, mode=0o4777), b"abc"),  # setuid and world-writable in the archive
        (_info("set/sub/b.jpg", size=2), b"de"),
    ], mode)
    events = []
    out = extract(arc, tmp_path / "out", lambda event, **kw: events.append((event, kw)))
    assert (out / "set" / "a.jpg").read_bytes() == b"abc" and (out / "set" / "sub" / "b.jpg").read_bytes() == b"de"
    umask = os.umask(0)
    os.umask(umask)
    # the modes any file ganctl writes gets, whatever the archive said
    assert stat.S_IMODE((out / "set" / "a.jpg").stat().st_mode) == 0o666 & ~umask
    assert stat.S_IMODE((out / "set").stat().st_mode) == 0o777 & ~umask
    # progress: the archive's bytes, read once
    assert events[0] == ("start", {"total": arc.stat().st_size, "resumed": 0}) and events[-1][0] == "end"
    assert sum(kw["n"] for event, kw in events if event == "advance") == arc.stat().st_size
    # each member once, in order (Python 3.12's tarfile filters folders once more when it sets their modes)
    assert data_filter is None or data_filter[:3] == ["set", "set/a.jpg", "set/sub/b.jpg"]
    assert data_filter is None or set(data_filter[3:]) <= {"set"}


def test_a_damaged_trailer_is_found_after_every_entry_extracted(tmp_path, data_filter):
    # the gzip CRC sits past the tar's end-of-archive block: only reading on to the end finds it
    arc = _tar(tmp_path / "a.tgz", {"set/1.jpg": os.urandom(3000)})
    data = bytearray(arc.read_bytes())
    data[-8:-4] = bytes(b ^ 0xFF for b in data[-8:-4])
    arc.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match="is damaged"):
        extract(arc, tmp_path / "out")
    assert sorted(os.listdir(tmp_path)) == ["a.tgz"]


def test_a_tar_over_the_caps_is_refused_as_its_headers_arrive(tmp_path, data_filter, monkeypatch):
    from ganctl.data import archives

    monkeypatch.setattr(archives, "MIN_LIMIT", 5000)
    arc = _tar(tmp_path / "a.tgz", {f"set/{i}.bin": bytes(2000) for i in range(4)})  # 8000 bytes of zeros
    with pytest.raises(DatasetError, match=r"unpacks to more than .*\(its first 3 files together\)"):
        extract(arc, tmp_path / "out")
    assert sorted(os.listdir(tmp_path)) == ["a.tgz"]
