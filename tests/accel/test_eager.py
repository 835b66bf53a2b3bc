"""ganctl.runtime.accel.eager: optimizers that do not import torch._dynamo, with PyTorch's updates bit for bit."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from ganctl.runtime.accel import eager
from ganctl.runtime.accel.adam import CopyFreeAdam

# In a fresh interpreter: ganctl's optimizers through a whole training's calls (construction, steps
# with a scheduler and hooks, zero_grad, state_dict and loading it into another), then PyTorch's
# own optimizers (which import torch._dynamo) on the same gradients, compared bit for bit.
SCRIPT = r"""
import json, sys
import torch
from ganctl.runtime.accel.adam import CopyFreeAdam
from ganctl.runtime.accel.eager import EagerRMSprop

def params():
    torch.manual_seed(0)
    return [torch.nn.Parameter(torch.randn(4, 3, 3, 3).contiguous(memory_format=torch.channels_last)),
            torch.nn.Parameter(torch.randn(4))]

def train(make, steps=3):
    ps = params()
    opt = make(ps)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 1.0 - 0.1 * e)
    hooks = []
    opt.register_step_post_hook(lambda *a: hooks.append(1))
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        opt.zero_grad()
        for p in ps:
            p.grad = torch.randn(p.shape, generator=g).contiguous(memory_format=torch.channels_last) if p.dim() == 4 \
                else torch.randn(p.shape, generator=g)
        opt.step()
        sched.step()
    again = make(params())
    again.load_state_dict(opt.state_dict())
    return ps, opt.state_dict(), again.state_dict(), len(hooks)

adam = lambda ps: CopyFreeAdam(ps, lr=1e-2, betas=(0.5, 0.999), fused=True)
rms = lambda ps: EagerRMSprop(ps, lr=1e-2, foreach=True)
ours = {"adam": train(adam), "rmsprop": train(rms)}
out = {"dynamo_after_ganctl": "torch._dynamo" in sys.modules,
       "hooks": {k: v[3] for k, v in ours.items()}}
theirs = {"adam": train(lambda ps: torch.optim.Adam(ps, lr=1e-2, betas=(0.5, 0.999), fused=True)),
          "rmsprop": train(lambda ps: torch.optim.RMSprop(ps, lr=1e-2, foreach=True))}
out["dynamo_after_torch"] = "torch._dynamo" in sys.modules
def same(a, b):
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b
out["same"] = {k: same(ours[k][:3], theirs[k][:3]) for k in ours}
print(json.dumps(out))
"""


def test_a_fresh_process_trains_without_importing_dynamo_and_updates_as_torch():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["dynamo_after_ganctl"] is False
    assert out["dynamo_after_torch"] is True  # the check can fail: PyTorch's own optimizers do import it
    assert out["hooks"] == {"adam": 3, "rmsprop": 3}  # the step hooks ran once per step
    assert out["same"] == {"adam": True, "rmsprop": True}


@pytest.mark.parametrize("loaded", [False, True], ids=["own-calls", "torch-wrappers"])
def test_either_path_gives_torchs_updates(monkeypatch, loaded):
    """In this process torch._dynamo may be imported already; both paths are forced in turn."""
    monkeypatch.setattr(eager, "dynamo_loaded", lambda: loaded)

    def run(cls, **kw):
        torch.manual_seed(0)
        ps = [torch.nn.Parameter(torch.randn(5, 3)), torch.nn.Parameter(torch.randn(3))]
        opt = cls(ps, lr=1e-2, **kw)
        g = torch.Generator().manual_seed(2)
        for _ in range(3):
            opt.zero_grad()
            for p in ps:
                p.grad = torch.randn(p.shape, generator=g)
            opt.step()
        return ps, opt.state_dict()

    for ours, theirs, kw in [(CopyFreeAdam, torch.optim.Adam, dict(foreach=False)),
                             (eager.EagerRMSprop, torch.optim.RMSprop, dict(foreach=True))]:
        (pa, sa), (pb, sb) = run(ours, **kw), run(theirs, **kw)
        assert all(torch.equal(a, b) for a, b in zip(pa, pb, strict=True))
        assert all(torch.equal(sa["state"][i][k], sb["state"][i][k]) for i in sa["state"] for k in sa["state"][i])
        assert sa["param_groups"] == sb["param_groups"]

