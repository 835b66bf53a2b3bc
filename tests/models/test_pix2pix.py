"""pix2pix networks: sizes, shapes, bias/norm/dropout placement and init, at tiny widths.

Full-width (ngf=64) networks are only built on the meta device (no memory, no forward pass).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganctl.models.pix2pix import PatchGANDiscriminator, UNetGenerator, init_pix2pix_weights


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _meta(cls, **kwargs):
    with torch.device("meta"):
        return cls(**kwargs)


def _convs(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]


@pytest.mark.parametrize(("norm", "count"), [("batch", 54_413_955), ("instance", 54_409_603)])
def test_unet_256_parameter_count_matches_the_official_network(norm, count):
    assert _params(_meta(UNetGenerator, norm=norm)) == count


def test_patchgan_parameter_count_matches_the_official_network():
    assert _params(_meta(PatchGANDiscriminator)) == 2_768_705


def test_unet_256_widths_follow_the_official_table():
    G = _meta(UNetGenerator)
    downs = [(c.in_channels, c.out_channels) for c in _convs(G.down)]
    ups = [(c.in_channels, c.out_channels) for c in _convs(G.up)]
    assert downs == [(3, 64), (64, 128), (128, 256), (256, 512)] + [(512, 512)] * 4
    # decoder inputs after D1 are [skip, decoder] concatenations, hence twice the width
    assert ups == [(512, 512), (1024, 512), (1024, 512), (1024, 512), (1024, 256), (512, 128), (256, 64), (128, 3)]
    assert G.size_multiple == 256
    assert (G.in_channels, G.out_channels, G.ngf, G.num_downs, G.norm, G.dropout) == (3, 3, 64, 8, "batch", True)


def test_unet_forward_shapes_at_256_and_non_square():
    G = UNetGenerator(ngf=4).eval()
    with torch.no_grad():
        y = G(torch.randn(1, 3, 256, 256))
        wide = G(torch.randn(1, 3, 256, 512))
    assert y.shape == (1, 3, 256, 256)
    assert wide.shape == (1, 3, 256, 512)
    assert float(y.abs().max()) <= 1.0  # tanh


def test_unet_128_forward_and_channel_counts():
    G = UNetGenerator(in_channels=1, out_channels=2, ngf=4, num_downs=7).eval()
    assert G.size_multiple == 128
    with torch.no_grad():
        assert G(torch.randn(1, 1, 128, 128)).shape == (1, 2, 128, 128)


def test_unet_refuses_sizes_that_are_not_multiples_with_a_clear_message():
    G = UNetGenerator(ngf=4).eval()
    with pytest.raises(ValueError, match="multiples of 256"):
        G(torch.randn(1, 3, 384, 256))


@pytest.mark.parametrize("kwargs", [{"num_downs": 4}, {"norm": "group"}])
def test_unet_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        UNetGenerator(ngf=4, **kwargs)


def test_patch_map_is_30x30_at_256():
    D = PatchGANDiscriminator(ndf=4).eval()
    with torch.no_grad():
        out = D(torch.randn(2, 3, 256, 256), torch.randn(2, 3, 256, 256))
    assert out.shape == (2, 1, 30, 30)


def test_discriminator_puts_the_condition_first():
    D = PatchGANDiscriminator(ndf=4).eval()
    a, b = torch.randn(1, 3, 64, 64), torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(D(a, b), D.model(torch.cat([a, b], dim=1)))
        assert not torch.allclose(D(a, b), D(b, a))


def test_discriminator_layout_and_strides():
    D = _meta(PatchGANDiscriminator)
    keys = list(D.state_dict())
    assert keys[0] == "model.0.weight" and keys[-1] == "model.11.bias"
    convs = _convs(D)
    assert [c.stride for c in convs] == [(2, 2)] * 3 + [(1, 1)] * 2
    assert [c.bias is not None for c in convs] == [True, False, False, False, True]
    assert not any(isinstance(m, nn.Sigmoid) for m in D.modules())


def test_batch_norm_bias_rule():
    G = _meta(UNetGenerator, ngf=8)
    convs = _convs(G)
    # every conv feeds a BatchNorm or the innermost conv, except the outermost ConvT (bias, then tanh)
    assert [c.bias is not None for c in convs] == [False] * 15 + [True]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in G.modules()) == 13
    assert all(m.affine and m.track_running_stats for m in G.modules() if isinstance(m, nn.BatchNorm2d))
    # no norm on the 1x1 bottleneck (official issue #60)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in G.down[-1])


def test_instance_norm_bias_rule():
    G = _meta(UNetGenerator, ngf=8, norm="instance")
    assert all(c.bias is not None for c in _convs(G))
    norms = [m for m in G.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert len(norms) == 13 and not any(m.affine or m.track_running_stats for m in norms)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in G.modules())
    D = _meta(PatchGANDiscriminator, ndf=8, norm="instance")
    assert all(c.bias is not None for c in _convs(D))


def test_dropout_sits_on_d2_to_d4_only():
    G = _meta(UNetGenerator, ngf=8)
    with_dropout = [j for j, block in enumerate(G.up) if any(isinstance(m, nn.Dropout) for m in block)]
    assert with_dropout == [1, 2, 3]  # not D1 (the bottleneck up-conv) as in the Torch original
    assert all(m.p == 0.5 for m in G.modules() if isinstance(m, nn.Dropout))
    assert sum(isinstance(m, nn.Dropout) for m in _meta(UNetGenerator, ngf=8, num_downs=7).modules()) == 2
    assert not any(isinstance(m, nn.Dropout) for m in _meta(UNetGenerator, ngf=8, dropout=False).modules())


def test_dropout_is_active_in_train_mode_only():
    # num_downs=6 has one dropout block and runs at 64x64: the same code path as unet_256, cheaper
    torch.manual_seed(0)
    G = UNetGenerator(ngf=4, num_downs=6)
    init_pix2pix_weights(G)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        G.train()
        torch.manual_seed(1)
        a = G(x)
        torch.manual_seed(2)
        b = G(x)
        torch.manual_seed(1)
        a_again = G(x)
        G.eval()
        c, d = G(x), G(x)
    assert not torch.allclose(a, b)
    assert torch.equal(a, a_again)
    assert torch.equal(c, d)
    G.up[1][3].p = 0.0  # with the dropout switched off, train-mode outputs no longer depend on the seed
    G.train()
    with torch.no_grad():
        torch.manual_seed(1)
        e = G(x)
        torch.manual_seed(2)
        assert torch.equal(e, G(x))


def test_train_step_backpropagates_through_the_skips():
    G = UNetGenerator(ngf=4, num_downs=6).train()
    G(torch.randn(2, 3, 64, 64)).square().mean().backward()  # fails if an in-place op clobbered a saved tensor
    assert all(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in G.parameters())


@torch.no_grad()
def test_init_statistics():
    torch.manual_seed(0)
    G = UNetGenerator(ngf=16)
    D = PatchGANDiscriminator(ndf=16)
    for net in (G, D):
        init_pix2pix_weights(net)
        weights = torch.cat([c.weight.flatten() for c in _convs(net)])
        assert abs(float(weights.mean())) < 1e-3
        assert float(weights.std()) == pytest.approx(0.02, rel=0.05)
        assert all(float(c.bias.abs().max()) == 0.0 for c in _convs(net) if c.bias is not None)
        bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
        gammas = torch.cat([m.weight for m in bns])
        assert float(gammas.mean()) == pytest.approx(1.0, abs=0.01)
        assert float(gammas.std()) == pytest.approx(0.02, rel=0.3)
        assert all(float(m.bias.abs().max()) == 0.0 for m in bns)
