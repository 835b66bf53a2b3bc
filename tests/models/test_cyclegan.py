"""CycleGAN networks: the official key layout and sizes, shapes, and the size checks.

The official keys and shapes (tests/fixtures/cyclegan-official/official-keys.txt) were written by
the official ``networks.define_G`` (see the README there); numerical parity with the official
code is tested in test_cyclegan_official.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ganctl.models.cyclegan import PatchDiscriminator, ResnetGenerator

KEYS = Path(__file__).resolve().parents[1] / "fixtures" / "cyclegan-official" / "official-keys.txt"


def _official_listings() -> dict[str, dict[str, tuple[int, ...]]]:
    out: dict[str, dict[str, tuple[int, ...]]] = {}
    for line in KEYS.read_text().splitlines():
        if line.startswith("# "):
            current = out.setdefault(line[2:], {})
        elif line.strip():
            key, shape = line.split()
            current[key] = () if shape == "scalar" else tuple(int(n) for n in shape.split("x"))
    return out


@pytest.mark.parametrize(
    ("header", "args"),
    [
        ("resnet_9blocks ngf=64 norm=instance use_dropout=False", dict(n_blocks=9, norm="instance", dropout=False)),
        ("resnet_6blocks ngf=64 norm=batch use_dropout=True", dict(n_blocks=6, norm="batch", dropout=True)),
    ],
)
def test_the_state_dict_has_the_official_keys_and_shapes(header, args):
    official = _official_listings()[header]
    with torch.device("meta"):
        net = ResnetGenerator(3, 3, ngf=64, **args)
    ours = {k: tuple(t.shape) for k, t in net.state_dict().items()}
    assert list(ours) == list(official)  # the same order too, as torch.save writes it
    assert ours == official


def test_parameter_counts_are_the_official_ones():
    with torch.device("meta"):
        g9, g6, d = ResnetGenerator(), ResnetGenerator(n_blocks=6), PatchDiscriminator()
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    # the official define_G('resnet_9blocks'/'resnet_6blocks', 'instance') and define_D('basic', 'instance')
    assert (count(g9), count(g6), count(d)) == (11_378_179, 7_837_699, 2_764_737)
    assert [k for k in d.state_dict()] == [
        "model.0.weight", "model.0.bias", "model.2.weight", "model.2.bias", "model.5.weight", "model.5.bias",
        "model.8.weight", "model.8.bias", "model.11.weight", "model.11.bias",
    ]


def test_an_image_comes_back_at_its_size_in_minus_one_to_one():
    torch.manual_seed(0)
    net = ResnetGenerator(3, 1, ngf=4, n_blocks=2).eval()
    x = torch.randn(2, 3, 32, 48)
    y = net(x)
    assert y.shape == (2, 1, 32, 48) and y.abs().max() <= 1
    assert net.size_multiple == 4


def test_the_discriminator_sees_one_image():
    d = PatchDiscriminator(in_channels=3, ndf=4)
    assert d(torch.randn(2, 3, 64, 64)).shape == (2, 1, 6, 6)  # 64 -> 32 -> 16 -> 8 -> 7 -> 6
    assert d.norm == "instance" and isinstance(d.model[3], torch.nn.InstanceNorm2d)


def test_dropout_is_active_in_training_only():
    torch.manual_seed(0)
    net = ResnetGenerator(ngf=4, n_blocks=2, dropout=True)
    x = torch.randn(1, 3, 16, 16)
    assert not torch.equal(net.train()(x), net(x))
    net.eval()
    assert torch.equal(net(x), net(x))


@pytest.mark.parametrize(("h", "w"), [(30, 32), (32, 18), (4, 4)])
def test_sizes_the_network_cannot_take_are_refused(h, w):
    net = ResnetGenerator(ngf=4, n_blocks=1)
    with pytest.raises(ValueError, match=f"multiples of 4, at least 8 \\(got {h}x{w}\\)"):
        net(torch.zeros(1, 3, h, w))
    net(torch.zeros(1, 3, 8, 12))  # the smallest that works


@pytest.mark.parametrize(("args", "message"), [(dict(n_blocks=0), "n_blocks >= 1"), (dict(norm="group"), "unknown norm")])
def test_bad_arguments_are_refused(args, message):
    with pytest.raises(ValueError, match=message):
        ResnetGenerator(**args)
