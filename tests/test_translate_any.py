"""ganctl translate on what people bring (issue 33): tiles at the image's own resolution, batches,
folders, globs, lists, videos, and the one-line answers to bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ganctl.models.pix2pix import UNetGenerator, init_pix2pix_weights
from ganctl.store import checkpoint, genspec
from ganctl.use import inference, translate_net, translation
from ganctl.use.translate_tiles import Grid, starts
from ganctl.use.translator import Translator
from tests.conftest import error_line, invoke

G = dict(in_channels=3, out_channels=3, ngf=4, num_downs=6, norm="batch", dropout=True)  # U-Net-64


def _net(seed: int = 0) -> UNetGenerator:
    torch.manual_seed(seed)
    net = UNetGenerator(**G)
    init_pix2pix_weights(net)
    for m in net.modules():  # running statistics unlike any image's, so eval and paper differ
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 2)
    return net.eval()


@pytest.fixture(scope="module")
def gen():
    return inference.LoadedGenerator(_net(), {"generator": G, "image_size": 64}, None)


@pytest.fixture(scope="module")
def labels(tmp_path_factory):
    """The example label map at 320x192: five 64-pixel tiles wide, four high at overlap 16."""
    path = tmp_path_factory.mktemp("labels") / "labels.png"
    translation.write_example(path)
    return Image.open(path).convert("RGB").resize((320, 192), Image.Resampling.NEAREST)


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "model" / "generator.safetensors"
    path.parent.mkdir()
    spec = genspec.make(family="pix2pix", arch="pix2pix", generator=G, z_dim=0, image_size=64, channels=3, direction="AtoB")
    checkpoint.save_generator(path, _net(), spec)
    return path


def _arr(img) -> np.ndarray:
    return np.asarray(img).astype(np.float64)


# ---------------------------------------------------------------- batches


@pytest.mark.parametrize("mode", ["paper", "eval"])
def test_a_batch_gives_each_input_what_it_gets_alone(gen, labels, mode):
    imgs = [labels.crop((i * 40, 0, i * 40 + 64, 64)) for i in range(3)]
    alone = [inference.translate_image(gen, im, mode, seed=7, max_pixels=None) for im in imgs]  # the per-image path
    together = Translator(gen, mode, 7, None, None, "fp32").images(imgs)
    for a, b in zip(alone, together, strict=True):
        assert np.abs(_arr(a) - _arr(b)).max() <= 1  # the same up to rounding of a float sum's order


def test_dropout_masks_follow_each_inputs_seed(gen):
    x = torch.randn(3, 3, 64, 64)
    with translate_net.batched(gen.net, "paper") as run, torch.no_grad():
        y = run(x, [1, 2, 1])
        y0 = run(x[:1], [1])
        y2 = run(x[2:], [1])
    assert torch.allclose(y[0], y0[0], atol=1e-5) and torch.allclose(y[2], y2[0], atol=1e-5)
    with translate_net.batched(gen.net, "paper") as run, torch.no_grad():
        assert not torch.allclose(run(x[:1], [2])[0], y0[0], atol=1e-3)  # another seed, other masks
    assert not gen.net.training and all(not m.training for m in gen.net.modules())


def test_a_channels_last_batch_is_normalised_per_input_as_an_nchw_one(gen):
    """Paper mode's per-input batch norm keeps a channels_last map channels_last (batch norm's
    kernel, image by image) and gives what instance norm gives on the NCHW map."""
    import copy

    torch.manual_seed(2)
    x = torch.randn(3, 3, 64, 64)
    net_cl = copy.deepcopy(gen.net).to(memory_format=torch.channels_last)
    with torch.no_grad():
        with translate_net.batched(gen.net, "paper") as run:
            want = run(x, [4, 4, 4])
        with translate_net.batched(net_cl, "paper") as run:
            got = run(x.contiguous(memory_format=torch.channels_last), [4, 4, 4])
    assert got.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=0)


def test_gathered_statistics_are_those_of_one_batch_of_all_tiles(gen):
    torch.manual_seed(1)
    tiles = torch.randn(6, 3, 64, 64)
    seeds = list(range(6))
    stats = translate_net.gather_stats(gen.net, "paper", lambda: ((tiles[i : i + 4], seeds[i : i + 4]) for i in range(0, 6, 4)))
    # batch norm over the six tiles as one batch: fixed statistics must give the same output
    with translate_net.batched(gen.net, "paper", stats=stats) as run, torch.no_grad():
        fixed = run(tiles, seeds)
    ref_net = _net()
    for m in ref_net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.track_running_stats, m.running_mean, m.running_var = False, None, None
    masks = translate_net._Masks(seeds)
    for m in ref_net.modules():  # the same per-tile dropout masks, batch norm over the whole batch
        if isinstance(m, torch.nn.Dropout):
            m.forward = (lambda mod: lambda x: masks.apply(mod, x))(m)
    with torch.no_grad():
        whole = ref_net(tiles)
    assert len(stats) == 9 and torch.allclose(fixed, whole, atol=1e-4)


# ---------------------------------------------------------------- tiles


def test_the_grid_covers_the_image_and_the_window_cross_fades():
    assert starts(320, 64, 16) == [0, 43, 85, 128, 171, 213, 256] and starts(50, 64, 16) == [0]
    grid = Grid(192, 320, 64, 16)
    acc = np.zeros(320)
    for s, w in zip(grid.cols, grid.wx, strict=True):
        acc[s : s + 64] += w
    assert np.allclose(acc, 1.0, atol=1e-6)  # sin^2 + cos^2: weights of an overlap sum to one
    assert all(w.min() > 0 for w in grid.wx) and grid.wx[0][0] == 1.0  # the image's edges get full weight


def _seam_ratio(img, tile: int, overlap: int, k: int = 4) -> float:
    """Mean step of the k-pixel local means across tile borders over that elsewhere, along x.
    Local means: a seam is a step in them, a checkerboard texture is not."""
    a = torch.from_numpy(_arr(img).astype(np.float32)).permute(2, 0, 1)[None]
    a = torch.nn.functional.avg_pool2d(a, k, stride=1)[0]
    step = (a[:, :, k:] - a[:, :, :-k]).abs().mean(dim=(0, 1)).numpy()
    cols = starts(img.width, tile, overlap)
    edges = [s for s in cols[1:]] + [s + tile for s in cols[:-1]]
    border = sorted({x for e in edges for x in range(e - 1 - k, e) if 0 <= x < len(step)})
    other = [i for i in range(len(step)) if i not in border]
    return float(step[border].mean() / step[other].mean())


@pytest.mark.parametrize("mode", ["eval", "paper"])
def test_no_seam_shows_and_the_overlap_barely_matters(gen, labels, mode):
    tr = Translator(gen, mode, 0, None, None, "fp32")
    if mode == "paper":  # a gathering pass per batch-norm layer: a smaller image keeps it quick
        labels = labels.crop((0, 0, 256, 128))
    out16, out32 = tr.tiled(labels, 16), tr.tiled(labels, 32)
    assert out16.size == labels.size == out32.size
    assert _seam_ratio(out16, 64, 16) <= 1.1
    if mode == "eval":
        assert _seam_ratio(tr.tiled(labels, 0), 64, 0) > 1.5  # abutting tiles do show: the measure sees seams
        assert np.abs(_arr(out16) - _arr(out32)).mean() <= 2.0  # of 255; measured 0.8
    else:  # dropout is drawn per tile, so the pixels differ; the colours (whole-image statistics) do not
        means = [_arr(o).mean(axis=(0, 1)) for o in (out16, out32)]
        assert np.abs(means[0] - means[1]).max() <= 1.5


def test_paper_tiles_use_the_whole_images_statistics(gen, labels):
    """Per-tile statistics would give each tile its own colours: a tile of plain background and
    one of facade differ; with the image's, the same input pixels give the same colours."""
    tr = Translator(gen, "paper", 0, None, None, "fp32")
    flat = Image.new("RGB", (192, 64), (0, 0, 200))
    flat.paste(labels.crop((0, 64, 64, 128)), (128, 0))  # one busy tile at the right end
    out = _arr(tr.tiled(flat, 16))
    left, mid = out[16:48, 8:40].mean(axis=(0, 1)), out[16:48, 72:104].mean(axis=(0, 1))
    assert np.abs(left - mid).max() <= 2.0  # the same plain input: the same colour in both tiles


