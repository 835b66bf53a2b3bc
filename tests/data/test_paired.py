"""Paired datasets for pix2pix (ganctl.data.paired and its parts): layouts, errors, jitter, synthetic-facades."""

from __future__ import annotations

import random

import pytest
import torch
from PIL import Image

from ganctl.core.errors import DatasetError
from ganctl.data import catalog, fetch, paired, synthetic_facades
from ganctl.data.pair_jitter import paired_jitter
from ganctl.data.pair_layouts import pair_counts
from ganctl.data.paired import LazyPairedData, load_paired

BICUBIC = Image.Resampling.BICUBIC


def _noise(w: int, h: int, seed: int | str) -> Image.Image:
    rng = random.Random(seed)
    return Image.frombytes("RGB", (w, h), rng.randbytes(w * h * 3))


def _ab(path, a: Image.Image, b: Image.Image) -> Image.Image:
    """Save a side-by-side A|B image (widths may differ by one, as with an odd total width)."""
    ab = Image.new("RGB", (a.width + b.width, a.height))
    ab.paste(a, (0, 0))
    ab.paste(b, (a.width, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    ab.save(path)
    return ab


def _expected(img: Image.Image, size: int) -> torch.Tensor:
    """What the official pipeline makes of one half: RGB, Resize([size, size], BICUBIC)."""
    half = img.convert("RGB").resize((size, size), BICUBIC)
    return torch.frombuffer(bytearray(half.tobytes()), dtype=torch.uint8).view(size, size, 3).permute(2, 0, 1)


def _aligned_folder(root, counts=None, w=20, h=20):
    """root/<split>/<i>.png: A = noise seeded (split, i), B = a different noise."""
    counts = counts or {"train": 3}
    halves = {}
    for split, n in counts.items():
        for i in range(1, n + 1):
            a, b = _noise(w, h, f"{split}{i}a"), _noise(w + 1, h, f"{split}{i}b")
            _ab(root / split / f"{i}.png", a, b)
            halves[(split, i)] = (a, b)
    return halves


# ---------------------------------------------------------------- aligned layout


def test_aligned_folder_splits_left_a_right_b_and_resizes_bicubic(tmp_path):
    root = tmp_path / "pairs"
    halves = _aligned_folder(root, {"train": 3, "val": 2}, w=20, h=16)  # odd total width 41: B is 21 wide

    data = load_paired(str(root), "train", load_size=24)

    assert isinstance(data, paired.PairedData) and not data.lazy
    assert data.a.shape == data.b.shape == (3, 3, 24, 24) and data.a.dtype == torch.uint8
    assert data.files == ["1.png", "2.png", "3.png"] and data.split == "train"
    assert data.default_direction == "AtoB" and data.source == str(root.resolve()) and len(data) == 3
    for k in range(3):
        a, b = halves[("train", k + 1)]
        assert torch.equal(data.a[k], _expected(a, 24))  # the left 20 columns (41 // 2), not aspect-preserving
        assert torch.equal(data.b[k], _expected(b, 24))
    ba, bb = data.batch(torch.tensor([2, 0]))
    assert torch.equal(ba, data.a[[2, 0]]) and torch.equal(bb, data.b[[2, 0]])
    # a bilinear resize would differ: the filter matters for parity with the official loader
    a0 = halves[("train", 1)][0].resize((24, 24), Image.Resampling.BILINEAR)
    assert not torch.equal(data.a[0], torch.frombuffer(bytearray(a0.tobytes()), dtype=torch.uint8).view(24, 24, 3).permute(2, 0, 1))

    val = load_paired(str(root), "val", load_size=8)
    assert len(val) == 2 and val.split == "val" and val.a.shape[-1] == 8


def test_aligned_folder_files_are_found_recursively_in_natural_order(tmp_path):
    root = tmp_path / "pairs"
    for name in ("train/10.png", "train/2.JPG", "train/sub/1.ppm", "train/3.Tif"):
        _ab(root / name, _noise(8, 8, 1), _noise(8, 8, 2))
    _ab(root / "train/.ipynb_checkpoints/9.png", _noise(8, 8, 3), _noise(8, 8, 4))  # hidden: skipped
    (root / "train" / "notes.txt").write_text("not an image")
    data = load_paired(str(root), load_size=8)
    assert data.files == ["2.JPG", "3.Tif", "10.png", "sub/1.ppm"]
    assert pair_counts(root) == {"train": 4}


def test_folder_without_split_folders_is_all_train(tmp_path):
    root = tmp_path / "flat"
    _ab(root / "x.png", _noise(8, 8, 1), _noise(8, 8, 2))
    _ab(root / "y.png", _noise(8, 8, 3), _noise(8, 8, 4))
    data = load_paired(str(root), load_size=8)
    assert data.split == "train" and len(data) == 2
    with pytest.raises(DatasetError, match=r"no 'val' split; it has: train \(a folder without train/, val/, test/"):
        load_paired(str(root), "val", load_size=8)


def test_missing_split_falls_back_to_its_stand_in_or_lists_the_splits(tmp_path):
    root = tmp_path / "pairs"
    _aligned_folder(root, {"train": 2, "test": 1})
    warnings = []
    data = load_paired(str(root), "val", load_size=8, warn=warnings.append)
    assert data.split == "test" and len(data) == 1
    assert warnings == [f"{root} has no 'val' split: using 'test'"]
    _aligned_folder(tmp_path / "only", {"train": 1})
    with pytest.raises(DatasetError, match="no 'test' split; it has: train$"):
        load_paired(str(tmp_path / "only"), "test", load_size=8)


def test_unreadable_image_is_named(tmp_path):
    root = tmp_path / "pairs"
    _aligned_folder(root, {"train": 2})
    (root / "train" / "5.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(DatasetError, match=r"1 bad pair\(s\) in .*: train/5.jpg cannot be read"):
        load_paired(str(root), load_size=8)


def test_empty_split_and_missing_folder_are_errors(tmp_path):
    (tmp_path / "pairs" / "train").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no images in"):
        load_paired(str(tmp_path / "pairs"), load_size=8)
    with pytest.raises(DatasetError, match="does not exist"):
        load_paired(str(tmp_path / "nope"), load_size=8)


# ---------------------------------------------------------------- A/ and B/ layout


def _ab_folders(root, names, split=None, size_b=None):
    out = {}
    for i, name in enumerate(names):
        a, b = _noise(12, 10, i), _noise(*(size_b or (12, 10)), 100 + i)
        for side, img, suffix in (("A", a, ".png"), ("B", b, ".jpg" if i == 0 else ".png")):
            folder = root / side / split if split else root / side
            folder.mkdir(parents=True, exist_ok=True)
            img.save(folder / (name + suffix), quality=95)
        out[name] = (a, Image.open(folder / (name + (".jpg" if i == 0 else ".png"))).convert("RGB"))
    return out


@pytest.mark.parametrize("split", [None, "train"])
def test_a_and_b_folders_pair_by_name(tmp_path, split):
    root = tmp_path / "ab"
    imgs = _ab_folders(root, ["p1", "p2", "p10"], split=split)  # p1 is A/p1.png with B/p1.jpg
    data = load_paired(str(root), load_size=16)
    assert data.files == ["p1.png", "p2.png", "p10.png"] and data.split == "train"
    for k, name in enumerate(["p1", "p2", "p10"]):
        assert torch.equal(data.a[k], _expected(imgs[name][0], 16))
        assert torch.equal(data.b[k], _expected(imgs[name][1], 16))
    assert pair_counts(root) == {"train": 3}


def test_a_and_b_names_that_do_not_match_are_named(tmp_path):
    root = tmp_path / "ab"
    _ab_folders(root, ["x", "y"], split="train")
    _noise(12, 10, 7).save(root / "A" / "train" / "only_a.png")
    _noise(12, 10, 8).save(root / "B" / "train" / "only_b.png")
    with pytest.raises(DatasetError) as info:
        load_paired(str(root), load_size=8)
    msg = str(info.value)
    assert "unpaired images" in msg
    assert "1 in A/train with no match in B/train: A/train/only_a.png" in msg
    assert "1 in B/train with no match in A/train: B/train/only_b.png" in msg


def test_a_and_b_sizes_that_differ_are_named_in_memory_and_lazy(tmp_path):
    root = tmp_path / "ab"
    _ab_folders(root, ["x", "y"], size_b=(12, 11))
    for budget in (None, 0):
        with pytest.raises(DatasetError, match=r"2 bad pair\(s\) .*A/x.png is 12x10 but B/x.jpg is 12x11"):
            load_paired(str(root), load_size=8, memory_budget=budget)


def test_a_and_b_with_different_split_folders_is_an_error(tmp_path):
    root = tmp_path / "ab"
    _ab_folders(root, ["x"], split="train")
    (root / "B" / "val").mkdir()
    with pytest.raises(DatasetError, match="different split folders"):
        load_paired(str(root), load_size=8)


def test_limit_decodes_only_the_first_pairs(tmp_path):
    root = tmp_path / "pairs"
    _aligned_folder(root, {"train": 5}, w=14, h=10)
    full = load_paired(str(root), load_size=12)
    first = load_paired(str(root), load_size=12, limit=2)
    assert len(first) == 2 and first.files == full.files[:2]
    assert torch.equal(first.a, full.a[:2]) and torch.equal(first.b, full.b[:2])


# ---------------------------------------------------------------- lazy decoding


def test_lazy_mode_gives_the_same_batches(tmp_path):
    root = tmp_path / "pairs"
    _aligned_folder(root, {"train": 5}, w=14, h=10)
    eager = load_paired(str(root), load_size=12)
    warnings = []
    lazy = load_paired(str(root), load_size=12, warn=warnings.append, memory_budget=1000)
    assert isinstance(lazy, LazyPairedData) and lazy.lazy and lazy.a is None
    assert len(lazy) == 5 and lazy.files == eager.files and lazy.load_size == 12 and lazy.channels == 3
    assert "decoding them per batch" in warnings[0]
    for idx in (torch.tensor([4, 0, 2]), torch.tensor([1]), [3, 3]):
        la, lb = lazy.batch(idx)
        ea, eb = eager.batch(torch.as_tensor(idx))
        assert torch.equal(la, ea) and torch.equal(lb, eb)
    # a file that goes bad later is named when its batch is decoded
    (root / "train" / "2.png").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="train/2.png cannot be read"):
        lazy.batch(torch.tensor([1]))


# ---------------------------------------------------------------- jitter


def _coords(n: int, size: int, tag: int) -> torch.Tensor:
    """(n, 3, L, L) uint8 whose channels say where each pixel came from: x, y, and a side tag."""
    y, x = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    img = torch.stack([x, y, torch.full_like(x, tag)]).to(torch.uint8)
    return img.expand(n, -1, -1, -1).clone()


def _params(out: torch.Tensor) -> list[tuple[int, int, bool]]:
    """(x offset, y offset, flipped) of each cropped image, read from the coordinates."""
    res = []
    for img in out:
        xs, ys = img[0].long(), img[1].long()
        flipped = bool(xs[0, 0] > xs[0, 1])
        res.append((int(xs[0].min()), int(ys[:, 0].min()), flipped))
        rows = ys[:, 0]
        assert torch.equal(ys, rows[:, None].expand_as(ys))  # a crop, not a shuffle
        step = -1 if flipped else 1
        assert torch.equal(xs[0, 1:] - xs[0, :-1], torch.full_like(xs[0, 1:], step))
    return res


def test_jitter_applies_the_same_crop_and_flip_to_a_and_b():
    a, b = _coords(400, 10, tag=1), _coords(400, 10, tag=2)
    ja, jb = paired_jitter(a, b, 7, torch.Generator().manual_seed(0))
    assert ja.shape == jb.shape == (400, 3, 7, 7) and ja.dtype == torch.uint8
    assert (ja[:, 2] == 1).all() and (jb[:, 2] == 2).all()  # A stays A, B stays B
    pa, pb = _params(ja), _params(jb)
    assert pa == pb
    assert {x for x, _, _ in pa} == {0, 1, 2, 3} and {y for _, y, _ in pa} == {0, 1, 2, 3}  # 0..L-crop inclusive
    flips = sum(f for _, _, f in pa)
    assert 150 < flips < 250  # p = 0.5 (binomial sd 10)
    assert len({(x, y) for x, y, _ in pa}) == 16  # x and y drawn independently


def test_jitter_is_deterministic_per_generator_and_works_on_floats():
    a = torch.rand(6, 3, 12, 12)
    b = torch.rand(6, 1, 12, 12)  # B may have other channels
    one = paired_jitter(a, b, 8, torch.Generator().manual_seed(5))
    two = paired_jitter(a, b, 8, torch.Generator().manual_seed(5))
    other = paired_jitter(a, b, 8, torch.Generator().manual_seed(6))
    assert torch.equal(one[0], two[0]) and torch.equal(one[1], two[1])
    assert not torch.equal(one[0], other[0])
    assert one[0].dtype == torch.float32 and one[1].shape == (6, 1, 8, 8)
    same = paired_jitter(a, b, 12, torch.Generator().manual_seed(5))[0]  # crop == L: only flips remain
    for k in range(6):
        assert torch.equal(same[k], a[k]) or torch.equal(same[k], a[k].flip(-1))
    with pytest.raises(ValueError, match="does not fit"):
        paired_jitter(a, b, 13, torch.Generator())


# ---------------------------------------------------------------- synthetic-facades


@pytest.fixture(scope="module")
def synthetic_dir(tmp_path_factory):
    entry = catalog.CATALOG["synthetic-facades"]
    return synthetic_facades.write_synthetic_facades(tmp_path_factory.mktemp("sf") / "v1", entry.expected_counts)


def test_synthetic_facades_counts_palette_and_layout(synthetic_dir):
    assert pair_counts(synthetic_dir) == {"train": 64, "val": 16, "test": 16}
    assert catalog.CATALOG["synthetic-facades"].expected_counts == {"train": 64, "val": 16, "test": 16}
    data = load_paired(str(synthetic_dir), "val", load_size=256)
    assert data.a.shape == (16, 3, 256, 256)
    palette = torch.tensor(synthetic_facades.FACADES_PALETTE, dtype=torch.uint8)
    colours = data.b.permute(0, 2, 3, 1).reshape(-1, 3).unique(dim=0)  # B = right half: the label map
    assert all((palette == c).all(1).any() for c in colours)
    assert len(colours) >= 5  # background, facade, window, door, sill at least
    # the rendering is not the label map, and depends on it: windows are darker than the sky
    window = (data.b == palette[2].view(1, 3, 1, 1)).all(1)
    sky = (data.b == palette[0].view(1, 3, 1, 1)).all(1)
    lum = data.a.float().mean(1)
    assert lum[window].mean() + 40 < lum[sky].mean()


def test_synthetic_facades_are_deterministic(tmp_path, synthetic_dir):
    again = synthetic_facades.write_synthetic_facades(tmp_path / "again", catalog.CATALOG["synthetic-facades"].expected_counts)
    files = sorted(p.relative_to(synthetic_dir) for p in synthetic_dir.rglob("*.png"))
    assert len(files) == 96
    assert files == sorted(p.relative_to(again) for p in again.rglob("*.png"))
    assert all((synthetic_dir / f).read_bytes() == (again / f).read_bytes() for f in files)
    x1, y1 = synthetic_facades.synthetic_facades(3, size=64, seed=7)
    x2, y2 = synthetic_facades.synthetic_facades(3, size=64, seed=7)
    assert torch.equal(x1, x2) and torch.equal(y1, y2) and x1.shape == (3, 3, 64, 64)
    assert not torch.equal(synthetic_facades.synthetic_facades(3, size=64, seed=8)[0], x1)


def test_synthetic_facades_by_name_are_generated_once_into_the_store(tmp_path, synthetic_dir):
    entry = catalog.CATALOG["synthetic-facades"]
    assert not entry.is_present()
    data = load_paired("synthetic-facades", "test", load_size=32)
    assert entry.is_present() and len(data) == 16 and data.default_direction == "BtoA"
    assert data.name == "synthetic-facades" and data.source == str(entry.data_dir().resolve())
    stamp = (entry.data_dir() / "test" / "1.png").stat().st_mtime_ns
    assert fetch.fetch(entry) == entry.data_dir()  # `ganctl download synthetic-facades`: already there
    assert (entry.data_dir() / "test" / "1.png").stat().st_mtime_ns == stamp
    assert (entry.data_dir() / "test" / "1.png").read_bytes() == (synthetic_dir / "test" / "1.png").read_bytes()
    hidden = [p.name for p in entry.local_dir().iterdir() if p.name.startswith(".")]
    assert hidden == []  # no temporary folder left behind


# ---------------------------------------------------------------- catalog names


def test_catalog_pix2pix_entries():
    expected = {"facades": "BtoA", "maps": "BtoA", "edges2shoes": "AtoB", "edges2handbags": "AtoB", "night2day": "AtoB"}
    for name, direction in expected.items():
        e = catalog.CATALOG[name]
        assert e.paired and e.layout == "pix2pix" and e.default_direction == direction and e.channels == 3
        assert [f.name for f in e.files] == [f"{name}.tar.gz"] and e.files[0].checksum is None
        assert catalog.mirrors_for(e, None, e.files[0]) == ["http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/"]
    assert catalog.CATALOG["facades"].expected_counts == {"train": 400, "val": 100, "test": 106}
    assert catalog.CATALOG["edges2handbags"].expected_counts == {"train": 138567, "val": 200}
    assert catalog.CATALOG["maps"].native_size == 600
    assert not catalog.CATALOG["mnist"].paired and catalog.CATALOG["cityscapes"].paired


def test_downloadable_pair_set_missing_from_the_store_says_how_to_get_it():
    with pytest.raises(DatasetError, match="run 'ganctl download facades'"):
        load_paired("facades")


def test_image_dataset_or_unknown_name_is_not_a_pair_set():
    with pytest.raises(DatasetError, match="mnist is not a paired dataset"):
        load_paired("mnist")
    with pytest.raises(DatasetError, match="Did you mean 'facades'"):
        load_paired("facade")


def test_cityscapes_says_how_to_prepare_it_in_one_line():
    entry = catalog.get("cityscapes")
    for call in (lambda: load_paired("cityscapes"), lambda: fetch.fetch(entry)):
        with pytest.raises(DatasetError) as info:
            call()
        msg = str(info.value)
        assert "\n" not in msg
        for part in ("gtFine_trainvaltest.zip", "leftImg8bit_trainvaltest.zip", "512x256", "train/ and val/",
                     "--dataset PATH", "cityscapes-dataset.com"):
            assert part in msg
    assert not entry.downloadable and not entry.is_present()
