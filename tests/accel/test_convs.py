"""Convolutions on small maps as matrix products (ganctl.runtime.accel.convs): the same maths as nn."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd import gradcheck, gradgradcheck

from ganctl.runtime.accel import convs
from ganctl.runtime.accel.convs import Route, _Conv

ROUTES = [Route(True, True, True), Route(False, False, True), Route(True, False, False), Route(False, True, False)]
# (in, out, size, kernel, stride, padding): the DCGAN/pix2pix shape, an odd map, a stride-1 layer,
# no padding (a DCGAN's first and last layers), a stride that leaves a remainder
GEOMETRIES = [(3, 4, 4, 4, 2, 1), (2, 3, 5, 3, 1, 1), (3, 2, 3, 4, 1, 1), (2, 3, 4, 4, 1, 0), (2, 2, 5, 2, 2, 0)]


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("fmt", [torch.channels_last, torch.contiguous_format], ids=["channels_last", "nchw"])
@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"out{r.output:d}-dx{r.input_grad:d}-dw{r.weight_grad:d}")
def test_every_route_is_the_convolution_and_its_derivatives(transposed, fmt, route):
    """In float64: the output equals F.conv2d / F.conv_transpose2d, and the first and second
    derivatives (the WGAN-GP penalty differentiates the input gradient) pass gradcheck."""
    torch.manual_seed(0)
    for cin, cout, size, k, s, p in GEOMETRIES:
        x = torch.randn(2, cin, size, size, dtype=torch.double).contiguous(memory_format=torch.channels_last).requires_grad_()
        shape = (cin, cout, k, k) if transposed else (cout, cin, k, k)
        w = torch.randn(shape, dtype=torch.double).contiguous(memory_format=fmt).requires_grad_()
        b = torch.randn(cout, dtype=torch.double, requires_grad=True)

        def conv(x, w, b, s=s, p=p):
            return _Conv.apply(x, w, b, (s, s), (p, p), transposed, route)

        reference = (F.conv_transpose2d if transposed else F.conv2d)(x, w, b, s, p)
        torch.testing.assert_close(conv(x, w, b), reference)
        assert gradcheck(conv, (x, w, b))
        assert gradgradcheck(conv, (x, w, b))


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("weights", [torch.contiguous_format, torch.channels_last], ids=["nchw-weights", "cl-weights"])
@pytest.mark.parametrize("layout", ["nchw", "sliced"])
def test_other_layouts_and_uneven_geometry(transposed, weights, layout):
    """The patches are gathered from a padded NHWC copy of whatever comes in: an NCHW input with a
    channels_last upstream gradient, or views with gaps for both, at batch 1 with an uneven kernel,
    stride and padding, give PyTorch's results."""
    torch.manual_seed(0)
    cin, cout, k, stride, padding = 3, 4, (3, 2), (2, 1), (1, 0)
    base = torch.randn(1, cin, 7, 8 if layout == "sliced" else 6, dtype=torch.double)
    x = (base[..., 1:-1] if layout == "sliced" else base).requires_grad_()
    shape = (cin, cout, *k) if transposed else (cout, cin, *k)
    w = torch.randn(shape, dtype=torch.double).contiguous(memory_format=weights).requires_grad_()
    conv = F.conv_transpose2d if transposed else F.conv2d
    expected = conv(x, w, None, stride, padding)
    if layout == "sliced":
        grad = torch.randn(*expected.shape[:3], expected.shape[3] + 3, dtype=torch.double)[..., 2:-1]
    else:
        grad = torch.randn(expected.shape, dtype=torch.double).contiguous(memory_format=torch.channels_last)
    gx, gw = torch.autograd.grad(expected, (x, w), grad)
    assert not x.is_contiguous(memory_format=torch.channels_last) and not grad.is_contiguous()
    y = _Conv.apply(x, w, None, stride, padding, transposed, Route(True, True, True))
    torch.testing.assert_close(y, expected)
    ours = torch.autograd.grad(y, (x, w), grad)
    torch.testing.assert_close(ours[0], gx)
    torch.testing.assert_close(ours[1], gw)


