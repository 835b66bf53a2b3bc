"""Speed of ganctl against plain PyTorch written the way the seed repositories write it.

Four measurements, each ganctl (the real CLI, in a subprocess, with a fresh store and its
defaults) against a baseline in the seeds' style: fp32, NCHW, a torchvision dataset or a Dataset
with per-sample PIL transforms, a torch DataLoader, default Adam (no foreach/fused flags), the same
networks (built from ganctl.models, so the architecture cannot differ: plain nn layers, which
ganctl's CPU fast paths in ganctl.runtime.accel are not applied to here) and the same batch size.

  (a) pix2pix training images/s at 256x256, batch 1, from JPEG A|B pairs on disk;
  (b) DCGAN training images/s at 64x64, batch 128, on MNIST-format IDX files;
  (c) ``ganctl translate`` of one 256x256 image, process start to file written (median of 3);
  (d) ``ganctl --help`` wall time (median of 5) against ``python -c "import torch"``;
  (e), (f) pix2pix 1 and 3 epochs, (g) DCGAN 1 epoch: whole processes, start to exit, ganctl with
      its defaults (checkpoints, validation, grids) against the baseline's train script; ganctl's
      time split by phase from the run's own timing log.

Training throughput is steady state: ganctl's first epoch and the baseline's first iterations are
warm-up and not counted. ganctl's epoch seconds (printed on stderr) cover the batch loop only,
not the validation or sample grid after it; the baseline is timed the same way.

    python benchmarks/speed.py                      # everything, on the GPU if there is one
    python benchmarks/speed.py --quick --only a,d   # a smoke run of the script itself
    python benchmarks/speed.py --device cpu --write # update docs/benchmarks.md
    python benchmarks/speed.py --only a --extra "--precision fp32"   # ganctl with other options
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from report import machine  # noqa: E402
from speedbench.ceiling import ceiling  # noqa: E402
from speedbench.common import Sizes, default_sizes  # noqa: E402
from speedbench.dcgan import bench_dcgan  # noqa: E402
from speedbench.endtoend import bench_dcgan_e2e, bench_pix2pix_e2e  # noqa: E402
from speedbench.pix2pix import bench_pix2pix  # noqa: E402
from speedbench.startup import bench_help, bench_translate  # noqa: E402
from speedbench.tables import ROWS, num, section, write_section  # noqa: E402


def make_dir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


def averaged(rounds: list[dict]) -> dict:
    """One result from rounds of the same measurement: the mean rates, each round's speed-up listed."""
    if len(rounds) == 1:
        return rounds[0]
    out = dict(rounds[-1])
    out["ganctl"] = statistics.mean(r["ganctl"] for r in rounds)
    out["baseline"] = statistics.mean(r["baseline"] for r in rounds)
    out["ganctl_wall"] = statistics.mean(r["ganctl_wall"] for r in rounds)
    ratios = ", ".join(f"{r['ganctl'] / r['baseline']:.2f}x" for r in rounds)
    out["how"] = f"{out['how']}; the mean of {len(rounds)} rounds of both, whose speed-ups were {ratios}"
    return out


def resolve_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: PyTorch sees no CUDA GPU")
    return torch.device(requested)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="for both sides (default: cuda if there is one)")
    ap.add_argument("--only", default="a,b,c,d,e,f,g", help="comma-separated subset of a,b,c,d,e,f,g")
    ap.add_argument("--quick", action="store_true", help="tiny counts: checks the script runs, measures nothing")
    ap.add_argument("--write", action="store_true", help="replace this benchmark's section of docs/benchmarks.md")
    for name, what in (("pairs", "(a) training pairs"), ("images", "(b) training images"),
                       ("epochs", "ganctl epochs in (a), (b); the first is not timed"),
                       ("warmup", "baseline iterations not timed in (a), (b)"),
                       ("iters", "baseline iterations timed in (a), (b)"),
                       ("e2e_pairs", "(e), (f) pix2pix pairs"), ("e2e_images", "(g) DCGAN images")):
        ap.add_argument(f"--{name.replace('_', '-')}", type=int, default=None, help=f"{what} (default: by device)")
    ap.add_argument("--extra", default="", help="more 'ganctl train' options for (a), (b), e.g. '--precision fp32'")
    ap.add_argument("--rounds", type=int, default=2,
                    help="(a), (b): rounds of ganctl then the baseline, averaged (default 2: a VM's speed drifts)")
    args = ap.parse_args()
    only = [k.strip() for k in args.only.split(",") if k.strip()]
    if not only or set(only) - set(ROWS):
        ap.error(f"--only takes a comma-separated subset of {','.join(ROWS)}")
    if args.quick and args.write:
        ap.error("--quick numbers measure nothing: run without --quick to --write")
    device = resolve_device(args.device)
    sz = default_sizes(device.type, args.quick)
    given = {k: v for k, v in vars(args).items() if k in asdict(sz) and k != "extra" and v is not None}
    sz = Sizes(**{**asdict(sz), **given, "extra": tuple(args.extra.split())})
    if sz.epochs < 2:
        ap.error("--epochs must be at least 2: the first is warm-up")
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    if min(sz.pairs, sz.images // 128, sz.iters) < 1:
        ap.error("--pairs, --iters must be at least 1 and --images at least 128")

    print(f"{machine()}; device {device.type}; {sz}", file=sys.stderr)
    benches = {
        "a": lambda work: bench_pix2pix(work, device, sz),
        "b": lambda work: bench_dcgan(work, device, sz),
        "c": lambda work: bench_translate(work, device, sz),
        "d": lambda work: bench_help(sz),
        "e": lambda work: bench_pix2pix_e2e(work, device, sz, epochs=1),
        "f": lambda work: bench_pix2pix_e2e(work, device, sz, epochs=3),
        "g": lambda work: bench_dcgan_e2e(work, device, sz),
    }
    results = {}
    with tempfile.TemporaryDirectory(prefix="ganctl-speed-") as tmp:
        for key in sorted(set(only)):
            print(f"{ROWS[key][0]} ...", file=sys.stderr, flush=True)
            work = Path(tmp) / key
            work.mkdir()
            t0 = time.perf_counter()
            if key in ("a", "b"):
                results[key] = averaged([benches[key](make_dir(work / f"round{i + 1}")) for i in range(args.rounds)])
            else:
                results[key] = benches[key](work)
            r = results[key]
            print(f"  ganctl {num(r['ganctl'])}, baseline {num(r['baseline'])} {ROWS[key][1]} "
                  f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    roof = ceiling(results, device) if {"a", "b"} & set(results) else None
    command = shlex.join(["python", "benchmarks/speed.py", *sys.argv[1:]])
    text = section(results, device, command, roof)
    print(text)
    if args.write:
        print(f"wrote {write_section(text, device)}", file=sys.stderr)


if __name__ == "__main__":
    main()
