"""ganctl.runtime.accel.norms: batch norm handed channels_last-dense gradients, computing what nn's computes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganctl.runtime.accel import norms

CL = torch.channels_last


def _decoder_block(cls: type, x: torch.Tensor, skip: torch.Tensor, dtype: torch.dtype, act_first: bool):
    """A U-Net decoder's end: batch norm, the skip concatenation, the next block's in-place
    activation; the gradient reaching the batch norm is then a channel slice of a channels_last
    tensor. With ``act_first`` the in-place activation comes between (as in the encoder), after
    the class's hook was registered."""
    torch.manual_seed(1)
    bn = nn.BatchNorm2d(x.shape[1])
    bn.__class__ = cls
    seen = []
    x = x.detach().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
        y = bn(x)
        y.register_hook(lambda g: seen.append(g.is_contiguous(memory_format=CL)))  # runs after the class's own
        if act_first:
            F.leaky_relu_(y, 0.2)
        z = torch.cat([skip, y], 1)
        if not act_first:
            F.relu_(z)
    weights = torch.linspace(-1, 1, z.numel()).view(z.shape).contiguous(memory_format=CL)
    (z.float() * weights).sum().backward()
    return seen, x.grad, bn.weight.grad, bn.bias.grad, bn.running_mean, bn.running_var


@pytest.mark.parametrize("act_first", [False, True], ids=["cat-then-activation", "activation-then-cat"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_dense_gradients_change_the_layout_not_the_numbers(dtype, act_first):
    torch.manual_seed(0)
    x = torch.randn(1, 8, 6, 6).contiguous(memory_format=CL)
    skip = torch.randn(1, 8, 6, 6).contiguous(memory_format=CL)
    plain_seen, *plain = _decoder_block(nn.BatchNorm2d, x, skip, dtype, act_first)
    dense_seen, *dense = _decoder_block(norms.DenseGradBatchNorm2d, x, skip, dtype, act_first)
    # a slice as it comes (the activation's backward makes a dense tensor); made dense by the class
    assert plain_seen == [act_first] and dense_seen == [True]
    for a, b in zip(plain, dense, strict=True):  # the same sums, in the other kernel's order
        torch.testing.assert_close(b, a)


def test_nchw_inputs_and_no_grad_are_left_alone():
    torch.manual_seed(0)
    bn = norms.DenseGradBatchNorm2d(4)
    x = torch.randn(2, 4, 5, 5, requires_grad=True)
    y = bn(x)
    assert not y._backward_hooks  # NCHW input: the gradient is not rearranged
    with torch.no_grad():
        assert not bn(x.contiguous(memory_format=CL)).requires_grad


def test_accelerate_and_back_keep_the_state():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.BatchNorm1d(4))
    keys = list(net.state_dict())
    assert norms.accelerate(net) == 1
    assert [type(m) for m in net] == [nn.Conv2d, norms.DenseGradBatchNorm2d, nn.ReLU, nn.BatchNorm1d]
    assert list(net.state_dict()) == keys
    norms.as_plain_nn(net)
    assert type(net[1]) is nn.BatchNorm2d


@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_channels_last_instance_norm_computes_what_nns_computes(affine, dtype):
    """Each image normalised by batch norm's kernel: nn.InstanceNorm2d's values and gradients
    (the input's, and the affine weight's and bias's), in a channels_last output, at batches of
    1 and 3 and under bf16 autocast as CycleGAN's networks run."""
    for batch in (1, 3):
        torch.manual_seed(0)
        plain = nn.InstanceNorm2d(6, affine=affine)
        if affine:
            nn.init.normal_(plain.weight)
            nn.init.normal_(plain.bias)
        fast = nn.InstanceNorm2d(6, affine=affine)
        fast.load_state_dict(plain.state_dict())
        assert norms.accelerate_instance_norms(nn.Sequential(fast)) == 1
        assert type(fast) is norms.ChannelsLastInstanceNorm2d
        x = (torch.randn(batch, 6, 5, 7) * 3 + 1).contiguous(memory_format=CL)
        up = torch.randn(batch, 6, 5, 7)
        outs = []
        for norm in (plain, fast):
            xi = x.detach().clone().requires_grad_()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
                y = norm(xi.to(dtype))
            (y.float() * up).sum().backward()
            outs.append((y, xi.grad, [p.grad for p in norm.parameters()]))
        (y0, g0, p0), (y1, g1, p1) = outs
        assert y1.is_contiguous(memory_format=CL) and not y0.is_contiguous(memory_format=CL)
        assert y1.dtype == y0.dtype and y1.shape == y0.shape
        tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=2e-2, atol=3e-2)
        torch.testing.assert_close(y1.float(), y0.float(), **tol)
        torch.testing.assert_close(g1.float(), g0.float(), **tol)
        assert len(p1) == (2 if affine else 0)
        for a, b in zip(p1, p0, strict=True):
            torch.testing.assert_close(a, b, **tol)


def test_channels_last_instance_norm_leaves_other_inputs_and_layers_to_nn():
    net = nn.Sequential(nn.InstanceNorm2d(4), nn.InstanceNorm2d(4, track_running_stats=True), nn.BatchNorm2d(4))
    assert norms.accelerate_instance_norms(net) == 1
    assert [type(m) for m in net] == [norms.ChannelsLastInstanceNorm2d, nn.InstanceNorm2d, nn.BatchNorm2d]
    x = torch.randn(2, 4, 3, 3)  # NCHW: nn's own path, bit for bit
    assert torch.equal(net[0](x), F.instance_norm(x))
    norms.as_plain_nn(net)
    assert [type(m) for m in net] == [nn.InstanceNorm2d, nn.InstanceNorm2d, nn.BatchNorm2d]
