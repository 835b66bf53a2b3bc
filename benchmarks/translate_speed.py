"""ganctl translate at the speed of the hardware (issue 33), whole processes, side by side.

    python benchmarks/translate_speed.py tile   [--side 12000]            # --tile: time, peak memory
    python benchmarks/translate_speed.py folder --official /tmp/official [-n 500] [--reps 1] [--sizes 256x256,1024x768]
    python benchmarks/translate_speed.py video  [--seconds 30] [--ngf 16] [--sizes own,256]
    python benchmarks/translate_speed.py flicker --checkpoint G.safetensors  # paper mode on video
    python benchmarks/translate_speed.py png                               # PNG zlib levels, one output
    python benchmarks/translate_speed.py net --official /tmp/official [--reps 3]  # the generator alone
    python benchmarks/translate_speed.py prepare                           # an image to the generator's input

The model is a U-Net-256 with ngf 64 (the official pix2pix size; ``--ngf`` for another) and random
pix2pix-initialised weights: speed and memory do not depend on what the weights learnt. ``folder`` needs the official
code (https://github.com/junyanz/pytorch-CycleGAN-and-pix2pix; with the mirror here, whose
``imgs/`` blobs are missing, so leave that folder out:
``G=/work/.mirror/premsuggu+pytorch-CycleGAN-and-pix2pix/repo; mkdir /tmp/official && git --git-dir=$G
archive HEAD $(git --git-dir=$G ls-tree --name-only HEAD | grep -vx imgs) | tar -x -C /tmp/official``)
and its ``dominate`` package (``pip install dominate``);
the official generator file is written by ``ganctl export``'s code (docs/pretrained.md).
Every number is printed with the host's CPU model.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def host() -> str:
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name"):
                return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} CPUs"
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def commit() -> str:
    """The ganctl commit measured: $GANCTL_COMMIT (for a copy made with git archive), else ROOT's git HEAD."""
    if os.environ.get("GANCTL_COMMIT"):
        return os.environ["GANCTL_COMMIT"]
    try:
        return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def model(folder: Path, ngf: int = 64) -> Path:
    """A U-Net-256 generator file in ganctl's format (ngf 64: the official pix2pix size)."""
    import torch

    from ganctl.models.pix2pix import UNetGenerator, init_pix2pix_weights
    from ganctl.store import checkpoint, genspec

    torch.manual_seed(0)
    g = dict(in_channels=3, out_channels=3, ngf=ngf, num_downs=8, norm="batch", dropout=True)
    net = UNetGenerator(**g)
    init_pix2pix_weights(net)
    path = folder / "generator.safetensors"
    checkpoint.save_generator(path, net, genspec.make(family="pix2pix", arch="pix2pix", generator=g, z_dim=0,
                                                       image_size=256, channels=3, direction="AtoB"))
    return path


def load() -> str:
    """The 1-, 5- and 15-minute load averages (as ``uptime``): other work on the host while a number was taken."""
    return "load " + "/".join(f"{x:.1f}" for x in os.getloadavg())


