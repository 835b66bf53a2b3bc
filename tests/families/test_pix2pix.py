from __future__ import annotations

import json

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from ganctl.config import make_config
from ganctl.data import feeders, loading, paired
from ganctl.runtime import runtime
from ganctl.store import checkpoint
from ganctl.train import objectives, trainer
from ganctl.use import inference
from tests import httpserver
from tests.conftest import error_line, invoke, train_in_own_store
from tests.test_engine import _InterruptAt

http_server = httpserver.http_server  # the fixture, for this module

CPU = runtime.Runtime(torch.device("cpu"), "fp32")
# 64-pixel crops (U-Net-64), 4 base channels, 8 pairs a batch: an epoch of synthetic-facades in ~1 s
TINY = ["--image-size", 64, "--ngf", 4, "--ndf", 4, "--batch-size", 8]




def rows(run_dir):
    return [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def p2p_store(tmp_path_factory):
    """One tiny pix2pix run on the generated facades, shared by the tests that only read it."""
    return train_in_own_store(tmp_path_factory, "pix2pix", "--dataset", "synthetic-facades", "--epochs", 2, *TINY)


@pytest.fixture
def with_run(p2p_store, monkeypatch):
    monkeypatch.setenv("GANCTL_HOME", str(p2p_store))
    return p2p_store / "runs" / "pix2pix" / "synthetic-facades"


def test_run_folder_has_the_recipe_and_validation(with_run):
    cfg = json.loads((with_run / "config.json").read_text())
    assert cfg["arch"] == "pix2pix" and cfg["batch_size"] == 8 and cfg["image_size"] == 64
    assert cfg["generator"] == {"in_channels": 3, "out_channels": 3, "ngf": 4, "num_downs": 6, "norm": "batch", "dropout": True}
    assert cfg["discriminator"]["in_channels"] == 6 and cfg["betas"] == [0.5, 0.999] and cfg["lr"] == 2e-4
    assert cfg["objective_args"] == {"lambda_l1": 100.0, "gan": True, "epochs_decay": 1}
    assert cfg["data_args"] == {"direction": "BtoA", "load_size": 72}  # the catalog's direction, 286/256 jitter
    r = rows(with_run)
    steps = [x for x in r if "g_l1" in x]
    assert len(steps) == 16 and all({"g_gan", "g_l1", "d_real", "d_fake"} <= x.keys() for x in steps)
    val = [x for x in r if "val_l1" in x]
    assert [v["epoch"] for v in val] == [1, 2]
    assert all(0 < v["val_l1"] < 1 and v["val_psnr"] > 5 and -1 <= v["val_ssim"] <= 1 for v in val)
    pic = Image.open(with_run / "samples" / "epoch_0002.png")
    assert pic.width < pic.height  # 4 rows of input | output | target
    meta = checkpoint.read_meta(with_run / "checkpoints" / "epoch_0002" / checkpoint.GENERATOR)
    assert meta["direction"] == "BtoA" and meta["arch"] == "pix2pix"


def test_lr_is_constant_then_decays_linearly_to_zero():
    cfg = make_config("pix2pix", "facades", "t", channels=3, classes=None, preset_key="facades",
                      generator_overrides={"ngf": 2, "num_downs": 5}, discriminator_overrides={"ndf": 2})
    assert (cfg.epochs, cfg.objective_args["epochs_decay"]) == (200, 100)
    G = torch.nn.Linear(1, 1)
    obj = objectives.Pix2PixObjective({"generator": G, "discriminator": torch.nn.Linear(1, 1)}, cfg, CPU)
    # the official linear policy: epoch N runs at 1 - max(0, N - 100) / 101
    assert obj.lr_factor(0) == 1.0 and obj.lr_factor(99) == 1.0
    assert obj.lr_factor(100) == pytest.approx(1 - 1 / 101)
    assert obj.lr_factor(199) == pytest.approx(1 / 101)
    obj.set_epoch(150)
    assert obj.opt_g.param_groups[0]["lr"] == pytest.approx(2e-4 * (1 - 51 / 101))
    assert obj.opt_d.param_groups[0]["lr"] == obj.opt_g.param_groups[0]["lr"]


def test_direction_picks_the_input_side():
    a, b = torch.zeros(1, 3, 4, 4), torch.ones(1, 3, 4, 4)
    assert feeders.orient(a, b, "AtoB")[0] is a and feeders.orient(a, b, "BtoA")[0] is b


def _tiny_cfg(epochs, **objective):
    cfg = make_config("pix2pix", "synthetic-facades", "t", channels=3, classes=None, preset_key="synthetic-facades",
                      epochs=epochs, batch_size=8, image_size=32, generator_overrides={"ngf": 2, "num_downs": 5},
                      discriminator_overrides={"ndf": 2}, data_overrides={"direction": "AtoB", "load_size": 36},
                      objective_overrides={"epochs_decay": 1, **objective})
    return cfg


@pytest.fixture(scope="module")
def pairs32(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:  # module scope: the autouse store fixture is not active yet
        mp.setenv("GANCTL_HOME", str(tmp_path_factory.mktemp("pairs-store")))
        train = paired.load_paired("synthetic-facades", "train", 36)
        val = paired.load_paired("synthetic-facades", "val", 32)
    return train, val


def _same_as_interrupted_and_resumed(cfg, full_data, split_data, val, tmp_path, at):
    """Train ``cfg`` straight through on ``full_data``, and on ``split_data`` with a Ctrl-C after
    batch ``at`` and a resume; both must end with identical weights and metrics."""
    trainer.train(cfg, full_data, tmp_path / "full", CPU, val_data=val)
    res = trainer.train(cfg, split_data, tmp_path / "split", CPU, val_data=val, reporter=_InterruptAt(*at))
    assert res.interrupted
    trainer.train(cfg, split_data, tmp_path / "split", CPU, resume=True, val_data=val)
    last = f"epoch_{cfg.epochs:04d}"
    for name in (checkpoint.GENERATOR, checkpoint.DISCRIMINATOR):
        a = load_file(tmp_path / "full" / "checkpoints" / last / name)
        b = load_file(tmp_path / "split" / "checkpoints" / last / name)
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert rows(tmp_path / "full") == rows(tmp_path / "split")


def test_ctrl_c_and_resume_give_the_same_weights(pairs32, tmp_path):
    # dropout masks, jitter, batch order and the learning-rate schedule all continue exactly
    train, val = pairs32
    _same_as_interrupted_and_resumed(_tiny_cfg(2), train, train, val, tmp_path, at=(1, 3))


def test_a_set_decoded_per_batch_trains_exactly_like_one_held_in_memory(pairs32, tmp_path, monkeypatch):
    # a set too large for memory is decoded a batch ahead in a prefetch thread; the weights and
    # metrics must not depend on that, nor on an interruption in the middle of an epoch
    train, val = pairs32
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANCTL_HOME", str(tmp_path / "store"))
        lazy = paired.load_paired("synthetic-facades", "train", 36, memory_budget=1)
    assert isinstance(lazy, paired.LazyPairedData)
    threads = []
    host_batch = feeders.PairFeeder._host_batch

    def spy(self, *args):
        import threading

        threads.append(threading.current_thread().name)
        return host_batch(self, *args)

    monkeypatch.setattr(feeders.PairFeeder, "_host_batch", spy)
    _same_as_interrupted_and_resumed(_tiny_cfg(2), train, lazy, val, tmp_path, at=(0, 2))
    ahead = [t for t in threads if t.startswith("ganctl-prefetch")]
    # every lazy batch but the first of each (re)started epoch came from the prefetch thread
    batches = len(train) // 8
    assert len(ahead) >= 2 * batches - 3


def test_l1_only_and_gan_only_ablations(pairs32, tmp_path):
    train, val = pairs32
    trainer.train(_tiny_cfg(1, gan=False), train, tmp_path / "l1", CPU, val_data=val)
    r = [x for x in rows(tmp_path / "l1") if "g_l1" in x]
    assert r and all("d_real" not in x and "g_gan" not in x for x in r)
    trainer.train(_tiny_cfg(1, lambda_l1=0.0), train, tmp_path / "gan", CPU, val_data=val)
    r = [x for x in rows(tmp_path / "gan") if "g_gan" in x]
    assert r and all(x["g_l1"] == 0 for x in r)


def test_pix2pix_options_are_checked(tmp_path):
    assert "applies to pix2pix" in error_line(invoke("train", "dcgan", "--dataset", "digits", "--direction", "BtoA"))
    assert "AtoB or BtoA" in error_line(invoke("train", "pix2pix", "--dataset", "synthetic-facades", "--direction", "up"))
    line = error_line(invoke("train", "pix2pix", "--dataset", "synthetic-facades", "--epochs", 4, "--epochs-decay", 4))
    assert "must be smaller than --epochs" in line
    assert "nothing to learn" in error_line(invoke("train", "pix2pix", "--dataset", "synthetic-facades", "--no-gan", "--lambda-l1", 0))
    assert "power of two" in error_line(invoke("train", "pix2pix", "--dataset", "synthetic-facades", "--image-size", 100))
    assert "not pairs" in error_line(invoke("train", "pix2pix", "--dataset", "digits"))


# ---------------------------------------------------------------- translate


def _img(path, mode, size, color=(200, 30, 60)):
    img = Image.new("RGB", size, color)
    for x in range(size[0] // 3):
        img.putpixel((x, x % size[1]), (0, 0, 0))
    img = img.convert(mode) if mode != "RGBA" else img.convert("RGBA")
    if mode == "RGBA":
        img.putalpha(128)
    img.save(path)
    return path


@pytest.mark.parametrize("mode, size", [("RGB", (300, 200)), ("L", (64, 64)), ("RGBA", (33, 47)), ("P", (129, 80))])
def test_translate_any_size_and_mode(with_run, tmp_path, mode, size):
    src = _img(tmp_path / f"in_{mode}.png", mode, size)
    out = tmp_path / "out.png"
    r = invoke("translate", src, "-o", out)
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == str(out) and "using run pix2pix/synthetic-facades" in r.stderr
    res = Image.open(out)
    assert res.size == size and res.mode == "RGB"


def test_translate_modes_and_seeds(with_run, tmp_path):
    src = _img(tmp_path / "labels.png", "RGB", (64, 64))
    outs = {}
    for tag, args in {"p0": ["--seed", 0], "p0b": ["--seed", 0], "p1": ["--seed", 1], "e": ["--mode", "eval"], "e2": ["--mode", "eval", "--seed", 5]}.items():
        out = tmp_path / f"{tag}.png"
        r = invoke("translate", src, "-o", out, *args)
        assert r.exit_code == 0, r.output
        outs[tag] = out.read_bytes()
    assert outs["p0"] == outs["p0b"]  # paper mode is seeded
    assert outs["p0"] != outs["p1"]  # and the seed changes the dropout masks
    assert outs["e"] == outs["e2"]  # eval mode ignores the seed
    assert "use paper or eval" in error_line(invoke("translate", src, "--mode", "train"))


def test_paper_mode_leaves_running_statistics_alone(with_run):
    gen = inference.load_generator(with_run / "checkpoints" / "epoch_0002" / checkpoint.GENERATOR, torch.device("cpu"))
    before = {k: v.clone() for k, v in gen.net.state_dict().items()}
    rng = torch.get_rng_state()
    with inference.paper_mode(gen.net, seed=3), torch.no_grad():
        gen.net(torch.randn(1, 3, 64, 64))
    after = gen.net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not gen.net.training and torch.equal(rng, torch.get_rng_state())


def test_translate_a_folder_processes_every_image(with_run, tmp_path):
    src = tmp_path / "inputs"
    (src / "sub").mkdir(parents=True)
    for i in range(3):
        _img(src / f"{i}.jpg", "RGB", (40 + i, 30))
    _img(src / "sub" / "deep.png", "L", (20, 20))
    r = invoke("translate", src, "-o", tmp_path / "top")  # subfolders only with --recursive, and said
    assert r.exit_code == 0, r.output
    assert "1 file(s) in subfolders" in r.stderr and "--recursive" in r.stderr
    assert sorted(p.name for p in (tmp_path / "top").rglob("*.png")) == ["0.png", "1.png", "2.png"]
    r = invoke("translate", src, "-o", tmp_path / "outs", "--recursive")
    assert r.exit_code == 0, r.output
    made = sorted(p.relative_to(tmp_path / "outs").as_posix() for p in (tmp_path / "outs").rglob("*.png"))
    assert made == ["0.png", "1.png", "2.png", "sub/deep.png"]
    assert Image.open(tmp_path / "outs" / "1.png").size == (41, 30)
    (src / "broken.png").write_bytes(b"not an image")
    r = invoke("translate", src, "-o", tmp_path / "outs2", "--recursive")
    line = error_line(r)
    assert "broken.png" in line and r.stdout.strip() == str(tmp_path / "outs2")  # what was written is still said
    assert len(list((tmp_path / "outs2").rglob("*.png"))) == 4  # the others were still translated


def test_translate_errors(tmp_path):
    src = _img(tmp_path / "a.png", "RGB", (32, 32))
    line = error_line(invoke("translate", src, "-o", tmp_path / "o.png"))
    assert "no pix2pix model in the store" in line and "ganctl download facades_label2photo" in line
    assert "does not exist" in error_line(invoke("translate", tmp_path / "missing.png"))
    (tmp_path / "bad.png").write_bytes(b"\x89PNG broken")
    assert "not a readable image" in error_line(invoke("translate", tmp_path / "bad.png"))


def test_sample_refuses_pix2pix(with_run, tmp_path):
    assert "ganctl translate" in error_line(invoke("sample", "pix2pix", "-o", tmp_path / "x.png"))


def test_train_maps_downloads_then_follows_the_recipe(http_server, monkeypatch, tmp_path, _isolated_store):
    """'ganctl train pix2pix --dataset maps --epochs N' against a served archive in the official
    layout: download, verify, then the maps preset (BtoA, 286 jitter, batch 1, linear decay)."""
    import dataclasses
    import io

    from ganctl.data import catalog
    from tests.data.test_pix2pix_download import _targz

    def pair(seed):
        img = Image.new("RGB", (128, 64), (seed * 40 % 256, 100, 30))
        img.paste((10, 200, seed * 70 % 256), (64, 0, 128, 64))
        buf = io.BytesIO()
        img.save(buf, "JPEG")
        return buf.getvalue()

    counts = {"train": 2, "val": 2}
    entries = {f"maps/{s}/{i}.jpg": pair(i + 7 * k) for k, (s, n) in enumerate(counts.items()) for i in range(1, n + 1)}
    http_server.files["maps.tar.gz"] = _targz(entries)
    monkeypatch.setitem(catalog.CATALOG, "maps", dataclasses.replace(catalog.CATALOG["maps"], expected_counts=counts))
    monkeypatch.setattr(loading, "VAL_PAIRS", 1)
    r = invoke("train", "pix2pix", "--dataset", "maps", "--epochs", 4, "--mirror", http_server.url, "--image-size", 32,
               "--ngf", 2, "--ndf", 2)
    assert r.exit_code == 0, r.output
    assert [q.path for q in http_server.requests] == ["maps.tar.gz"]
    run = _isolated_store.resolve() / "runs" / "pix2pix" / "maps"
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["epochs"] == 4 and cfg["batch_size"] == 1 and cfg["data_args"]["direction"] == "BtoA"
    assert cfg["objective_args"]["epochs_decay"] == 2 and cfg["data_args"]["load_size"] == 36
    assert cfg["preset"] == "maps" and cfg["lr"] == 2e-4 and cfg["objective_args"]["lambda_l1"] == 100.0
    assert (run / "checkpoints" / "epoch_0004").is_dir()
    assert len([x for x in rows(run) if "g_l1" in x]) == 8  # 4 epochs of 2 pairs at batch 1
