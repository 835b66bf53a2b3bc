"""Each convolution product of the pix2pix and DCGAN layers, by oneDNN and as a matrix product.

For every layer shape that (a) and (b) of benchmarks/speed.py train, this times the output, the
input gradient and the weight gradient two ways: the way oneDNN computes them (``nn.Conv2d``), and
as the matrix products of ``ganctl.runtime.accel.convs``. The rule in ``convs.route_for`` comes from
these numbers; the last column says which way it sends each product.

    python benchmarks/gemm_convs.py                   # bf16 autocast, as training runs on this CPU
    python benchmarks/gemm_convs.py --precision fp32  # the route is bf16-only; this shows why
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ganctl import models  # noqa: E402
from ganctl.config import make_config  # noqa: E402
from ganctl.runtime import runtime  # noqa: E402
from ganctl.runtime.accel import convs, memory  # noqa: E402
from ganctl.runtime.accel.convs import Route  # noqa: E402

# the trainings whose layers are timed: (family, dataset preset, channels, batch)
SETUPS = [("pix2pix", "facades", 3, 1), ("dcgan", "mnist", 1, 128), ("wgan-gp", "mnist", 1, 64)]


@dataclass(frozen=True)
class Layer:
    batch: int
    transposed: bool
    cin: int
    cout: int
    k: int
    stride: int
    padding: int
    size: int  # input height = width

    def __str__(self) -> str:
        kind = "convT" if self.transposed else "conv"
        geometry = "" if (self.k, self.stride, self.padding) == (4, 2, 1) else f" k{self.k}s{self.stride}p{self.padding}"
        return f"{kind} {self.cin}->{self.cout} {self.size}x{self.size}{geometry} batch {self.batch}"


def network_layers() -> list[Layer]:
    """Every distinct convolution the trainings of SETUPS run, read off a forward pass of their
    generator and discriminator at the training batch size (hooks on their convolutions)."""
    found: dict[Layer, None] = {}

    def hook(m, args, _out):
        x = args[0]
        found[Layer(x.shape[0], isinstance(m, torch.nn.ConvTranspose2d), m.in_channels, m.out_channels,
                    m.kernel_size[0], m.stride[0], m.padding[0], x.shape[2])] = None

    for family, preset, channels, batch in SETUPS:
        cfg = make_config(family, preset, "bench", channels=channels, classes=None, preset_key=preset, batch_size=batch)
        G = models.build_generator(cfg.arch, cfg.generator)
        D = models.build_discriminator(cfg.arch, cfg.discriminator)
        handles = [m.register_forward_hook(hook) for net in (G, D) for m in net.modules()
                   if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d)]
        with torch.no_grad():
            if cfg.arch == "pix2pix":
                x = torch.zeros(batch, channels, cfg.image_size, cfg.image_size)
                D(x, G(x))
            else:
                D(G(torch.zeros(batch, cfg.z_dim), None), None)
        for h in handles:
            h.remove()
    return list(found)


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
    memory.keep_freed_memory()  # as training runs: freed buffers are reused, not faulted in again
    torch.manual_seed(0)
    bf16 = args.precision == "bf16"
    print(f"{runtime.device_name(torch.device('cpu'))}, {args.precision}, median of {args.runs}; ms: oneDNN / matrix product")
    print(f"{'layer':40s} {'output':>15s} {'input grad':>15s} {'weight grad':>15s}  route_for")
    for layer in network_layers():
        cls = convs.GemmConvTranspose2d if layer.transposed else convs.GemmConv2d
        m = cls(layer.cin, layer.cout, layer.k, layer.stride, layer.padding, bias=False).to(memory_format=torch.channels_last)
        x = torch.randn(layer.batch, layer.cin, layer.size, layer.size).contiguous(memory_format=torch.channels_last)

        def timed(route: Route, wants: str | None, m=m, x=x) -> float:
            convs.force_route(route)
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
            convs.force_route(None)
        out_size = convs._conv_size(layer.size, layer.k, layer.stride, layer.padding)
        positions = layer.size**2 if layer.transposed else out_size**2
        rule = convs.route_for(positions, layer.batch, layer.transposed, layer.cin, layer.cout) or NATIVE
        picks = "".join(name if on else "-" for name, on in zip("OIW", (rule.output, rule.input_grad, rule.weight_grad), strict=True))
        name = str(layer)
        cells = " ".join(f"{a:7.1f}/{b:<7.1f}" for a, b in (fwd, dx, dw))
        print(f"{name:40s} {cells}  {picks if bf16 else '--- (bf16 only)'}")


if __name__ == "__main__":
    main()
