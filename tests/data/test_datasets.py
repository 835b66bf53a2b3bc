from __future__ import annotations

import gzip
import struct
from pathlib import Path

import pytest
import torch

from ganctl.core.errors import DatasetError
from ganctl.data import catalog, datasets
from tests.conftest import make_image_folder


def _write_idx(path, images: torch.Tensor, labels: torch.Tensor | None = None):
    n, h, w = images.shape
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, h, w) + images.numpy().tobytes())


def test_read_idx_round_trip(tmp_path):
    imgs = torch.randint(0, 256, (5, 3, 4), dtype=torch.uint8)
    _write_idx(tmp_path / "x.gz", imgs)
    assert torch.equal(datasets.read_idx(tmp_path / "x.gz"), imgs)


def test_corrupt_idx_is_a_clear_error(tmp_path):
    (tmp_path / "bad.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DatasetError, match="not a readable IDX file"):
        datasets.read_idx(tmp_path / "bad.gz")
    with gzip.open(tmp_path / "short.gz", "wb") as f:
        f.write(struct.pack(">IIII", 0x803, 10, 28, 28) + b"\0" * 100)
    with pytest.raises(DatasetError, match="header promises"):
        datasets.read_idx(tmp_path / "short.gz")


def test_digits_ship_with_the_package_and_split():
    train = datasets.load("digits", 8)
    test = datasets.load("digits", 8, split="test")
    assert train.images.shape == (1500, 1, 8, 8) and test.images.shape == (297, 1, 8, 8)
    assert train.images.dtype == torch.uint8 and int(train.images.max()) == 255
    assert train.classes == tuple("0123456789")
    # every class is represented with roughly equal counts (1,797 images, ~180 each)
    counts = torch.bincount(torch.cat([train.labels, test.labels]), minlength=10)
    assert counts.sum() == 1797 and counts.min() >= 170
    up = datasets.load("digits", 28)
    assert up.images.shape == (1500, 1, 28, 28)


def test_catalog_dataset_missing_from_store_says_how_to_get_it():
    with pytest.raises(DatasetError, match="ganctl download mnist"):
        datasets.load("mnist", 28)


def test_unknown_dataset_suggests_names():
    with pytest.raises(DatasetError, match="did you mean 'mnist'|Did you mean 'mnist'"):
        datasets.load("mnsit", 28)


def test_folder_with_class_subfolders_gives_labels(tmp_path):
    make_image_folder(tmp_path / "pets", n=9, classes=["cat", "dog", "emu"])
    data = datasets.load(str(tmp_path / "pets"), 16)
    assert data.images.shape == (9, 3, 16, 16)
    assert data.classes == ("cat", "dog", "emu")
    assert data.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]  # files are read in path order


def test_flat_grayscale_folder_is_one_channel_without_labels(tmp_path):
    make_image_folder(tmp_path / "g", n=4, mode="L")
    data = datasets.load(str(tmp_path / "g"), 8)
    assert data.images.shape == (4, 1, 8, 8) and data.labels is None


def test_mixed_sizes_are_centre_cropped(tmp_path):
    from PIL import Image

    root = tmp_path / "mixed"
    root.mkdir()
    # a wide image: white square in the middle, black side bands that the centre crop removes
    img = Image.new("RGB", (30, 10), (0, 0, 0))
    img.paste((255, 255, 255), (10, 0, 20, 10))
    img.save(root / "wide.png")
    Image.new("RGB", (7, 13), (255, 255, 255)).save(root / "tall.png")
    data = datasets.load(str(root), 10)
    assert data.images.shape == (2, 3, 10, 10)
    assert int(data.images.min()) >= 250  # no black band survived


