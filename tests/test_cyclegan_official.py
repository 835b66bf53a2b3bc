"""Official CycleGAN generator files: parity with the official code, pre-0.4 files, round trips,
telling U-Nets from ResNets, and refusals.

The fixture (tests/fixtures/cyclegan-official/, made with the official code: see its README) is a
resnet_6blocks ngf 4 ``latest_net_G_A.pth``, an input PNG and what the official one-direction
test wrote for it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganctl.core.errors import CheckpointError
from ganctl.core.images import to_uint8
from ganctl.models.cyclegan import PatchDiscriminator, ResnetGenerator
from ganctl.models.cyclegan_official import (
    EXPECTED,
    architecture_summary,
    ganctl_to_official,
    official_kind,
    official_options,
    official_to_ganctl,
)
from ganctl.models.pix2pix import UNetGenerator
from ganctl.models.pix2pix_official import ganctl_to_official as unet_to_official
from ganctl.models.pix2pix_official import load_official_file, save_official_file
from ganctl.use.inference import prepare_image

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "cyclegan-official"
ARCH = {"in_channels": 3, "out_channels": 3, "ngf": 4, "n_blocks": 6, "norm": "instance", "dropout": False}


def fixture_state() -> dict[str, torch.Tensor]:
    return load_official_file(FIXTURES / "latest_net_G_A.pth")


def pre_04(state: dict, batches_tracked: bool = True) -> dict:
    """``state`` as PyTorch before 0.4 saved it: InstanceNorm layers with running statistics."""
    old = dict(state)
    with torch.device("meta"):
        net = ResnetGenerator(**ARCH)
    for name, m in net.named_modules():
        if isinstance(m, torch.nn.InstanceNorm2d):
            old[f"{name}.running_mean"] = torch.zeros(m.num_features)
            old[f"{name}.running_var"] = torch.ones(m.num_features)
            if batches_tracked:
                old[f"{name}.num_batches_tracked"] = torch.tensor(0)
    return old


def test_the_output_is_the_official_one():
    state, arch = official_to_ganctl(fixture_state())
    assert arch == ARCH
    net = ResnetGenerator(**arch)
    net.load_state_dict(state, strict=True)
    img = Image.open(FIXTURES / "input.png")
    x = prepare_image(img, 3, net.size_multiple)
    assert x.shape == (1, 3, 32, 48)  # no resize: the fixture is a multiple of 4
    with torch.no_grad():
        y = net.eval()(x)
    ours = to_uint8(y)[0].permute(1, 2, 0).to(torch.int16)
    official = torch.from_numpy(np.array(Image.open(FIXTURES / "output.png").convert("RGB"))).to(torch.int16)
    assert official.shape == (32, 48, 3)
    diff = (ours - official).abs()
    # the official tensor2im truncates where ganctl rounds: at most 1 apart, 2 allowed
    assert int(diff.max()) <= 2, int(diff.max())
    assert float(official.float().std()) > 20  # the fixture is a picture, not a flat grey


@pytest.mark.parametrize("batches_tracked", [True, False])
@pytest.mark.parametrize("prefix", ["", "module."])
def test_files_saved_before_torch_0_4_and_wrapped_files_load(batches_tracked, prefix):
    clean, _ = official_to_ganctl(fixture_state())
    old = {prefix + k: v for k, v in pre_04(fixture_state(), batches_tracked).items()}
    assert any(k.endswith(".running_mean") for k in old)
    state, arch = official_to_ganctl(old)
    assert arch == ARCH and state.keys() == clean.keys()
    assert all(torch.equal(state[k], clean[k]) for k in clean)


def test_round_trips_are_exact(tmp_path):
    original = fixture_state()
    state, arch = official_to_ganctl(original)
    back = ganctl_to_official(state, arch)
    assert list(back) == list(original)
    assert all(torch.equal(back[k], original[k]) for k in original)

    # through files, from a network ganctl made (batch norm and dropout: every key kind)
    torch.manual_seed(1)
    arch2 = {"in_channels": 1, "out_channels": 3, "ngf": 4, "n_blocks": 2, "norm": "batch", "dropout": True}
    net = ResnetGenerator(**arch2)
    net.train()(torch.randn(2, 1, 16, 16))  # non-trivial running statistics
    path = save_official_file(ganctl_to_official(net.state_dict(), arch2), tmp_path / "latest_net_G_A.pth")
    state2, inferred = official_to_ganctl(load_official_file(path))
    assert inferred == arch2
    assert all(torch.equal(state2[k], v) for k, v in net.state_dict().items()) and state2.keys() == net.state_dict().keys()


def test_a_batch_norm_file_without_num_batches_tracked_loads():
    net = ResnetGenerator(ngf=4, n_blocks=1, norm="batch")
    old = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    state, arch = official_to_ganctl(old)
    assert arch["norm"] == "batch" and int(state["model.2.num_batches_tracked"]) == 0
    ResnetGenerator(**arch).load_state_dict(state, strict=True)


def test_unets_and_resnets_are_told_apart():
    unet = UNetGenerator(ngf=4, num_downs=5)
    assert official_kind(fixture_state()) == "resnet"
    assert official_kind({"module." + k: v for k, v in fixture_state().items()}) == "resnet"
    assert official_kind(unet_to_official(unet.state_dict(), {**vars_of(unet)})) == "unet"
    assert official_kind(PatchDiscriminator(ndf=4).state_dict()) is None
    assert official_kind({}) is None


def vars_of(unet: UNetGenerator) -> dict:
    return {k: getattr(unet, k) for k in ("in_channels", "out_channels", "ngf", "num_downs", "norm")}


def _broken(change) -> dict:
    state = fixture_state()
    change(state)
    return state


@pytest.mark.parametrize(
    ("make", "found"),
    [
        (lambda: _broken(lambda s: s.pop("model.12.conv_block.5.bias")), "no model.12.conv_block.5.bias"),
        (lambda: _broken(lambda s: s.update({"model.30.weight": torch.zeros(1)})), "unexpected keys"),
        (lambda: _broken(lambda s: s.update({"model.4.weight": torch.zeros(8, 4, 5, 5)})), "model.4.weight of shape (8, 4, 5, 5)"),
        (lambda: _broken(lambda s: [s.pop(k) for k in list(s) if k.startswith("model.12.")]), "residual blocks at model indices [10, 11, 13"),
        (lambda: _broken(lambda s: s.update({"head.weight": torch.zeros(1)})), "'head.weight'"),
        (lambda: _broken(lambda s: s.update({"model.2.running_var": torch.zeros(2)})), None),  # stale stats: dropped
        (lambda: PatchDiscriminator(ndf=4).state_dict(), "that is a PatchGAN discriminator"),
        (lambda: unet_to_official(UNetGenerator(ngf=4, num_downs=5).state_dict(), vars_of(UNetGenerator(ngf=4, num_downs=5))),
         "that is a pix2pix U-Net generator"),
        (lambda: {}, "empty"),
        (lambda: torch.zeros(3), "a Tensor"),
    ],
    ids=["missing", "extra", "bad-shape", "gap", "foreign", "stale-stats", "discriminator", "unet", "empty", "not-a-dict"],
)
def test_anything_else_is_refused_in_one_line(make, found):
    if found is None:  # a stale statistic of a stale shape is still only a stale statistic
        official_to_ganctl(make())
        return
    with pytest.raises(CheckpointError) as info:
        official_to_ganctl(make())
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"expected {EXPECTED}, but found")
    assert found in message, message


def test_ganctl_to_official_refuses_a_state_that_does_not_fit():
    state, arch = official_to_ganctl(fixture_state())
    with pytest.raises(CheckpointError, match="does not fit resnet_6blocks, ngf 4, instance norm, 3->3 channels: no model.1.bias"):
        ganctl_to_official({k: v for k, v in state.items() if k != "model.1.bias"}, arch)
    with pytest.raises(CheckpointError, match="unexpected key model.99.weight"):
        ganctl_to_official({**state, "model.99.weight": torch.zeros(1)}, arch)
    with pytest.raises(CheckpointError, match=r"model.1.weight has shape \(4, 3, 3, 3\)"):
        ganctl_to_official({**state, "model.1.weight": torch.zeros(4, 3, 3, 3)}, arch)


def test_summaries():
    assert architecture_summary(ARCH) == "resnet_6blocks, ngf 4, instance norm, 3->3 channels"
    assert official_options({**ARCH, "n_blocks": 9, "ngf": 64}) == (
        "--model test --netG resnet_9blocks --norm instance --ngf 64 --input_nc 3 --output_nc 3 --no_dropout"
    )