def run(cmd: list[str], **kw) -> tuple[float, float]:
    """Wall seconds and the peak resident memory (GB) of one whole process (this child's own
    ``ru_maxrss`` from ``wait4``: RUSAGE_CHILDREN would give the largest child so far)."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, **kw)
    _, status, usage = os.wait4(proc.pid, 0)
    secs = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, cmd)
    return secs, usage.ru_maxrss / 1e6  # ru_maxrss is in KB on Linux


def ganctl(*args: str) -> list[str]:
    return [sys.executable, "-m", "ganctl", "translate", *args]


def tile(args, tmp: Path) -> None:
    import numpy as np
    from PIL import Image

    side = args.side
    src = tmp / "big.jpg"
    rng = np.random.default_rng(0)
    small = rng.integers(0, 255, (side // 100, side // 100, 3), dtype=np.uint8)
    Image.fromarray(small).resize((side, side), Image.Resampling.BILINEAR).save(src, quality=90)
    gen = model(tmp, args.ngf)
    before = load()
    secs, peak = run(ganctl(str(src), "--tile", "-c", str(gen), "-o", str(tmp / "out.png"), "--mode", args.mode))
    print(f"tile {side}x{side} ({args.mode}, ngf {args.ngf}): {secs:.0f} s, peak resident {peak:.2f} GB "
          f"({before} before, {load()} after) [{host()}, ganctl {commit()}]", flush=True)


def sizes(text: str) -> list[tuple[int, int]]:
    return [(int(w), int(h)) for w, h in (part.split("x") for part in text.split(","))]


def folder(args, tmp: Path) -> None:
    from PIL import Image

    if not args.official or not (Path(args.official) / "test.py").is_file():
        sys.exit("--official: the official checkout's folder (see this file's docstring for how to get it)")
    # older checkouts pick the device with --gpu_ids (-1: the CPU); newer ones take CUDA when there is one
    cpu = ["--gpu_ids", "-1"] if "gpu_ids" in (Path(args.official) / "options" / "base_options.py").read_text() else []
    gen = model(tmp, args.ngf)
    from ganctl.export import official as official_layout

    ckpt = tmp / "official" / "bench"
    official_layout.export(gen, ckpt / "latest_net_G.pth")
    for w, h in sizes(args.sizes or "256x256,1024x768"):
        data = tmp / f"data{w}x{h}"
        data.mkdir(parents=True)
        for i in range(args.n):
            img = Image.new("RGB", (w, h), (i % 255, 90, 160))
            img.paste((255 - i % 255, 20, 40), (w // 4, h // 4, w // 2, h // 2))
            img.save(data / f"{i:04d}.jpg", quality=92)
        # the official test: batch of 1, fp32, dropout on and batch norm on the test image (as --mode paper)
        official = [sys.executable, "test.py", "--dataroot", str(data), "--name", "bench", "--model", "test",
                    "--netG", "unet_256", "--ngf", str(args.ngf), "--direction", "AtoB", "--dataset_mode", "single",
                    "--norm", "batch", "--checkpoints_dir", str(ckpt.parent), "--results_dir", str(tmp / f"res{w}x{h}"),
                    "--num_test", str(args.n)] + cpu
        ours = ganctl(str(data), "-c", str(gen), "-o", str(tmp / f"ours{w}x{h}"), "--size", "256")
        # --keep-size: 256x256 outputs, as test.py writes them (ganctl's default resizes each back to WxH)
        kept = ganctl(str(data), "-c", str(gen), "-o", str(tmp / f"kept{w}x{h}"), "--size", "256", "--keep-size")
        # side by side, alternating which goes first: a change in the host's load falls on both
        sides = [("official", official), ("ganctl", ours)] + ([("ganctl --keep-size", kept)] if (w, h) != (256, 256) else [])
        times: dict[str, list[float]] = {name: [] for name, _ in sides}
        loads = [load()]
        for rep in range(args.reps):
            order = sides
            for name, cmd in order if rep % 2 == 0 else order[::-1]:
                secs, _ = run(cmd, cwd=args.official if name == "official" else None)
                times[name].append(secs)
                loads.append(load())
                print(f"  {w}x{h} run {rep + 1}, {name}: {secs:.1f} s ({loads[-1]} after)", flush=True)
        t_off, t_us = (statistics.median(times[k]) for k in ("official", "ganctl"))
        each = "; ".join(f"{k} " + ", ".join(f"{t:.1f}" for t in v) + " s" for k, v in times.items())
        print(f"folder {args.n} images {w}x{h} (ngf {args.ngf}): official test.py {args.n / t_off:.2f} img/s, ganctl "
              f"translate --size 256 {args.n / t_us:.2f} img/s ({t_off / t_us:.2f}x; {each}; {', '.join(loads)}) "
              f"[{host()}, ganctl {commit()}]", flush=True)
        if times.get("ganctl --keep-size"):
            t_kept = statistics.median(times["ganctl --keep-size"])
            print(f"folder {args.n} images {w}x{h}: ganctl translate --size 256 --keep-size (256x256 outputs, as "
                  f"test.py's) {args.n / t_kept:.2f} img/s ({t_off / t_kept:.2f}x the official)", flush=True)
        shutil.rmtree(data)


def video(args, tmp: Path) -> None:
    import av
    import numpy as np

    src = tmp / "clip.mp4"
    n = int(args.seconds * 30)
    with av.open(str(src), "w") as out:
        s = out.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = 1280, 720, "yuv420p"
        for i in range(n):
            arr = np.full((720, 1280, 3), (40, 120, 200), np.uint8)
            arr[:, (8 * i) % 1200 : (8 * i) % 1200 + 80] = 230
            out.mux(s.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")))
        out.mux(s.encode(None))
    gen = model(tmp, args.ngf)
    for what in (args.sizes or "own,256").split(","):
        size = [] if what == "own" else ["--size", what]
        before = load()
        secs, peak = run(ganctl(str(src), "-c", str(gen), "-o", str(tmp / "out.mp4"), *size))
        at = f"at {what}x{what}" if size else "at 1280x768 (its own size, rounded)"
        print(f"video {args.seconds:g} s 720p ({n} frames) {at}, ngf {args.ngf}: {n / secs:.2f} frames/s, {secs:.0f} s, "
              f"peak {peak:.2f} GB ({before} before, {load()} after) [{host()}, ganctl {commit()}]", flush=True)


def net(args, tmp: Path) -> None:
    """The generator alone, in one process, per 256x256 image: the official UnetGenerator as its
    test.py runs it (train mode: dropout and batch statistics, a batch of 1, fp32) against ganctl's
    paper mode (batches of 8, fp32 and bf16, NCHW and channels_last), alternating, best of --reps."""
    import copy
    import functools

    import torch

    from ganctl.models.pix2pix import UNetGenerator, init_pix2pix_weights
    from ganctl.use import translate_net

    if not args.official:
        sys.exit("--official: the official checkout's folder")
    sys.path.insert(0, str(Path(args.official).resolve()))
    from models.networks import UnetGenerator  # the official class

    torch.manual_seed(0)
    norm = functools.partial(torch.nn.BatchNorm2d, affine=True, track_running_stats=True)
    official = UnetGenerator(3, 3, 8, args.ngf, norm_layer=norm, use_dropout=True).train()
    ours = UNetGenerator(in_channels=3, out_channels=3, ngf=args.ngf, num_downs=8, norm="batch", dropout=True)
    init_pix2pix_weights(ours)
    ours_cl = copy.deepcopy(ours).to(memory_format=torch.channels_last)
    x1, x8 = torch.randn(1, 3, 256, 256), torch.randn(8, 3, 256, 256)
    x8_cl = x8.to(memory_format=torch.channels_last)

    def ganctl_run(model, x, bf16):
        def go():
            with translate_net.batched(model, "paper") as run, torch.autocast("cpu", torch.bfloat16, enabled=bf16):
                run(x, [0] * len(x))
        return go

    cases = {"official b1 fp32": (lambda: official(x1), 1), "ganctl b8 fp32": (ganctl_run(ours, x8, False), 8),
             "ganctl b8 bf16": (ganctl_run(ours, x8, True), 8), "ganctl b8 bf16 channels_last": (ganctl_run(ours_cl, x8_cl, True), 8)}
    times: dict[str, list[float]] = {k: [] for k in cases}
    with torch.no_grad():
        for f, _ in cases.values():
            f()  # warm-up
        for _ in range(args.reps):
            for name, (f, n) in cases.items():
                t = time.perf_counter()
                for _ in range(max(1, 8 // n)):  # the same 8 images each
                    f()
                times[name].append((time.perf_counter() - t) / 8)
    base = min(times["official b1 fp32"])
    for name, ts in times.items():
        print(f"net ngf {args.ngf}, {name}: {min(ts):.3f} s an image (best of {args.reps}; {base / min(ts):.2f}x the "
              f"official) ({load()}) [{host()}, ganctl {commit()}]", flush=True)


def png(args, tmp: Path) -> None:
    """Writing one translated 1024x768 image (the generator's output, resized back) as PNG at zlib
    levels 6 (Pillow's default), 3, 1 (what translate uses) and 0: seconds (best of 3) and size."""
    import io

    import torch
    from PIL import Image

    from ganctl.use import inference
    from ganctl.use.translator import Translator

    gen = inference.load_generator(model(tmp, args.ngf), torch.device("cpu"))
    img = Image.new("RGB", (1024, 768), (7, 90, 160))
    img.paste((248, 20, 40), (256, 192, 512, 384))
    out = Translator(gen, "paper", 0, 256, None, "auto").images([img])[0]
    for level in (6, 3, 1, 0):
        times = []
        for _ in range(3):
            buf = io.BytesIO()
            t = time.perf_counter()
            out.save(buf, "PNG", compress_level=level)
            times.append(time.perf_counter() - t)
        print(f"png 1024x768, level {level}: {min(times) * 1000:.0f} ms, {len(buf.getvalue()) / 1e3:.0f} kB ({load()}) [{host()}, ganctl {commit()}]", flush=True)


def prepare(args, tmp: Path) -> None:
    """One 256x256 image to the generator's input: ganctl's numpy conversion (inference.prepare_image)
    against the torch formula it replaced (the permuted uint8 to float, / 127.5 - 1): the mean (what a
    folder pays; torch's two threads wait for each other when the host is loaded) and the best of 20, in ms."""
    import numpy as np
    import torch
    from PIL import Image

    from ganctl.use import inference

    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (256, 256, 3), dtype=np.uint8))

    def torch_formula():
        t = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8).view(256, 256, 3)
        return t.permute(2, 0, 1).unsqueeze(0).float().div(127.5).sub(1.0)

    def numpy_now():
        return inference.prepare_image(img, 3, 256)

    assert torch.equal(torch_formula(), numpy_now())
    for name, f in (("torch (before)", torch_formula), ("numpy (now)", numpy_now)) * 2:
        times = []
        for _ in range(20):
            t = time.perf_counter()
            f()
            times.append(time.perf_counter() - t)
        print(f"prepare 256x256, {name}: mean {statistics.mean(times) * 1000:.2f} ms, best {min(times) * 1000:.2f} ms of 20 "
              f"({load()}) [{host()}, ganctl {commit()}]", flush=True)


