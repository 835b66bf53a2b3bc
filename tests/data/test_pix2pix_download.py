"""`ganctl download` of the pix2pix archives, against a local HTTP server serving small look-alikes."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import random
from pathlib import Path

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from ganctl.cli import app
from ganctl.core.errors import DatasetError, DownloadError
from ganctl.data import catalog, fetch
from ganctl.data.paired import load_paired
from tests import httpserver
from tests.conftest import error_line, targz

http_server = httpserver.http_server  # the fixture, for this module

runner = CliRunner()
COUNTS = {"train": 3, "val": 2, "test": 1}
SERVED = "pix2pix/facades.tar.gz"


def _jpeg(seed: int) -> bytes:
    """A real 32x16 A|B JPEG: noisy A half (so the archive is some kilobytes), flat B half."""
    rng = random.Random(seed)
    img = Image.frombytes("RGB", (32, 16), rng.randbytes(32 * 16 * 3))
    img.paste((40 * seed % 256, 90, 200), (16, 0, 32, 16))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=95)
    return buf.getvalue()


_targz = targz


def _official(counts: dict[str, int] = COUNTS, top: str = "facades") -> dict[str, bytes]:
    """Entries in the official layout: facades/<split>/<i>.jpg."""
    entries, seed = {}, 0
    for split, n in counts.items():
        for i in range(1, n + 1):
            seed += 1
            entries[f"{top}/{split}/{i}.jpg"] = _jpeg(seed)
    return entries


@pytest.fixture
def small_facades(http_server, monkeypatch):
    """The facades entry expecting 3/2/1 pairs, served from the test server (its published mirror)."""
    entry = dataclasses.replace(
        catalog.CATALOG["facades"], expected_counts=dict(COUNTS), mirrors=(http_server.url + "pix2pix/",)
    )
    monkeypatch.setitem(catalog.CATALOG, "facades", entry)
    http_server.files[SERVED] = _targz(_official())
    return entry


def _home() -> Path:
    return Path(os.environ["GANCTL_HOME"]).resolve()


def _store_listing() -> list[str]:
    root = _home() / "datasets"
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) if root.exists() else []


_error_line = error_line


# ---------------------------------------------------------------- success


def test_download_extracts_verifies_records_and_loads(http_server, small_facades):
    folder = fetch.fetch(small_facades)

    dataset = _home() / "datasets" / "facades"
    assert folder == dataset / "facades"
    assert sorted(p.name for p in dataset.iterdir()) == ["facades"]  # archive deleted, no staging left
    assert sorted(p.name for p in folder.iterdir()) == ["download.json", "test", "train", "val"]
    record = json.loads((folder / "download.json").read_text())
    served = http_server.files[SERVED]
    assert record["sha256"] == hashlib.sha256(served).hexdigest() and record["size"] == len(served)
    assert record["file"] == "facades.tar.gz" and record["pairs"] == COUNTS
    assert small_facades.is_present()

    data = load_paired("facades", "val", load_size=16)
    assert len(data) == 2 and data.default_direction == "BtoA" and data.files == ["1.jpg", "2.jpg"]
    with Image.open(folder / "val" / "2.jpg") as img:
        ab = img.convert("RGB")
    right = ab.crop((16, 0, 32, 16))  # B: the right half, 16x16, already at the load size
    assert torch.equal(data.b[1], torch.frombuffer(bytearray(right.tobytes()), dtype=torch.uint8).view(16, 16, 3).permute(2, 0, 1))
    assert [r.range for r in http_server.requests] == [None]

    # again: nothing is fetched
    http_server.requests.clear()
    assert fetch.fetch(small_facades) == folder
    assert http_server.requests == []


def test_cli_download_with_mirror(http_server, small_facades):
    http_server.files["mirror/facades.tar.gz"] = http_server.files.pop(SERVED)

    r = runner.invoke(app, ["download", "facades", "--mirror", http_server.url + "mirror"])

    assert r.exit_code == 0, r.output
    folder = _home() / "datasets" / "facades" / "facades"
    assert r.stdout.strip().splitlines()[-1] == str(folder)
    assert [q.path for q in http_server.requests] == ["mirror/facades.tar.gz"]
    assert "fetched facades.tar.gz" in r.stderr
    assert load_paired("facades", "test", load_size=8).a.shape == (1, 3, 8, 8)

    r = runner.invoke(app, ["download", "facades", "--mirror", http_server.url + "mirror"])
    assert r.exit_code == 0 and "already in the store" in r.stderr
    assert len(http_server.requests) == 1


def test_interrupted_transfer_resumes_with_a_range_request(http_server, small_facades):
    served = http_server.files[SERVED]
    cut = len(served) // 2
    http_server.truncate(SERVED, after=cut, times=1)

    folder = fetch.fetch(small_facades)

    assert [r.range for r in http_server.requests] == [None, f"bytes={cut}-"]
    record = json.loads((folder / "download.json").read_text())
    assert record["sha256"] == hashlib.sha256(served).hexdigest()
    assert load_paired("facades", load_size=8).a.shape == (3, 3, 8, 8)


# ---------------------------------------------------------------- refused archives


@pytest.mark.parametrize(
    "extra, links",
    [
        ({"../evil.jpg": b"pwned"}, ()),
        ({"facades/train/../../../evil.jpg": b"pwned"}, ()),
        ({"/tmp/ganctl-test-evil.jpg": b"pwned"}, ()),
        ({}, (("facades/train/link.jpg", "/etc/passwd"),)),
        ({}, (("facades/train/up", "../../.."),)),
    ],
    ids=["dotdot", "nested-dotdot", "absolute", "symlink-absolute", "symlink-up"],
)
def test_unsafe_archive_is_refused_and_nothing_lands(http_server, small_facades, tmp_path, extra, links):
    http_server.files[SERVED] = _targz(_official() | extra, links)

    with pytest.raises(DatasetError, match="unsafe entry|link entry") as info:
        fetch.fetch(small_facades)

    assert "archive was deleted" in str(info.value)
    assert not (_home() / "datasets" / "facades").exists()
    assert _store_listing() == ["CACHEDIR.TAG"]
    assert not (tmp_path / "evil.jpg").exists() and not (_home() / "evil.jpg").exists()
    assert not Path("/tmp/ganctl-test-evil.jpg").exists()


def test_count_mismatch_is_an_error_and_installs_nothing(http_server, small_facades):
    http_server.files[SERVED] = _targz(_official({"train": 3, "val": 1}))

    with pytest.raises(DatasetError) as info:
        fetch.fetch(small_facades)

    msg = str(info.value)
    assert "expected train 3, val 2, test 1; found train 3, val 1, no test/" in msg
    assert "archive is kept" in msg and "--dataset PATH" in msg
    dataset = _home() / "datasets" / "facades"
    assert sorted(p.name for p in dataset.iterdir()) == ["facades.tar.gz"]  # kept; no half dataset
    assert not small_facades.is_present()
    # the next run uses the kept archive (the server would send the same file) and says the same
    http_server.requests.clear()
    with pytest.raises(DatasetError, match="found train 3, val 1"):
        fetch.fetch(small_facades)
    assert http_server.requests == []


def test_archive_of_another_dataset_is_refused(http_server, small_facades):
    http_server.files[SERVED] = _targz({"maps/train/1.jpg": _jpeg(1), "maps/val/1.jpg": _jpeg(2)})
    with pytest.raises(DatasetError, match="holds no facades/ folder with train/ or val/ or test/"):
        fetch.fetch(small_facades)
    assert _store_listing() == ["CACHEDIR.TAG"]


def test_archive_cut_short_after_every_retry_leaves_no_dataset(http_server, small_facades):
    http_server.truncate(SERVED, after=500)  # every request

    with pytest.raises(DownloadError, match="run the same command again to resume"):
        fetch.fetch(small_facades)

    assert _store_listing() == ["CACHEDIR.TAG", "facades", "facades/facades.tar.gz.incomplete"]
    assert not small_facades.is_present()


def _cut(data: bytes, n: int) -> bytes:
    return data[:-n]


def _bad_crc(data: bytes) -> bytes:
    crc = bytes(b ^ 0xFF for b in data[-8:-4])
    return data[:-8] + crc + data[-4:]


@pytest.mark.parametrize(
    "damage",
    [lambda d: _cut(d, 200), lambda d: _cut(d, 8), _bad_crc],
    ids=["cut-mid-stream", "cut-gzip-trailer", "bad-crc"],
)
def test_corrupt_archive_is_deleted_and_leaves_no_dataset(http_server, small_facades, damage):
    # the server sends a damaged file whole (Content-Length agrees): only reading it shows it.
    # The last two damage only the gzip trailer, past the tar's end-of-archive block: every entry
    # extracts fine, and only reading to the end of the stream finds them
    http_server.files[SERVED] = damage(http_server.files[SERVED])

    # found by the downloader (which then tries the next mirror) or, failing that, by extraction
    with pytest.raises((DownloadError, DatasetError), match="is damaged") as info:
        fetch.fetch(small_facades)

    assert "archive was deleted" in str(info.value)
    assert _store_listing() == ["CACHEDIR.TAG"]


# ---------------------------------------------------------------- cityscapes, synthetic-facades, listing


def test_cli_cityscapes_is_one_error_line():
    line = _error_line(runner.invoke(app, ["download", "cityscapes"]))
    assert "gtFine_trainvaltest.zip" in line and "leftImg8bit_trainvaltest.zip" in line
    assert "--dataset PATH" in line
    assert _store_listing() in ([], ["CACHEDIR.TAG"])


def test_cli_synthetic_facades_is_generated():
    r = runner.invoke(app, ["download", "synthetic-facades"])
    assert r.exit_code == 0, r.output
    folder = catalog.CATALOG["synthetic-facades"].data_dir()
    assert r.stdout.strip().splitlines()[-1] == str(folder)
    assert "generating" in r.stderr
    assert sorted(p.name for p in (folder / "val").iterdir())[:3] == ["1.png", "10.png", "11.png"]


def test_cli_listing_shows_the_pix2pix_datasets():
    r = runner.invoke(app, ["download"])
    assert r.exit_code == 0, r.output
    rows = {ln.split()[0]: ln for ln in r.stderr.splitlines() if ln.strip()}
    for name in ("facades", "maps", "edges2shoes", "edges2handbags", "night2day"):
        assert "not downloaded" in rows[name] and "~" in rows[name]
    assert "prepare by hand" in rows["cityscapes"]
    assert "generated on first use" in rows["synthetic-facades"]
