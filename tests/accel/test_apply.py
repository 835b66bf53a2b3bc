"""ganctl.runtime.accel: plain nn models, and the CPU fast paths laid over them only where the runtime asks."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from ganctl import models
from ganctl.config import make_config
from ganctl.runtime import accel, runtime
from ganctl.runtime.accel import convs, norms
from ganctl.runtime.accel.adam import CopyFreeAdam
from ganctl.train import objectives
from tests.conftest import invoke

CPU = torch.device("cpu")
MODELS = Path(__file__).resolve().parents[2] / "ganctl" / "models"
# one small network pair per convolutional arch (the MLP has no convolutions)
ARCHS = {
    "dcgan": (dict(z_dim=8, channels=1, image_size=16, features=4), dict(channels=1, image_size=16, features=4)),
    "cdcgan": (dict(z_dim=8, channels=1, image_size=16, features=4, num_classes=3),
               dict(channels=1, image_size=16, features=4, num_classes=3)),
    "pix2pix": (dict(in_channels=3, out_channels=3, ngf=4, num_downs=5), dict(in_channels=6, ndf=4)),
}


def _nets(arch: str) -> tuple[nn.Module, nn.Module]:
    g, d = ARCHS[arch]
    torch.manual_seed(0)
    return models.build_generator(arch, g), models.build_discriminator(arch, d)


def _turned_on(arch: str) -> list[str]:
    """What accel.apply reports for a model: the conditional critic's instance norms besides."""
    extra = [accel.CHANNELS_LAST_INSTANCE_NORMS] if arch == "cdcgan" else []
    return [accel.GEMM_CONVS, accel.DENSE_NORM_GRADS, *extra]


def _conv_classes(*nets: nn.Module) -> set[type]:
    return {type(m) for net in nets for m in net.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)}


