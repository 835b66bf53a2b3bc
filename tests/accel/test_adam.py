"""ganctl.runtime.accel.adam.CopyFreeAdam: the same updates as torch's fused Adam, without copying channels_last tensors."""

from __future__ import annotations

import copy

import pytest
import torch

from ganctl.runtime.accel import adam as optim

CL = torch.channels_last


def _params(layouts):
    """channels_last and NCHW conv weights, a bias, a 0-dim scale, a matrix, and a channels_last
    weight that never gets a gradient."""
    torch.manual_seed(0)
    shapes = [(8, 6, 4, 4), (6, 3, 4, 4), (6,), (1, 5, 4, 4), (5, 7), (), (3, 2, 4, 4)]
    return [torch.nn.Parameter(torch.randn(s).contiguous(memory_format=fmt) if len(s) == 4 else torch.randn(s))
            for s, fmt in zip(shapes, layouts, strict=True)]


NO_GRAD = 6  # the index of the parameter without a gradient


def _grads(params, step, grad_layouts=None):
    """Fresh gradients, laid out as their parameter unless ``grad_layouts`` says otherwise."""
    g = torch.Generator().manual_seed(100 + step)
    for i, p in enumerate(params):
        values = torch.randn(p.shape, generator=g)
        fmt = (grad_layouts or {}).get(i)
        p.grad = None if i == NO_GRAD else values.contiguous(memory_format=fmt) if fmt else torch.empty_like(p).copy_(values)


LAYOUTS = [CL, torch.contiguous_format, None, CL, None, None, CL]
FLAVOURS = {
    "fused": dict(fused=True),
    "fused-amsgrad": dict(fused=True, amsgrad=True),
    "foreach": dict(foreach=True),
    "single-tensor": dict(foreach=False),
}


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("grad_layouts", [None, {0: torch.contiguous_format, 1: CL}], ids=["matching", "mismatched-grads"])
def test_updates_are_bit_identical_to_torch_adam(flavour, grad_layouts):
    ours, theirs = _params(LAYOUTS), _params(LAYOUTS)
    kwargs = dict(lr=2e-3, betas=(0.5, 0.999), **FLAVOURS[flavour])
    opt_a, opt_b = optim.CopyFreeAdam(ours, **kwargs), torch.optim.Adam(theirs, **kwargs)
    for step in range(4):
        _grads(ours, step, grad_layouts)
        _grads(theirs, step, grad_layouts)
        opt_a.step()
        opt_b.step()
    for a, b in zip(ours, theirs, strict=True):
        assert torch.equal(a, b)
        assert a.stride() == b.stride()  # the parameters keep their layout
    state_a, state_b = opt_a.state_dict()["state"], opt_b.state_dict()["state"]
    assert state_a.keys() == state_b.keys() and NO_GRAD not in state_a
    for i in state_a:
        assert state_a[i].keys() == state_b[i].keys()
        for key in state_a[i]:
            assert torch.equal(state_a[i][key], state_b[i][key]) and state_a[i][key].shape == state_b[i][key].shape


def test_the_kernel_gets_contiguous_views_of_channels_last_tensors(monkeypatch):
    seen = []
    real = torch._fused_adam_

    def spy(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, *args, **kwargs):
        groups = (params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs)
        seen.append([all(t.is_contiguous() for t in group) for group in groups])
        return real(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, *args, **kwargs)

    monkeypatch.setattr(torch, "_fused_adam_", spy)
    params = _params(LAYOUTS)
    opt = optim.CopyFreeAdam(params, lr=1e-3, fused=True, amsgrad=True)
    _grads(params, 0)
    opt.step()
    assert seen == [[True] * 5]
    # the state the optimizer keeps is shaped and laid out as its parameter
    for p in params[:NO_GRAD]:
        assert opt.state[p]["exp_avg"].shape == p.shape and opt.state[p]["exp_avg"].stride() == p.stride()

    # with torch's own Adam the same call sees the channels_last tensors as they are
    seen.clear()
    params = _params(LAYOUTS)
    opt = torch.optim.Adam(params, lr=1e-3, fused=True, amsgrad=True)
    _grads(params, 0)
    opt.step()
    assert seen == [[False] * 5]


def test_a_list_it_does_not_know_turns_the_views_off(monkeypatch):
    """Were a later PyTorch to fill one more per-parameter list that this code cannot recognise,
    permuting the others would pair it with them by flat index: then nothing is permuted."""
    params = _params(LAYOUTS)
    opt = optim.CopyFreeAdam(params, lr=1e-3, fused=True)
    _grads(params, 0)
    lists = [[] for _ in range(6)]  # params_with_grad, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps
    opt._init_group(opt.param_groups[0], *lists)
    assert all(t.is_contiguous() for t in lists[0])  # as torch passes them today: permuted

    real = torch.optim.Adam._init_group

    def newer(self, group, *lists):
        *known, extra = lists
        out = real(self, group, *known)
        extra.extend(torch.zeros(3) for _ in known[0])  # of the parameters' length, of no parameter's shape
        return out

    monkeypatch.setattr(torch.optim.Adam, "_init_group", newer)
    lists = [[] for _ in range(7)]
    opt._init_group(opt.param_groups[0], *lists)
    assert any(not t.is_contiguous() for t in lists[0])  # left as they are


@pytest.mark.parametrize("first", ["ganctl", "torch"])
def test_state_dicts_load_across_both_optimizers(first):
    kinds = {"ganctl": optim.CopyFreeAdam, "torch": torch.optim.Adam}
    second = "torch" if first == "ganctl" else "ganctl"
    ours, theirs = _params(LAYOUTS), _params(LAYOUTS)
    opt_a = kinds[first](ours, lr=1e-3, fused=True)
    _grads(ours, 0)
    opt_a.step()
    opt_b = kinds[second](theirs, lr=1e-3, fused=True)
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
