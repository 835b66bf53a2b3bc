"""ganctl report: the page of one or more runs, and progress.gif on demand."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from ganctl.report import page
from tests.conftest import error_line, invoke

TINY = ("--image-size", "16", "--batch-size", "256", "-q")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A store with dcgan/digits (3 epochs) and gan/short (2 epochs)."""
    home = tmp_path_factory.mktemp("store")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANCTL_HOME", str(home))
        for args in (("dcgan", "--dataset", "digits", "--epochs", "3"), ("gan", "--dataset", "digits", "--epochs", "2", "--name", "short")):
            r = invoke("train", *args, *TINY)
            assert r.exit_code == 0, r.output
    return home


@pytest.fixture
def home(store, monkeypatch):
    monkeypatch.setenv("GANCTL_HOME", str(store))
    return store


def run_dir(home, run_id):
    return home / "runs" / run_id


def report(*args):
    r = invoke("report", *args)
    assert r.exit_code == 0, r.output
    return Path(r.stdout.strip())


def test_training_leaves_a_progress_gif_with_one_frame_per_epoch(home):
    with Image.open(run_dir(home, "dcgan/digits") / "progress.gif") as gif:
        assert gif.n_frames == 3


def test_the_page_shows_config_fast_paths_curves_epochs_pictures_and_checkpoints(home, tmp_path):
    out = report("dcgan/digits", "-o", tmp_path / "r")
    assert out == tmp_path / "r" / "index.html"
    html = out.read_text()
    run = run_dir(home, "dcgan/digits")
    config = json.loads((run / "config.json").read_text())
    assert config["preset_source"] in html and '"z_dim": 100' in html.replace("&quot;", '"')
    session = json.loads((run / "runtime.json").read_text())["sessions"][0]
    assert ", ".join(session["fast_paths"]) in html and session["device"] in html
    for key in ("d_loss", "g_loss", "d_real", "d_fake"):  # every logged series has its chart
        assert f'aria-label="{key}"' in html
    assert html.count("<polyline") == 4
    epochs = re.findall(r"<tr><td>(\d+)</td><td>(\d+-\d+)</td>", html)
    assert [e for e, _ in epochs] == ["1", "2", "3"]
    captions = re.findall(r"<figcaption>epoch (\d+)</figcaption>", html)
    assert captions == ["1", "2", "3"]
    assert html.count('src="data:image/png;base64,') == 3 and html.count('src="data:image/gif;base64,') == 1
    for ckpt in (run / "checkpoints").iterdir():
        if ckpt.is_dir():
            assert f"<code>{ckpt}</code>" in html
    assert "(latest)" in html
    # self-contained: nothing to fetch, no script
    assert "<script" not in html and not re.search(r'(src|href)="(https?:)?//', html)
    assert not list(out.parent.glob("index_files"))


def test_the_default_page_is_in_the_run_folder(home):
    out = report("digits")
    assert out == run_dir(home, "dcgan/digits") / "report" / "index.html" and out.is_file()


def test_a_html_path_is_the_page_itself(home, tmp_path):
    assert report("dcgan/digits", "-o", tmp_path / "a.html") == tmp_path / "a.html"


def test_several_runs_are_compared_and_their_curves_overlaid(home, tmp_path):
    html = report("dcgan/digits", "gan/short", "dcgan/digits", "-o", tmp_path).read_text()
    assert 'id="comparison"' in html and html.count('<h2 id="dcgan-digits">') == 1  # named twice: shown once
    table = html[html.index('id="comparison"'):html.index('id="curves"')]
    assert "dcgan/digits" in table and "gan/short" in table and "3/3" in table and "2/2" in table
    d_loss = re.search(r'<svg[^>]*aria-label="d_loss".*?</svg>', html).group(0)
    assert d_loss.count("<polyline") == 2 and "gan/short" in d_loss  # both runs, with a legend


def test_a_folder_that_is_not_a_run_is_refused_in_one_line(home, tmp_path):
    (tmp_path / "empty").mkdir()
    line = error_line(invoke("report", tmp_path / "empty"))
    assert "is a folder but not a run folder (it holds no config.json)" in line
    other = tmp_path / "project"
    other.mkdir()
    (other / "config.json").write_text('{"lr": 0.1}')
    line = error_line(invoke("report", other))
    assert f"{other} is not a ganctl run folder" in line
    assert "no run named 'nope'" in error_line(invoke("report", "nope"))
    assert "no run named" in error_line(invoke("report", "nope", "--gif"))
    assert not list(tmp_path.rglob("index.html")) and not list(tmp_path.rglob("progress.gif"))


def test_gif_rewrites_progress_gif_and_prints_its_path(home, tmp_path):
    run = tmp_path / "digits"
    shutil.copytree(run_dir(home, "dcgan/digits"), run)
    (run / "progress.gif").unlink()
    r = invoke("report", run, "--gif")
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == str(run.resolve() / "progress.gif")
    assert "3 frames (epochs 1-3)" in r.stderr
    with Image.open(run / "progress.gif") as gif:
        assert gif.n_frames == 3
    shutil.rmtree(run / "samples")
    assert "has no epoch picture yet" in error_line(invoke("report", run, "--gif"))
    assert "leave out -o" in error_line(invoke("report", run, "--gif", "-o", tmp_path / "x"))


