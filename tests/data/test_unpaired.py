"""Unpaired data for CycleGAN: specs and layouts, decoding, aligned test pairs and previews, the feeder,
synthetic-facades-unpaired."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch
from PIL import Image

from ganctl.core.errors import DatasetError
from ganctl.data import catalog, unpaired
from ganctl.data.feeders import UnpairedFeeder, unpaired_order
from ganctl.data.unpaired import UnpairedData, aligned_test_pairs, alignment, load_unpaired, preview_inputs
from ganctl.data.unpaired_spec import UnpairedSource, canonical_spec, check_unpaired_spec, locate, two_folders
from ganctl.runtime import distributed
from ganctl.runtime.runtime import Runtime

CPU = Runtime(torch.device("cpu"), "fp32")


def _noise(w: int, h: int, seed) -> Image.Image:
    return Image.frombytes("RGB", (w, h), random.Random(seed).randbytes(w * h * 3))


def _domain(folder: Path, names: list[str], w: int = 20, h: int = 12, tag: str = "") -> dict[str, Image.Image]:
    folder.mkdir(parents=True, exist_ok=True)
    made = {}
    for name in names:
        img = _noise(w, h, f"{folder.name}{tag}{name}")
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        img.save(folder / name)
        made[name] = img
    return made


def _expected(img: Image.Image, size: int) -> torch.Tensor:
    """The official pipeline's image: RGB, Resize([size, size], BICUBIC), not aspect-preserving."""
    rgb = img.convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
    return torch.frombuffer(bytearray(rgb.tobytes()), dtype=torch.uint8).view(size, size, 3).permute(2, 0, 1)


def _official(root: Path, test: bool = True) -> dict[str, dict[str, Image.Image]]:
    made = {
        "trainA": _domain(root / "trainA", ["1.png", "2.png", "10.png"]),
        "trainB": _domain(root / "trainB", [f"z{i}.png" for i in range(5)], w=14, h=30),  # other count and size
    }
    if test:
        made["testA"] = _domain(root / "testA", ["1_A.png", "2_A.png", "3_A.png"])
        made["testB"] = _domain(root / "testB", ["1_B.jpg", "2_B.jpg", "3_B.jpg"])
    return made


def _one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    return msg


# ---------------------------------------------------------------- layouts and specs


def test_official_layout_decodes_both_domains_bicubic_at_the_load_size(tmp_path):
    made = _official(tmp_path / "h2z")
    gray = Image.new("L", (9, 9), 77)
    gray.save(tmp_path / "h2z" / "trainA" / "3.png")

    data = load_unpaired(str(tmp_path / "h2z"), "train", load_size=16)

    assert data.files_a == ["1.png", "2.png", "3.png", "10.png"]  # natural order
    assert data.files_b == [f"z{i}.png" for i in range(5)]
    assert data.a.shape == (4, 3, 16, 16) and data.b.shape == (5, 3, 16, 16) and data.a.dtype == torch.uint8
    assert len(data) == 5 and data.name == "h2z" and data.split == "train" and data.load_size == 16
    assert torch.equal(data.a[3], _expected(made["trainA"]["10.png"], 16))
    assert torch.equal(data.b[4], _expected(made["trainB"]["z4.png"], 16))  # 14x30 stretched, as Resize([L, L])
    assert torch.equal(data.a[2], torch.full((3, 16, 16), 77, dtype=torch.uint8))  # grayscale -> RGB
    test = load_unpaired(str(tmp_path / "h2z"), "test", load_size=8)
    assert test.files_b == ["1_B.jpg", "2_B.jpg", "3_B.jpg"] and test.a.shape == (3, 3, 8, 8)


def test_two_folders_of_different_sizes_are_the_train_split(tmp_path):
    made_a = _domain(tmp_path / "horses", ["a.png", "b.png"])
    _domain(tmp_path / "deep" / "zebras", ["1.png", "2.png", "3.png"])
    spec = f"{tmp_path / 'horses'}:{tmp_path / 'deep' / 'zebras'}"

    check_unpaired_spec(spec)
    assert two_folders(spec) == (tmp_path / "horses", tmp_path / "deep" / "zebras")
    data = load_unpaired(spec, load_size=8)
    assert data.name == "horses:zebras" and len(data) == 3 and data.b.shape[0] == 3
    assert torch.equal(data.a[1], _expected(made_a["b.png"], 8))
    assert canonical_spec(spec) == f"{(tmp_path / 'horses').resolve()}:{(tmp_path / 'deep' / 'zebras').resolve()}"
    with pytest.raises(DatasetError) as err:
        load_unpaired(spec, "test", load_size=8)
    assert "no 'test' split" in _one_line(err) and "train split only" in str(err.value)


