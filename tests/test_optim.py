"""ganctl.optim.Adam: the same updates as torch's fused Adam, without copying channels_last tensors."""

from __future__ import annotations

import copy

import pytest
import torch

from ganctl import optim

CL = torch.channels_last


def _params(layouts):
    torch.manual_seed(0)
    shapes = [(8, 6, 4, 4), (6, 3, 4, 4), (6,), (1, 5, 4, 4), (5, 7)]
    return [torch.nn.Parameter(torch.randn(s).contiguous(memory_format=fmt) if len(s) == 4 else torch.randn(s))
            for s, fmt in zip(shapes, layouts, strict=True)]


def _grads(params, step, grad_layouts=None):
    """Fresh gradients, laid out as their parameter unless ``grad_layouts`` says otherwise."""
    g = torch.Generator().manual_seed(100 + step)
    for i, p in enumerate(params):
        values = torch.randn(p.shape, generator=g)
        fmt = (grad_layouts or {}).get(i)
        p.grad = values.contiguous(memory_format=fmt) if fmt else torch.empty_like(p).copy_(values)


LAYOUTS = [CL, torch.contiguous_format, None, CL, None]


@pytest.mark.parametrize("grad_layouts", [None, {0: torch.contiguous_format, 1: CL}], ids=["matching", "mismatched-grads"])
def test_updates_are_bit_identical_to_torch_fused_adam(grad_layouts):
    ours, theirs = _params(LAYOUTS), _params(LAYOUTS)
    opt_a = optim.Adam(ours, lr=2e-3, betas=(0.5, 0.999), fused=True)
    opt_b = torch.optim.Adam(theirs, lr=2e-3, betas=(0.5, 0.999), fused=True)
    for step in range(4):
        _grads(ours, step, grad_layouts)
        _grads(theirs, step, grad_layouts)
        opt_a.step()
        opt_b.step()
    for a, b in zip(ours, theirs, strict=True):
        assert torch.equal(a, b)
        assert a.stride() == b.stride()  # the parameters keep their layout
    for a, b in zip(opt_a.state_dict()["state"].values(), opt_b.state_dict()["state"].values(), strict=True):
        for key in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(a[key], b[key]) and a[key].shape == b[key].shape


def test_the_kernel_gets_contiguous_views_of_channels_last_tensors(monkeypatch):
    params = _params(LAYOUTS)
    seen = []
    real = torch._fused_adam_

    def spy(params, grads, exp_avgs, exp_avg_sqs, *args, **kwargs):
        seen.append([all(t.is_contiguous() for t in group) for group in (params, grads, exp_avgs, exp_avg_sqs)])
        return real(params, grads, exp_avgs, exp_avg_sqs, *args, **kwargs)

    monkeypatch.setattr(torch, "_fused_adam_", spy)
    opt = optim.Adam(params, lr=1e-3, fused=True)
    _grads(params, 0)
    opt.step()
    assert seen == [[True, True, True, True]]
    # the state the optimizer keeps is shaped and laid out as its parameter
    for p in params:
        assert opt.state[p]["exp_avg"].shape == p.shape and opt.state[p]["exp_avg"].stride() == p.stride()

    # with torch's own Adam the same call sees the channels_last tensors as they are
    seen.clear()
    opt = torch.optim.Adam(_params(LAYOUTS), lr=1e-3, fused=True)
    for group in opt.param_groups:
        _grads(group["params"], 0)
    opt.step()
    assert seen == [[False, False, False, False]]


def test_state_dicts_load_across_both_optimizers():
    ours, theirs = _params(LAYOUTS), _params(LAYOUTS)
    opt_a = optim.Adam(ours, lr=1e-3, fused=True)
    _grads(ours, 0)
    opt_a.step()
    opt_b = torch.optim.Adam(theirs, lr=1e-3, fused=True)
    opt_b.load_state_dict(copy.deepcopy(opt_a.state_dict()))  # as if through a checkpoint file
    with torch.no_grad():
        for a, b in zip(ours, theirs, strict=True):
            b.copy_(a)
    for opt, ps in ((opt_a, ours), (opt_b, theirs)):
        _grads(ps, 1)
        opt.step()
    for a, b in zip(ours, theirs, strict=True):
        assert torch.equal(a, b)


def test_dense_view():
    x = torch.randn(2, 3, 4, 5).contiguous(memory_format=CL)
    v = optim.dense_view(x)
    assert v.is_contiguous() and v.data_ptr() == x.data_ptr() and v.shape == (2, 4, 5, 3)
    y = torch.randn(4, 6)[:, ::2]  # has gaps: no permutation makes it contiguous
    assert optim.dense_view(y) is y
    z = torch.randn(3, 4)
    assert optim.dense_view(z) is z
