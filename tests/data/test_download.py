"""The downloader (ganctl.data.download) and `ganctl download`, against a local HTTP server."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import random
import struct
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ganctl.cli import app
from ganctl.core.errors import DownloadError
from ganctl.data import catalog
from ganctl.data.download import RemoteFile, download
from tests import httpserver
from tests.conftest import error_line

http_server = httpserver.http_server  # the fixture, for this module

TIMEOUT = 3.0
NAME = "blob.bin"
DATA = random.Random(1234).randbytes(300_000)  # several 64 KiB chunks


@pytest.fixture(autouse=True)
def _env(tmp_path, monkeypatch):
    monkeypatch.setenv("GANCTL_DOWNLOAD_BACKOFF", "0")
    monkeypatch.setenv("GANCTL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("GANCTL_MIRROR", raising=False)


def _remote(data: bytes = DATA, name: str = NAME, algo: str = "md5", size: bool = True) -> RemoteFile:
    return RemoteFile(name, len(data) if size else None, f"{algo}:{hashlib.new(algo, data).hexdigest()}")


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


class Recorder:
    """A progress callback that keeps every event."""

    def __init__(self):
        self.events: list[tuple[str, dict]] = []

    def __call__(self, event, **fields):
        self.events.append((event, fields))

    def starts(self):
        return [f for e, f in self.events if e == "start"]

    def ends(self):
        return [f["complete"] for e, f in self.events if e == "end"]


# ---------------------------------------------------------------- library: success


@pytest.mark.parametrize("algo", ["md5", "sha256"])
def test_good_file_is_verified_and_renamed(http_server, tmp_path, algo):
    http_server.files[NAME] = DATA
    dest = tmp_path / "out" / NAME
    progress = Recorder()

    got = download(_remote(algo=algo), [http_server.url], dest, progress=progress, timeout=TIMEOUT)

    assert got == dest
    assert dest.read_bytes() == DATA
    assert _leftovers(dest.parent) == [NAME]  # no .incomplete
    assert [r.range for r in http_server.requests] == [None]
    assert progress.starts() == [{"total": len(DATA), "resumed": 0}]
    assert sum(f["n"] for e, f in progress.events if e == "advance") == len(DATA)
    assert progress.ends() == [True]


def test_checksum_digest_is_case_insensitive(http_server, tmp_path):
    http_server.files[NAME] = DATA
    remote = RemoteFile(NAME, len(DATA), "sha256:" + hashlib.sha256(DATA).hexdigest().upper())
    dest = download(remote, [http_server.url], tmp_path / NAME, timeout=TIMEOUT)
    assert dest.read_bytes() == DATA


def test_file_without_size_is_checked_by_checksum_only(http_server, tmp_path):
    http_server.files[NAME] = DATA
    dest = download(_remote(size=False), [http_server.url], tmp_path / NAME, timeout=TIMEOUT)
    assert dest.read_bytes() == DATA


# ---------------------------------------------------------------- library: bad files


@pytest.mark.parametrize("algo", ["md5", "sha256"])
def test_wrong_checksum_deletes_the_file(http_server, tmp_path, algo):
    http_server.files[NAME] = DATA
    wrong = hashlib.new(algo, b"something else").hexdigest()
    remote = RemoteFile(NAME, len(DATA), f"{algo}:{wrong}")
    dest = tmp_path / "out" / NAME

    with pytest.raises(DownloadError, match="failed verification") as info:
        download(remote, [http_server.url], dest, retries=3, timeout=TIMEOUT)

    msg = str(info.value)
    assert NAME in msg and wrong in msg and hashlib.new(algo, DATA).hexdigest() in msg
    assert not dest.exists()
    assert _leftovers(dest.parent) == []  # no .incomplete either
    assert len(http_server.requests) == 1  # a wrong file is not asked for again from the same URL


def test_wrong_size_is_a_verification_error(http_server, tmp_path):
    http_server.files[NAME] = DATA
    remote = RemoteFile(NAME, len(DATA) + 10, _remote().checksum)
    with pytest.raises(DownloadError, match="failed verification: size 300,000 bytes, expected 300,010"):
        download(remote, [http_server.url], tmp_path / NAME, timeout=TIMEOUT)
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("size", [True, False], ids=["size-known", "size-unknown"])
def test_html_page_instead_of_the_file(http_server, tmp_path, size):
    http_server.files[NAME] = DATA
    http_server.serve_html(NAME)
    dest = tmp_path / NAME

    with pytest.raises(DownloadError, match="failed verification") as info:
        download(_remote(size=size), [http_server.url], dest, timeout=TIMEOUT)

    assert "HTML" in str(info.value)
    assert _leftovers(tmp_path) == []


# ---------------------------------------------------------------- library: interrupted transfers


def test_truncated_transfer_resumes_with_range(http_server, tmp_path):
    http_server.files[NAME] = DATA
    http_server.truncate(NAME, after=100_000, times=1)
    dest = tmp_path / NAME
    progress = Recorder()

    download(_remote(), [http_server.url], dest, progress=progress, retries=3, timeout=TIMEOUT)

    assert dest.read_bytes() == DATA
    assert [r.range for r in http_server.requests] == [None, "bytes=100000-"]
    assert progress.starts() == [
        {"total": len(DATA), "resumed": 0},
        {"total": len(DATA), "resumed": 100_000},
    ]
    assert progress.ends() == [False, True]
    assert _leftovers(tmp_path) == [NAME]


def test_truncated_every_time_keeps_partial_then_resumes(http_server, tmp_path):
    http_server.files[NAME] = DATA
    http_server.truncate(NAME, after=10_000)  # on every request
    dest = tmp_path / NAME
    part = tmp_path / (NAME + ".incomplete")

    with pytest.raises(DownloadError) as info:
        download(_remote(), [http_server.url], dest, retries=2, timeout=TIMEOUT)

    msg = str(info.value)
    # each of the 3 attempts resumed where the previous one stopped
    assert [r.range for r in http_server.requests] == [None, "bytes=10000-", "bytes=20000-"]
    assert not dest.exists()
    assert part.read_bytes() == DATA[:30_000]
    assert "30,000 bytes are kept in blob.bin.incomplete" in msg and "resume" in msg
    assert "connection closed after 30,000 of 300,000 bytes" in msg

    http_server.fix()
    http_server.requests.clear()
    download(_remote(), [http_server.url], dest, retries=2, timeout=TIMEOUT)

    assert [r.range for r in http_server.requests] == ["bytes=30000-"]
    assert dest.read_bytes() == DATA
    assert not part.exists()


def test_server_that_ignores_range_restarts_from_zero(http_server, tmp_path):
    http_server.files[NAME] = DATA
    http_server.truncate(NAME, after=50_000, times=1)
    http_server.ignore_range(NAME)
    dest = tmp_path / NAME

    download(_remote(), [http_server.url], dest, retries=3, timeout=TIMEOUT)

    assert [r.range for r in http_server.requests] == [None, "bytes=50000-"]
    assert dest.read_bytes() == DATA  # the 200 answer overwrote the partial file, no duplicated prefix


def test_transient_server_error_is_retried(http_server, tmp_path):
    http_server.files[NAME] = DATA
    http_server.fail(NAME, 503, times=2)
    dest = tmp_path / NAME
    download(_remote(), [http_server.url], dest, retries=3, timeout=TIMEOUT)
    assert dest.read_bytes() == DATA
    assert len(http_server.requests) == 3


def test_partial_file_that_is_already_complete_needs_no_request(http_server, tmp_path):
    http_server.files[NAME] = DATA
    dest = tmp_path / NAME
    (tmp_path / (NAME + ".incomplete")).write_bytes(DATA)
    download(_remote(), [http_server.url], dest, timeout=TIMEOUT)
    assert dest.read_bytes() == DATA
    assert http_server.requests == []
    assert _leftovers(tmp_path) == [NAME]


def test_stale_partial_file_longer_than_the_file_is_discarded(http_server, tmp_path):
    http_server.files[NAME] = DATA
    dest = tmp_path / NAME
    (tmp_path / (NAME + ".incomplete")).write_bytes(b"x" * (len(DATA) + 1))
    download(_remote(), [http_server.url], dest, timeout=TIMEOUT)
    assert dest.read_bytes() == DATA
    assert [r.range for r in http_server.requests] == [None]


def test_partial_file_not_a_prefix_is_caught_by_the_checksum(http_server, tmp_path):
    http_server.files[NAME] = DATA
    dest = tmp_path / NAME
    (tmp_path / (NAME + ".incomplete")).write_bytes(b"\0" * 1000)  # garbage from elsewhere
    with pytest.raises(DownloadError, match="failed verification"):
        download(_remote(), [http_server.url], dest, timeout=TIMEOUT)
    assert [r.range for r in http_server.requests] == ["bytes=1000-"]
    assert _leftovers(tmp_path) == []
    # the bad partial file was deleted, so the next run starts over and succeeds
    download(_remote(), [http_server.url], dest, timeout=TIMEOUT)
    assert dest.read_bytes() == DATA


def test_unsatisfiable_range_starts_over(http_server, tmp_path):
    # size unknown, the partial file already holds the whole file: the server answers 416
    http_server.files[NAME] = DATA
    dest = tmp_path / NAME
    (tmp_path / (NAME + ".incomplete")).write_bytes(DATA)
    download(_remote(size=False), [http_server.url], dest, retries=2, timeout=TIMEOUT)
    assert dest.read_bytes() == DATA
    assert [r.range for r in http_server.requests] == [f"bytes={len(DATA)}-", None]


# ---------------------------------------------------------------- library: missing files, mirrors


def test_404_fails_at_once_without_retries(http_server, tmp_path):
    dest = tmp_path / "out" / NAME
    t0 = time.perf_counter()
    with pytest.raises(DownloadError, match="404") as info:
        download(_remote(), [http_server.url], dest, retries=3, timeout=TIMEOUT, backoff=2.0)
    assert time.perf_counter() - t0 < 1.5  # retries would sleep 2 + 4 + 8 s
    assert len(http_server.requests) == 1
    assert NAME in str(info.value) and "--mirror" in str(info.value)
    assert "kept" not in str(info.value)
    assert _leftovers(dest.parent) == []


def test_second_mirror_serves_when_the_first_404s(http_server, tmp_path):
    http_server.files["good/" + NAME] = DATA
    bases = [http_server.url + "empty/", http_server.url + "good"]  # with and without the slash
    dest = tmp_path / NAME
    download(_remote(), bases, dest, retries=3, timeout=TIMEOUT)
    assert dest.read_bytes() == DATA
    assert [r.path for r in http_server.requests] == ["empty/" + NAME, "good/" + NAME]


def test_mirror_with_html_page_falls_through_to_the_next(http_server, tmp_path):
    http_server.files["portal/" + NAME] = DATA
    http_server.serve_html("portal/" + NAME)
    http_server.files["good/" + NAME] = DATA
    dest = tmp_path / NAME
    download(_remote(), [http_server.url + "portal/", http_server.url + "good/"], dest, timeout=TIMEOUT)
    assert dest.read_bytes() == DATA
    assert len(http_server.requests) == 2


def test_file_with_its_own_url_is_fetched_from_it(http_server, tmp_path):
    # files published at a URL that is not <base>/<name> (a Google Drive link, say)
    http_server.files["uc"] = DATA
    remote = dataclasses.replace(_remote(), url=http_server.url + "uc?id=abc&export=download")
    dest = download(remote, [remote.url], tmp_path / NAME, timeout=TIMEOUT)
    assert dest.read_bytes() == DATA
    assert [r.path for r in http_server.requests] == ["uc"]


def _entry(name: str, files: tuple[RemoteFile, ...]) -> catalog.CatalogEntry:
    return catalog.CatalogEntry(name=name, summary="test", layout="idx", channels=1, native_size=28, classes=(), files=files)


def test_fetch_uses_the_file_url_when_the_entry_has_no_mirrors(http_server, tmp_path):
    from ganctl.data import fetch

    http_server.files["dl/one"] = DATA
    one = dataclasses.replace(_remote(name="one.bin"), url=http_server.url + "dl/one?confirm=t")
    folder = fetch.fetch(_entry("single", (one,)))
    assert (folder / "one.bin").read_bytes() == DATA
    assert folder == (tmp_path / "home").resolve() / "datasets" / "single"


def test_fetch_uses_each_files_own_url(http_server, tmp_path):
    from ganctl.data import fetch

    other = DATA[::-1]
    http_server.files["dl/one"] = DATA
    http_server.files["dl/two"] = other
    one = dataclasses.replace(_remote(name="one.bin"), url=http_server.url + "dl/one")
    two = dataclasses.replace(_remote(other, name="two.bin"), url=http_server.url + "dl/two")
    folder = fetch.fetch(_entry("pair", (one, two)))
    assert (folder / "two.bin").read_bytes() == other


def test_unreachable_server_is_a_download_error(tmp_path):
    # a port that was free a moment ago: nothing listens there
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadError, match="could not download"):
        download(_remote(), [f"http://127.0.0.1:{port}/"], tmp_path / NAME, retries=1, timeout=TIMEOUT)
    assert _leftovers(tmp_path) == []


# ---------------------------------------------------------------- the test server itself


def test_http_server_ranges_and_clean_stop():
    import threading
    import urllib.error
    import urllib.request

    with httpserver.FileServer() as server:
        assert server.url.startswith("http://127.0.0.1:") and server.url.endswith("/")
        server.files["f"] = b"0123456789"

        def get(rng=None):
            req = urllib.request.Request(server.url + "f", headers={"Range": rng} if rng else {})
            with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
                return resp.status, resp.headers.get("Content-Range"), resp.read()

        assert get() == (200, None, b"0123456789")
        assert get("bytes=4-") == (206, "bytes 4-9/10", b"456789")
        assert get("bytes=2-3") == (206, "bytes 2-3/10", b"23")
        assert get("bytes=-3") == (206, "bytes 7-9/10", b"789")
        with pytest.raises(urllib.error.HTTPError) as e416:
            get("bytes=10-")
        assert e416.value.code == 416 and e416.value.headers["Content-Range"] == "bytes */10"
        with pytest.raises(urllib.error.HTTPError) as e404:
            urllib.request.urlopen(server.url + "missing", timeout=TIMEOUT)
        assert e404.value.code == 404
        assert [(r.path, r.range) for r in server.requests][1:3] == [("f", "bytes=4-"), ("f", "bytes=2-3")]
        threads = server._thread
    assert not threads.is_alive()
    assert not any(t.name == "test-http-server" for t in threading.enumerate())


# ---------------------------------------------------------------- CLI


runner = CliRunner()


def _gz_idx(header: bytes, body: bytes) -> bytes:
    return gzip.compress(header + body, mtime=0)


@pytest.fixture
def tiny_mnist(http_server, monkeypatch):
    """Serve four small real-format MNIST files and make the catalog expect them."""
    rng = random.Random(7)
    sets = {}
    for split, n in (("train", 6), ("t10k", 4)):
        pixels = rng.randbytes(n * 28 * 28)
        labels = bytes(rng.randrange(10) for _ in range(n))
        sets[split] = (pixels, labels)
        http_server.files[f"mnist/{split}-images-idx3-ubyte.gz"] = _gz_idx(struct.pack(">IIII", 0x803, n, 28, 28), pixels)
        http_server.files[f"mnist/{split}-labels-idx1-ubyte.gz"] = _gz_idx(struct.pack(">II", 0x801, n), labels)
    entry = catalog.CATALOG["mnist"]
    files = tuple(
        RemoteFile(f.name, len(http_server.files["mnist/" + f.name]), "md5:" + hashlib.md5(http_server.files["mnist/" + f.name]).hexdigest())
        for f in entry.files
    )
    monkeypatch.setitem(catalog.CATALOG, "mnist", dataclasses.replace(entry, files=files))
    return sets


_error_line = error_line


def test_cli_download_mnist_then_load(http_server, tiny_mnist, tmp_path):
    import torch

    from ganctl.data import datasets

    r = runner.invoke(app, ["download", "mnist", "--mirror", http_server.url + "mnist/"])

    assert r.exit_code == 0, r.output
    folder = (tmp_path / "home").resolve() / "datasets" / "mnist"
    assert r.stdout.strip().splitlines()[-1] == str(folder)
    for f in catalog.CATALOG["mnist"].files:
        assert (folder / f.name).read_bytes() == http_server.files["mnist/" + f.name]
        assert not (folder / (f.name + ".incomplete")).exists()
    assert sorted(r.path for r in http_server.requests) == sorted(http_server.files)

    train = datasets.load("mnist", 28)
    pixels, labels = tiny_mnist["train"]
    assert train.images.shape == (6, 1, 28, 28) and train.images.dtype == torch.uint8
    assert train.images.flatten().tolist() == list(pixels)
    assert train.labels.tolist() == list(labels)
    test = datasets.load("mnist", 28, split="test")
    assert test.images.shape == (4, 1, 28, 28) and test.labels.tolist() == list(tiny_mnist["t10k"][1])

    # a second run finds everything in the store and asks the server for nothing
    http_server.requests.clear()
    r = runner.invoke(app, ["download", "mnist", "--mirror", http_server.url + "mnist/"])
    assert r.exit_code == 0, r.output
    assert "already in the store" in r.stderr and r.stdout.strip().splitlines()[-1] == str(folder)
    assert http_server.requests == []


def test_cli_mirror_from_environment(http_server, tiny_mnist, tmp_path, monkeypatch):
    monkeypatch.setenv("GANCTL_MIRROR", http_server.url + "mnist/")
    r = runner.invoke(app, ["download", "mnist"])
    assert r.exit_code == 0, r.output
    assert len(http_server.requests) == 4


def test_cli_download_lists_datasets():
    r = runner.invoke(app, ["download"])
    assert r.exit_code == 0, r.output
    assert "mnist" in r.stderr and "fashion-mnist" in r.stderr
    assert "not downloaded" in r.stderr
    assert r.stdout == ""


def test_cli_unknown_dataset_is_one_line():
    r = runner.invoke(app, ["download", "nosuchset"])
    line = _error_line(r)
    assert "nosuchset" in line and ("did you mean" in line.lower() or "Valid" in line)
    assert "mnist" in line


def test_cli_misspelt_dataset_suggests_the_name():
    line = _error_line(runner.invoke(app, ["download", "fashon-mnist"]))
    assert "Did you mean 'fashion-mnist'" in line


def test_cli_checksum_failure_is_one_error_line(http_server, tiny_mnist, monkeypatch, tmp_path):
    entry = catalog.CATALOG["mnist"]
    first = entry.files[0]
    bad = dataclasses.replace(first, checksum="md5:" + "0" * 32)
    monkeypatch.setitem(catalog.CATALOG, "mnist", dataclasses.replace(entry, files=(bad, *entry.files[1:])))

    r = runner.invoke(app, ["download", "mnist", "--mirror", http_server.url + "mnist/"])

    line = _error_line(r)
    assert "failed verification" in line and first.name in line
    assert r.stdout == ""
    folder = (tmp_path / "home").resolve() / "datasets" / "mnist"
    assert not (folder / first.name).exists()
    assert not (folder / (first.name + ".incomplete")).exists()


def test_cli_interrupted_download_says_how_to_resume(http_server, tiny_mnist, tmp_path):
    name = catalog.CATALOG["mnist"].files[0].name
    http_server.truncate("mnist/" + name, after=100)
    mirror = http_server.url + "mnist/"

    line = _error_line(runner.invoke(app, ["download", "mnist", "--mirror", mirror]))
    assert "run the same command again to resume" in line

    http_server.fix()
    http_server.requests.clear()
    r = runner.invoke(app, ["download", "mnist", "--mirror", mirror])
    assert r.exit_code == 0, r.output
    assert "resuming" in r.stderr
    ranges = [req.range for req in http_server.requests if req.path == "mnist/" + name]
    assert len(ranges) == 1 and ranges[0].startswith("bytes=") and ranges[0] != "bytes=0-"
    folder = (tmp_path / "home").resolve() / "datasets" / "mnist"
    assert (folder / name).read_bytes() == http_server.files["mnist/" + name]