def test_a_colon_inside_a_folder_name_is_part_of_the_path(tmp_path, monkeypatch):
    _official(tmp_path / "x:y", test=False)
    spec = str(tmp_path / "x:y")
    assert two_folders(spec) is None
    check_unpaired_spec(spec)
    assert locate(spec).name == "x:y"
    # and as one side of A_DIR:B_DIR: only one split leaves two folders
    _domain(tmp_path / "b", ["1.png"])
    assert two_folders(f"{tmp_path / 'x:y' / 'trainA'}:{tmp_path / 'b'}") == (tmp_path / "x:y" / "trainA", tmp_path / "b")
    # a spec that splits into two folders in two ways is refused, naming both
    monkeypatch.chdir(tmp_path)
    for name in ("p", "p:q", "q:r", "r"):
        (tmp_path / name).mkdir()
    with pytest.raises(DatasetError) as err:
        two_folders("p:q:r")  # p + q:r, or p:q + r
    assert "more than one way (p + q:r or p:q + r)" in _one_line(err)


@pytest.mark.parametrize(
    "make, spec, expected",
    [
        (lambda t: _domain(t / "a", ["1.png"]), "{t}/a:{t}/nope", "the domain B folder {t}/nope does not exist"),
        (lambda t: _domain(t / "b", ["1.png"]), "{t}/nope:{t}/b", "the domain A folder {t}/nope does not exist"),
        (lambda t: _domain(t / "r" / "A", ["1.png"]), "{t}/r", "has no trainA/ and trainB/ folders (it has A/)"),
        (lambda t: None, "{t}/missing", "dataset folder {t}/missing does not exist"),
        (lambda t: None, "mnist", "mnist holds single images, not two domains"),
        (lambda t: None, "edges2shoes", "edges2shoes holds image pairs for pix2pix"),
        (lambda t: None, "horse2zebr", "horse2zebra"),  # did you mean
    ],
    ids=["no-B", "no-A", "pix2pix-layout", "missing", "single", "pairs", "typo"],
)
def test_bad_specs_are_one_line_errors_that_say_what_to_do(tmp_path, make, spec, expected):
    make(tmp_path)
    with pytest.raises(DatasetError) as err:
        check_unpaired_spec(spec.format(t=tmp_path))
    assert expected.format(t=tmp_path) in _one_line(err)