def test_unreadable_files_are_named_and_skipped(tmp_path):
    make_image_folder(tmp_path / "f", n=3)
    (tmp_path / "f" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    warnings = []
    data = datasets.load(str(tmp_path / "f"), 8, warn=warnings.append)
    assert len(data) == 3
    assert len(warnings) == 1 and "broken.jpg" in warnings[0]


def test_empty_folder_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    with pytest.raises(DatasetError, match="no images found"):
        datasets.load(str(tmp_path / "empty"), 8)


def test_catalog_entries_have_checksums_and_sizes():
    for entry in catalog.CATALOG.values():
        if entry.paired:  # pix2pix archives publish no checksums: counts are verified instead
            assert entry.expected_counts and entry.default_direction in ("AtoB", "BtoA")
            assert all(f.checksum is None for f in entry.files)
            continue
        if entry.unpaired:  # CycleGAN archives publish no checksums: the layout is checked, sha256 and counts recorded
            from ganctl.data.catalog_unpaired import CYCLEGAN_MIRROR, CYCLEGAN_URL

            assert entry.layout in ("cyclegan", "generated", "manual") and entry.classes == ()
            assert all(f.checksum is None for f in entry.files) and len(entry.domains) in (1, 2)
            if entry.layout == "cyclegan":
                assert entry.files[0].name == f"{entry.image_folder}.zip"
                assert entry.mirrors == (CYCLEGAN_URL, CYCLEGAN_MIRROR)
            continue
        for f in entry.files:
            assert f.checksum and f.checksum.split(":")[0] in ("md5", "sha256")
            if entry.layout == "idx":
                assert f.size and f.size > 0
        assert len(entry.classes) == (0 if entry.name == "celeba" else 10)


def test_large_folders_are_decoded_once_and_cached(tmp_path, monkeypatch, _isolated_store):
    monkeypatch.setattr(datasets, "CACHE_MIN_FILES", 1)
    make_image_folder(tmp_path / "f", n=5, classes=["a", "b"])
    (tmp_path / "f" / "a" / "bad.png").write_bytes(b"nope")
    first_warn, second_warn = [], []
    first = datasets.load(str(tmp_path / "f"), 8, warn=first_warn.append)
    caches = list((_isolated_store / "datasets" / ".cache").glob("folder-*.safetensors"))
    assert len(caches) == 1
    calls, decode = [], datasets._decode
    monkeypatch.setattr(datasets, "_decode", lambda *a: calls.append(a))
    second = datasets.load(str(tmp_path / "f"), 8, warn=second_warn.append)
    assert calls == []  # nothing decoded again
    assert torch.equal(first.images, second.images) and torch.equal(first.labels, second.labels)
    assert second.classes == ("a", "b") and first_warn == second_warn and "bad.png" in second_warn[0]
    # not monkeypatch.undo(): that would also undo the autouse GANCTL_HOME and write to the real store
    monkeypatch.setattr(datasets, "_decode", decode)
    make_image_folder(tmp_path / "f", n=6, classes=["a", "b"], seed=1)  # rewritten files: a new key
    third = datasets.load(str(tmp_path / "f"), 8)
    assert len(third) == 6 and not torch.equal(third.images[:5], first.images)


def _mapped_from(t: torch.Tensor, path) -> bool:
    """Whether ``t``'s memory is a mapping of ``path`` (per /proc/self/maps)."""
    addr = t.untyped_storage().data_ptr()
    for line in open("/proc/self/maps"):
        span, *_, name = line.split(maxsplit=5)
        lo, hi = (int(x, 16) for x in span.split("-"))
        if lo <= addr < hi:
            return name.strip() == str(path)
    return False


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads /proc/self/maps")
def test_the_cache_is_mapped_shared_and_never_written_through(tmp_path, monkeypatch, _isolated_store):
    # the decoding run and the runs after it read the images from the cache file's pages (which the
    # processes of a job share), not from a copy; writing into them leaves the file as it was
    monkeypatch.setattr(datasets, "CACHE_MIN_FILES", 1)
    make_image_folder(tmp_path / "f", n=6, classes=["a", "b"])
    first = datasets.load(str(tmp_path / "f"), 8)
    (cache,) = (_isolated_store / "datasets" / ".cache").glob("folder-*.safetensors")
    second = datasets.load(str(tmp_path / "f"), 8)
    assert _mapped_from(first.images, cache.resolve()) and _mapped_from(second.images, cache.resolve())
    saved = cache.read_bytes()
    expected = second.images.clone()
    first.images.zero_()
    assert cache.read_bytes() == saved and torch.equal(second.images, expected)
    assert torch.equal(datasets.load(str(tmp_path / "f"), 8).images, expected)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "no-metadata"])
def test_a_damaged_cache_is_decoded_again_and_rewritten(tmp_path, monkeypatch, _isolated_store, damage):
    from safetensors.torch import save_file

    monkeypatch.setattr(datasets, "CACHE_MIN_FILES", 1)
    make_image_folder(tmp_path / "f", n=6, classes=["a", "b"])
    good = datasets.load(str(tmp_path / "f"), 8)
    expected = (good.images.clone(), good.labels.clone())
    (cache,) = (_isolated_store / "datasets" / ".cache").glob("folder-*.safetensors")
    data = cache.read_bytes()
    del good
    if damage == "truncate":
        cache.write_bytes(data[: len(data) - 100])
    elif damage == "garbage":
        cache.write_bytes(b"\xff" * 64)
    elif damage == "empty":
        cache.write_bytes(b"")
    else:
        save_file({"images": expected[0]}, str(cache))
    again = datasets.load(str(tmp_path / "f"), 8)
    assert torch.equal(again.images, expected[0]) and torch.equal(again.labels, expected[1])
    assert cache.read_bytes() == data  # rewritten whole


def test_decoding_threads_share_the_cores_among_a_jobs_processes(tmp_path, monkeypatch):
    from concurrent import futures

    from ganctl.runtime import distributed

    make_image_folder(tmp_path / "f", n=4, classes=["a", "b"])
    sizes = []

    class Pool(futures.ThreadPoolExecutor):
        def __init__(self, max_workers):
            sizes.append(max_workers)
            super().__init__(max_workers)

    monkeypatch.setattr(futures, "ThreadPoolExecutor", Pool)
    monkeypatch.setattr(distributed, "usable_cpus", lambda: 16)
    datasets.load(str(tmp_path / "f"), 8)
    monkeypatch.setattr(distributed, "_world", distributed.World(rank=1, local_rank=1, size=4, local_size=4))
    datasets.load(str(tmp_path / "f"), 8)
    monkeypatch.setattr(distributed, "_world", distributed.World(rank=0, local_rank=0, size=32, local_size=32))
    datasets.load(str(tmp_path / "f"), 8)
    assert sizes == [16, 4, 1]


def test_mirror_replaces_published_urls(monkeypatch):
    e = catalog.get("mnist")
    assert catalog.mirrors_for(e) == list(e.mirrors)
    assert catalog.mirrors_for(e, "http://127.0.0.1:1/m/") == ["http://127.0.0.1:1/m/"]
    monkeypatch.setenv("GANCTL_MIRROR", "http://127.0.0.1:2/")
    assert catalog.mirrors_for(e) == ["http://127.0.0.1:2/"]