def test_a_failed_write_leaves_the_old_page_whole(home, tmp_path, monkeypatch):
    out = tmp_path / "index.html"
    out.write_text("old page")
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left on device")))
    r = invoke("report", "dcgan/digits", "-o", out)
    assert "no space left on device" in error_line(r)
    assert out.read_text() == "old page" and [p.name for p in tmp_path.iterdir()] == ["index.html"]


def test_pictures_past_the_embedding_limit_go_beside_the_page(home, tmp_path, monkeypatch):
    monkeypatch.setattr(page, "EMBED_LIMIT", 0)
    r = invoke("report", "dcgan/digits", "-o", tmp_path)
    assert r.exit_code == 0, r.output
    assert "too many to embed" in r.stderr
    html = (tmp_path / "index.html").read_text()
    srcs = re.findall(r'<img src="([^"]+)"', html)
    assert len(srcs) == 4 and all(s.startswith("index_files/dcgan-digits/") for s in srcs)
    for s in srcs:
        assert (tmp_path / s).is_file()
    assert (tmp_path / srcs[-1]).read_bytes() == (run_dir(home, "dcgan/digits") / "samples" / "epoch_0003.png").read_bytes()


def test_an_unreadable_picture_is_named_not_shown_broken(home, tmp_path):
    run = tmp_path / "digits"
    shutil.copytree(run_dir(home, "dcgan/digits"), run)
    bad = run / "samples" / "epoch_0002.png"
    bad.write_bytes(bad.read_bytes()[:200])
    html = report(run, "-o", tmp_path / "r").read_text()
    assert html.count('src="data:image/png') == 2 and f"{bad.resolve()} cannot be shown" in html


def test_a_run_with_nothing_logged_yet_still_gets_a_page(home, tmp_path):
    run = tmp_path / "fresh"
    run.mkdir()
    shutil.copy(run_dir(home, "dcgan/digits") / "config.json", run)
    html = report(run, "-o", tmp_path / "r").read_text()
    assert "No metrics logged yet" in html and "No epoch picture yet" in html and "No checkpoint yet" in html
    assert "Not recorded" in html  # no runtime.json: a run from before it was written


def test_the_report_imports_no_torch(home, tmp_path):
    code = ("import sys; from ganctl.report import write_report; "
            f"write_report(['dcgan/digits'], {str(tmp_path)!r}, say=print); "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    env = {**os.environ, "GANCTL_HOME": str(home)}
    root = str(Path(__file__).resolve().parent.parent)
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=root, timeout=60)
    assert (tmp_path / "index.html").is_file()


def test_pix2pix_pictures_have_input_output_target_columns(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("pix")
    monkeypatch.setenv("GANCTL_HOME", str(home))
    r = invoke("train", "pix2pix", "--dataset", "synthetic-facades", "--epochs", "1", "--image-size", "32",
               "--ngf", "4", "--ndf", "4", "-q")
    assert r.exit_code == 0, r.output
    html = report("pix2pix/synthetic-facades", "-o", home / "r").read_text()
    assert '<div class="cols"><span>input</span><span>output</span><span>target</span></div>' in html
    assert "Validation pairs, every epoch" in html
    for key in ("val_l1", "val_psnr", "val_ssim"):  # the per-epoch numbers: a chart and a column each
        assert f'aria-label="{key}"' in html and f"<th>{key}</th>" in html


def test_a_chart_averages_long_logs_and_leaves_out_non_finite_values():
    from ganctl.report import svg

    points = [(float(i), float(i % 2)) for i in range(10_000)] + [(10_000.0, float("nan")), (10_001.0, float("inf"))]
    chart = svg.line_chart([("d_loss", svg.color(0), points)], "d_loss", "step")
    coords = re.search(r'points="([^"]+)"', chart).group(1).split()
    assert len(coords) == svg.MAX_POINTS and "nan" not in chart and "inf" not in chart
    assert {c.split(",")[1] for c in coords} == {coords[0].split(",")[1]}  # 0,1,0,1... averaged: one flat line
    flat = svg.line_chart([("a", svg.color(0), [(1.0, 2.0), (2.0, 2.0)])], "a", "step")  # no range: no division by 0
    assert "<polyline" in flat
    assert "no values logged" in svg.line_chart([("a", svg.color(0), [(1.0, float("nan"))])], "a", "step")


def test_two_copies_of_one_run_keep_their_own_anchors_and_pictures(home, tmp_path, monkeypatch):
    monkeypatch.setattr(page, "EMBED_LIMIT", 0)
    a, b = tmp_path / "x" / "digits", tmp_path / "y" / "x" / "digits"  # both are run 'x/digits'
    shutil.copytree(run_dir(home, "dcgan/digits"), a)
    shutil.copytree(run_dir(home, "dcgan/digits"), b)
    (b / "samples" / "epoch_0003.png").unlink()
    html = report(a, b, "-o", tmp_path / "r").read_text()
    assert 'id="x-digits"' in html and 'id="x-digits-2"' in html
    assert (tmp_path / "r" / "index_files" / "x-digits" / "epoch_0003.png").is_file()
    assert not (tmp_path / "r" / "index_files" / "x-digits-2" / "epoch_0003.png").exists()