def test_a_kernel_larger_than_its_input_is_left_to_nn():
    conv = convs.GemmConv2d(2, 2, 5)
    with torch.autocast("cpu", dtype=torch.bfloat16), pytest.raises(RuntimeError, match="[Kk]ernel size"):
        conv(torch.randn(1, 2, 1, 1))


@pytest.mark.parametrize("amx", [False, True], ids=["avx512-bf16", "amx"])
def test_the_rule_routes_small_maps_only(amx):
    def route_for(*args):
        return convs.route_for(*args, amx=amx)

    # route_for(positions of the smaller map, batch, transposed, in, out)
    # DCGAN generator at batch 128: all of the 4x4 -> 8x8 layer, the 8x8 layer's weight gradient,
    # nothing of the 16x16 layer; its last layer (one channel) but for the weight gradient
    assert route_for(16, 128, True, 1024, 512) == Route(True, True, True)
    assert route_for(64, 128, True, 512, 256) == Route(False, False, True)
    assert route_for(256, 128, True, 256, 128) is None
    assert route_for(1024, 128, True, 128, 1) == Route(True, True, False)
    assert route_for(1024, 128, True, 128, 3) is None
    # its discriminator: the one-channel input's gradient of the first layer; nothing of the second
    assert route_for(1024, 128, False, 1, 64) == Route(False, True, False)
    assert route_for(256, 128, False, 64, 128) is None
    # the U-Net at batch 1: all three products of the 1x1 to 8x8 layers; nothing on 64x64 maps
    assert route_for(1, 1, False, 512, 512) == Route(True, True, True)
    assert route_for(64, 1, True, 1024, 512) == Route(True, True, True)
    assert route_for(4096, 1, True, 256, 64) is None
    # the PatchGAN's last layer (31x31 -> 30x30, one channel): oneDNN
    assert route_for(900, 1, False, 512, 1) is None
    # where AMX changes the rule: the U-Net's 32x32 -> 16x16 layer (output, or input gradient),
    # the PatchGAN's 32x32 -> 31x31 layer's weight gradient
    assert route_for(256, 1, False, 256, 512) == (Route(False, True, True) if amx else Route(True, False, True))
    assert route_for(961, 1, False, 256, 512) == (None if amx else Route(False, False, True))


def test_the_rule_follows_the_cpu_by_default():
    assert convs.route_for(256, 1, False, 256, 512) == convs.route_for(256, 1, False, 256, 512, amx=convs.has_amx())


def _pair(transposed: bool, cin: int, cout: int, bias: bool):
    """An accelerated layer and an nn layer with the same weights."""
    torch.manual_seed(1)
    ours = (convs.GemmConvTranspose2d if transposed else convs.GemmConv2d)(cin, cout, 4, 2, 1, bias=bias)
    theirs = (nn.ConvTranspose2d if transposed else nn.Conv2d)(cin, cout, 4, 2, 1, bias=bias)
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    theirs.load_state_dict(ours.state_dict())
    return ours.to(memory_format=torch.channels_last), theirs.to(memory_format=torch.channels_last)


@pytest.mark.parametrize("transposed,cin,cout,size", [(True, 64, 32, 2), (False, 32, 64, 4), (True, 16, 8, 8)])
def test_layers_under_bf16_autocast_match_nn(transposed, cin, cout, size):
    ours, theirs = _pair(transposed, cin, cout, bias=True)
    x = torch.randn(1, cin, size, size).contiguous(memory_format=torch.channels_last)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y1, y2 = ours(x1), theirs(x2)
    assert type(y1.grad_fn).__name__ == "_ConvBackward"  # the matrix route was taken
    assert y1.dtype == y2.dtype == torch.bfloat16
    grad = torch.randn_like(y2, dtype=torch.float32)
    y1.float().backward(grad)
    y2.float().backward(grad)
    torch.testing.assert_close(y1.float(), y2.float(), atol=0.05, rtol=0.02)
    torch.testing.assert_close(x1.grad, x2.grad, atol=0.05, rtol=0.02)
    for a, b in ((ours.weight, theirs.weight), (ours.bias, theirs.bias)):
        assert a.grad.dtype == torch.float32 and a.grad.shape == b.grad.shape
        torch.testing.assert_close(a.grad, b.grad, atol=0.05, rtol=0.02)


