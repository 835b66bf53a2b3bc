"""Official pix2pix weights: key layout, numerical parity, conversion round trips and refusals.

``OfficialUnet`` below is an independent re-implementation of the official recursive
``UnetGenerator`` written from the layout table in the reference notes (pix2pix-official.md,
section 1): its state_dict keys must equal the official listing, and ganctl's flat
``UNetGenerator`` must compute the same outputs from the converted weights.
"""

from __future__ import annotations

import ast
import pickle
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn

from ganctl.core.errors import CheckpointError
from ganctl.models.pix2pix import PatchGANDiscriminator, UNetGenerator
from ganctl.models.pix2pix_official import (
    architecture_summary,
    ganctl_to_official,
    load_official_file,
    official_to_ganctl,
    save_official_file,
)

KEYS_NAME = "pix2pix-official-unet256-keys.txt"
SHARED_KEYS = Path(__file__).resolve().parents[2] / "shared" / "reference" / KEYS_NAME
LOCAL_KEYS = Path(__file__).resolve().parent / "fixtures" / KEYS_NAME


# ------------------------------------------------------------ the reference network


class OfficialBlock(nn.Module):
    """One level of the official U-Net. Sequential indices as in the official state_dict:

    outermost [0 Conv, 1 sub, 2 ReLU, 3 ConvT(bias), 4 Tanh]
    middle    [0 LReLU, 1 Conv, 2 Norm, 3 sub, 4 ReLU, 5 ConvT, 6 Norm, (7 Dropout)]
    innermost [0 LReLU, 1 Conv, 2 ReLU, 3 ConvT, 4 Norm]
    """

    def __init__(self, outer, inner, norm, sub=None, input_nc=None, outermost=False, dropout=False):
        super().__init__()
        bias = norm == "instance"

        def norm_layer(c):
            return nn.BatchNorm2d(c) if norm == "batch" else nn.InstanceNorm2d(c)

        conv = nn.Conv2d(outer if input_nc is None else input_nc, inner, 4, 2, 1, bias=bias)
        self.outermost = outermost
        if outermost:
            layers = [conv, sub, nn.ReLU(True), nn.ConvTranspose2d(2 * inner, outer, 4, 2, 1), nn.Tanh()]
        elif sub is None:
            layers = [nn.LeakyReLU(0.2, True), conv, nn.ReLU(True), nn.ConvTranspose2d(inner, outer, 4, 2, 1, bias=bias)]
            layers.append(norm_layer(outer))
        else:
            # in-place activations on purpose, as upstream: the LReLU rewrites the skip tensor x,
            # which is harmless only because the parent applies ReLU next (ReLU . LReLU = ReLU)
            up = nn.ConvTranspose2d(2 * inner, outer, 4, 2, 1, bias=bias)
            layers = [nn.LeakyReLU(0.2, True), conv, norm_layer(inner), sub, nn.ReLU(True), up, norm_layer(outer)]
            if dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


class OfficialUnet(nn.Module):
    def __init__(self, in_nc=3, out_nc=3, num_downs=8, ngf=64, norm="batch", dropout=True):
        super().__init__()
        block = OfficialBlock(8 * ngf, 8 * ngf, norm)  # innermost
        for _ in range(num_downs - 5):
            block = OfficialBlock(8 * ngf, 8 * ngf, norm, sub=block, dropout=dropout)
        for mult in (4, 2, 1):
            block = OfficialBlock(mult * ngf, 2 * mult * ngf, norm, sub=block)
        self.model = OfficialBlock(out_nc, ngf, norm, sub=block, input_nc=in_nc, outermost=True)

    def forward(self, x):
        return self.model(x)