def test_empty_domain_and_corrupt_images_are_named(tmp_path):
    _official(tmp_path / "d", test=False)
    for p in (tmp_path / "d" / "trainB").iterdir():
        p.unlink()
    with pytest.raises(DatasetError) as err:
        load_unpaired(str(tmp_path / "d"), load_size=8)
    assert f"no images in {tmp_path / 'd' / 'trainB'}" in _one_line(err)

    _domain(tmp_path / "d" / "trainB", ["ok.png"])
    (tmp_path / "d" / "trainB" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (tmp_path / "d" / "trainA" / "cut.png").write_bytes((tmp_path / "d" / "trainA" / "1.png").read_bytes()[:60])
    with pytest.raises(DatasetError) as err:
        load_unpaired(str(tmp_path / "d"), load_size=8)
    assert "1 unreadable image(s)" in _one_line(err) and "cut.png" in str(err.value) and "Fix or remove" in str(err.value)


def test_catalog_names_resolve_by_kind():
    assert catalog.unpaired_name("maps") == "maps-unpaired" and catalog.unpaired_name("facades") == "facades-unpaired"
    assert catalog.unpaired_name("horse2zebra") == "horse2zebra" and catalog.unpaired_name("cityscapes") == "cityscapes-unpaired"
    assert catalog.CATALOG["maps"].kind == "pairs" and catalog.CATALOG["maps-unpaired"].kind == "unpaired"
    assert catalog.CATALOG["maps-unpaired"].files[0].name == "maps.zip"
    assert catalog.CATALOG["maps-unpaired"].data_dir() != catalog.CATALOG["maps"].data_dir()
    check_unpaired_spec("maps")  # CycleGAN's maps
    with pytest.raises(DatasetError, match="unpaired set .* 'ganctl train cyclegan --dataset horse2zebra'"):
        catalog.check_spec("horse2zebra", paired=False)
    with pytest.raises(DatasetError, match="unpaired set"):
        catalog.check_spec("horse2zebra", paired=True)
    with pytest.raises(DatasetError, match="not in the store: run 'ganctl download maps-unpaired'"):
        locate("maps")
    with pytest.raises(DatasetError, match="cannot be downloaded by ganctl"):
        locate("cityscapes")


# ---------------------------------------------------------------- aligned test pairs and previews


@pytest.mark.parametrize(
    "a, b, expected",
    [
        (["1_A.jpg", "2_A.jpg"], ["2_B.jpg", "1_B.jpg"], [(0, 1), (1, 0)]),
        (["x/5.png", "7.png"], ["x/5.jpg", "7.png"], [(0, 0), (1, 1)]),
        (["12A.png"], ["12B.png"], [(0, 0)]),
        (["1.png", "2.png"], ["1.png"], None),  # counts differ
        (["1.png", "2.png"], ["1.png", "3.png"], None),  # names differ
        (["1.png", "1.jpg"], ["1.png", "2.png"], None),  # one key twice
        (["horse.jpg"], ["zebra.jpg"], None),
        ([], [], None),
    ],
)
def test_alignment_matches_names_without_extension_and_side_suffix(a, b, expected):
    assert alignment(a, b) == expected


def test_aligned_test_split_gives_pairs_and_aligned_previews(tmp_path):
    made = _official(tmp_path / "m")
    data = load_unpaired(str(tmp_path / "m"), load_size=12)

    pairs = aligned_test_pairs(data, image_size=8)
    assert pairs.files == ["1_A.png", "2_A.png", "3_A.png"] and pairs.split == "test" and pairs.default_direction == "AtoB"
    assert torch.equal(pairs.b[2], _expected(Image.open(tmp_path / "m" / "testB" / "3_B.jpg"), 8))
    assert torch.equal(pairs.a[0], _expected(made["testA"]["1_A.png"], 8))
    assert aligned_test_pairs(data, 8, limit=2).a.shape == (2, 3, 8, 8)

    pv = preview_inputs(data, image_size=8, count=2)
    assert pv.aligned and pv.split == "test" and pv.files_a == ["1_A.png", "2_A.png"] and pv.files_b == ["1_B.jpg", "2_B.jpg"]
    assert torch.equal(pv.a, pairs.a[:2]) and torch.equal(pv.b, pairs.b[:2])


def test_unaligned_or_missing_test_split(tmp_path):
    _official(tmp_path / "u")
    (tmp_path / "u" / "testB" / "3_B.jpg").rename(tmp_path / "u" / "testB" / "9_B.jpg")
    data = load_unpaired(str(tmp_path / "u"), load_size=12)
    assert aligned_test_pairs(data, 8) is None
    pv = preview_inputs(data, 8, count=5)
    assert not pv.aligned and pv.split == "test" and pv.files_b == ["1_B.jpg", "2_B.jpg", "9_B.jpg"]

    _official(tmp_path / "t", test=False)
    warned = []
    data = load_unpaired(str(tmp_path / "t"), load_size=12)
    pv = preview_inputs(data, 8, count=2, warn=warned.append)
    assert aligned_test_pairs(data, 8) is None and pv.split == "train" and not pv.aligned
    assert pv.files_a == ["1.png", "2.png"] and pv.b.shape == (2, 3, 8, 8) and "no test split" in warned[0]


def test_large_domains_are_cached_in_the_store_and_read_back(tmp_path, monkeypatch):
    monkeypatch.setattr(unpaired, "CACHE_MIN_FILES", 4)
    _official(tmp_path / "c", test=False)
    first = load_unpaired(str(tmp_path / "c"), load_size=8)
    caches = sorted((Path(__import__("os").environ["GANCTL_HOME"]) / "datasets" / ".cache").rglob("*.safetensors"))
    assert len(caches) == 1  # trainB's 5 images; trainA's 3 are decoded each time

    calls = []
    monkeypatch.setattr(unpaired, "decode_files", lambda *a: calls.append(a) or torch.zeros(0))
    again = load_unpaired(str(tmp_path / "c"), load_size=8, limit=None)
    assert len(calls) == 1 and Path(calls[0][2]).name == "trainA"  # trainB came from the cache
    assert torch.equal(again.b, first.b)


# ---------------------------------------------------------------- the feeder


def _marked(n_a: int, n_b: int, size: int = 6) -> UnpairedData:
    """Images whose every pixel is their index (A: i, B: 100 + i), so a crop still tells which it is."""
    a = torch.arange(n_a, dtype=torch.uint8).view(-1, 1, 1, 1).expand(-1, 3, size, size).contiguous()
    b = (100 + torch.arange(n_b, dtype=torch.uint8)).view(-1, 1, 1, 1).expand(-1, 3, size, size).contiguous()
    src = UnpairedSource("m", "m", {"train": (Path("a"), Path("b"))}, "m")
    return UnpairedData("m", a, b, [str(i) for i in range(n_a)], [str(i) for i in range(n_b)], "train", src)


def _which(batch: dict) -> tuple[list[int], list[int]]:
    to_u8 = lambda x: ((x[:, 0, 0, 0] + 1) * 127.5).round().long().tolist()  # noqa: E731
    return to_u8(batch["A"]), [v - 100 for v in to_u8(batch["B"])]


def test_epoch_is_max_of_the_domains_a_permuted_b_random_and_resumes_exactly():
    data = _marked(5, 11)
    feeder = UnpairedFeeder(data, batch_size=2, seed=3, rt=CPU, crop=4, channels_last=False)
    assert feeder.batches_per_epoch() == 5 and len(feeder) == 11

    batches = list(feeder.epoch(0))
    seen_a = [i for b in batches for i in _which(b)[0]]
    ia, ib = unpaired_order(3, 0, 5, 11)
    assert seen_a == ia[:10].tolist() and [j for b in batches for j in _which(b)[1]] == ib[:10].tolist()
    assert sorted((torch.arange(11) % 5).tolist()) == sorted(ia.tolist())  # each A image ceil/floor(11/5) times
    for b in batches:
        assert b["A"].shape == b["B"].shape == (2, 3, 4, 4) and b["A"].dtype == torch.float32
        assert b["A"].min() >= -1 and b["B"].max() <= 1

    resumed = list(feeder.epoch(0, first=3))  # a run stopped after 3 batches
    assert len(resumed) == 2
    for x, y in zip(batches[3:], resumed, strict=True):
        assert torch.equal(x["A"], y["A"]) and torch.equal(x["B"], y["B"])

    # another epoch: another order of A, and A meets other B images
    _, ib1 = unpaired_order(3, 1, 5, 11)
    ia1, _ = unpaired_order(3, 1, 5, 11)
    assert not torch.equal(ib1, ib) and not torch.equal(ia1, ia)
    assert not torch.equal(unpaired_order(4, 0, 5, 11)[1], ib)  # and another seed


def test_a_and_b_are_cropped_and_flipped_independently():
    # every A and every B image is the same picture: equal crops would give equal rows
    one = torch.randint(0, 256, (1, 3, 10, 10), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    same = one.expand(16, -1, -1, -1).contiguous()
    src = UnpairedSource("s", "s", {"train": (Path("a"), Path("b"))}, "s")
    data = UnpairedData("s", same, same.clone(), [""] * 16, [""] * 16, "train", src)
    (batch,) = list(UnpairedFeeder(data, batch_size=16, seed=0, rt=CPU, crop=8, channels_last=True).epoch(0))
    assert batch["A"].is_contiguous(memory_format=torch.channels_last)
    differ = sum(not torch.equal(batch["A"][i], batch["B"][i]) for i in range(16))
    assert differ >= 12  # 9 offsets x 2 flips: a row's two draws agree with p = 1/18
    assert len({tuple(batch["A"][i].flatten().tolist()) for i in range(16)}) > 4  # and the rows' crops vary


@pytest.mark.parametrize("size", [2, 4])
def test_processes_take_their_rows_of_one_global_batch(monkeypatch, size):
    data = _marked(7, 9)
    whole = [_which(b) for b in UnpairedFeeder(data, 4, 5, CPU, 4, False).epoch(2)]
    parts = []
    for rank in range(size):
        monkeypatch.setattr(distributed, "_world", distributed.World(rank=rank, local_rank=rank, size=size, local_size=size))
        parts.append([_which(b) for b in UnpairedFeeder(data, 4, 5, CPU, 4, False).epoch(2)])
    for b, (a_rows, b_rows) in enumerate(whole):
        assert [i for p in parts for i in p[b][0]] == a_rows
        assert [j for p in parts for j in p[b][1]] == b_rows


# ---------------------------------------------------------------- synthetic-facades-unpaired


def test_synthetic_unpaired_is_generated_unpaired_with_aligned_test_pairs(monkeypatch):
    import dataclasses

    from ganctl.data import fetch
    from ganctl.data.synthetic_unpaired import facade

    counts = {"trainA": 3, "trainB": 2, "testA": 2, "testB": 2}
    entry = dataclasses.replace(catalog.CATALOG["synthetic-facades-unpaired"], native_size=32, expected_counts=counts)
    monkeypatch.setitem(catalog.CATALOG, entry.name, entry)

    folder = fetch.fetch(entry)
    assert sorted(p.name for p in folder.iterdir()) == ["testA", "testB", "trainA", "trainB"]
    assert {f: len(list((folder / f).iterdir())) for f in counts} == counts

    data = load_unpaired("synthetic-facades-unpaired", load_size=32)
    labels = [facade(i, 32)[0] for i in range(5)]
    photos = [facade(i, 32)[1] for i in range(7)]
    assert all(torch.equal(data.a[i], labels[i]) for i in range(3))  # A: label maps of facades 0..2
    assert all(torch.equal(data.b[i], photos[3 + i]) for i in range(2))  # B: renderings of facades 3, 4
    assert data.domains == ("label map", "facade")
    pairs = aligned_test_pairs(data, 32)
    assert pairs is not None and pairs.files == ["1.png", "2.png"]
    assert torch.equal(pairs.a[1], facade(6, 32)[0]) and torch.equal(pairs.b[1], facade(6, 32)[1])
    assert fetch.fetch(entry) == folder  # generated once