def test_fp32_switched_off_and_large_maps_stay_with_onednn():
    ours, _ = _pair(False, 8, 16, bias=False)
    small = torch.randn(1, 8, 4, 4, requires_grad=True)
    assert type(ours(small).grad_fn).__name__ != "_ConvBackward"  # fp32: nn's own path
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert type(ours(small).grad_fn).__name__ == "_ConvBackward"
        assert type(ours(torch.randn(8, 8, 64, 64)).grad_fn).__name__ != "_ConvBackward"
        convs.as_plain_nn(ours)
        assert type(ours(small).grad_fn).__name__ != "_ConvBackward"


def test_unet_step_in_bf16_is_as_close_to_fp32_as_onednn_is():
    """The whole U-Net, whose 1x1 to 8x8 layers take the matrix route (some followed by in-place
    ReLUs): its bf16 gradients are as far from the fp32 ones as oneDNN's bf16 gradients are."""
    from ganctl.models import UNetGenerator

    torch.manual_seed(0)
    G = UNetGenerator(3, 3, ngf=8, num_downs=8, norm="batch", dropout=False).to(memory_format=torch.channels_last)
    x = torch.rand(1, 3, 256, 256).contiguous(memory_format=torch.channels_last) * 2 - 1

    def grads(precision: str, gemm: bool) -> dict[str, torch.Tensor]:
        convs.accelerate(G) if gemm else convs.as_plain_nn(G)
        G.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            out = G(x)
        out.float().square().mean().backward()
        return {n: p.grad.clone() for n, p in G.named_parameters()}

    exact, ours, onednn = grads("fp32", False), grads("bf16", True), grads("bf16", False)

    def error(g: dict[str, torch.Tensor]) -> float:
        return max(((g[n] - e).norm() / e.norm().clamp_min(1e-12)).item() for n, e in exact.items())

    # bf16 alone puts the deep layers' gradients of this untrained net 10-35% off fp32, by either
    # route; a wrong product (a transposed weight, a misplaced patch) would put them 100% off
    assert error(ours) <= 1.2 * error(onednn) + 0.02


def test_as_plain_nn_keeps_the_parameters_and_drops_the_route():
    from ganctl.models import DCGANGenerator

    G = DCGANGenerator(z_dim=8, channels=1, image_size=16, features=4)
    assert convs.accelerate(G) == 3  # 16x16: 1 -> 4x4 -> 8x8 -> 16x16
    before = {k: v.clone() for k, v in G.state_dict().items()}
    convs.as_plain_nn(G)
    kinds = {type(m) for m in G.modules()}
    assert nn.ConvTranspose2d in kinds and convs.GemmConvTranspose2d not in kinds
    assert all(torch.equal(before[k], v) for k, v in G.state_dict().items())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = G(torch.randn(2, 8, requires_grad=True))
    assert out.shape == (2, 1, 16, 16)
    assert "_ConvBackward" not in graph_nodes(out)


def graph_nodes(t: torch.Tensor) -> set[str]:
    """The names of every autograd node behind t."""
    seen, todo, names = set(), [t.grad_fn], set()
    while todo:
        node = todo.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.add(type(node).__name__)
        todo.extend(n for n, _ in node.next_functions)
    return names


def test_an_accelerated_dcgan_generator_in_bf16_takes_the_route():
    from ganctl.models import DCGANGenerator

    G = DCGANGenerator(z_dim=8, channels=1, image_size=16, features=4)
    convs.accelerate(G)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = G(torch.randn(2, 8, requires_grad=True))
    assert "_ConvBackward" in graph_nodes(out)
