"""Runtime choices: device, precision, optimizer flags, the host allocator (ganctl.runtime.accel.memory), and what is reported."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest
import torch

from ganctl.core.errors import GanctlError
from ganctl.runtime import runtime
from tests.conftest import error_line, invoke

CPU = torch.device("cpu")


def test_auto_precision_on_the_cpu_follows_its_bf16_support():
    expect = "bf16" if runtime.cpu_has_fast_bf16() else "fp32"
    assert runtime.resolve_precision("auto", CPU) == expect


@pytest.mark.parametrize("asked", ["fp32", "bf16"])
def test_an_explicit_precision_is_kept(asked):
    assert runtime.resolve_precision(asked, CPU) == asked


def test_fp16_on_the_cpu_is_refused_with_the_alternative():
    with pytest.raises(GanctlError, match="bf16"):
        runtime.resolve_precision("fp16", CPU)


def test_unknown_precision_and_device_name_the_valid_ones():
    with pytest.raises(GanctlError, match="fp32, bf16, fp16"):
        runtime.resolve_precision("fp8", CPU)
    with pytest.raises(GanctlError, match="cpu, cuda"):
        runtime.resolve_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message for a machine without CUDA")
def test_cuda_without_a_gpu_says_what_to_use():
    with pytest.raises(GanctlError, match="--device cpu"):
        runtime.resolve_device("cuda")


def test_autocast_runs_matmuls_in_the_chosen_precision():
    x = torch.randn(4, 8)
    w = torch.randn(8, 8)
    with runtime.Runtime(CPU, "bf16").autocast():
        assert (x @ w).dtype == torch.bfloat16
    with runtime.Runtime(CPU, "fp32").autocast():
        assert (x @ w).dtype == torch.float32


def test_grad_scaler_only_for_fp16():
    assert runtime.Runtime(CPU, "bf16").grad_scaler() is None
    assert runtime.Runtime(CPU, "fp32").grad_scaler() is None


def test_optimizer_flags_build_real_optimizers():
    rt = runtime.Runtime(CPU, "fp32")
    p = [torch.nn.Parameter(torch.randn(3, 3))]
    adam = torch.optim.Adam(p, **rt.optimizer_flags("adam"))
    rms = torch.optim.RMSprop(p, **rt.optimizer_flags("rmsprop"))
    assert adam.defaults["fused"] is True and rms.defaults["foreach"] is True
    p[0].grad = torch.ones(3, 3)
    before = p[0].detach().clone()
    adam.step()
    assert not torch.equal(before, p[0].detach())


def test_fast_paths_name_what_is_on():
    rt = runtime.Runtime(CPU, "bf16", compile=True)
    conv, mlp = rt.fast_paths(True), rt.fast_paths(False)
    assert conv[0] == "bf16" and "channels_last" in conv and "torch.compile" in conv
    assert "channels_last" not in mlp
    gemm = "small-map convs as GEMMs"
    assert gemm in conv and gemm not in mlp
    assert gemm not in runtime.Runtime(CPU, "fp32").fast_paths(True)  # the matrix route is bf16-only


_FAULTS = r"""
import resource, sys
import torch
from ganctl.runtime.accel import memory

tuned = memory.keep_freed_memory() if sys.argv[1] == "tuned" else False
faults = []
for _ in range(10):  # the same buffers freed and allocated again, as in every training step
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    a, b = torch.ones(16 << 20), torch.ones(4 << 20)  # 64 MB and 16 MB, every page written
    del a, b
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(tuned, sum(faults[-4:]))
"""


@pytest.mark.skipif(sys.platform != "linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_freed_memory_is_reused_instead_of_faulted_in_again():
    def faults(mode: str) -> tuple[str, int]:
        out = subprocess.run([sys.executable, "-c", _FAULTS, mode], capture_output=True, text=True, check=True)
        tuned, count = out.stdout.split()
        return tuned, int(count)

    # default glibc: each 64 MB block is mapped, faulted in page by page (16k pages) and unmapped
    assert faults("default")[1] > 4 * 16000
    # tuned: once the heap has grown to the step's size, the same pages serve every later step
    tuned, count = faults("tuned")
    assert tuned == "True" and count < 1000


def test_env_lists_the_cpu_fast_paths(_isolated_store):
    r = invoke("env")
    assert r.exit_code == 0
    assert "channels_last" in r.stdout and "fused Adam" in r.stdout


def test_fp16_training_on_the_cpu_is_one_clear_line(_isolated_store):
    r = invoke("train", "dcgan", "--dataset", "digits", "--device", "cpu", "--precision", "fp16", "--epochs", "1")
    assert r.exit_code != 0
    assert "bf16" in error_line(r)


def test_compiled_gpu_runs_leave_the_layout_to_inductor():
    # channels_last modules under torch.compile failed on an H200 (torch 2.11): compiled, the
    # GPU keeps NCHW and inductor picks convolution layouts itself; eager GPU and CPU runs keep NHWC
    cuda = torch.device("cuda")
    assert runtime.Runtime(cuda, "bf16").channels_last(True)
    assert not runtime.Runtime(cuda, "bf16", compile=True).channels_last(True)
    assert runtime.Runtime(torch.device("cpu"), "fp32", compile=True).channels_last(True)
    assert "channels_last" not in runtime.Runtime(cuda, "bf16", compile=True).fast_paths(True)
