"""Downloads that go wrong in ways a size check does not see: a damaged compressed stream, a server
that trickles, an archive that unpacks to far more than it should, a web page in place of an archive.
All against the local HTTP server (tests/httpserver.py)."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import os
import random
import tarfile
import time
import zipfile
from pathlib import Path

import pytest

from ganctl.core.errors import DatasetError, DownloadError
from ganctl.data import catalog, fetch
from ganctl.data.archives import extract
from ganctl.data.download import RemoteFile, download
from tests import httpserver
from tests.conftest import error_line, invoke, targz

http_server = httpserver.http_server  # the fixture, for this module

COUNTS = {"train": 2, "val": 1}
SERVED = "pix2pix/facades.tar.gz"
MiB = 1 << 20


def _noise(seed: int, n: int) -> bytes:
    """Low-entropy noise: compressed (not stored) by deflate, so damage to it is a zlib error, not only a bad CRC."""
    return bytes(random.Random(seed).choices(b"abcd", k=n))


def _official(extra: dict | None = None) -> dict[str, bytes]:
    """facades/<split>/<i>.jpg entries, plus ``extra``."""
    entries = {f"facades/{s}/{i}.jpg": _noise(10 * len(s) + i, 6000) for s, n in COUNTS.items() for i in range(1, n + 1)}
    return entries | (extra or {})


def _damage_mid_stream(data: bytes) -> bytes:
    """Same size, deflate stream broken in its middle: only decompressing it shows it."""
    out = bytearray(data)
    mid = len(out) // 2
    for i in range(mid, mid + 32):
        out[i] ^= 0x5A
    return bytes(out)


def _zeros(n: int) -> io.BufferedReader:
    """A reader of ``n`` zero bytes that never holds them all in memory."""

    class Zeros(io.RawIOBase):
        left = n

        def readable(self):
            return True

        def readinto(self, b):
            k = min(len(b), self.left)
            b[:k] = bytes(k)
            self.left -= k
            return k

    return io.BufferedReader(Zeros())


def _bomb_targz(entries: dict[str, bytes], zeros: dict[str, int]) -> bytes:
    """A .tar.gz of ``entries`` plus members of ``zeros[name]`` zero bytes (a few KB compressed per 10 MiB)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=6) as tf:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, size in zeros.items():
            info = tarfile.TarInfo(name)
            info.size = size
            tf.addfile(info, _zeros(size))
    return buf.getvalue()