def _randomised(net: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights and random batch-norm statistics, at scales that keep tanh unsaturated."""
    g = torch.Generator().manual_seed(seed)

    def randn(t, std, mean=0.0):
        t.copy_(mean + std * torch.randn(t.shape, generator=g))

    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                # He scaling; a stride-2 4x4 ConvT feeds each output pixel from 2x2 taps per channel
                taps = 16 if isinstance(m, nn.Conv2d) else 4
                randn(m.weight, (2.0 / (m.in_channels * taps)) ** 0.5)
                if m.bias is not None:
                    randn(m.bias, 0.1)
            elif isinstance(m, nn.BatchNorm2d):
                randn(m.weight, 0.2, 1.0)
                randn(m.bias, 0.1)
                randn(m.running_mean, 0.1)
                m.running_var.copy_(0.5 + 1.5 * torch.rand(m.running_var.shape, generator=g))
                m.num_batches_tracked.fill_(int(torch.randint(1, 1000, (), generator=g)))
    return net


def _official(seed=0, **kwargs) -> OfficialUnet:
    torch.manual_seed(seed)
    return _randomised(OfficialUnet(**kwargs), seed)


def _meta(cls, **kwargs):
    with torch.device("meta"):
        return cls(**kwargs)


def _listing(section: int) -> list[tuple[str, tuple[int, ...]]]:
    """(key, shape) rows of the official listing: section 0 = generator, 1 = discriminator."""
    path = SHARED_KEYS if SHARED_KEYS.is_file() else LOCAL_KEYS
    sections: list[list] = []
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            sections.append([])
        elif line.strip():
            key, shape = line.split("\t")
            sections[-1].append((key, tuple(ast.literal_eval(shape))))
    return sections[section]


def _shapes(state: dict) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in state.items()]


# ------------------------------------------------------------ key layout


def test_the_local_copy_of_the_listing_is_current():
    if not SHARED_KEYS.is_file():
        pytest.skip("no shared reference folder beside the repository")
    assert LOCAL_KEYS.read_text() == SHARED_KEYS.read_text()


def test_reference_network_has_the_official_82_keys():
    listing = _listing(0)
    assert len(listing) == 82
    assert _shapes(_meta(OfficialUnet).state_dict()) == listing


def test_ganctl_generator_maps_onto_the_official_keys_in_order():
    G = _meta(UNetGenerator)
    arch = {"in_channels": 3, "out_channels": 3, "ngf": 64, "num_downs": 8, "norm": "batch"}
    assert _shapes(ganctl_to_official(G.state_dict(), arch)) == _listing(0)


def test_official_unet_256_listing_is_recognised():
    state, arch = official_to_ganctl(_meta(OfficialUnet).state_dict())
    assert arch == {"in_channels": 3, "out_channels": 3, "ngf": 64, "num_downs": 8, "norm": "batch"}
    assert architecture_summary(arch) == "unet_256, ngf 64, batch norm, 3->3 channels"
    assert _shapes(state) == _shapes(_meta(UNetGenerator).state_dict())


def test_discriminator_has_the_official_keys():
    # the listing's header says 23 keys, but it lists 22 (2 + 1 + 5 + 1 + 5 + 1 + 5 + 2)
    assert _shapes(_meta(PatchGANDiscriminator).state_dict()) == _listing(1)


# ------------------------------------------------------------ numerical parity


@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_converted_weights_compute_the_same_outputs_in_eval_mode(norm):
    ref = _official(ngf=4, norm=norm).eval()
    state, arch = official_to_ganctl(ref.state_dict())
    assert arch["norm"] == norm
    G = UNetGenerator(**arch).eval()
    G.load_state_dict(state)  # strict
    x = torch.randn(1, 3, 256, 256, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, got = ref(x), G(x)
    assert float(expected.std()) > 0.05 and float((expected.abs() < 0.9).float().mean()) > 0.5  # not saturated
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_converted_weights_compute_the_same_outputs_in_train_mode_with_dropout():
    # the paper's inference mode (dropout on, batch statistics): same seed, same dropout masks
    ref = _official(ngf=4).train()
    state, arch = official_to_ganctl(ref.state_dict())
    G = UNetGenerator(**arch).train()
    G.load_state_dict(state)
    x = torch.randn(1, 3, 256, 256, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.manual_seed(7)
        expected = ref(x)
        torch.manual_seed(7)
        got = G(x)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    back = ganctl_to_official(G.state_dict(), arch)
    for key, value in ref.state_dict().items():
        torch.testing.assert_close(back[key], value)  # the running statistics moved the same way


# ------------------------------------------------------------ conversion


@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_round_trip_is_bit_identical(norm):
    original = _official(ngf=4, norm=norm).state_dict()
    back = ganctl_to_official(*official_to_ganctl(original))
    assert list(back) == list(original)
    for key, value in original.items():
        assert back[key].dtype == value.dtype and torch.equal(back[key], value), key


@pytest.mark.parametrize("prefix", ["module.", "_orig_mod.", "module._orig_mod.", "_orig_mod.module.", "module.module."])
def test_wrapper_prefixes_are_stripped(prefix):
    original = _official(ngf=4).state_dict()
    state, arch = official_to_ganctl({prefix + k: v for k, v in original.items()})
    assert arch["ngf"] == 4
    UNetGenerator(**arch).load_state_dict(state)


def test_missing_num_batches_tracked_is_accepted():
    original = _official(ngf=4).state_dict()
    old = {k: v for k, v in original.items() if not k.endswith("num_batches_tracked")}
    assert len(old) == len(original) - 13
    state, arch = official_to_ganctl(old)
    G = UNetGenerator(**arch)
    G.load_state_dict(state)
    assert all(int(m.num_batches_tracked) == 0 for m in G.modules() if isinstance(m, nn.BatchNorm2d))


def test_non_tensor_entries_are_dropped():
    original = _official(ngf=4).state_dict()
    state, _ = official_to_ganctl({**original, "_metadata": {"": {"version": 1}}, "epoch": 200})
    assert len(state) == len(original)


def test_stale_instance_norm_statistics_are_dropped():
    # pre-0.4 torch saved running statistics for InstanceNorm; the official loader drops them too
    original = dict(_official(ngf=4, norm="instance").state_dict())
    original["model.model.1.model.2.running_mean"] = torch.zeros(8)
    original["model.model.1.model.2.running_var"] = torch.ones(8)
    state, arch = official_to_ganctl(original)
    assert arch["norm"] == "instance"
    UNetGenerator(**arch).load_state_dict(state)


@pytest.mark.parametrize(
    ("kwargs", "summary"),
    [
        ({"ngf": 8}, "unet_256, ngf 8, batch norm, 3->3 channels"),
        ({"ngf": 16, "norm": "instance"}, "unet_256, ngf 16, instance norm, 3->3 channels"),
        ({"ngf": 8, "num_downs": 7}, "unet_128, ngf 8, batch norm, 3->3 channels"),
        ({"ngf": 4, "in_nc": 1, "out_nc": 2, "num_downs": 6}, "unet_64, ngf 4, batch norm, 1->2 channels"),
    ],
)
def test_architecture_is_inferred_from_shapes(kwargs, summary):
    ref = _official(**kwargs)
    state, arch = official_to_ganctl(ref.state_dict())
    assert architecture_summary(arch) == summary
    UNetGenerator(**arch).load_state_dict(state)


def _resnet_like():
    return {"model.1.weight": torch.zeros(64, 3, 7, 7), "model.2.weight": torch.zeros(64), "model.2.bias": torch.zeros(64)}


def _broken(change):
    state = dict(_official(ngf=4).state_dict())
    change(state)
    return state


@pytest.mark.parametrize(
    ("make", "found"),
    [
        (lambda: PatchGANDiscriminator(ndf=4).state_dict(), "model.0.weight, model.0.bias, model.2.weight, ...; that is a PatchGAN discriminator (*_net_D.pth)"),
        (_resnet_like, "model.1.weight, model.2.weight, model.2.bias; that is a ResNet generator"),
        (lambda: {"foo": torch.zeros(3), "bar": torch.zeros(1)}, "foo"),
        (lambda: {}, "empty"),
        (lambda: torch.zeros(3), "Tensor"),
        (lambda: _broken(lambda s: s.update({"model.model.3.weight": torch.zeros(8, 3, 3, 3)})), "model.model.3.weight"),
        (lambda: _broken(lambda s: s.update({"model.model.1.model.2.weight": torch.zeros(9)})), "model.model.1.model.2.weight"),
        (lambda: _broken(lambda s: s.pop("model.model.1.model.3.model.5.weight")), "no model.model.1.model.3.model.5.weight"),
        (lambda: _broken(lambda s: s.update({"model.model.1.model.9.weight": torch.zeros(1)})), "model.model.1.model.9.weight"),
        (lambda: _broken(lambda s: s.update({"classifier.weight": torch.zeros(1)})), "classifier.weight"),
        (lambda: _broken(lambda s: [s.pop(k) for k in list(s) if "running" in k]), "neither"),
    ],
    ids=["discriminator", "resnet", "random", "empty", "not-a-dict", "bad-shape", "bad-norm", "missing", "extra", "foreign", "norm-none"],
)
def test_anything_else_is_refused_in_one_line(make, found):
    with pytest.raises(CheckpointError) as info:
        official_to_ganctl(make())
    message = str(info.value)
    assert "official pix2pix U-Net generator state_dict (keys like model.model.0.weight)" in message
    assert found in message
    assert "\n" not in message


def test_ganctl_to_official_refuses_a_state_that_does_not_fit():
    state, arch = official_to_ganctl(_official(ngf=4).state_dict())
    with pytest.raises(CheckpointError, match="ngf 8"):
        ganctl_to_official(state, {**arch, "ngf": 8})


# ------------------------------------------------------------ files


def test_save_and_load_round_trip(tmp_path):
    original = _official(ngf=4).state_dict()
    path = save_official_file(original, tmp_path / "latest_net_G.pth")
    assert zipfile.is_zipfile(path) and not list(tmp_path.glob(".*.tmp"))
    loaded = load_official_file(path)
    assert list(loaded) == list(original)
    assert all(torch.equal(loaded[k], v) for k, v in original.items())


def test_legacy_pre_zip_files_load_too(tmp_path, monkeypatch):
    # the pretrained files date from torch 0.4 (2018), before the zip format
    original = _official(ngf=4).state_dict()
    path = tmp_path / "legacy.pth"
    torch.save(original, path, _use_new_zipfile_serialization=False)
    calls = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **kw: calls.append(kw) or real_load(*a, **kw))
    state, arch = official_to_ganctl(load_official_file(path))
    assert calls == [{"map_location": "cpu", "weights_only": True}]
    UNetGenerator(**arch).load_state_dict(state)


@pytest.mark.parametrize("wrapper", ["state_dict", "netG", "model"])
def test_wrapped_state_dict_loads(tmp_path, wrapper):
    original = _official(ngf=4).state_dict()
    path = tmp_path / "wrapped.pth"
    torch.save({wrapper: {"module." + k: v for k, v in original.items()}, "epoch": 3}, path)
    state, arch = official_to_ganctl(load_official_file(path))
    assert arch["ngf"] == 4
    UNetGenerator(**arch).load_state_dict(state)


class _OpenOnUnpickle:
    """Unpickling this creates a file: evidence of code running during a load."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_pickle_carrying_code_is_refused_and_does_not_run(tmp_path):
    control = tmp_path / "control"
    pickle.loads(pickle.dumps(_OpenOnUnpickle(control), protocol=2)).close()
    assert control.exists()  # the payload really runs under a plain unpickler

    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": _official(ngf=4).state_dict(), "payload": _OpenOnUnpickle(marker)}, path)
    with pytest.raises(CheckpointError) as info:
        load_official_file(path)
    assert not marker.exists()
    message = str(info.value)
    assert "cannot be loaded safely" in message and "never code" in message and "\n" not in message
    assert "weights_only" not in message  # torch's own advice to turn it off is not passed on


def test_a_truncated_file_is_refused(tmp_path):
    path = save_official_file(_official(ngf=4).state_dict(), tmp_path / "g.pth")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="cannot be loaded safely.*never code"):
        load_official_file(path)


def test_a_file_that_is_not_a_checkpoint_is_refused(tmp_path):
    path = tmp_path / "page.pth"
    path.write_text("<html>404 Not Found</html>\n")
    with pytest.raises(CheckpointError, match="is a text file, not a PyTorch file"):
        load_official_file(path)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_official_file(tmp_path / "missing.pth")


def test_a_file_holding_something_else_is_refused(tmp_path):
    path = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], path)
    with pytest.raises(CheckpointError, match="holds a list, not a state_dict"):
        load_official_file(path)
    path = tmp_path / "d.pth"
    torch.save(PatchGANDiscriminator(ndf=4).state_dict(), path)
    with pytest.raises(CheckpointError, match="found 22 keys starting model.0.weight"):
        official_to_ganctl(load_official_file(path))
