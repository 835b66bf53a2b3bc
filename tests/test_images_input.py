"""Reading images: 16-bit scaling, EXIF orientation, skip reasons, huge inputs, RGB folders at the RGB size."""

from __future__ import annotations

import json
import struct
import warnings
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from ganctl.core import images
from ganctl.data import datasets
from ganctl.data.pair_decoding import open_rgb
from ganctl.train import setup
from tests.conftest import error_line, invoke, make_image_folder, train_in_own_store

TINY_P2P = ["--epochs", 1, "--image-size", 32, "--ngf", 2, "--ndf", 2, "--batch-size", 32]


def _gradient16(path, w=64, h=16):
    """A 16-bit grayscale PNG whose values span 0..65535 (PIL opens it as I;16)."""
    a = (np.arange(w * h, dtype=np.uint32).reshape(h, w) * 65535 // (w * h - 1)).astype(np.uint16)
    Image.fromarray(a).save(path)
    assert Image.open(path).mode.startswith("I")
    return path, (a >> 8).astype(np.uint8)


def _png_header_only(path, w, h):
    """A PNG that claims w x h pixels and holds almost no data: cheap to write, fails to decode."""
    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
    return path


def _oriented_jpeg(path):
    """40x20 stored, top half white, bottom black, EXIF orientation 6 (shown rotated 90 degrees
    clockwise: 20x40, left half black, right half white)."""
    img = Image.new("L", (40, 20), 0)
    img.paste(255, (0, 0, 40, 10))
    exif = Image.Exif()
    exif[0x0112] = 6
    img.convert("RGB").save(path, quality=95, exif=exif.tobytes())
    return path


# ---------------------------------------------------------------- 16-bit


def test_16bit_png_is_scaled_to_8_bits_when_training(tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    path, want = _gradient16(folder / "g.png", 64, 64)
    data = datasets.load(str(folder), 64)
    assert data.channels == 1
    got = data.images[0, 0]
    assert (got == 255).float().mean() < 0.01  # the old clip made 98% of the pixels white
    assert (got.int() - torch.from_numpy(want).int()).abs().max() <= 1


def test_16bit_png_is_scaled_in_pairs_and_in_the_shared_decoder(tmp_path):
    path, want = _gradient16(tmp_path / "g.png")
    assert np.array_equal(np.asarray(images.open_image(path)), want)
    rgb = np.asarray(open_rgb(path))
    assert all(np.array_equal(rgb[..., c], want) for c in range(3))


@pytest.fixture(scope="module")
def p2p_home(tmp_path_factory):
    return train_in_own_store(tmp_path_factory, "pix2pix", "--dataset", "synthetic-facades", *TINY_P2P)


@pytest.fixture
def p2p(p2p_home, monkeypatch):
    monkeypatch.setenv("GANCTL_HOME", str(p2p_home))


def test_translate_reads_a_16bit_png_as_its_8bit_twin(p2p, tmp_path):
    path, want = _gradient16(tmp_path / "g16.png", 64, 64)
    Image.fromarray(want).save(tmp_path / "g8.png")
    for name in ("g16", "g8"):
        r = invoke("translate", tmp_path / f"{name}.png", "-o", tmp_path / f"{name}_out.png", "--mode", "eval")
        assert r.exit_code == 0, r.output
    assert (tmp_path / "g16_out.png").read_bytes() == (tmp_path / "g8_out.png").read_bytes()


# ---------------------------------------------------------------- EXIF orientation


def test_exif_orientation_is_applied_when_training(tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    _oriented_jpeg(folder / "rot.jpg")
    _oriented_jpeg(folder / "rot2.jpg")
    x = datasets.load(str(folder), 20).images[0, 0].float()
    assert x[:, :8].mean() < 60 and x[:, 12:].mean() > 200  # left black, right white, as shown
    assert images.open_image(folder / "rot.jpg").size == (20, 40)
    assert images.read_header(folder / "rot.jpg")[1] == (20, 40)


def test_translate_output_has_the_shown_orientation(p2p, tmp_path):
    src = _oriented_jpeg(tmp_path / "rot.jpg")
    r = invoke("translate", src, "-o", tmp_path / "out.png")
    assert r.exit_code == 0, r.output
    assert Image.open(tmp_path / "out.png").size == (20, 40)


# ---------------------------------------------------------------- skipped files say why


def test_a_skipped_file_says_why(tmp_path):
    folder = tmp_path / "f"
    make_image_folder(folder, n=3)
    (folder / "notes.png").write_text("these are not pixels")
    good = (folder / "img_000.png").read_bytes()
    (folder / "cut.png").write_bytes(good[: len(good) // 2])
    said = []
    data = datasets.load(str(folder), 8, warn=said.append)
    assert len(data) == 3 and len(said) == 1
    assert "notes.png (not an image file" in said[0]
    assert "cut.png (truncated" in said[0]


# ---------------------------------------------------------------- huge inputs


def test_translate_refuses_above_max_pixels_before_decoding(p2p, tmp_path, monkeypatch):
    src = tmp_path / "big.png"
    Image.new("RGB", (40, 40), (9, 9, 9)).save(src)

    def no_decoding(self, *a, **k):
        raise AssertionError("decoded an image that is refused from its header")

    with monkeypatch.context() as m:
        m.setattr("PIL.ImageFile.ImageFile.load", no_decoding)
        line = error_line(invoke("translate", src, "-o", tmp_path / "o.png", "--max-pixels", 1500))
    assert "40x40" in line and "--size" in line and "--max-pixels" in line
    assert "--size 64 works on 4,096 pixels" in error_line(
        invoke("translate", src, "-o", tmp_path / "o.png", "--size", 64, "--max-pixels", 1500))
    r = invoke("translate", src, "-o", tmp_path / "o.png", "--size", 32, "--max-pixels", 1500)  # works at 32x32
    assert r.exit_code == 0, r.output
    assert Image.open(tmp_path / "o.png").size == (40, 40)


def test_the_default_limit_refuses_a_huge_photo_in_one_line(p2p, tmp_path):
    src = _png_header_only(tmp_path / "huge.png", 12000, 12000)
    line = error_line(invoke("translate", src, "-o", tmp_path / "o.png"))
    assert "12000x12000 (144.0 Mpx), above the limit of 16.8 Mpx" in line and "--size 1024" in line


def test_pil_decompression_bomb_guard_is_one_clear_line(p2p, tmp_path):
    src = _png_header_only(tmp_path / "bomb.png", 10000, 10000)  # 100 Mpx: PIL would warn, then fail to decode
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        line = error_line(invoke("translate", src, "-o", tmp_path / "o.png", "--size", 32))
    assert "internal error" not in line and "not a readable image" in line
    src = _png_header_only(tmp_path / "bigger.png", 20000, 20000)
    line = error_line(invoke("translate", src, "-o", tmp_path / "o.png", "--size", 32))
    assert "20000x20000 (400.0 Mpx), above the limit of 179.0 Mpx" in line


# ---------------------------------------------------------------- RGB folders


@pytest.mark.parametrize("family, size", [("gan", 64), ("cgan", 32)])
def test_an_rgb_folder_is_decoded_at_the_families_rgb_size(family, size, tmp_path, monkeypatch):
    folder = tmp_path / "rgb"
    make_image_folder(folder, n=8, size=(80, 80), classes=["a", "b"])
    asked = []
    real = datasets.load_folder

    def spy(root, image_size, *a, **k):
        asked.append(image_size)
        return real(root, image_size, *a, **k)

    def no_upsampling(x, s):
        raise AssertionError(f"resized decoded images from {x.shape[-1]} to {s}")

    monkeypatch.setattr(datasets, "load_folder", spy)
    monkeypatch.setattr(datasets, "resize_uint8", no_upsampling)
    res = setup.run_training(setup.TrainRequest(family, str(folder), epochs=1, batch_size=4, name="r", device="cpu"))
    cfg = json.loads((res.run_dir / "config.json").read_text())
    assert cfg["image_size"] == size and cfg["channels"] == 3
    assert asked == [size]


def test_a_gray_folder_keeps_the_grayscale_size(tmp_path):
    make_image_folder(tmp_path / "g", n=4, mode="L")
    make_image_folder(tmp_path / "c", n=4)
    assert datasets.channels_hint(str(tmp_path / "g")) == 1
    assert datasets.channels_hint(str(tmp_path / "c")) == 3
    assert datasets.channels_hint("digits") == 1