def _zip(entries: dict[str, bytes], zeros: dict[str, int] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        for name, size in (zeros or {}).items():
            with zf.open(name, "w", force_zip64=True) as f:
                for _ in range(size // MiB):
                    f.write(bytes(MiB))
    return buf.getvalue()


def _home() -> Path:
    return Path(os.environ["GANCTL_HOME"]).resolve()


def _store_listing() -> list[str]:
    root = _home() / "datasets"
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) if root.exists() else []


@pytest.fixture
def facades(http_server, monkeypatch):
    """The facades entry expecting 2/1 pairs, published at the test server's pix2pix/ (and good/)."""
    entry = dataclasses.replace(
        catalog.CATALOG["facades"], expected_counts=dict(COUNTS), mirrors=(http_server.url + "pix2pix/",)
    )
    monkeypatch.setitem(catalog.CATALOG, "facades", entry)
    http_server.files[SERVED] = targz(_official())
    return entry


def _zip_entry(http_server, monkeypatch, data: bytes, name: str = "img_align_celeba.zip", pinned: bool = False):
    """celeba (a "zip" layout entry) served from the test server's zip/, its checksum pinned or not."""
    http_server.files["zip/" + name] = data
    remote = RemoteFile(name, len(data), "md5:" + hashlib.md5(data).hexdigest() if pinned else None)
    entry = dataclasses.replace(catalog.CATALOG["celeba"], files=(remote,), mirrors=(http_server.url + "zip/",))
    monkeypatch.setitem(catalog.CATALOG, "celeba", entry)
    return entry


# ---------------------------------------------------------------- damaged compressed streams


def test_corrupt_targz_is_one_line_deleted_and_the_rerun_succeeds(http_server, facades):
    good = http_server.files[SERVED]
    http_server.files[SERVED] = _damage_mid_stream(good)

    line = error_line(invoke("download", "facades"))

    assert "facades.tar.gz" in line and "is damaged" in line and "internal error" not in line
    assert "deleted" in line and "--mirror" in line
    assert _store_listing() == ["CACHEDIR.TAG"]  # not kept: a rerun must not fail the same way
    http_server.files[SERVED] = good
    r = invoke("download", "facades")
    assert r.exit_code == 0, r.output
    assert facades.is_present()


def test_corrupt_targz_on_the_first_mirror_falls_through_to_the_next(http_server, facades, monkeypatch):
    http_server.files["good/facades.tar.gz"] = http_server.files[SERVED]
    http_server.files[SERVED] = _damage_mid_stream(http_server.files[SERVED])
    entry = dataclasses.replace(facades, mirrors=(http_server.url + "pix2pix/", http_server.url + "good/"))

    folder = fetch.fetch(entry)

    assert sorted(p.name for p in (folder / "train").iterdir()) == ["1.jpg", "2.jpg"]
    assert [r.path for r in http_server.requests] == [SERVED, "good/facades.tar.gz"]


def test_corrupt_zip_without_checksum_is_deleted_and_the_rerun_succeeds(http_server, monkeypatch):
    good = _zip({f"img_align_celeba/{i}.jpg": _noise(i, 5000) for i in range(4)})
    entry = _zip_entry(http_server, monkeypatch, _damage_mid_stream(good))

    with pytest.raises(DownloadError, match="img_align_celeba.zip from .* is damaged") as info:
        fetch.fetch(entry)

    assert "deleted" in str(info.value)
    assert _store_listing() in (["CACHEDIR.TAG"], ["CACHEDIR.TAG", "celeba"])  # no file, at most an empty folder
    entry = _zip_entry(http_server, monkeypatch, good)
    folder = fetch.fetch(entry)
    assert len(list((folder / "img_align_celeba").iterdir())) == 4


@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_extracting_a_damaged_stream_is_a_dataset_error(tmp_path, kind):
    # a file damaged after download (or whose checksum matched a damaged original) reaches extract
    entries = {f"set/{i}.jpg": _noise(i, 5000) for i in range(4)}
    arc = tmp_path / f"a.{kind}"
    arc.write_bytes(_damage_mid_stream(targz(entries) if kind == "tar.gz" else _zip(entries)))

    with pytest.raises(DatasetError, match="a.* is damaged"):
        extract(arc, tmp_path / "out")

    assert sorted(os.listdir(tmp_path)) == [arc.name]


def test_corrupt_idx_gz_in_the_store_is_a_dataset_error(tmp_path):
    from ganctl.data.datasets import read_idx

    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(_damage_mid_stream(gzip.compress(_noise(0, 50_000), mtime=0)))
    with pytest.raises(DatasetError, match="not a readable IDX file"):
        read_idx(path)


# ---------------------------------------------------------------- a server that trickles


def test_trickling_server_is_abandoned_and_the_partial_file_resumes(http_server, tmp_path, monkeypatch):
    data = random.Random(3).randbytes(2000)
    http_server.files["slow/blob.bin"] = data
    http_server.trickle("slow/blob.bin", chunk=20, delay=0.1)  # 200 bytes/s, a new byte every 0.1 s
    monkeypatch.setenv("GANCTL_DOWNLOAD_MIN_RATE", "1000")
    monkeypatch.setenv("GANCTL_DOWNLOAD_RATE_WINDOW", "0.5")
    remote = RemoteFile("blob.bin", len(data), "sha256:" + hashlib.sha256(data).hexdigest())
    dest = tmp_path / "blob.bin"
    part = tmp_path / "blob.bin.incomplete"

    t0 = time.monotonic()
    with pytest.raises(DownloadError) as info:
        download(remote, [http_server.url + "slow/"], dest, retries=1, timeout=5.0)

    assert time.monotonic() - t0 < 5  # two attempts of about half a second each; the old code took 10 s and succeeded
    msg = str(info.value)
    assert "too slow" in msg and http_server.url + "slow/blob.bin" in msg and "--mirror" in msg
    assert "GANCTL_DOWNLOAD_MIN_RATE" in msg
    kept = part.stat().st_size
    assert 0 < kept < len(data) and f"{kept:,} bytes are kept" in msg
    assert [r.range for r in http_server.requests_for("slow/blob.bin")][1] is not None  # the retry resumed

    # slow but above the minimum: not abandoned, and it resumes where the last attempt stopped
    http_server.requests.clear()
    http_server.trickle("slow/blob.bin", chunk=500, delay=0.05)  # 10 KB/s
    download(remote, [http_server.url + "slow/"], dest, retries=0, timeout=5.0)
    assert dest.read_bytes() == data
    assert [r.range for r in http_server.requests] == [f"bytes={kept}-"]


def test_cli_trickling_archive_is_one_line_that_names_the_url(http_server, facades, monkeypatch):
    size = len(http_server.files[SERVED])
    http_server.trickle(SERVED, chunk=200, delay=0.1)  # 2 KB/s: each of the 4 attempts gets under 1 KB
    monkeypatch.setenv("GANCTL_DOWNLOAD_MIN_RATE", "100000")
    monkeypatch.setenv("GANCTL_DOWNLOAD_RATE_WINDOW", "0.3")

    line = error_line(invoke("download", "facades"))

    assert size > 5000  # the old code fetched it in a few seconds
    assert "too slow" in line and http_server.url + SERVED in line and "--mirror" in line
    assert "run the same command again to resume" in line
    assert not facades.is_present()


def test_cli_bad_min_rate_is_one_line(http_server, facades, monkeypatch):
    monkeypatch.setenv("GANCTL_DOWNLOAD_MIN_RATE", "fast")
    line = error_line(invoke("download", "facades"))
    assert "GANCTL_DOWNLOAD_MIN_RATE='fast'" in line
    assert http_server.requests == []


def test_cli_bad_backoff_is_one_line(http_server, facades, monkeypatch):
    monkeypatch.setenv("GANCTL_DOWNLOAD_BACKOFF", "soon")
    line = error_line(invoke("download", "facades"))
    assert "GANCTL_DOWNLOAD_BACKOFF='soon'" in line and "internal error" not in line
    assert http_server.requests == []


# ---------------------------------------------------------------- archives that unpack to far too much


def test_targz_bomb_is_refused_and_nothing_is_left(http_server, facades):
    # 80 MiB of zeros in about 80 KB: the old code installed it with exit 0
    http_server.files[SERVED] = _bomb_targz(_official(), {"facades/zeros.bin": 80 * MiB})
    assert len(http_server.files[SERVED]) < MiB

    line = error_line(invoke("download", "facades"))

    assert "facades.tar.gz unpacks to more than" in line and "'facades/zeros.bin'" in line
    assert "archive was deleted" in line
    assert _store_listing() == ["CACHEDIR.TAG"]


def test_zip_whose_files_together_are_too_big_is_refused_and_deleted(http_server, monkeypatch):
    # each file is small enough alone; together they are 80 MiB from a ~80 KB zip, checksum pinned
    data = _zip({}, {f"img_align_celeba/{i}.jpg": 16 * MiB for i in range(5)})
    entry = _zip_entry(http_server, monkeypatch, data, pinned=True)

    with pytest.raises(DatasetError, match=r"unpacks to more than .*\(its 5 files together\)") as info:
        fetch.fetch(entry)

    assert "archive was deleted" in str(info.value)
    assert _store_listing() == ["CACHEDIR.TAG"]


def test_an_archive_within_the_limits_still_extracts(tmp_path):
    # 20 MiB of zeros from a tiny archive: above 20x its size, below the 64 MiB floor for small archives
    arc = tmp_path / "a.tar.gz"
    arc.write_bytes(_bomb_targz({}, {"set/zeros.bin": 20 * MiB}))
    assert (extract(arc, tmp_path / "out") / "set" / "zeros.bin").stat().st_size == 20 * MiB
    arc.write_bytes(_bomb_targz({}, {"set/zeros.bin": 65 * MiB}))
    with pytest.raises(DatasetError, match="unpacks to more than"):
        extract(arc, tmp_path / "out2")
    assert sorted(os.listdir(tmp_path)) == ["a.tar.gz", "out"]


# ---------------------------------------------------------------- a web page in place of an archive


@pytest.mark.parametrize("name", ["img_align_celeba.zip", "img_align_celeba.tar"])
@pytest.mark.parametrize("pinned", [False, True], ids=["unpinned", "pinned"])
def test_web_page_instead_of_an_archive_says_so(http_server, monkeypatch, name, pinned):
    entry = _zip_entry(http_server, monkeypatch, b"not used", name=name, pinned=pinned)
    http_server.serve_html("zip/" + name)

    line = error_line(invoke("download", "celeba"))

    assert f"the server sent a web page instead of {name}: {http_server.url}zip/{name}" in line
    assert "--mirror" in line
    assert _store_listing() in (["CACHEDIR.TAG"], ["CACHEDIR.TAG", "celeba"])  # no file, at most an empty folder
    assert not entry.is_present()


def test_web_page_instead_of_the_targz_falls_through_to_the_next_mirror(http_server, facades):
    http_server.files["good/facades.tar.gz"] = http_server.files[SERVED]
    http_server.serve_html(SERVED)
    entry = dataclasses.replace(facades, mirrors=(http_server.url + "pix2pix/", http_server.url + "good/"))

    assert fetch.fetch(entry) == entry.data_dir()
    assert [r.path for r in http_server.requests] == [SERVED, "good/facades.tar.gz"]

    # with no other mirror: one line that says what came
    http_server.files.pop("good/facades.tar.gz")
    (entry.data_dir().parent / "facades").rename(entry.data_dir().parent / "gone")
    line = error_line(invoke("download", "facades"))
    assert f"the server sent a web page instead of facades.tar.gz: {http_server.url}{SERVED}" in line


@pytest.mark.parametrize("pinned", [False, True], ids=["unpinned", "pinned"])
def test_web_page_instead_of_a_gz_file_says_so(http_server, monkeypatch, pinned):
    real = gzip.compress(b"\0\0\x08\x01\0\0\0\x02ab", mtime=0)
    http_server.files["idx/labels.gz"] = real
    http_server.serve_html("idx/labels.gz")
    remote = RemoteFile("labels.gz", len(real) if pinned else None, "md5:" + hashlib.md5(real).hexdigest() if pinned else None)
    entry = catalog.CatalogEntry(name="tiny", summary="test", layout="idx", channels=1, native_size=28, classes=(),
                                 files=(remote,), mirrors=(http_server.url + "idx/",))

    with pytest.raises(DownloadError, match="the server sent a web page instead of labels.gz: .*--mirror"):
        fetch.fetch(entry)

    assert not (entry.local_dir() / "labels.gz").exists()
    assert not (entry.local_dir() / "labels.gz.incomplete").exists()