def flicker(args, tmp: Path) -> None:
    """Mean change between consecutive output frames (of 255) in paper mode: one dropout draw for
    every frame (what translate does) against a draw per frame, on a moving bar and a still video."""
    import numpy as np
    import torch

    sys.path.insert(0, str(ROOT))
    from ganctl.use import inference
    from ganctl.use.translator import Translator
    from tests.videos import frame

    if not args.checkpoint:
        sys.exit("--checkpoint: a pix2pix generator.safetensors (a trained one: a random net's output barely moves)")
    gen = inference.load_generator(Path(args.checkpoint), torch.device("cpu"))

    def change(seq) -> float:
        return float(np.mean([np.abs(np.asarray(a, float) - np.asarray(b, float)).mean() for a, b in zip(seq[:-1], seq[1:], strict=True)]))

    for name, frames in (("moving bar", [frame(i, 128, 128) for i in range(16)]), ("still", [frame(0, 128, 128)] * 8)):
        same = Translator(gen, "paper", 0, None, None, "fp32").images(frames)
        fresh = [Translator(gen, "paper", i, None, None, "fp32").images([f])[0] for i, f in enumerate(frames)]
        print(f"flicker, {name}: input {change(frames):.2f}, one draw {change(same):.2f}, a draw per frame "
              f"{change(fresh):.2f} (mean |frame t+1 - frame t| of 255) [{host()}, ganctl {commit()}]", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["tile", "folder", "video", "flicker", "png", "net", "prepare"])
    p.add_argument("--checkpoint")
    p.add_argument("--side", type=int, default=12000)
    p.add_argument("--mode", default="paper")
    p.add_argument("--official")
    p.add_argument("-n", type=int, default=500)
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--ngf", type=int, default=64, help="the generator's width (64: the official pix2pix size)")
    p.add_argument("--reps", type=int, default=1, help="folder: runs of each side, alternating which goes first")
    p.add_argument("--sizes", help="folder: WxH,... (default 256x256,1024x768); video: own,256 (the default) or a subset")
    args = p.parse_args()
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        {"tile": tile, "folder": folder, "video": video, "flicker": flicker, "png": png, "net": net, "prepare": prepare}[args.what](args, Path(tmp))


if __name__ == "__main__":
    main()
