"""Downloading the CycleGAN archives (NAME.zip of NAME/trainA, trainB, testA, testB), against a local
HTTP server on 127.0.0.1 serving small zips in the official layout."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import random
import zipfile
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from ganctl.cli import app
from ganctl.core.errors import DatasetError, DownloadError
from ganctl.data import catalog, fetch
from ganctl.data.unpaired import aligned_test_pairs, load_unpaired, load_unpaired_data
from tests import httpserver
from tests.conftest import error_line

http_server = httpserver.http_server  # the fixture, for this module

runner = CliRunner()
COUNTS = {"trainA": 3, "trainB": 4, "testA": 2, "testB": 2}


def _jpeg(seed: str, size: int = 16) -> bytes:
    """A real noisy JPEG (so the archive is some kilobytes)."""
    img = Image.frombytes("RGB", (size, size), random.Random(seed).randbytes(size * size * 3))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=95)
    return buf.getvalue()


def _entries(top: str = "maps", counts: dict[str, int] = COUNTS) -> dict[str, bytes]:
    """The official layout, named as in CycleGAN's maps archive: maps/trainA/1_A.jpg ..."""
    return {f"{top}/{folder}/{i}_{folder[-1]}.jpg": _jpeg(f"{folder}{i}") for folder, n in counts.items()
            for i in range(1, n + 1)}


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


PRIMARY, MIRROR = "berkeley/", "efros/"


@pytest.fixture
def small_maps(http_server, monkeypatch):
    """maps-unpaired listing 3/4/2/2 images, its two published hosts served by the test server."""
    entry = dataclasses.replace(catalog.CATALOG["maps-unpaired"], expected_counts=dict(COUNTS),
                                mirrors=(http_server.url + PRIMARY, http_server.url + MIRROR))
    monkeypatch.setitem(catalog.CATALOG, "maps-unpaired", entry)
    http_server.files[PRIMARY + "maps.zip"] = _zip(_entries())
    return entry


def _store() -> Path:
    return Path(os.environ["GANCTL_HOME"]).resolve() / "datasets"


def _listing() -> list[str]:
    root = _store()
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) if root.exists() else []


def test_download_extracts_records_and_loads_beside_the_pix2pix_maps(http_server, small_maps):
    folder = fetch.fetch(small_maps)

    assert folder == _store() / "maps-unpaired" / "maps"  # never the pix2pix maps' folder
    assert sorted(p.name for p in folder.parent.iterdir()) == ["maps"]  # archive deleted, no staging left
    assert sorted(p.name for p in folder.iterdir()) == ["download.json", "testA", "testB", "trainA", "trainB"]
    record = json.loads((folder / "download.json").read_text())
    served = http_server.files[PRIMARY + "maps.zip"]
    assert record["sha256"] == hashlib.sha256(served).hexdigest() and record["size"] == len(served)
    assert record["images"] == COUNTS and record["file"] == "maps.zip" and "expected_images" not in record
    assert [r.path for r in http_server.requests] == [PRIMARY + "maps.zip"]
    assert small_maps.is_present() and not catalog.CATALOG["maps"].is_present()

    data = load_unpaired("maps", load_size=8)  # 'maps' for an unpaired family: the CycleGAN archive
    assert data.name == "maps-unpaired" and data.a.shape == (3, 3, 8, 8) and data.b.shape == (4, 3, 8, 8)
    pairs = aligned_test_pairs(data, 8)  # testA/1_A.jpg goes with testB/1_B.jpg
    assert pairs is not None and pairs.files == ["1_A.jpg", "2_A.jpg"]

    http_server.requests.clear()
    assert fetch.fetch(small_maps) == folder and http_server.requests == []


def test_training_data_downloads_a_missing_set_and_gives_aligned_previews(http_server, small_maps):
    warned = []
    train, preview = load_unpaired_data("maps", image_size=8, load_size=10, warn=warned.append)
    assert "'maps-unpaired' is not in the store yet: downloading it" in warned[0]
    assert train.a.shape == (3, 3, 10, 10) and train.b.shape == (4, 3, 10, 10) and len(train) == 4
    assert preview.aligned and preview.files_a == ["1_A.jpg", "2_A.jpg"] and preview.b.shape == (2, 3, 8, 8)


def test_published_host_down_falls_back_to_the_mirror(http_server, small_maps):
    http_server.files[MIRROR + "maps.zip"] = http_server.files.pop(PRIMARY + "maps.zip")
    folder = fetch.fetch(small_maps)
    assert [r.path for r in http_server.requests] == [PRIMARY + "maps.zip", MIRROR + "maps.zip"]
    assert json.loads((folder / "download.json").read_text())["images"] == COUNTS


def test_cli_download_with_mirror(http_server, small_maps):
    http_server.files["elsewhere/maps.zip"] = http_server.files.pop(PRIMARY + "maps.zip")
    r = runner.invoke(app, ["download", "maps-unpaired", "--mirror", http_server.url + "elsewhere"])
    assert r.exit_code == 0, r.output
    assert r.stdout.strip().splitlines()[-1] == str(_store() / "maps-unpaired" / "maps")
    assert [q.path for q in http_server.requests] == ["elsewhere/maps.zip"]


def test_interrupted_transfer_resumes_with_a_range_request(http_server, small_maps):
    served = http_server.files[PRIMARY + "maps.zip"]
    cut = len(served) // 2
    http_server.truncate(PRIMARY + "maps.zip", after=cut, times=1)

    folder = fetch.fetch(small_maps)

    assert [r.range for r in http_server.requests] == [None, f"bytes={cut}-"]
    assert json.loads((folder / "download.json").read_text())["sha256"] == hashlib.sha256(served).hexdigest()


