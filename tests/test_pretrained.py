"""Pretrained pix2pix generators: `ganctl download NAME`, `import`, `export`, `list`, and ganctl.store.pretrained.

The served files are official-layout state_dicts of the independent reference network in
test_pix2pix_official.py at ngf 4 (about 0.9 MB, so a transfer spans many 64 KiB chunks), written
with torch.save as the official code writes them, and served on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from typer.testing import CliRunner

from ganctl import __version__
from ganctl.cli import app
from ganctl.core.errors import CheckpointError, UnknownNameError
from ganctl.models.dcgan import DCGANGenerator
from ganctl.models.pix2pix import PatchGANDiscriminator, UNetGenerator
from ganctl.models.pix2pix_official import load_official_file, official_to_ganctl
from ganctl.store import pretrained, pretrained_install
from ganctl.store.checkpoint import read_meta, save_weights
from tests import httpserver
from tests.test_pix2pix_official import OfficialUnet, _official, _randomised

http_server = httpserver.http_server  # the fixture, for this module

runner = CliRunner()
FILE = "facades_label2photo.pth"
ARCH = {"in_channels": 3, "out_channels": 3, "ngf": 4, "num_downs": 8, "norm": "batch"}


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_error_line(result, code=1, alone=True) -> str:
    """The one error: line on stderr (and, with ``alone``, nothing else there); stdout is empty."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output and result.stdout == ""
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert lines and lines[-1].startswith("error:"), result.stderr
    assert sum(ln.startswith("error:") for ln in lines) == 1 and (len(lines) == 1 or not alone), result.stderr
    return lines[-1]


def official_bytes(state=None, seed=0) -> bytes:
    buf = io.BytesIO()
    torch.save(state if state is not None else _official(seed=seed, ngf=4).state_dict(), buf)
    return buf.getvalue()


def store_files(home: Path) -> list[str]:
    """Every file under the store (hidden ones included), relative to it."""
    return sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file()) if home.exists() else []


def assert_same_tensors(a: dict, b: dict) -> None:
    assert list(a) == list(b) or sorted(a) == sorted(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]), k


@pytest.fixture
def served(http_server):
    data = official_bytes()
    http_server.files[FILE] = data
    return http_server, data


# ------------------------------------------------------------ ganctl download NAME


def test_download_converts_stores_and_records_the_source(served, _isolated_store):
    server, data = served
    r = invoke("download", "facades_label2photo", "--mirror", server.url)
    assert r.exit_code == 0, r.output
    path = Path(r.stdout.strip())
    home = _isolated_store.resolve()
    assert path == home / "pretrained" / "facades_label2photo" / "generator.safetensors"
    assert store_files(home) == ["pretrained/facades_label2photo/config.json", "pretrained/facades_label2photo/generator.safetensors"]  # no .pth kept
    assert "fetched facades_label2photo.pth" in r.stderr and "facade label map -> photo (BtoA)" in r.stderr
    assert "unet_256, ngf 4, batch norm, 3->3 channels" in r.stderr
    assert [q.path for q in server.requests] == [FILE]

    meta = read_meta(path)
    assert json.loads(path.with_name("config.json").read_text()) == meta  # the spec beside the file, and in it
    assert meta == {
        "schema_version": 1,
        "family": "pix2pix",
        "arch": "pix2pix",
        "generator": {**ARCH, "dropout": True},
        "image_size": 256,
        "channels": 3,
        "z_dim": 0,
        "classes": None,
        "conditional": False,
        "direction": "BtoA",
        "dataset": "facades",
        "run": None,
        "pretrained": "facades_label2photo",
        "description": "facade label map -> photo",
        "source_url": server.url + FILE,
        "source_sha256": hashlib.sha256(data).hexdigest(),
        "ganctl_version": __version__,
    }
    expected, _ = official_to_ganctl(torch.load(io.BytesIO(data), weights_only=True))
    assert_same_tensors(load_file(str(path)), expected)

    # already there: nothing is fetched again
    r = invoke("download", "facades_label2photo", "--mirror", server.url)
    assert r.exit_code == 0 and Path(r.stdout.strip()) == path
    assert "already in the store" in r.stderr and len(server.requests) == 1