# ---------------------------------------------------------------- sources and outputs (CLI)


def _png(path, size=(40, 30), color=(200, 30, 60)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path


def test_tile_from_the_cli(model_file, labels, tmp_path):
    src = tmp_path / "big.png"
    labels.save(src)
    r = invoke("translate", src, "--tile", "--overlap", 8, "-c", model_file, "--precision", "fp32")
    assert r.exit_code == 0, r.output
    out = tmp_path / "big_translated.png"
    assert r.stdout.strip() == str(out) and Image.open(out).size == (320, 192)
    assert "--overlap must be from 0 to 63" in error_line(invoke("translate", src, "--tile", "--overlap", 64, "-c", model_file))
    assert "not both" in error_line(invoke("translate", src, "--tile", "--size", 64, "-c", model_file))


def test_globs_lists_and_several_paths(model_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("scans/a.tif", "scans/b.png", "scans/deep/c.png", "other/d.png"):
        _png(tmp_path / name)
    r = invoke("translate", "scans/*.[tp][in][fg]", "-c", model_file)
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "scans_translated").rglob("*")) == ["a.png", "b.png"]
    r = invoke("translate", "scans/**/*.png", "-o", "deep", "-c", model_file)
    assert r.exit_code == 0, r.output
    assert sorted(p.relative_to(tmp_path / "deep").as_posix() for p in (tmp_path / "deep").rglob("*.png")) == ["b.png", "deep/c.png"]
    (tmp_path / "todo.txt").write_text("# to translate\nscans/a.tif\n\nother/d.png\nmissing.png\n")
    r = invoke("translate", "todo.txt", "-c", model_file)
    line = error_line(r)  # the missing one is said and counted; the others are written
    assert "missing.png" in line and "1 input(s) skipped" in line
    assert sorted(p.relative_to(tmp_path / "todo_translated").as_posix() for p in (tmp_path / "todo_translated").rglob("*.png")) == ["other/d.png", "scans/a.png"]
    r = invoke("translate", "scans/a.tif", "other/d.png", "-o", "two", "-c", model_file)
    assert r.exit_code == 0 and len(list((tmp_path / "two").rglob("*.png"))) == 2
    assert "matches no images or videos" in error_line(invoke("translate", "nothing/*.png", "-c", model_file))