def test_no_model_module_imports_the_fast_paths():
    """models/ builds plain nn networks: no module there imports ganctl.runtime.accel or a layers module."""
    for path in sorted(MODELS.glob("*.py")):
        names = []
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names += [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
        bad = [n for n in names if n.startswith("ganctl.runtime.accel") or n.split(".")[-1] in ("layers", "accel", "optim")]
        assert not bad, f"{path.name} imports {bad}"
    assert not (MODELS / "layers.py").exists()


@pytest.mark.parametrize("arch", ARCHS)
def test_built_models_are_plain_nn_until_accel_applies(arch):
    G, D = _nets(arch)
    assert _conv_classes(G, D) == {nn.Conv2d, nn.ConvTranspose2d}
    G.eval()
    x = torch.randn(2, 3, 32, 32) if arch == "pix2pix" else torch.randn(2, 8)
    y = torch.tensor([0, 2]) if arch == "cdcgan" else None
    with torch.no_grad():
        before = G(x) if arch == "pix2pix" else G(x, y)
    keys = (list(G.state_dict()), list(D.state_dict()))
    assert accel.apply(runtime.Runtime(CPU, "bf16"), G, D) == _turned_on(arch)
    assert _conv_classes(G, D) == {convs.GemmConv2d, convs.GemmConvTranspose2d}
    assert {type(m) for net in (G, D) for m in net.modules() if isinstance(m, nn.BatchNorm2d)} == {norms.DenseGradBatchNorm2d}
    assert (list(G.state_dict()), list(D.state_dict())) == keys  # old checkpoints load either way
    with torch.no_grad():  # in fp32 the accelerated layers are nn's own, bit for bit
        assert torch.equal(G(x) if arch == "pix2pix" else G(x, y), before)


@pytest.mark.parametrize("rt", [runtime.Runtime(CPU, "fp32"), runtime.Runtime(CPU, "bf16", accel=False),
                                runtime.Runtime(torch.device("meta"), "bf16")], ids=["fp32", "no-accel", "not-cpu"])
def test_apply_is_a_no_op_where_the_runtime_does_not_want_it(rt):
    """The matrix route is bf16-only; the dense batch-norm gradients apply in fp32 too (any CPU run
    with channels_last maps); neither without accel or off the CPU."""
    G, D = _nets("dcgan")
    fp32 = rt.precision == "fp32"
    assert accel.apply(rt, G, D) == ([accel.DENSE_NORM_GRADS] if fp32 else [])
    assert _conv_classes(G, D) == {nn.Conv2d, nn.ConvTranspose2d}
    bn = {type(m) for net in (G, D) for m in net.modules() if isinstance(m, nn.BatchNorm2d)}
    assert bn == ({norms.DenseGradBatchNorm2d} if fp32 else {nn.BatchNorm2d})


def test_apply_leaves_what_the_route_cannot_compute_alone():
    net = nn.Sequential(nn.Conv2d(4, 4, 3, padding="same"), nn.Conv2d(4, 4, 3, groups=2), nn.Conv2d(4, 4, 3, dilation=2),
                        nn.ConvTranspose2d(4, 4, 3, 2, 1, output_padding=1), nn.Conv2d(4, 4, 3, padding_mode="reflect"),
                        nn.Conv2d(4, 4, 3), nn.ConvTranspose2d(4, 4, 4, 2, 1))
    assert accel.apply(runtime.Runtime(CPU, "bf16"), net) == [accel.GEMM_CONVS]
    assert [type(m) for m in net] == [nn.Conv2d] * 3 + [nn.ConvTranspose2d, nn.Conv2d, convs.GemmConv2d, convs.GemmConvTranspose2d]
    assert accel.apply(runtime.Runtime(CPU, "bf16"), nn.Sequential(nn.Linear(2, 2))) == []


# (family, arch variant, channels, classes, image size, network overrides): tiny versions of each
STEPS = {
    "dcgan": ("dcgan", None, 1, None, 16, dict(features=4)),
    "cdcgan": ("cgan", "conv", 1, ("a", "b", "c"), 16, dict(features=4)),
    "pix2pix": ("pix2pix", None, 3, None, 32, dict(ngf=4, num_downs=5)),
}


@pytest.mark.parametrize("arch", STEPS)
def test_an_accelerated_training_step_matches_the_plain_one(arch):
    """One D and G update in bf16 on the CPU, plain against accelerated (same weights, same noise;
    the conditional critic's gradient penalty differentiates the convolutions twice): the losses
    and every parameter's gradient agree to bf16's precision."""
    family, variant, ch, classes, size, g = STEPS[arch]
    d = dict(ndf=4) if arch == "pix2pix" else g
    cfg = make_config(family, "x", "t", channels=ch, classes=classes, preset_key="default", arch=variant,
                      batch_size=4, image_size=size, generator_overrides=g, discriminator_overrides=d)
    results = []
    for on in (False, True):
        rt = runtime.Runtime(CPU, "bf16", accel=on)
        torch.manual_seed(0)
        G, D = models.build_generator(arch, cfg.generator), models.build_discriminator(arch, cfg.discriminator)
        for net in (G, D):
            net.to(memory_format=torch.channels_last)
        assert accel.apply(rt, G, D) == (_turned_on(arch) if on else [])
        obj = objectives.build({"generator": G, "discriminator": D}, cfg, rt)
        torch.manual_seed(1)
        x = (torch.rand(4, ch, size, size) * 2 - 1).contiguous(memory_format=torch.channels_last)
        if arch == "pix2pix":
            batch = {"input": x, "target": x.flip(3).contiguous(memory_format=torch.channels_last)}
        else:
            batch = {"real": x, "labels": torch.tensor([0, 1, 2, 0]) if classes else None}
        losses = {**obj.d_step(batch), **obj.g_step(batch)}
        # D's gradients are the D step's (D is frozen in the G step), G's the G step's
        grads = {f"{n}.{k}": p.grad.float().clone() for n, net in (("G", G), ("D", D))
                 for k, p in net.named_parameters() if p.grad is not None}
        results.append((losses, grads))
    (plain_losses, plain), (fast_losses, fast) = results
    for k, v in plain_losses.items():
        assert float(fast_losses[k]) == pytest.approx(float(v), rel=0.05, abs=0.02), k
    assert fast.keys() == plain.keys() and len(plain) > 4
    # bf16 puts either route's weight gradients a few % from each other; a wrong product puts them
    # 100% off. (A bias that sums real and fake logits' gradients is ~0 by cancellation: no scale.)
    errors = {k: ((fast[k] - v).norm() / v.norm()).item() for k, v in plain.items() if v.dim() == 4}
    assert max(errors.values()) < 0.2, sorted(errors.items(), key=lambda kv: -kv[1])[:3]


def test_make_optimizer_builds_the_copy_free_adam_only_with_accel_on_the_cpu():
    cfg = make_config("dcgan", "x", "t", channels=1, classes=None, preset_key="default")
    p = [nn.Parameter(torch.randn(4, 3, 2, 2))]
    on = objectives.make_optimizer(cfg, p, runtime.Runtime(CPU, "bf16"))
    off = objectives.make_optimizer(cfg, p, runtime.Runtime(CPU, "bf16", accel=False))
    assert type(on) is CopyFreeAdam and type(off) is torch.optim.Adam
    assert on.defaults["fused"] is True and off.defaults["fused"] is True
    assert accel.adam_class(runtime.Runtime(torch.device("cuda"), "bf16")) is torch.optim.Adam


def test_fast_paths_list_only_what_accel_turns_on():
    on, off = runtime.Runtime(CPU, "bf16"), runtime.Runtime(CPU, "bf16", accel=False)
    assert accel.GEMM_CONVS in on.fast_paths(True) and accel.COPY_FREE_ADAM in on.fast_paths(True)
    assert accel.GEMM_CONVS not in on.fast_paths(False) and accel.COPY_FREE_ADAM not in on.fast_paths(False)
    assert accel.GEMM_CONVS not in off.fast_paths(True) and accel.COPY_FREE_ADAM not in off.fast_paths(True)
    assert accel.GEMM_CONVS not in runtime.Runtime(CPU, "fp32").fast_paths(True)  # bf16-only
    assert accel.DENSE_NORM_GRADS in on.fast_paths(True) and accel.DENSE_NORM_GRADS in runtime.Runtime(CPU, "fp32").fast_paths(True)
    assert accel.DENSE_NORM_GRADS not in on.fast_paths(False) and accel.DENSE_NORM_GRADS not in off.fast_paths(True)
    assert "fused Adam (foreach RMSprop)" in off.fast_paths(True) and "channels_last" in off.fast_paths(True)


_RESOLVE = r"""
import sys
from ganctl.runtime import runtime
from ganctl.runtime.accel import memory
rt = runtime.resolve("cpu", "fp32", accel=sys.argv[1] == "on")
print(rt.accel, memory.tuned(), "malloc keeps freed memory" in rt.fast_paths(True))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the malloc setting is glibc's")
def test_resolve_tunes_malloc_only_with_accel():
    def run(mode: str) -> str:
        return subprocess.run([sys.executable, "-c", _RESOLVE, mode], capture_output=True, text=True, check=True).stdout.split()

    assert run("off") == ["False", "False", "False"]
    import platform

    if platform.libc_ver()[0] == "glibc":
        assert run("on") == ["True", "True", "True"]


def test_no_accel_trains_with_pytorchs_own_kernels(_isolated_store):
    args = ["train", "dcgan", "--dataset", "digits", "--epochs", "1", "--batch-size", "64", "--image-size", "16",
            "--device", "cpu", "--precision", "bf16"]
    fast = invoke(*args, "--name", "fast")
    plain = invoke(*args, "--name", "plain", "--no-accel")
    assert fast.exit_code == 0 and plain.exit_code == 0, fast.output + plain.output
    header = [ln for ln in fast.stderr.splitlines() if ln.startswith("training ")][0]
    assert accel.GEMM_CONVS in header and accel.COPY_FREE_ADAM in header
    header = [ln for ln in plain.stderr.splitlines() if ln.startswith("training ")][0]
    assert accel.GEMM_CONVS not in header and accel.COPY_FREE_ADAM not in header and "bf16" in header