def test_transfer_cut_on_every_try_keeps_the_partial_file_for_the_next_run(http_server, small_maps):
    http_server.truncate(PRIMARY + "maps.zip", after=300)
    http_server.truncate(MIRROR + "maps.zip", after=300)
    with pytest.raises(DownloadError, match="run the same command again to resume"):
        fetch.fetch(small_maps)
    assert _listing() == ["CACHEDIR.TAG", "maps-unpaired", "maps-unpaired/maps.zip.incomplete"]

    http_server.fix()
    http_server.requests.clear()
    folder = fetch.fetch(small_maps)  # the next run resumes the partial file
    assert http_server.requests[0].range is not None and (folder / "trainA" / "1_A.jpg").is_file()


def test_damaged_archive_is_deleted_and_the_mirror_tried(http_server, small_maps):
    # the same length, one byte of an entry flipped: only reading the zip through finds it (CRC)
    good = http_server.files[PRIMARY + "maps.zip"]
    served = bytearray(good)
    served[200] ^= 0xFF
    http_server.files[PRIMARY + "maps.zip"] = bytes(served)
    http_server.files[MIRROR + "maps.zip"] = good
    folder = fetch.fetch(small_maps)
    assert json.loads((folder / "download.json").read_text())["sha256"] == hashlib.sha256(good).hexdigest()

    fetch.shutil.rmtree(folder.parent)
    http_server.files[MIRROR + "maps.zip"] = bytes(served)  # damaged everywhere
    with pytest.raises(DownloadError) as info:
        fetch.fetch(small_maps)
    assert "is damaged" in error_line_of(info) and "archive was deleted" in str(info.value)
    assert _listing() == ["CACHEDIR.TAG"]


def test_a_recorded_checksum_that_does_not_match_is_refused(http_server, small_maps, monkeypatch):
    # none is published; one pinned in the catalog (from a recorded download.json) is enforced
    served = http_server.files[PRIMARY + "maps.zip"]
    http_server.files[MIRROR + "maps.zip"] = served  # both hosts serve it: the checksum refuses both
    pinned = dataclasses.replace(small_maps, files=(catalog.RemoteFile("maps.zip", None, "sha256:" + "0" * 64),))
    monkeypatch.setitem(catalog.CATALOG, "maps-unpaired", pinned)
    with pytest.raises(DownloadError) as info:
        fetch.fetch(pinned)
    assert f"sha256 {hashlib.sha256(served).hexdigest()}, expected {'0' * 64}" in error_line_of(info)
    assert not pinned.is_present() and _listing() == ["CACHEDIR.TAG"]

    right = dataclasses.replace(pinned, files=(catalog.RemoteFile("maps.zip", len(served), "sha256:" + hashlib.sha256(served).hexdigest()),))
    assert (fetch.fetch(right) / "trainB" / "4_B.jpg").is_file()


@pytest.mark.parametrize(
    "extra", [{"../evil.jpg": b"pwned"}, {"maps/trainA/../../../evil.jpg": b"pwned"}, {"/tmp/ganctl-cyc-evil.jpg": b"x"}],
    ids=["dotdot", "nested-dotdot", "absolute"],
)
def test_path_escaping_zip_is_refused(http_server, small_maps, tmp_path, extra):
    http_server.files[PRIMARY + "maps.zip"] = _zip(_entries() | extra)

    with pytest.raises(DatasetError, match="unsafe entry") as info:
        fetch.fetch(small_maps)

    assert "archive was deleted" in error_line_of(info)
    assert _listing() == ["CACHEDIR.TAG"]
    assert not (tmp_path / "evil.jpg").exists() and not (_store().parent / "evil.jpg").exists()
    assert not Path("/tmp/ganctl-cyc-evil.jpg").exists()


def error_line_of(info: pytest.ExceptionInfo) -> str:
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def test_archive_of_another_layout_is_refused(http_server, small_maps):
    http_server.files[PRIMARY + "maps.zip"] = _zip({"maps/train/1.jpg": _jpeg("x"), "maps/val/1.jpg": _jpeg("y")})
    with pytest.raises(DatasetError) as info:
        fetch.fetch(small_maps)
    assert "holds no maps/ folder with images in trainA/, trainB/" in error_line_of(info)
    assert "not the maps-unpaired archive" in str(info.value) and _listing() == ["CACHEDIR.TAG"]


def test_other_counts_than_listed_are_installed_and_recorded(http_server, small_maps, capsys):
    http_server.files[PRIMARY + "maps.zip"] = _zip(_entries(counts={"trainA": 3, "trainB": 5, "testA": 2}))
    folder = fetch.fetch(small_maps)
    record = json.loads((folder / "download.json").read_text())
    assert record["images"] == {"trainA": 3, "trainB": 5, "testA": 2}
    assert record["expected_images"] == COUNTS
    assert "trainB/ 5 (listed 4), testB/ 0 (listed 2)" in capsys.readouterr().err


def test_cli_cityscapes_unpaired_is_one_error_line_and_listing_shows_the_sets():
    line = error_line(runner.invoke(app, ["download", "cityscapes-unpaired"]))
    assert "cannot be downloaded by ganctl" in line and "trainA/" in line and "--dataset PATH" in line
    r = runner.invoke(app, ["download"])
    rows = {ln.split()[0]: ln for ln in r.stderr.splitlines() if ln.strip()}
    for name in ("horse2zebra", "maps-unpaired", "facades-unpaired", "monet2photo"):
        assert "not downloaded" in rows[name] and "~" in rows[name]
    assert "generated on first use" in rows["synthetic-facades-unpaired"]
