"""Device and numeric precision: what training and inference run on."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from ganctl.core.errors import GanctlError
from ganctl.runtime import accel as _accel

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    precision: str  # "fp32", "bf16" or "fp16" (autocast; fp16 with loss scaling)
    compile: bool = False  # torch.compile the networks
    accel: bool = True  # the CPU fast paths of ganctl.runtime.accel where they apply (--no-accel: off)

    @property
    def dtype(self) -> torch.dtype | None:
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)

    def autocast(self):
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def grad_scaler(self):
        """fp16 needs loss scaling (its exponent range is narrow); bf16 and fp32 do not."""
        if self.precision != "fp16":
            return None
        return torch.amp.GradScaler(self.device.type)

    def optimizer_flags(self, optimizer: str = "adam") -> dict:
        """Fused Adam (one kernel over every parameter) on CUDA and the CPU; RMSprop has no
        fused kernel, so foreach (per-parameter updates batched; not the CPU's default)."""
        if optimizer == "adam" and self.device.type in ("cuda", "cpu"):
            return {"fused": True}
        return {"foreach": True}

    def channels_last(self, convolutional: bool = True) -> bool:
        """NHWC for convolutions: oneDNN (CPU) and cuDNN run them faster in it (measured 1.25x on a
        2-core AVX2 CPU for the DCGAN discriminator step). Compiled on a GPU, the layout is
        inductor's to choose (it makes convolutions channels_last itself): channels_last modules
        under torch.compile failed there (torch 2.11, H200: a stride mismatch in the compiled
        convolution_backward of the DCGAN step)."""
        if self.compile and self.device.type == "cuda":
            return False
        return convolutional and self.device.type in ("cpu", "cuda")

    def fast_paths(self, convolutional: bool) -> list[str]:
        """What this runtime turns on, for the start-of-training line and ``ganctl env``."""
        paths = [self.precision]
        if self.channels_last(convolutional):
            paths.append("channels_last")
        paths.append("fused Adam (foreach RMSprop)" if self.device.type in ("cuda", "cpu") else "foreach optimizers")
        if self.device.type == "cuda" and convolutional:
            paths.append("cudnn.benchmark")
        if self.compile:
            paths.append("torch.compile")
        return paths + _accel.fast_paths(self, convolutional)

    def describe(self, convolutional: bool = True) -> str:
        return f"{device_name(self.device)}, {', '.join(self.fast_paths(convolutional))}"


def resolve_device(requested: str = "auto") -> torch.device:
    if requested not in DEVICES:
        raise GanctlError(f"unknown device {requested!r}: use one of {', '.join(DEVICES)}")
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise GanctlError("--device cuda was asked for, but PyTorch sees no CUDA GPU: use --device cpu or auto")
    if requested == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise GanctlError("--device mps was asked for, but this machine has no Apple GPU: use --device cpu or auto")
    return torch.device(requested)


def cpu_has_fast_bf16() -> bool:
    """True where the CPU does bf16 matrix work natively (AMX or AVX-512 BF16).

    Without them PyTorch emulates bf16: on an AVX2-only CPU we measured a DCGAN discriminator
    step 13x *slower* in bf16 than in fp32, so the flag check is not optional.
    """
    for probe in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        fn = getattr(torch.cpu, probe, None)
        try:
            if fn is not None and fn():
                return True
        except RuntimeError:
            pass
    return False


def resolve_precision(requested: str, device: torch.device) -> str:
    if requested not in PRECISIONS:
        raise GanctlError(f"unknown precision {requested!r}: use one of {', '.join(PRECISIONS)}")
    if requested == "fp16" and device.type == "cpu":
        raise GanctlError("--precision fp16 is for GPUs; on the CPU use bf16 (or auto, which picks it where it is fast)")
    if requested == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise GanctlError("this GPU has no bf16: use --precision fp16 or fp32")
    if requested != "auto":
        return requested
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() and torch.cuda.get_device_capability(device)[0] >= 8 else "fp32"
    if device.type == "cpu":
        return "bf16" if cpu_has_fast_bf16() else "fp32"
    return "fp32"


def resolve(device: str = "auto", precision: str = "auto", compile: bool = False, accel: bool = True) -> Runtime:
    """The runtime for these options; with ``accel`` (the default) on the CPU, also glibc's malloc
    setting of :mod:`ganctl.runtime.accel` (process-wide, so here rather than per network)."""
    dev = resolve_device(device)
    if dev.type == "cuda":
        # the same shapes every step: let cuDNN pick the fastest convolution algorithms once
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    rt = Runtime(dev, resolve_precision(precision, dev), compile, accel)
    _accel.tune_memory(rt)
    return rt


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads, {torch.backends.cpu.get_cpu_capability()})"
    return device.type
