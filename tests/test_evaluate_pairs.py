"""ganctl evaluate for pix2pix (issue 19, item 4): L1, PSNR, SSIM and FID of the translations of a
paired dataset's test split, in --mode paper and eval, for runs and pretrained models."""

from __future__ import annotations

import json

import pytest
import torch

from ganctl.data import paired
from ganctl.data.feeders import orient, to_unit
from ganctl.evaluation import scores
from ganctl.use import inference
from tests.conftest import error_line, invoke
from tests.httpserver import http_server  # noqa: F401
from tests.inception_weights import pin, random_weights  # noqa: F401

pytest.importorskip("torch_fidelity")


@pytest.fixture(scope="module")
def pix_home(tmp_path_factory):
    """A store with a tiny pix2pix run on synthetic-facades (32 px), trained once for the module."""
    home = tmp_path_factory.mktemp("pix-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANCTL_HOME", str(home))
        r = invoke("train", "pix2pix", "--dataset", "synthetic-facades", "--epochs", 1, "--image-size", 32,
                   "--ngf", 4, "--ndf", 4, "--batch-size", 8, "--name", "p", "-q")
    assert r.exit_code == 0, r.output
    return home


def _eval_mode_scores(gen, count: int) -> dict:
    """The expected numbers, made here the plain way: each test pair through the network in eval mode."""
    data = paired.load_paired("synthetic-facades", "test", load_size=32, limit=count)
    totals = {"l1": 0.0, "psnr": 0.0, "ssim": 0.0}
    gen.net.eval()
    for i in range(count):
        x, y = orient(*data.batch([i]), gen.meta["direction"])
        with torch.no_grad():
            out = gen.net(to_unit(x, torch.device("cpu"), False))
        for k, v in scores.image_scores(out, to_unit(y, torch.device("cpu"), False)).items():
            totals[k] += v / count
    return totals


def test_a_pix2pix_run_is_scored_on_its_test_pairs_in_both_modes(pix_home, monkeypatch):
    monkeypatch.setenv("GANCTL_HOME", str(pix_home))
    r = invoke("evaluate", "pix2pix/p", "--mode", "eval", "-n", 6, "--json")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert (res["n"], res["split"], res["mode"], res["dataset"], res["direction"]) == (6, "test", "eval", "synthetic-facades", "BtoA")
    gen = inference.load_generator(res["generator"], "cpu")
    for k, v in _eval_mode_scores(gen, 6).items():
        assert res[k] == pytest.approx(v, abs=2e-4), k
    assert "L1" in r.stderr and "SSIM" in r.stderr and "no FID of the translations" in r.stderr
    assert res["frechet_distance"] is None  # no Inception weights in this store
    saved = json.loads((pix_home / "runs" / "pix2pix" / "p" / "eval.json").read_text())
    assert saved["l1"] == res["l1"] and saved["protocol"]["mode"] == "eval"

    def numbers(r):
        return r["l1"], r["psnr"], r["ssim"]

    paper = [json.loads(invoke("evaluate", "pix2pix/p", "-n", 6, "--json").stdout) for _ in range(2)]
    assert paper[0]["mode"] == "paper" and numbers(paper[0]) == numbers(paper[1])  # seeded: repeatable
    # batch statistics instead of the stored ones (a 32 px U-Net has no dropout layer to differ by)
    assert numbers(paper[0]) != numbers(res)

    assert "unknown --mode 'x'" in error_line(invoke("evaluate", "pix2pix/p", "--mode", "x"))
    assert "needs --dataset" in error_line(invoke("evaluate", "--pretrained", "tiny"))
    assert "RUN, or --pretrained" in error_line(invoke("evaluate"))


def test_a_pretrained_model_is_scored_with_fid_when_the_weights_are_there(pix_home, tmp_path, monkeypatch,
                                                                          http_server, random_weights):  # noqa: F811
    from ganctl.export import official

    monkeypatch.setenv("GANCTL_HOME", str(pix_home))
    run_gen = pix_home / "runs" / "pix2pix" / "p" / "checkpoints" / "latest"
    path, _ = official.export(next((pix_home / "runs" / "pix2pix" / "p").rglob("generator.safetensors")),
                                       tmp_path / "latest_net_G.pth")
    assert run_gen  # the run's newest generator, exported in the official layout and imported back
    assert invoke("import", path, "--name", "tiny", "--direction", "BtoA").exit_code == 0
    data = random_weights.read_bytes()
    http_server.files["m/" + random_weights.name] = data
    pin(monkeypatch, data)
    assert invoke("download", "inception", "--mirror", http_server.url + "m").exit_code == 0

    r = invoke("evaluate", "--pretrained", "tiny", "--dataset", "synthetic-facades", "--mode", "eval", "-n", 4)
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)  # nothing is written for a pretrained model: stdout has the result
    assert res["pretrained"] == "tiny" and res["n"] == 4 and isinstance(res["frechet_distance"], float)
    assert res["protocol"]["weights_sha256"] == pin.__globals__["hashlib"].sha256(data).hexdigest()
    assert "FID" in r.stderr and "translations against their targets" in r.stderr


@pytest.mark.parametrize("channels", [1, 3])
def test_ssim_and_psnr_equal_torchmetrics(channels):
    # ganctl's SSIM (Wang et al.: 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03, averaged over the
    # valid positions, as Wang's MATLAB code and scikit-image do) against torchmetrics' SSIM map of the
    # same definition. torchmetrics pads by reflection and averages its map over the whole image,
    # borders included, so its own mean differs by about 1e-3: compared here on the valid positions.
    tm = pytest.importorskip("torchmetrics.functional.image")
    g = torch.Generator().manual_seed(0)
    target = torch.rand(4, channels, 48, 40, generator=g)
    outputs = [target, (target + 0.1 * torch.randn(target.shape, generator=g)).clamp(0, 1),
               torch.rand(target.shape, generator=g), target.flip(-1)]
    for out in outputs:
        _, full = tm.structural_similarity_index_measure(out, target, gaussian_kernel=True, sigma=1.5, kernel_size=11,
                                                         reduction="none", data_range=1.0, k1=0.01, k2=0.03,
                                                         return_full_image=True)
        valid = full[..., 5:-5, 5:-5].flatten(1).mean(1)
        torch.testing.assert_close(scores.ssim(out, target), valid, rtol=1e-4, atol=1e-5)
        if not torch.equal(out, target):
            theirs = torch.stack([tm.peak_signal_noise_ratio(o, t, data_range=1.0) for o, t in zip(out, target, strict=True)])
            torch.testing.assert_close(scores.psnr(out, target), theirs, rtol=1e-5, atol=1e-4)