def test_prepare_image_gives_the_values_of_the_torch_formula():
    # prepare_image converts in numpy (fast, GIL-free); the values are those of torch's u8 / 127.5 - 1
    every = Image.fromarray((np.arange(256 * 3) % 256).astype(np.uint8).reshape(16, 16, 3))  # each value 3 times
    x = inference.prepare_image(every, 3, 16)
    ref = torch.from_numpy(np.asarray(every).copy()).permute(2, 0, 1).unsqueeze(0).float().div(127.5).sub(1.0)
    assert x.shape == (1, 3, 16, 16) and x.dtype == torch.float32 and x.is_contiguous()
    assert torch.equal(x, ref)


def test_a_folder_in_threads_gives_each_image_what_it_gets_alone(model_file, tmp_path, monkeypatch):
    # decoding, resizing and writing run in threads beside the generator, with bounded queues
    monkeypatch.setattr(translation, "PREFETCH", 1)
    monkeypatch.setattr(translation, "WRITE_AHEAD", 1)
    rng = np.random.default_rng(0)
    (tmp_path / "in").mkdir()
    sizes = [(64, 64), (100, 70), (64, 64), (64, 128), (50, 50), (64, 64), (90, 64)]
    for i, (w, h) in enumerate(sizes):
        small = rng.integers(0, 255, (h // 8, w // 8, 3), dtype=np.uint8)
        Image.fromarray(small).resize((w, h), Image.Resampling.BILINEAR).save(tmp_path / "in" / f"{i}.png")
    r = invoke("translate", tmp_path / "in", "-o", tmp_path / "all", "-c", model_file, "--batch", 2, "--precision", "fp32")
    assert r.exit_code == 0, r.output
    for i, size in enumerate(sizes):
        one = tmp_path / f"one{i}.png"
        assert invoke("translate", tmp_path / "in" / f"{i}.png", "-o", one, "-c", model_file, "--precision", "fp32").exit_code == 0
        together = Image.open(tmp_path / "all" / f"{i}.png")
        assert together.size == size and np.array_equal(np.asarray(together), np.asarray(Image.open(one)))


def test_outputs_never_replace_inputs(model_file, tmp_path):
    src = _png(tmp_path / "in" / "a.png")
    _png(tmp_path / "in" / "a.jpg")
    assert "would overwrite an input" in error_line(invoke("translate", src, "-o", src, "-c", model_file))
    assert "is the input folder" in error_line(invoke("translate", tmp_path / "in", "-o", tmp_path / "in", "-c", model_file))
    r = invoke("translate", tmp_path / "in", "-c", model_file)  # a.jpg and a.png: both kept, named apart
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "in_translated").iterdir()) == ["a.png", "a_png.png"]  # a.jpg (first) and a.png


