"""Each convolution product of the pix2pix and DCGAN layers, by oneDNN and as a matrix product.

For every layer shape that (a) and (b) of benchmarks/speed.py train, this times the output, the
input gradient and the weight gradient two ways: the way oneDNN computes them (``nn.Conv2d``), and
as the matrix products of ``ganctl.models.layers``. The rule in ``layers.route_for`` comes from
these numbers; the last column says which way it sends each product.

    python benchmarks/gemm_convs.py                   # bf16 autocast, as training runs on this CPU
    python benchmarks/gemm_convs.py --precision fp32  # the route is bf16-only; this shows why
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ganctl import runtime  # noqa: E402
from ganctl.models import layers  # noqa: E402
from ganctl.models.layers import Route  # noqa: E402

# (batch, transposed, in, out, input size): k4 s2 p1 layers
SHAPES = [
    # pix2pix U-Net 256, batch 1: decoder then encoder, innermost first
    *[(1, True, cin, cout, size) for cin, cout, size in ((512, 512, 1), (1024, 512, 2), (1024, 512, 4), (1024, 512, 8), (1024, 256, 16))],
    *[(1, False, 512, 512, size) for size in (2, 4, 8, 16)],
    (1, False, 256, 512, 32),
    # DCGAN 64x64 at batch 128: generator, then discriminator
    *[(128, True, cin, cout, size) for cin, cout, size in ((1024, 512, 4), (512, 256, 8), (128, 1, 32))],
    *[(128, False, cin, cout, size) for cin, cout, size in ((128, 256, 16), (256, 512, 8))],
    # WGAN-GP critic at batch 64
    (64, True, 1024, 512, 4),
    (64, False, 256, 512, 8),
]
NATIVE = Route(False, False, False)


def median_ms(fn, runs: int) -> float:
    for _ in range(2):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--precision", choices=("bf16", "fp32"), default="bf16")
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    runtime.keep_freed_memory()  # as training runs: freed buffers are reused, not faulted in again
    torch.manual_seed(0)
    bf16 = args.precision == "bf16"
    print(f"{runtime.device_name(torch.device('cpu'))}, {args.precision}, median of {args.runs}; ms: oneDNN / matrix product")
    print(f"{'layer':34s} {'output':>15s} {'input grad':>15s} {'weight grad':>15s}  route_for")
    for batch, transposed, cin, cout, size in SHAPES:
        cls = layers.ConvTranspose2d if transposed else layers.Conv2d
        m = cls(cin, cout, 4, 2, 1, bias=False).to(memory_format=torch.channels_last)
        x = torch.randn(batch, cin, size, size).contiguous(memory_format=torch.channels_last)

        def timed(route: Route, wants: str | None, m=m, x=x) -> float:
            layers.force_route(route)
            x.requires_grad_(wants == "x")
            m.weight.requires_grad_(wants == "w")

            def step() -> None:
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    y = m(x)
                if wants:
                    y.backward(torch.ones_like(y))

            return median_ms(step, args.runs)

        try:
            fwd = (timed(NATIVE, None), timed(Route(True, False, False), None))
            dx = (timed(NATIVE, "x") - fwd[0], timed(Route(False, True, False), "x") - fwd[0])
            dw = (timed(NATIVE, "w") - fwd[0], timed(Route(False, False, True), "w") - fwd[0])
        finally:
            layers.force_route(None)
        positions = size * size if transposed else (size // 2) ** 2
        rule = layers.route_for(positions, batch, transposed, cout) or NATIVE
        picks = "".join(name if on else "-" for name, on in zip("OIW", (rule.output, rule.input_grad, rule.weight_grad), strict=True))
        name = f"{'convT' if transposed else 'conv'} {cin}->{cout} {size}x{size} batch {batch}"
        cells = " ".join(f"{a:7.1f}/{b:<7.1f}" for a, b in (fwd, dx, dw))
        print(f"{name:34s} {cells}  {picks if bf16 else '--- (bf16 only)'}")


if __name__ == "__main__":
    main()
