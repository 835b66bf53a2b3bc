"""Pretrained CycleGAN generators: the catalog, `ganctl download NAME` against a local server,
`import` and `export` of official ResNet files.

The served file is the official-code fixture (tests/fixtures/cyclegan-official/, resnet_6blocks
ngf 4) turned into a file as the published ones are: saved before PyTorch 0.4, with InstanceNorm
running statistics. Until the cyclegan family is registered by ganctl itself, the tests register
a minimal one naming the same networks, so the stored generator specs can be checked and loaded.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from ganctl import __version__
from ganctl.families import registry
from ganctl.families.familyspec import Family, Networks, Objective, Preset, Variant
from ganctl.models.cyclegan import ResnetGenerator
from ganctl.models.cyclegan_official import official_to_ganctl
from ganctl.models.pix2pix import UNetGenerator
from ganctl.models.pix2pix_official import ganctl_to_official as unet_to_official
from ganctl.models.pix2pix_official import load_official_file
from ganctl.store import pretrained, pretrained_install
from ganctl.store.checkpoint import read_meta
from tests import httpserver
from tests.test_cyclegan_official import ARCH, FIXTURES, fixture_state, pre_04
from tests.test_pretrained import invoke, one_error_line, store_files

http_server = httpserver.http_server  # the fixture, for this module

CYCLEGAN_NAMES = [
    "apple2orange", "orange2apple", "summer2winter_yosemite", "winter2summer_yosemite", "horse2zebra", "zebra2horse",
    "monet2photo", "style_monet", "style_cezanne", "style_ukiyoe", "style_vangogh", "sat2map", "map2sat",
    "cityscapes_photo2label", "cityscapes_label2photo", "facades_photo2label", "facades_label2photo", "iphone2dslr_flower",
]  # scripts/download_cyclegan_model.sh


@pytest.fixture(autouse=True)
def cyclegan_family():
    """The cyclegan family, registered for the test if ganctl does not register one."""
    if "cyclegan" in registry.FAMILIES:
        yield registry.get("cyclegan")
        return
    fam = Family(
        name="cyclegan",
        summary="test stand-in",
        data="images",
        default=Variant(
            networks=Networks(name="cyclegan", generator="ganctl.models.cyclegan:ResnetGenerator",
                              discriminator="ganctl.models.cyclegan:PatchDiscriminator"),
            objective=Objective(name="cyclegan-test", ref="ganctl.train.objectives:Pix2PixObjective"),
            presets={"default": Preset(source="test", image_size=256, epochs=1, batch_size=1, lr=2e-4)},
        ),
    )
    registry.register(fam)
    try:
        yield fam
    finally:
        registry.unregister("cyclegan")


def published_bytes() -> bytes:
    buf = io.BytesIO()
    torch.save(pre_04(fixture_state(), batches_tracked=False), buf)
    return buf.getvalue()


# ------------------------------------------------------------ the catalog


def test_the_catalog_has_the_eighteen_official_models_under_unambiguous_names():
    cyc = [m for m in pretrained.CATALOG.values() if m.family == "cyclegan"]
    assert [m.file[: -len(".pth")] for m in cyc] == CYCLEGAN_NAMES
    assert all(m.url == f"http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/{m.file}" for m in cyc)
    # the pix2pix models keep their names; the three CycleGAN models of the same names get a suffix
    for name in ("sat2map", "map2sat", "facades_label2photo"):
        assert pretrained.lookup(name).family == "pix2pix"
        assert pretrained.lookup(name).url.endswith(f"/pix2pix/models-pytorch/{name}.pth")
        assert pretrained.lookup(f"{name}_cyclegan").file == f"{name}.pth"
        assert pretrained.lookup(f"{name}_cyclegan").family == "cyclegan"
    assert len(pretrained.CATALOG) == 5 + 18
    h2z, monet = pretrained.lookup("horse2zebra"), pretrained.lookup("style_monet")
    assert (h2z.direction, h2z.dataset, h2z.description) == ("AtoB", "horse2zebra", "horse photo -> zebra photo")
    assert (monet.direction, monet.dataset, monet.input, monet.output) == ("BtoA", "monet2photo", "photo", "Monet-style painting")
    assert h2z.approx_size < pretrained.lookup("sat2map").approx_size


def test_the_listing_shows_both_families():
    r = invoke("download")
    assert r.exit_code == 0, r.output
    assert "Pretrained pix2pix and CycleGAN models" in r.stderr
    # the dataset has the bare name: the model is listed (and downloaded) as horse2zebra_pretrained,
    # as edges2shoes's is; --pretrained horse2zebra still names the model
    assert pretrained.lookup("horse2zebra").download_name == "horse2zebra_pretrained"
    row = next(line for line in r.stderr.splitlines() if line.startswith("horse2zebra_pretrained "))
    assert "~45.6 MB" in row and "horse photo -> zebra photo" in row and "AtoB" in row
    assert any(line.startswith("sat2map_cyclegan ") for line in r.stderr.splitlines())


# ------------------------------------------------------------ ganctl download NAME


def test_download_converts_stores_and_records_the_source(http_server, _isolated_store):
    data = published_bytes()
    http_server.files["horse2zebra.pth"] = data
    r = invoke("download", "horse2zebra_pretrained", "--mirror", http_server.url)  # horse2zebra: the dataset
    assert r.exit_code == 0, r.output
    path = Path(r.stdout.strip())
    assert path == _isolated_store.resolve() / "pretrained" / "horse2zebra" / "generator.safetensors"
    assert store_files(_isolated_store) == ["pretrained/horse2zebra/config.json", "pretrained/horse2zebra/generator.safetensors"]
    assert "horse photo -> zebra photo (AtoB), resnet_6blocks, ngf 4, instance norm, 3->3 channels" in r.stderr
    meta = read_meta(path)
    assert json.loads(path.with_name("config.json").read_text()) == meta
    assert meta == {
        "schema_version": 1, "family": "cyclegan", "arch": "cyclegan", "generator": ARCH, "image_size": 256,
        "channels": 3, "z_dim": 0, "classes": None, "conditional": False, "direction": "AtoB",
        "dataset": "horse2zebra", "run": None, "pretrained": "horse2zebra", "description": "horse photo -> zebra photo",
        "source_url": http_server.url + "horse2zebra.pth", "source_sha256": hashlib.sha256(data).hexdigest(),
        "ganctl_version": __version__,
    }
    expected, _ = official_to_ganctl(fixture_state())
    stored = load_file(str(path))
    assert stored.keys() == expected.keys() and all(torch.equal(stored[k], expected[k]) for k in expected)


def test_the_stored_generator_computes_what_the_official_one_does(http_server, _isolated_store):
    import numpy as np
    from PIL import Image

    from ganctl.core.images import to_uint8
    from ganctl.use.inference import load_generator, prepare_image

    http_server.files["style_monet.pth"] = published_bytes()
    path = pretrained_install.fetch("style_monet", mirror=http_server.url)
    assert pretrained.generator_path("style_monet_pretrained") == path
    gen = load_generator(path, torch.device("cpu"), family="cyclegan")
    assert isinstance(gen.net, ResnetGenerator) and not gen.net.training
    with torch.no_grad():
        y = gen.net(prepare_image(Image.open(FIXTURES / "input.png"), 3, gen.net.size_multiple))
    official = np.array(Image.open(FIXTURES / "output.png").convert("RGB")).astype(np.int16)
    ours = to_uint8(y)[0].permute(1, 2, 0).numpy().astype(np.int16)
    assert np.abs(ours - official).max() <= 2


def test_the_cyclegan_model_of_a_pix2pix_name_is_fetched_from_the_cyclegan_file(http_server, _isolated_store):
    http_server.files["sat2map.pth"] = published_bytes()
    path = pretrained_install.fetch("sat2map_cyclegan", mirror=http_server.url)
    assert [q.path for q in http_server.requests] == ["sat2map.pth"]
    assert path.parent.name == "sat2map_cyclegan" and read_meta(path)["family"] == "cyclegan"


def test_a_file_of_the_other_family_is_refused_and_deleted(http_server, _isolated_store):
    # a mirror of the pix2pix folder serves a U-Net as sat2map.pth
    unet = UNetGenerator(ngf=4, num_downs=5)
    buf = io.BytesIO()
    args = {k: getattr(unet, k) for k in ("in_channels", "out_channels", "ngf", "num_downs", "norm")}
    torch.save(unet_to_official(unet.state_dict(), args), buf)
    http_server.files["map2sat.pth"] = buf.getvalue()
    line = one_error_line(invoke("download", "map2sat_cyclegan", "--mirror", http_server.url), alone=False)
    assert "is not a usable cyclegan generator: it holds a pix2pix U-Net generator, not the cyclegan model map2sat_cyclegan" in line
    assert "nothing was installed" in line
    assert store_files(_isolated_store) == []


# ------------------------------------------------------------ import and export


def test_import_and_export_round_trip(tmp_path, _isolated_store):
    src = tmp_path / "latest_net_G_A.pth"
    src.write_bytes(published_bytes())
    r = invoke("import", src, "--name", "mine")
    assert r.exit_code == 0, r.output
    assert "imported latest_net_G_A.pth as mine: resnet_6blocks, ngf 4, instance norm, 3->3 channels" in r.stderr
    meta = read_meta(Path(r.stdout.strip()))
    # the official cycle_gan model's name for its A -> B generator says the direction
    assert (meta["family"], meta["arch"], meta["generator"], meta["direction"]) == ("cyclegan", "cyclegan", ARCH, "AtoB")
    src.rename(tmp_path / "net.pth")
    r = invoke("import", tmp_path / "net.pth", "--name", "other")
    assert read_meta(Path(r.stdout.strip()))["direction"] is None  # no name to tell by, no --direction

    r = invoke("export", "--pretrained", "mine", "-o", str(tmp_path / "out") + "/")
    assert r.exit_code == 0, r.output
    assert "--model test --netG resnet_6blocks --norm instance --ngf 4 --input_nc 3 --output_nc 3 --no_dropout" in r.stderr
    exported = load_official_file(tmp_path / "out" / "latest_net_G.pth")
    original = fixture_state()  # what the published file holds, less its InstanceNorm statistics
    assert list(exported) == list(original) and all(torch.equal(exported[k], original[k]) for k in original)


def test_import_under_an_official_name_takes_its_entry_and_checks_the_family(tmp_path, _isolated_store):
    src = tmp_path / "zebra2horse.pth"
    src.write_bytes(published_bytes())
    meta = read_meta(pretrained_install.import_file(src, "zebra2horse"))
    assert (meta["direction"], meta["dataset"], meta["description"]) == ("BtoA", "horse2zebra", "zebra photo -> horse photo")
    line = one_error_line(invoke("import", src, "--name", "sat2map"))  # the pix2pix model of that name
    assert "holds a CycleGAN ResNet generator, not the pix2pix model sat2map" in line