def test_an_unreadable_file_is_skipped_and_said(model_file, tmp_path):
    _png(tmp_path / "in" / "good.png")
    (tmp_path / "in" / "bad.png").write_bytes(b"\x89PNG broken")
    r = invoke("translate", tmp_path / "in", "-c", model_file)
    line = error_line(r)
    assert "bad.png" in line and r.stdout.strip() == str(tmp_path / "in_translated")
    assert "warning: skipped" in r.stderr and (tmp_path / "in_translated" / "good.png").is_file()


# ---------------------------------------------------------------- videos

av = pytest.importorskip("av")


@pytest.mark.parametrize("audio", [False, True])
def test_a_video_becomes_a_video(model_file, tmp_path, audio):
    from tests.videos import make_video, read_video

    src = make_video(tmp_path / "clip.mp4", frames=16, size=(48, 32), audio=audio)
    r = invoke("translate", src, "-c", model_file, "--batch", 5)  # batches of 5: the last one short
    assert r.exit_code == 0, r.output
    out = tmp_path / "clip_translated.mp4"
    assert r.stdout.strip() == str(out)
    frames, info = read_video(out)
    ref_frames, ref = read_video(src)
    assert len(frames) == len(ref_frames) == 16 and info["size"] == (48, 32) and info["rate"] == ref["rate"]
    assert info["audio"] == ("aac" if audio else None)


def test_video_frames_get_the_same_dropout(gen):
    """Paper mode gives every frame the same masks: a still video gives a still output."""
    from tests.videos import frame

    still = [frame(0, 64, 64)] * 3
    outs = Translator(gen, "paper", 3, None, None, "fp32").images(still)
    assert all(np.array_equal(_arr(outs[0]), _arr(o)) for o in outs[1:])


def test_an_animated_gif_becomes_one(model_file, tmp_path):
    from tests.videos import frame

    pics = [Image.fromarray(frame(i, 32, 32)) for i in range(5)]
    src = tmp_path / "anim.gif"
    pics[0].save(src, save_all=True, append_images=pics[1:], duration=[50, 60, 70, 80, 90], loop=0)
    r = invoke("translate", src, "-c", model_file)
    assert r.exit_code == 0, r.output
    out = Image.open(tmp_path / "anim_translated.gif")
    assert out.n_frames == 5 and out.size == (32, 32)


