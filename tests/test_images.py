from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from ganctl.core import images
from ganctl.use import inference


def test_grid_layout_and_values():
    x = torch.stack([torch.full((1, 4, 4), v) for v in (-1.0, 0.0, 1.0)])
    g = images.grid(images.to_uint8(x), nrow=2, padding=1)
    assert g.shape == (1, 2 * 5 + 1, 2 * 5 + 1)
    assert g[0, 1, 1] == 0 and g[0, 1, 6] == 128 and g[0, 6, 1] == 255


def test_small_images_are_enlarged_without_blur(tmp_path):
    x = torch.rand(4, 3, 8, 8) * 2 - 1
    path = images.save_grid(x, tmp_path / "g.png", nrow=2)
    img = Image.open(path)
    assert img.size[0] >= 2 * images.MIN_CELL and img.mode == "RGB"


def test_gif_plays_forward_and_back(tmp_path):
    frames = torch.linspace(-1, 1, 5).view(5, 1, 1, 1, 1).expand(5, 2, 1, 8, 8)
    path = images.save_gif(frames, tmp_path / "a.gif")
    anim = Image.open(path)
    assert anim.n_frames == 8  # 5 forward + 3 back (ends not repeated)


def test_loss_chart_draws(tmp_path):
    path = images.loss_chart({"d_loss": [1.0, 0.5, 0.25] * 300, "g_loss": [0.1 * i for i in range(900)]}, tmp_path / "l.png")
    img = Image.open(path)
    assert img.size == (720, 360)
    colours = {c for _, c in img.getcolors(100000)}
    assert (31, 119, 180) in colours and (214, 39, 40) in colours


def test_lerp_includes_both_ends_and_slerp_keeps_norm():
    a, b = torch.randn(16), torch.randn(16)
    path = inference.interpolate(a, b, 10, "lerp")
    assert path.shape == (10, 16)
    assert torch.allclose(path[0], a) and torch.allclose(path[-1], b)
    assert torch.allclose(path[5] - path[4], path[1] - path[0], atol=1e-6)
    b2 = b / b.norm() * a.norm()
    s = inference.interpolate(a, b2, 7, "slerp")
    assert torch.allclose(s[0], a, atol=1e-5) and torch.allclose(s[-1], b2, atol=1e-5)
    assert torch.allclose(s.norm(dim=1), a.norm().expand(7), rtol=1e-4)


def test_latents_depend_only_on_the_seed():
    assert torch.equal(inference.latents(4, 8, 3), inference.latents(4, 8, 3))
    assert not torch.equal(inference.latents(4, 8, 3), inference.latents(4, 8, 4))


def _grid_by_hand(images: torch.Tensor, nrow: int, padding: int, pad_value: int) -> torch.Tensor:
    """A grid drawn one image at a time, the obvious way."""
    n, c, h, w = images.shape
    ncol = min(nrow, n)
    rows = (n + ncol - 1) // ncol
    out = torch.full((c, rows * (h + padding) + padding, ncol * (w + padding) + padding), pad_value, dtype=torch.uint8)
    for i in range(n):
        r, k = divmod(i, ncol)
        y, x = padding + r * (h + padding), padding + k * (w + padding)
        out[:, y : y + h, x : x + w] = images[i]
    return out


def test_grid_pixels_are_the_ones_drawn_by_hand():
    gen = torch.Generator().manual_seed(0)
    for n, c, nrow, padding in ((1, 1, 8, 2), (1, 3, 4, 0), (3, 1, 2, 1), (7, 3, 3, 2), (16, 1, 8, 2), (5, 3, 10, 3)):
        x = torch.randint(0, 256, (n, c, 6, 5), dtype=torch.uint8, generator=gen)
        g = images.grid(x, nrow=nrow, padding=padding)
        assert g.dtype == torch.uint8 and torch.equal(g, _grid_by_hand(x, nrow, padding, 255)), (n, c, nrow, padding)


def test_grid_pixels_are_torchvisions_make_grid():
    from torchvision.utils import make_grid

    gen = torch.Generator().manual_seed(1)
    for n, c, nrow, padding in ((3, 1, 2, 1), (7, 3, 3, 2), (16, 1, 8, 2), (5, 3, 10, 3), (64, 3, 8, 2)):
        x = torch.randint(0, 256, (n, c, 6, 5), dtype=torch.uint8, generator=gen)
        assert torch.equal(images.grid(x, nrow, padding), make_grid(x, nrow=nrow, padding=padding, pad_value=255)[:c])


def test_drawing_a_grid_does_not_import_torchvision():
    import subprocess
    import sys

    code = ("import sys, torch\nfrom ganctl.core import images\n"
            "images.grid(torch.zeros(5, 3, 4, 4, dtype=torch.uint8), 2)\nprint('torchvision' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.stdout.strip() == "False", r.stderr


def test_saved_grids_keep_gray_mode_labels_and_pixels(tmp_path):
    x = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(1)) * 2 - 1
    path = images.save_grid(x, tmp_path / "g.png", nrow=3, row_labels=["zero", "one"])
    img = Image.open(path)
    assert img.mode == "L"
    expected = images.to_pil(_grid_by_hand(images.to_uint8(x), 3, 2, 255), images.MIN_CELL, 8)
    margin = img.width - expected.width
    assert margin > 0 and img.height == expected.height  # the labels' margin on the left
    assert img.crop((margin, 0, img.width, img.height)).tobytes() == expected.tobytes()
    assert img.crop((0, 0, margin, img.height)).getextrema()[0] < 128  # dark label text drawn there


def test_png_level_changes_the_size_not_the_pixels(tmp_path):
    """translate writes its PNGs at zlib level 1 (translation.PNG_LEVEL): faster, the same pixels."""
    from ganctl.use import translation

    rng = np.random.default_rng(0)
    img = Image.fromarray((rng.normal(128, 20, (96, 128, 3)).clip(0, 255)).astype(np.uint8))
    default = images.save_image(img, tmp_path / "a.png")
    fast = images.save_image(img, tmp_path / "b.png", png_level=translation.PNG_LEVEL)
    assert translation.PNG_LEVEL == 1
    assert np.array_equal(np.asarray(Image.open(default)), np.asarray(Image.open(fast)))
    assert fast.stat().st_size != default.stat().st_size  # the level did reach the encoder
    jpg = images.save_image(img, tmp_path / "c.jpg", png_level=1)  # ignored for other formats
    assert Image.open(jpg).format == "JPEG"