def test_the_stored_generator_loads_and_computes_what_the_official_one_does(served, _isolated_store):
    from ganctl.use.inference import load_generator

    server, data = served
    path = pretrained_install.fetch("facades_label2photo", mirror=server.url)
    assert pretrained.generator_path("facades_label2photo") == path
    assert pretrained.generator_path("facades_label2photo_pretrained") == path
    gen = load_generator(path, torch.device("cpu"), family="pix2pix")  # what translate --pretrained does
    assert isinstance(gen.net, UNetGenerator) and gen.meta["direction"] == "BtoA"
    ref = OfficialUnet(ngf=4).eval()
    ref.load_state_dict(torch.load(io.BytesIO(data), weights_only=True))
    x = torch.randn(1, 3, 256, 256, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(gen.net(x), ref(x), atol=1e-5, rtol=0)


def test_mirror_from_the_environment(served, monkeypatch):
    server, _ = served
    monkeypatch.setenv("GANCTL_MIRROR", server.url)
    r = invoke("download", "facades_label2photo")
    assert r.exit_code == 0, r.output
    assert server.requests_for(FILE)


def test_an_interrupted_transfer_is_retried_with_a_range_request(served, _isolated_store):
    server, data = served
    server.truncate(FILE, after=100_000, times=1)
    r = invoke("download", "facades_label2photo", "--mirror", server.url)
    assert r.exit_code == 0, r.output
    assert [q.range for q in server.requests_for(FILE)] == [None, "bytes=100000-"]
    assert "resuming facades_label2photo.pth at 100,000 bytes" in r.stderr
    meta = read_meta(Path(r.stdout.strip()))
    assert meta["source_sha256"] == hashlib.sha256(data).hexdigest()
    assert store_files(_isolated_store) == ["pretrained/facades_label2photo/config.json", "pretrained/facades_label2photo/generator.safetensors"]


def test_a_failed_transfer_resumes_on_the_next_run(served, _isolated_store):
    server, data = served
    server.truncate(FILE, after=65_536)  # every attempt is cut short: 1 + 3 retries
    line = one_error_line(invoke("download", "facades_label2photo", "--mirror", server.url), alone=False)
    kept = 4 * 65_536
    assert f"{kept:,} bytes are kept in facades_label2photo.pth.incomplete" in line and "run the same command again" in line
    assert store_files(_isolated_store) == ["pretrained/facades_label2photo.pth.incomplete"]

    server.fix()
    r = invoke("download", "facades_label2photo", "--mirror", server.url)
    assert r.exit_code == 0, r.output
    assert server.requests_for(FILE)[-1].range == f"bytes={kept}-"
    assert read_meta(Path(r.stdout.strip()))["source_sha256"] == hashlib.sha256(data).hexdigest()
    assert store_files(_isolated_store) == ["pretrained/facades_label2photo/config.json", "pretrained/facades_label2photo/generator.safetensors"]


def test_404_is_one_error_line_and_leaves_nothing(http_server, _isolated_store):
    line = one_error_line(invoke("download", "sat2map", "--mirror", http_server.url))
    assert "sat2map.pth" in line and "HTTP 404" in line and "--mirror" in line
    assert store_files(_isolated_store) == []
    assert [q.path for q in http_server.requests] == ["sat2map.pth"]


@pytest.mark.parametrize(
    ("serve", "expected"),
    [
        (lambda s: s.files.__setitem__("map2sat.pth", official_bytes(PatchGANDiscriminator(ndf=4).state_dict())),
         "that is a PatchGAN discriminator"),
        (lambda s: s.serve_html("map2sat.pth"), "sent an HTML page, not the map2sat weights"),
        (lambda s: s.files.__setitem__("map2sat.pth", b"PK\x03\x04 not really a zip" * 100), "cannot be loaded safely"),
    ],
    ids=["discriminator", "html", "garbage"],
)
def test_a_file_that_is_not_a_generator_is_refused_and_deleted(http_server, _isolated_store, serve, expected):
    serve(http_server)
    line = one_error_line(invoke("download", "map2sat", "--mirror", http_server.url), alone=False)
    assert expected in line, line
    assert "nothing was installed" in line and str(_isolated_store) not in line
    assert store_files(_isolated_store) == []
    assert pretrained.installed() == []


def test_a_complete_file_left_by_an_interrupted_conversion_is_converted_without_downloading(_isolated_store):
    root = _isolated_store / "pretrained"
    root.mkdir(parents=True)
    (root / "day2night.pth").write_bytes(official_bytes())
    path = pretrained_install.fetch("day2night", mirror="http://127.0.0.1:9/")  # nothing listens there
    assert read_meta(path)["direction"] == "BtoA" and read_meta(path)["dataset"] == "night2day"
    assert store_files(_isolated_store) == ["pretrained/day2night/config.json", "pretrained/day2night/generator.safetensors"]


def test_edges2shoes_is_the_dataset_and_edges2shoes_pretrained_the_model(http_server, _isolated_store):
    http_server.files["edges2shoes.pth"] = official_bytes()
    r = invoke("download", "edges2shoes_pretrained", "--mirror", http_server.url)
    assert r.exit_code == 0, r.output
    path = Path(r.stdout.strip())
    assert path == _isolated_store.resolve() / "pretrained" / "edges2shoes" / "generator.safetensors"
    meta = read_meta(path)
    assert (meta["pretrained"], meta["direction"], meta["dataset"]) == ("edges2shoes", "AtoB", "edges2shoes")

    # the bare name is the dataset: it asks the mirror for the dataset archive, not the weights
    r = invoke("download", "edges2shoes", "--mirror", http_server.url)
    assert r.exit_code == 1
    assert [q.path for q in http_server.requests] == ["edges2shoes.pth", "edges2shoes.tar.gz"]


def test_unknown_name_suggests_datasets_and_models():
    line = one_error_line(invoke("download", "sat2mapp"))
    assert "unknown dataset or pretrained model 'sat2mapp'" in line and "Did you mean 'sat2map'" in line
    assert "edges2shoes_pretrained" in line and "mnist" in line


def test_listing_shows_the_pretrained_models(served):
    server, _ = served
    r = invoke("download")
    assert r.exit_code == 0 and r.stdout == ""
    rows = {ln.split()[0]: ln for ln in r.stderr.splitlines() if ln.strip()}
    assert "Pretrained" in r.stderr
    assert "BtoA" in rows["facades_label2photo"] and "facade label map -> photo" in rows["facades_label2photo"]
    assert "not downloaded" in rows["facades_label2photo"]
    assert "AtoB" in rows["edges2shoes_pretrained"] and "edges2shoes" in rows  # the dataset's row too
    assert "BtoA" in rows["day2night"] and "night2day" in rows["day2night"]
    invoke("download", "facades_label2photo", "--mirror", server.url)
    rows = {ln.split()[0]: ln for ln in invoke("download").stderr.splitlines() if ln.strip()}
    assert "in store" in rows["facades_label2photo"] and "not downloaded" in rows["sat2map"]


# ------------------------------------------------------------ ganctl import


def test_import_gives_the_same_weights_as_download(served, tmp_path):
    server, data = served
    downloaded = pretrained_install.fetch("facades_label2photo", mirror=server.url)
    src = tmp_path / "latest_net_G.pth"
    src.write_bytes(data)
    r = invoke("import", src, "--name", "mine", "--direction", "btoa")
    assert r.exit_code == 0, r.output
    path = Path(r.stdout.strip())
    assert path.name == "generator.safetensors" and path.parent.name == "mine"
    assert_same_tensors(load_file(str(path)), load_file(str(downloaded)))
    meta = read_meta(path)
    assert (meta["direction"], meta["dataset"], meta["pretrained"]) == ("BtoA", None, "mine")
    assert meta["source_url"] == str(src.resolve()) and meta["description"] == "imported from latest_net_G.pth"
    assert meta["source_sha256"] == hashlib.sha256(data).hexdigest()
    assert "imported latest_net_G.pth as mine: unet_256, ngf 4" in r.stderr

    line = one_error_line(invoke("import", src, "--name", "mine"))
    assert "already in the store" in line and "--force" in line
    other = tmp_path / "other.pth"
    other.write_bytes(official_bytes(seed=5))
    r = invoke("import", other, "--name", "mine", "--force")
    assert r.exit_code == 0, r.output
    assert read_meta(path)["direction"] is None  # replaced, with no direction given this time
    assert not torch.equal(load_file(str(path))["down.0.0.weight"], load_file(str(downloaded))["down.0.0.weight"])
    assert sorted(p.name for p in path.parent.parent.iterdir()) == ["facades_label2photo", "mine"]
    # an imported model with no dataset (null in its spec) translates: it used to be refused as damaged
    Image.new("RGB", (32, 32), (10, 200, 10)).save(tmp_path / "in.png")
    r = invoke("translate", tmp_path / "in.png", "--pretrained", "mine", "-o", tmp_path / "out.png")
    assert r.exit_code == 0, r.output


def test_import_under_an_official_name_takes_its_catalog_entry(tmp_path):
    src = tmp_path / "sat2map.pth"
    src.write_bytes(official_bytes())
    path = pretrained_install.import_file(src, "sat2map")
    meta = read_meta(path)
    assert (meta["direction"], meta["dataset"], meta["description"]) == ("AtoB", "maps", "aerial photo -> map")


@pytest.mark.parametrize(
    ("prefix", "batches_tracked", "ngf"),
    [("module.", True, 4), ("_orig_mod.", False, 8), ("module._orig_mod.", False, 4)],
)
def test_import_accepts_wrapped_and_old_files(tmp_path, prefix, batches_tracked, ngf):
    # DataParallel/DDP and torch.compile prefixes; files saved before torch 0.4.1 lack num_batches_tracked
    original = _official(ngf=ngf).state_dict()
    state = {prefix + k: v for k, v in original.items() if batches_tracked or not k.endswith("num_batches_tracked")}
    src = tmp_path / "g.pth"
    torch.save(state, src)
    path = pretrained_install.import_file(src, "wrapped")
    meta = read_meta(path)
    assert meta["generator"]["ngf"] == ngf
    loaded = load_file(str(path))
    expected, _ = official_to_ganctl(original)
    for k, v in expected.items():
        if k.endswith("num_batches_tracked") and not batches_tracked:
            assert int(loaded[k]) == 0
        else:
            assert torch.equal(loaded[k], v), k


def test_import_of_an_instance_norm_unet_128(tmp_path):
    src = tmp_path / "g.pth"
    torch.save(_official(ngf=4, norm="instance", num_downs=7).state_dict(), src)
    meta = read_meta(pretrained_install.import_file(src, "inst", direction="AtoB"))
    assert meta["generator"] == {**ARCH, "num_downs": 7, "norm": "instance", "dropout": True}
    assert meta["image_size"] == 128


class _OpenOnUnpickle:
    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_import_refuses_a_pickle_carrying_code(tmp_path, _isolated_store):
    marker = tmp_path / "pwned"
    src = tmp_path / "evil.pth"
    torch.save({**_official(ngf=4).state_dict(), "payload": _OpenOnUnpickle(marker)}, src)
    pickle.dumps(_OpenOnUnpickle(marker))  # it is a real payload (see test_pix2pix_official)
    line = one_error_line(invoke("import", src, "--name", "evil"))
    assert "cannot be loaded safely" in line and "never code" in line
    assert not marker.exists()
    assert store_files(_isolated_store) == []


@pytest.mark.parametrize(
    ("args", "expected", "code"),
    [
        (["--name", "../up"], "invalid pretrained model name", 1),
        (["--name", "ok", "--direction", "sideways"], "unknown direction 'sideways'", 1),
        (["--name", "d"], "that is a PatchGAN discriminator", 1),
    ],
)
def test_import_refusals(tmp_path, _isolated_store, args, expected, code):
    src = tmp_path / "d.pth"
    torch.save(PatchGANDiscriminator(ndf=4).state_dict(), src)
    line = one_error_line(invoke("import", src, *args), code)
    assert expected in line
    if "discriminator" in expected:  # the file is named, and what was expected
        assert line.startswith(f"error: {src}: expected an official pix2pix U-Net generator")
    assert store_files(_isolated_store) == []


def test_import_of_a_missing_file(tmp_path):
    line = one_error_line(invoke("import", tmp_path / "nope.pth", "--name", "x"))
    assert "does not exist" in line


# ------------------------------------------------------------ ganctl export


def pix2pix_generator_file(path: Path, seed: int = 3, direction="AtoB") -> Path:
    """A generator.safetensors as ganctl training writes it (engine.generator_meta's format)."""
    torch.manual_seed(seed)
    net = _randomised(UNetGenerator(**ARCH), seed)
    meta = {
        "family": "pix2pix", "arch": "pix2pix", "generator": {**ARCH, "dropout": True}, "direction": direction,
        "load_size": 286, "z_dim": 0, "image_size": 256, "channels": 3, "classes": None, "conditional": False,
        "dataset": "facades", "run": "tiny", "ganctl_version": __version__,
    }
    save_weights(path, net, meta)
    return path


def test_export_then_import_is_bit_identical(tmp_path):
    src = pix2pix_generator_file(tmp_path / "generator.safetensors")
    r = invoke("export", "--checkpoint", src, "-o", str(tmp_path / "official") + "/")
    assert r.exit_code == 0, r.output
    out = Path(r.stdout.strip())
    assert out == tmp_path / "official" / "latest_net_G.pth"
    assert "--netG unet_256 --norm batch --ngf 4 --input_nc 3 --output_nc 3 --direction AtoB" in r.stderr

    # the official network loads it strictly
    state = load_official_file(out)
    ref = OfficialUnet(ngf=4)
    assert list(state) == list(ref.state_dict())
    ref.load_state_dict(state)

    r = invoke("import", out, "--name", "back", "--direction", "AtoB")
    assert r.exit_code == 0, r.output
    assert_same_tensors(load_file(str(Path(r.stdout.strip()))), load_file(str(src)))


def test_export_a_run_and_a_pretrained_model(tmp_path, _isolated_store):
    run = _isolated_store / "runs" / "pix2pix" / "tiny"
    (run / "checkpoints" / "epoch_0001").mkdir(parents=True)
    from ganctl.config import make_config
    from ganctl.families import registry

    # a complete config.json: a partial one is a damaged run, which export refuses
    key, _ = registry.get("pix2pix").preset_for("facades")
    cfg = make_config("pix2pix", "facades", "tiny", channels=3, classes=None, preset_key=key)
    (run / "config.json").write_text(json.dumps(cfg.to_json()))
    (run / "checkpoints" / "latest").write_text("epoch_0001\n")
    src = pix2pix_generator_file(run / "checkpoints" / "epoch_0001" / "generator.safetensors")
    r = invoke("export", "pix2pix/tiny", "-o", tmp_path / "net_G.pth")
    assert r.exit_code == 0, r.output
    assert Path(r.stdout.strip()) == tmp_path / "net_G.pth"
    expected, _ = official_to_ganctl(load_official_file(tmp_path / "net_G.pth"))
    assert_same_tensors(expected, load_file(str(src)))

    pretrained_install.import_file(tmp_path / "net_G.pth", "tiny-model", direction="BtoA")
    r = invoke("export", "--pretrained", "tiny-model", "-o", tmp_path / "again.pth")
    assert r.exit_code == 0, r.output
    assert "--direction BtoA" in r.stderr
    assert (tmp_path / "again.pth").read_bytes() != b""
    assert_same_tensors(load_official_file(tmp_path / "again.pth"), load_official_file(tmp_path / "net_G.pth"))


def test_export_refuses_other_generators(tmp_path):
    src = tmp_path / "generator.safetensors"
    save_weights(src, DCGANGenerator(z_dim=8, channels=1, image_size=16, features=4),
                 {"family": "dcgan", "arch": "dcgan", "generator": {}})
    line = one_error_line(invoke("export", "--checkpoint", tmp_path, "-o", tmp_path / "x.pth"))
    assert "holds a 'dcgan' generator" in line and "only pix2pix" in line
    assert not (tmp_path / "x.pth").exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], "exactly one of RUN, --checkpoint PATH or --pretrained NAME"),
        (["somerun", "--pretrained", "x"], "exactly one of"),
        (["--pretrained", "sat2map"], "pretrained model sat2map is not in the store: run 'ganctl download sat2map'"),
        (["--pretrained", "nothing-here"], "import FILE.pth --name nothing-here"),
        (["--checkpoint", "/nonexistent/g.safetensors"], "checkpoint /nonexistent/g.safetensors does not exist"),
    ],
)
def test_export_usage_errors(tmp_path, args, expected):
    line = one_error_line(invoke("export", *args, "-o", tmp_path / "x.pth"))
    assert expected in line