def test_a_truncated_video_keeps_what_it_holds(model_file, tmp_path):
    from tests.videos import make_video, read_video

    src = make_video(tmp_path / "clip.mkv", frames=16, size=(32, 32))
    data = src.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) * 2 // 3])
    r = invoke("translate", cut, "-c", model_file)
    out = tmp_path / "cut_translated.mkv"
    assert r.stdout.strip() == str(out)
    line = error_line(r)
    assert "ends early" in r.stderr and "1 input(s) skipped or incomplete" in line
    assert 0 < len(read_video(out)[0]) < 16


def test_a_missing_pyav_is_one_line(model_file, tmp_path, monkeypatch):
    import sys

    from tests.videos import make_video

    src = make_video(tmp_path / "clip.mp4", frames=2)
    monkeypatch.setitem(sys.modules, "av", None)
    assert 'pip install "ganctl[video]"' in error_line(invoke("translate", src, "-c", model_file))


def test_a_damaged_frame_in_the_middle_is_skipped_and_said(model_file, tmp_path):
    """A frame FFmpeg cannot decode, mid-video: that frame is skipped with one line saying where,
    every other frame is translated with its own timestamp, and the command ends with one error."""
    from tests.videos import make_video, read_video

    src = make_video(tmp_path / "clip.mkv", frames=16, size=(32, 32))
    with av.open(str(src)) as c:
        packets = [(bytes(p), p.pts * p.time_base) for p in c.demux(video=0) if p.size]
    payload, when = packets[8]  # not a key frame (mpeg4 keys every 12 frames here): the next ones still decode
    data = src.read_bytes()
    assert data.count(payload) == 1
    bad = tmp_path / "bad.mkv"
    bad.write_bytes(data.replace(payload, b"\0" * len(payload)))  # same length: the container stays whole
    r = invoke("translate", bad, "-c", model_file)
    out = tmp_path / "bad_translated.mkv"
    assert r.stdout.strip() == str(out)
    warnings = [line for line in r.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and f"a damaged frame at {float(when):.2f} s was skipped" in warnings[0]
    assert "ends early" not in r.stderr
    assert "1 input(s) skipped or incomplete" in error_line(r)
    frames, info = read_video(out)
    assert len(frames) == 15 and info["size"] == (32, 32)
    with av.open(str(out)) as c:
        times = [float(f.pts * f.time_base) for f in c.decode(video=0)]
    assert float(when) not in [round(t, 3) for t in times] and len(times) == 15


def test_keep_size_writes_still_images_at_the_working_resolution(tmp_path, model_file, labels):
    """--keep-size: each still image as the generator made it (what the official test.py writes),
    for one image and for a folder; without it, at the input's own size."""
    folder = tmp_path / "in"
    folder.mkdir()
    labels.crop((0, 0, 100, 70)).save(folder / "a.png")
    labels.crop((0, 0, 150, 90)).save(folder / "b.png")
    r = invoke("translate", folder, "-o", tmp_path / "kept", "--keep-size", "--size", 64, "-c", model_file)
    assert r.exit_code == 0, r.output
    assert sorted(Image.open(p).size for p in (tmp_path / "kept").iterdir()) == [(64, 64), (64, 64)]
    r = invoke("translate", folder / "b.png", "-o", tmp_path / "one.png", "--keep-size", "-c", model_file)
    assert r.exit_code == 0, r.output
    assert Image.open(tmp_path / "one.png").size == (128, 64)  # 150 x 90 rounded to multiples of 64
    r = invoke("translate", folder, "-o", tmp_path / "back", "--size", 64, "-c", model_file)
    assert sorted(Image.open(p).size for p in (tmp_path / "back").iterdir()) == [(100, 70), (150, 90)]
    assert "not both" in error_line(invoke("translate", folder / "a.png", "--tile", "--keep-size", "-c", model_file))
