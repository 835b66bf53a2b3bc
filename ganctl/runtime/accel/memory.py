"""glibc's malloc told to keep freed memory for reuse (Linux with glibc only)."""

from __future__ import annotations

import ctypes
import platform
import sys

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_tuned = False


def tuned() -> bool:
    """Whether :func:`keep_freed_memory` has changed this process's malloc (it cannot be undone)."""
    return _tuned


def keep_freed_memory() -> bool:
    """Stop glibc handing large freed blocks back to the kernel; True where that is now so.

    By default glibc serves large blocks (from 128 KB; the threshold adapts up to 32 MB) with
    their own mmap and unmaps them on free. A training step frees and allocates the same
    weight-sized buffers every time (a bf16 copy of each weight, its gradient, the fp32 cast of
    that gradient), so each step page-faults and zeroes them afresh. Raising the mmap and trim
    thresholds keeps freed memory in the heap for reuse; the cost is that the process keeps its
    peak memory until it exits, as a training run does anyway. On the pix2pix U-Net at batch 1
    (54M parameters) steps ran about 10% faster with it on the 2-core test machine
    (``benchmarks/profile_step.py pix2pix`` against ``--allocator default``). Intel's CPU guide
    for PyTorch gets the same by preloading jemalloc or tcmalloc; this needs neither. A no-op on
    anything but Linux with glibc.
    """
    global _tuned
    if _tuned:
        return True
    if sys.platform != "linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # glibc refuses a threshold above half its arena heap size on some versions: fall back
    big = mallopt(_M_MMAP_THRESHOLD, 1 << 30) == 1 or mallopt(_M_MMAP_THRESHOLD, 32 << 20) == 1
    _tuned = big and mallopt(_M_TRIM_THRESHOLD, 1 << 30) == 1
    return _tuned