# ------------------------------------------------------------ ganctl list and the library


def test_list_shows_the_pretrained_models_in_the_store(served, tmp_path):
    server, data = served
    r = invoke("list")
    assert "facades_label2photo" not in r.stderr and "shipped" in r.stderr  # only the demos shipped with ganctl
    pretrained_install.fetch("facades_label2photo", mirror=server.url)
    (tmp_path / "g.pth").write_bytes(data)
    pretrained_install.import_file(tmp_path / "g.pth", "mine")
    r = invoke("list")
    assert r.exit_code == 0, r.output
    rows = {ln.split()[0]: ln for ln in r.stderr.splitlines() if ln.strip()}
    assert "BtoA" in rows["facades_label2photo"] and server.url + FILE in rows["facades_label2photo"]
    assert "facade label map -> photo" in rows["facades_label2photo"]
    assert str((tmp_path / "g.pth").resolve()) in rows["mine"] and "imported from g.pth" in rows["mine"]
    assert [m["name"] for m in pretrained.installed()] == ["facades_label2photo", "mine"]


def test_lookup_and_catalog():
    assert pretrained.lookup("edges2shoes_pretrained") is pretrained.lookup("edges2shoes")
    assert {m.name: m.direction for m in pretrained.CATALOG.values() if m.family == "pix2pix"} == {
        "facades_label2photo": "BtoA", "sat2map": "AtoB", "map2sat": "BtoA", "edges2shoes": "AtoB", "day2night": "BtoA",
    }
    assert pretrained.lookup("sat2map").url == "http://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch/sat2map.pth"
    with pytest.raises(UnknownNameError, match="Did you mean 'map2sat'"):
        pretrained.lookup("map2sta")
    with pytest.raises(CheckpointError, match="not in the store: run 'ganctl download day2night'"):
        pretrained.generator_path("day2night")
    # 'ganctl download edges2shoes' would fetch the dataset
    with pytest.raises(CheckpointError, match="run 'ganctl download edges2shoes_pretrained'"):
        pretrained.generator_path("edges2shoes")


def test_the_library_imports_no_torch_for_listings():
    import subprocess
    import sys

    code = "import sys, ganctl.store.pretrained as p; p.installed(); p.lookup('sat2map'); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
