"""Speed of ganctl against plain PyTorch written the way the seed repositories write it.

Four measurements, each ganctl (the real CLI, in a subprocess, with a fresh store and its
defaults) against a baseline in the seeds' style: fp32, NCHW, a torchvision dataset or a Dataset
with per-sample PIL transforms, a torch DataLoader, default Adam (no foreach/fused flags), the same
networks (built from ganctl.models, so the architecture cannot differ: plain nn layers, which
ganctl's CPU fast paths in ganctl.accel are not applied to here) and the same batch size.

  (a) pix2pix training images/s at 256x256, batch 1, from JPEG A|B pairs on disk;
  (b) DCGAN training images/s at 64x64, batch 128, on MNIST-format IDX files;
  (c) ``ganctl translate`` of one 256x256 image, process start to file written (median of 3);
  (d) ``ganctl --help`` wall time (median of 5) against ``python -c "import torch"``.

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
import gzip
import json
import os
import re
import shlex
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
BEGIN, END = "<!-- speed:begin -->", "<!-- speed:end -->"
HEADING = "## Speed: ganctl against plain PyTorch"
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from report import machine  # noqa: E402
from report import write_section as _write  # noqa: E402

from ganctl.models.dcgan import DCGANDiscriminator, DCGANGenerator, init_dcgan_weights  # noqa: E402
from ganctl.models.pix2pix import PatchGANDiscriminator, UNetGenerator, init_pix2pix_weights  # noqa: E402

# the console script next to this Python (what users run), else the module
_SCRIPT = Path(sys.executable).with_name("ganctl")
GANCTL = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "ganctl"]

UNET_256 = {"in_channels": 3, "out_channels": 3, "ngf": 64, "num_downs": 8, "norm": "batch"}
MNIST_EPOCH = 60_000


@dataclass(frozen=True)
class Sizes:
    """How much work each measurement does (the counts of the options of the same names)."""

    pairs: int  # (a) training pairs written (plus a few validation pairs)
    images: int  # (b) training images written
    epochs: int  # ganctl epochs in (a) and (b); the first is warm-up
    warmup: int  # baseline iterations not timed, in (a) and (b)
    iters: int  # baseline iterations timed, in (a) and (b)
    translate_runs: int  # (c)
    help_runs: int  # (d)
    extra: tuple[str, ...] = ()  # more `ganctl train` options in (a) and (b), e.g. ("--precision", "fp32")


def default_sizes(device: str, quick: bool) -> Sizes:
    if quick:  # checks that the script works, not a measurement
        return Sizes(pairs=4, images=256, epochs=2, warmup=1, iters=2, translate_runs=1, help_runs=2)
    if device == "cuda":  # a facades-sized set and a full MNIST epoch, so each timed epoch lasts seconds
        return Sizes(pairs=400, images=MNIST_EPOCH, epochs=3, warmup=10, iters=300, translate_runs=3, help_runs=5)
    # a 2-core CPU (~1.3 s per fp32 pix2pix iteration, several seconds per DCGAN batch of 128): 5-8
    # minutes in all. The baseline's warmup + iters fit in one pass over the data, so no DataLoader
    # restarts its workers inside the timed span.
    return Sizes(pairs=16, images=1536, epochs=3, warmup=2, iters=10, translate_runs=3, help_runs=5)


# ---------------------------------------------------------------- helpers


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def store_env(home: Path) -> dict[str, str]:
    return {**os.environ, "GANCTL_HOME": str(home), "GANCTL_DISABLE_PROGRESS_BARS": "1"}


def run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess, float]:
    """Run ``cmd``; exit with its stderr if it fails. Returns (process, wall seconds)."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc, wall


def median_wall(cmd: list[str], runs: int, env: dict[str, str] | None = None) -> float:
    run(cmd, env)  # once untimed, so every timed run finds the files in the page cache
    return statistics.median(run(cmd, env)[1] for _ in range(runs))


def ganctl_throughput(stderr: str, run_dir: Path, skip: int = 1) -> dict:
    """Steady-state images/s of a ``ganctl train`` run: epochs after the first ``skip``.

    Images per epoch come from metrics.jsonl (distinct steps, times the batch size); seconds from
    the epoch lines on stderr (``epoch E/N ... 12.3s 45 img/s``). Both printed numbers are rounded,
    so each epoch's time is taken from whichever of them is the more precise: '12.3s' for slow
    epochs, 'N img/s' for fast ones (a 0.2 s GPU epoch at 20,000 img/s).
    """
    batch = json.loads((run_dir / "config.json").read_text())["batch_size"]
    steps: dict[int, set[int]] = {}
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        steps.setdefault(row["epoch"], set()).add(row["step"])  # validation rows repeat a step
    images = seconds = 0.0
    timed = []
    for m in re.finditer(r"^epoch (\d+)/\d+\b.*?\s([0-9.]+)s ([0-9.]+) img/s\s*$", stderr, re.M):
        epoch, secs, ips = int(m.group(1)), float(m.group(2)), float(m.group(3))
        if epoch <= skip:
            continue
        n = len(steps[epoch]) * batch
        # relative rounding error: rates print as integers from 100 up, else to 3 significant digits
        ips_err = 0.5 / ips if ips >= 100 else 0.005
        if ips > 0 and ips_err < 0.05 / max(secs, 1e-9):
            secs = n / ips
        images, seconds = images + n, seconds + secs
        timed.append(epoch)
    if not timed:
        raise SystemExit(f"no epoch after the first in ganctl's output (train at least 2 epochs):\n{stderr[-2000:]}")
    setup = re.search(r"^training .*? - (.+) - \d+ epochs of", stderr, re.M)
    return {
        "img_s": images / seconds,
        "timed_epochs": timed,
        "timed_images": int(images),
        "runtime": setup.group(1) if setup else "?",
    }


def ganctl_train(home: Path, args: list[str], device: torch.device, sz: Sizes) -> dict:
    """``ganctl train ARGS`` as run "bench" in the store ``home``: its steady-state throughput
    (:func:`ganctl_throughput`) and the whole run's wall seconds (``wall``)."""
    cmd = [*GANCTL, "train", *args, "--epochs", str(sz.epochs), "--name", "bench", "--device", device.type, *sz.extra]
    proc, wall = run(cmd, store_env(home))
    return {**ganctl_throughput(proc.stderr, home / "runs" / args[0] / "bench"), "wall": wall}


def forever(loader: DataLoader):
    """Batches of ``loader``, epoch after epoch (a new iterator each epoch, as a training loop makes)."""
    while True:
        yield from loader


def timed_loop(loader: DataLoader, step, device: torch.device, warmup: int, iters: int, batch: int) -> float:
    """Images/s of ``step`` over ``iters`` batches after ``warmup`` untimed ones, data loading included."""
    batches = forever(loader)
    for _ in range(warmup):
        step(*next(batches))
    sync(device)
    t0 = time.perf_counter()
    for _ in range(iters):
        step(*next(batches))
    sync(device)
    return iters * batch / (time.perf_counter() - t0)


def set_requires_grad(net: nn.Module, flag: bool) -> None:
    for p in net.parameters():
        p.requires_grad = flag


# ---------------------------------------------------------------- (a) pix2pix


def write_pairs(folder: Path, n_train: int, n_val: int) -> Path:
    """Synthetic facades as 512x256 JPEG A|B pairs in the official aligned layout (split/N.jpg)."""
    from PIL import Image

    from ganctl.data import paired

    photos, labels = paired.synthetic_facades(n_train + n_val, size=256, seed=0)
    ab = torch.cat([photos, labels], dim=3).permute(0, 2, 3, 1).contiguous()  # (n, 256, 512, 3)
    for split, indices in (("train", range(n_train)), ("val", range(n_train, n_train + n_val))):
        (folder / split).mkdir(parents=True)
        for k, i in enumerate(indices):
            Image.frombytes("RGB", (512, 256), ab[i].numpy().tobytes()).save(folder / split / f"{k + 1}.jpg", quality=95)
    return folder


class AlignedPairs(Dataset):
    """The official AlignedDataset: open the A|B JPEG, split it, and per sample resize both halves
    to 286 (bicubic), take the same random 256 crop and flip, ToTensor, Normalize(0.5)."""

    def __init__(self, folder: Path, direction: str = "BtoA", load: int = 286, crop: int = 256):
        import torchvision.transforms as T

        self.files = sorted(folder.glob("*.jpg"), key=lambda p: int(p.stem))
        self.direction, self.load, self.crop = direction, load, crop
        self.resize = T.Resize([load, load], T.InterpolationMode.BICUBIC)
        self.to_tensor = T.Compose([T.ToTensor(), T.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        import random

        from PIL import Image

        ab = Image.open(self.files[i]).convert("RGB")
        w, h = ab.size
        a, b = ab.crop((0, 0, w // 2, h)), ab.crop((w // 2, 0, w, h))
        # official get_params: one crop position and one flip for both halves
        x, y = random.randint(0, self.load - self.crop), random.randint(0, self.load - self.crop)
        flip = random.random() > 0.5

        def transform(img):
            img = self.resize(img).crop((x, y, x + self.crop, y + self.crop))
            if flip:
                img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            return self.to_tensor(img)

        a, b = transform(a), transform(b)
        return (b, a) if self.direction == "BtoA" else (a, b)


def baseline_pix2pix(folder: Path, device: torch.device, warmup: int, iters: int) -> tuple[float, int]:
    """The official train.py loop: returns (images/s, DataLoader workers)."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as the official BaseModel sets it
    workers = min(4, os.cpu_count() or 1)  # the official --num_threads 4, capped at the cores
    loader = DataLoader(AlignedPairs(folder / "train"), batch_size=1, shuffle=True, num_workers=workers)
    torch.manual_seed(0)
    G = UNetGenerator(3, 3, ngf=64, num_downs=8, norm="batch", dropout=True)
    D = PatchGANDiscriminator(6, ndf=64, n_layers=3, norm="batch")
    init_pix2pix_weights(G)
    init_pix2pix_weights(D)
    G.to(device)
    D.to(device)
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce, l1 = nn.BCEWithLogitsLoss(), nn.L1Loss()

    def step(real_a: torch.Tensor, real_b: torch.Tensor) -> None:  # optimize_parameters
        real_a, real_b = real_a.to(device), real_b.to(device)
        fake_b = G(real_a)
        set_requires_grad(D, True)
        opt_d.zero_grad()
        pred_fake = D(real_a, fake_b.detach())
        pred_real = D(real_a, real_b)
        loss_d = 0.5 * (bce(pred_fake, torch.zeros_like(pred_fake)) + bce(pred_real, torch.ones_like(pred_real)))
        loss_d.backward()
        opt_d.step()
        set_requires_grad(D, False)
        opt_g.zero_grad()
        pred_fake = D(real_a, fake_b)
        loss_g = bce(pred_fake, torch.ones_like(pred_fake)) + 100.0 * l1(fake_b, real_b)
        loss_g.backward()
        opt_g.step()

    return timed_loop(loader, step, device, warmup, iters, batch=1), workers


def bench_pix2pix(work: Path, device: torch.device, sz: Sizes) -> dict:
    folder = write_pairs(work / "pairs", sz.pairs, n_val=4)
    ours = ganctl_train(work / "store-a", ["pix2pix", "--dataset", str(folder), "--direction", "BtoA"], device, sz)
    base, workers = baseline_pix2pix(folder, device, sz.warmup, sz.iters)
    return {
        "ganctl": ours["img_s"], "baseline": base, "ganctl_runtime": ours["runtime"], "ganctl_wall": ours["wall"],
        "how": (f"{sz.pairs} JPEG pairs; ganctl: epochs {_span(ours['timed_epochs'])} of {sz.epochs} "
                f"({ours['timed_images']} iterations); baseline: {sz.iters} iterations after {sz.warmup}, "
                f"DataLoader num_workers={workers}"),
    }


def _span(epochs: list[int]) -> str:
    return f"{epochs[0]}-{epochs[-1]}" if len(epochs) > 1 else str(epochs[0])


# ---------------------------------------------------------------- (b) DCGAN on MNIST-format data


def digit_images(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` 28x28 uint8 digits made from ganctl's 8x8 digits: upsampled to 20x20 and placed in a
    28x28 frame as MNIST centres them, shifted by up to 2 pixels so the copies differ."""
    import torch.nn.functional as F

    from ganctl.data.catalog import PACKAGE_DATA as data
    from ganctl.data.datasets import read_idx

    small = read_idx(data / "digits-images-idx3-ubyte.gz")
    labels = read_idx(data / "digits-labels-idx1-ubyte.gz")
    idx = torch.arange(n) % small.shape[0]
    big = F.interpolate(small[idx].unsqueeze(1).float(), size=(20, 20), mode="bilinear", align_corners=False)
    padded = F.pad(big.squeeze(1).round().clamp(0, 255).to(torch.uint8), (6, 6, 6, 6))  # 32x32, digit at 6..26
    shift = torch.randint(0, 25, (n,), generator=torch.Generator().manual_seed(seed))
    out = torch.empty(n, 28, 28, dtype=torch.uint8)
    for k in range(25):  # offset (dy, dx) in 0..4 each: the digit lands at 2..6 from the top/left
        sel = shift == k
        dy, dx = divmod(k, 5)
        out[sel] = padded[sel, dy : dy + 28, dx : dx + 28]
    return out, labels[idx].to(torch.uint8)


def idx_bytes(t: torch.Tensor) -> bytes:
    """An unsigned-byte IDX file: images (N, 28, 28) or labels (N,)."""
    header = struct.pack(">HBB", 0, 0x08, t.dim()) + struct.pack(f">{t.dim()}I", *t.shape)
    return header + t.contiguous().numpy().tobytes()


def write_mnist(home: Path, torchvision_root: Path, n_train: int, n_test: int = 256) -> None:
    """The same MNIST-format files twice: gzipped in the ganctl store (``datasets/mnist/``, what
    ``is_present`` looks for) and uncompressed where torchvision.datasets.MNIST reads them."""
    store, raw = home / "datasets" / "mnist", torchvision_root / "MNIST" / "raw"
    store.mkdir(parents=True)
    raw.mkdir(parents=True)
    images, labels = digit_images(n_train + n_test)
    for prefix, sl in (("train", slice(0, n_train)), ("t10k", slice(n_train, None))):
        for kind, t in (("images-idx3", images[sl]), ("labels-idx1", labels[sl])):
            body = idx_bytes(t)
            (raw / f"{prefix}-{kind}-ubyte").write_bytes(body)
            (store / f"{prefix}-{kind}-ubyte.gz").write_bytes(gzip.compress(body, compresslevel=1))


def baseline_dcgan(root: Path, device: torch.device, warmup: int, iters: int) -> tuple[float, int]:
    """pytorch/examples dcgan and the seeds: torchvision MNIST, Resize(64), per-sample transforms.
    Returns (images/s, DataLoader workers)."""
    import torchvision
    import torchvision.transforms as T

    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as pytorch/examples dcgan sets it
    tf = T.Compose([T.Resize(64), T.ToTensor(), T.Normalize((0.5,), (0.5,))])
    dataset = torchvision.datasets.MNIST(str(root), train=True, download=False, transform=tf)
    workers = min(2, os.cpu_count() or 1)  # pytorch/examples dcgan --workers 2
    loader = DataLoader(dataset, batch_size=128, shuffle=True, num_workers=workers, drop_last=True)
    torch.manual_seed(0)
    G = DCGANGenerator(z_dim=100, channels=1, image_size=64, features=64).to(device)
    D = DCGANDiscriminator(channels=1, image_size=64, features=64, norm="batch").to(device)
    init_dcgan_weights(G)
    init_dcgan_weights(D)
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.9, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.9, 0.999))
    criterion = nn.BCEWithLogitsLoss()

    def step(real: torch.Tensor, _labels: torch.Tensor) -> None:
        real = real.to(device)
        n = real.shape[0]
        fake = G(torch.randn(n, 100, 1, 1, device=device))
        d_real, d_fake = D(real), D(fake.detach())
        loss_d = (criterion(d_real, torch.ones_like(d_real)) + criterion(d_fake, torch.zeros_like(d_fake))) / 2
        D.zero_grad()
        loss_d.backward()
        opt_d.step()
        out = D(fake)
        loss_g = criterion(out, torch.ones_like(out))
        G.zero_grad()
        loss_g.backward()
        opt_g.step()

    return timed_loop(loader, step, device, warmup, iters, batch=128), workers


def bench_dcgan(work: Path, device: torch.device, sz: Sizes) -> dict:
    home, tv_root = work / "store-b", work / "torchvision"
    write_mnist(home, tv_root, sz.images)
    ours = ganctl_train(home, ["dcgan", "--dataset", "mnist", "--batch-size", "128"], device, sz)
    base, workers = baseline_dcgan(tv_root, device, sz.warmup, sz.iters)
    return {
        "ganctl": ours["img_s"], "baseline": base, "ganctl_runtime": ours["runtime"], "ganctl_wall": ours["wall"],
        "how": (f"{sz.images:,} images; ganctl: epochs {_span(ours['timed_epochs'])} of {sz.epochs} "
                f"({ours['timed_images']:,} images); baseline: {sz.iters} batches after {sz.warmup}, "
                f"DataLoader num_workers={workers}"),
    }


# ---------------------------------------------------------------- (c) translate one image

BASELINE_TRANSLATE = '''\
"""The official test.py way: build the net, load the .pth, transform, run (train mode), save."""
import sys

import torch
import torchvision.transforms as T
from PIL import Image

from ganctl.models.pix2pix import UNetGenerator

weights, src, dst, device = sys.argv[1:5]
net = UNetGenerator(3, 3, ngf=64, num_downs=8, norm="batch", dropout=True)
net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
net.to(device)  # no --eval: dropout and batch statistics, as the official test.py by default
tf = T.Compose([T.Resize([256, 256], T.InterpolationMode.BICUBIC), T.ToTensor(), T.Normalize((0.5,) * 3, (0.5,) * 3)])
x = tf(Image.open(src).convert("RGB")).unsqueeze(0).to(device)
with torch.no_grad():
    y = net(x)
u8 = ((y[0].cpu().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).contiguous()
Image.frombytes("RGB", (u8.shape[1], u8.shape[0]), u8.numpy().tobytes()).save(dst)
'''


def bench_translate(work: Path, device: torch.device, sz: Sizes) -> dict:
    from PIL import Image

    from ganctl.data import paired
    from ganctl.pix2pix_official import ganctl_to_official, save_official_file

    torch.manual_seed(0)
    G = UNetGenerator(**UNET_256)
    init_pix2pix_weights(G)
    state = G.state_dict()
    official = save_official_file(ganctl_to_official(state, UNET_256), work / "latest_net_G.pth")
    torch.save(state, work / "baseline_G.pth")  # the same tensors under the baseline's own key names
    _, labels = paired.synthetic_facades(1, size=256, seed=1)
    image = work / "labels.png"
    Image.frombytes("RGB", (256, 256), labels[0].permute(1, 2, 0).contiguous().numpy().tobytes()).save(image)

    env = store_env(work / "store-c")
    run([*GANCTL, "import", str(official), "--name", "bench", "--direction", "BtoA"], env)
    ours_out, base_out = work / "ganctl_out.png", work / "baseline_out.png"
    ours = median_wall([*GANCTL, "translate", str(image), "-o", str(ours_out), "--pretrained", "bench",
                        "--device", device.type], sz.translate_runs, env)
    script = work / "baseline_translate.py"
    script.write_text(BASELINE_TRANSLATE)
    base = median_wall([sys.executable, str(script), str(work / "baseline_G.pth"), str(image), str(base_out),
                        device.type], sz.translate_runs)
    for out in (ours_out, base_out):
        with Image.open(out) as img:
            assert img.size == (256, 256), f"{out} is {img.size}"
    return {"ganctl": ours, "baseline": base,
            "how": f"pix2pix U-Net-256 at ngf 64, one 256x256 PNG; median of {sz.translate_runs} run(s) after an untimed one"}


# ---------------------------------------------------------------- (d) --help


def bench_help(sz: Sizes) -> dict:
    ours = median_wall([*GANCTL, "--help"], sz.help_runs)
    base = median_wall([sys.executable, "-c", "import torch"], sz.help_runs)
    return {"ganctl": ours, "baseline": base, "how": f"median of {sz.help_runs} runs after an untimed one"}


# ---------------------------------------------------------------- the hardware's ceiling


def peak_gflops(device: torch.device, dtype: torch.dtype, runs: int = 5) -> float:
    """The device's convolution rate in GFLOP/s: the best of two large 3x3 convolutions in
    channels_last (oneDNN on the CPU, cuDNN on a GPU), the median of ``runs`` timings each. This is
    the kind of work (a) and (b) are made of, at a size where the library reaches its peak."""
    import torch.nn.functional as F

    batch, repeat = (16, 1) if device.type == "cpu" else (256, 20)
    best = 0.0
    for channels, size in ((256, 32), (512, 16)):
        x = torch.randn(batch, channels, size, size, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
        w = torch.randn(channels, channels, 3, 3, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
        flop = 2 * batch * channels * channels * 9 * size * size * repeat
        for _ in range(2):
            F.conv2d(x, w, padding=1)
        times = []
        for _ in range(runs):
            sync(device)
            t0 = time.perf_counter()
            for _ in range(repeat):
                F.conv2d(x, w, padding=1)
            sync(device)
            times.append(time.perf_counter() - t0)
        best = max(best, flop / statistics.median(times) / 1e9)
    return best


def step_gflop(key: str, frozen_d: bool) -> float:
    """Convolution and matmul GFLOP of one training image in (a) or (b): one D step and one G step
    of the networks and losses, counted on the meta device (shapes only, nothing runs).
    ``frozen_d``: the G step computes no weight gradients of D. Both sides of (a) freeze D (the
    official pix2pix code does); in (b) ganctl does and the baseline, written as pytorch/examples
    dcgan, does not, so its G step does about 5% more work."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        if key == "a":
            G = UNetGenerator(3, 3, ngf=64, num_downs=8, norm="batch", dropout=True)
            D = PatchGANDiscriminator(6, ndf=64, n_layers=3, norm="batch")
            batch, x, y = 1, torch.randn(1, 3, 256, 256), torch.randn(1, 3, 256, 256)
        else:
            G = DCGANGenerator(z_dim=100, channels=1, image_size=64, features=64)
            D = DCGANDiscriminator(channels=1, image_size=64, features=64, norm="batch")
            batch, y = 128, torch.randn(128, 1, 64, 64)
        with FlopCounterMode(display=False) as counter:
            if key == "a":
                fake = G(x)
                (D(x, fake.detach()).mean() + D(x, y).mean()).backward()
                set_requires_grad(D, False)
                (D(x, fake).mean() + (fake - y).abs().mean()).backward()
            else:
                fake = G(torch.randn(batch, 100, 1, 1))
                (D(y).mean() + D(fake.detach()).mean()).backward()
                set_requires_grad(D, not frozen_d)
                D(fake).mean().backward()
    return counter.get_total_flops() / batch / 1e9


def target_rate(key: str, r: dict, device: torch.device) -> float:
    """The images/s that (a) or (b) must reach to meet the issue's target on this device."""
    if device.type == "cuda":
        return 50.0 if key == "a" else MNIST_EPOCH / 3
    return 2.5 * r["baseline"]


def ceiling(results: dict[str, dict], device: torch.device) -> dict:
    """How fast (a) and (b) could run at all on this device: its bf16 and fp32 convolution peaks, and the
    work per training image. A speed-up target above best/baseline cannot be met by any software."""
    low = torch.bfloat16 if device.type == "cpu" or torch.cuda.is_bf16_supported() else torch.float16
    peak32, peak_low = peak_gflops(device, torch.float32), peak_gflops(device, low)
    out = {"fp32": peak32, "low": peak_low, "low_name": str(low).removeprefix("torch."), "rows": {}}
    for key in ("a", "b"):
        if key in results:
            r, gflop = results[key], step_gflop(key, frozen_d=True)
            gflop_base = gflop if key == "a" else step_gflop(key, frozen_d=False)  # only (b)'s baseline differs
            best = peak_low / gflop
            out["rows"][key] = {"gflop": gflop, "gflop_base": gflop_base, "best": best, "ganctl": r["ganctl"] * gflop,
                                "baseline": r["baseline"] * gflop_base, "best_ratio": best / r["baseline"],
                                "needed": target_rate(key, r, device) * gflop}
    return out


# ---------------------------------------------------------------- report


def targets(key: str, r: dict, device: torch.device) -> list[tuple[str, bool]]:
    """(target, met) pairs for one result: ratios on the CPU, absolute numbers on a GPU."""
    ratio = r["ganctl"] / r["baseline"]
    if key == "a":
        if device.type == "cuda":
            return [(">= 50 img/s (H100)", r["ganctl"] >= 50)]
        return [(">= 2.5x baseline", ratio >= 2.5)]
    if key == "b":
        if device.type == "cuda":
            return [(f"MNIST epoch < 3 s (H100): {MNIST_EPOCH / r['ganctl']:.2f} s", MNIST_EPOCH / r["ganctl"] < 3)]
        return [(">= 2.5x baseline", ratio >= 2.5)]
    if key == "c":
        return [("< 3 s", r["ganctl"] < 3)]
    return [("< 0.3 s", r["ganctl"] < 0.3)]


ROWS = {
    "a": ("(a) pix2pix training, 256x256, batch 1, JPEG pairs on disk", "img/s", True),
    "b": ("(b) DCGAN training, 64x64, batch 128, MNIST-format files", "img/s", True),
    "c": ("(c) `ganctl translate` one 256x256 image, process start to file", "s", False),
    "d": ("(d) `ganctl --help` (baseline: `python -c \"import torch\"`)", "s", False),
}


def table(results: dict[str, dict], device: torch.device) -> str:
    lines = [
        "| measurement | ganctl | plain PyTorch | speed-up | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for key, r in results.items():
        title, unit, higher_is_better = ROWS[key]
        speedup = r["ganctl"] / r["baseline"] if higher_is_better else r["baseline"] / r["ganctl"]
        goals = targets(key, r, device)
        lines.append(
            f"| {title} | {_num(r['ganctl'])} {unit} | {_num(r['baseline'])} {unit} | {speedup:.2f}x | "
            f"{'; '.join(t for t, _ in goals)} | {'; '.join('yes' if ok else '**no**' for _, ok in goals)} |"
        )
    return "\n".join(lines)


def _num(x: float) -> str:
    """Three significant digits or so: 0.214, 2.14, 21.4, 2,140."""
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}" if x >= 10 else f"{x:.2f}" if x >= 1 else f"{x:.3f}"


def details(results: dict[str, dict]) -> str:
    lines = []
    for key, r in results.items():
        extra = f"; ganctl ran as: {r['ganctl_runtime']}; its whole run took {r['ganctl_wall']:.0f} s" if "ganctl_runtime" in r else ""
        lines.append(f"- ({key}) {r['how']}{extra}.")
    return "\n".join(lines)


def _gflop_cell(r: dict) -> str:
    same = abs(r["gflop"] - r["gflop_base"]) < 0.05
    return _num(r["gflop"]) if same else f"{_num(r['gflop'])} / {_num(r['gflop_base'])}"


def ceiling_table(c: dict) -> str:
    if not c["rows"]:
        return ""
    low = c["low_name"]
    lines = [
        f"What the hardware allows: the measured convolution peak of this device is {c['fp32']:,.0f} GFLOP/s in fp32 "
        f"and {c['low']:,.0f} GFLOP/s in {low} ({c['low'] / c['fp32']:.2f}x). Work per training image is counted "
        "with `torch.utils.flop_counter` over one D step and one G step of the networks above, each side's own: "
        "ganctl's G step computes no weight gradients of D, nor does the official pix2pix code, but "
        "pytorch/examples dcgan, which the DCGAN baseline follows, does (ganctl / baseline where they differ).",
        "",
        f"| training | GFLOP per image | ganctl GFLOP/s (of the {low} peak) | plain PyTorch GFLOP/s (of the fp32 peak) "
        f"| img/s with every FLOP at the {low} peak | the most speed-up the hardware allows "
        f"| share of the {low} peak the target needs |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, r in c["rows"].items():
        title = ROWS[key][0].split(",")[0]
        lines.append(
            f"| {title} | {_gflop_cell(r)} | {_num(r['ganctl'])} ({r['ganctl'] / c['low']:.0%}) | "
            f"{_num(r['baseline'])} ({r['baseline'] / c['fp32']:.0%}) | {_num(r['best'])} | {r['best_ratio']:.2f}x | "
            f"{r['needed'] / c['low']:.0%} |"
        )
    return "\n".join(lines) + "\n\n"


def section(results: dict[str, dict], device: torch.device, command: str, roof: dict | None = None) -> str:
    import torchvision

    return (
        f"{BEGIN}\n"
        f"Machine: {machine()}, torchvision {torchvision.__version__}. Device: {device.type}. "
        f"Command: `{command}` ({time.strftime('%Y-%m-%d')}).\n\n"
        "ganctl runs as a user runs it (the console script in a subprocess, a fresh store, its defaults: its "
        "precision and memory format are chosen per machine). The baseline is written the way the seed "
        "repositories write it: fp32, NCHW, per-sample PIL transforms in a torch DataLoader, default "
        "`torch.optim.Adam`, the same networks (built from `ganctl.models`), the same batch size; on CUDA it sets "
        "`cudnn.benchmark` as the official pix2pix and pytorch/examples dcgan do. Training rates are steady "
        "state: ganctl's first epoch and the baseline's first iterations are not timed, and ganctl's epoch "
        "time covers the batch loop only (not the validation after it).\n\n"
        f"{table(results, device)}\n\n"
        f"{details(results)}\n\n"
        f"{ceiling_table(roof) if roof else ''}"
        f"{END}"
    )


def write_section(text: str) -> Path:
    body = text.replace(BEGIN, "").replace(END, "")
    return _write("speed", HEADING, body)


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
    ap.add_argument("--only", default="a,b,c,d", help="comma-separated subset of a,b,c,d")
    ap.add_argument("--quick", action="store_true", help="tiny counts: checks the script runs, measures nothing")
    ap.add_argument("--write", action="store_true", help="replace this benchmark's section of docs/benchmarks.md")
    for name, what in (("pairs", "(a) training pairs"), ("images", "(b) training images"),
                       ("epochs", "ganctl epochs in (a), (b); the first is not timed"),
                       ("warmup", "baseline iterations not timed in (a), (b)"),
                       ("iters", "baseline iterations timed in (a), (b)")):
        ap.add_argument(f"--{name}", type=int, default=None, help=f"{what} (default: by device)")
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
            print(f"  ganctl {_num(r['ganctl'])}, baseline {_num(r['baseline'])} {ROWS[key][1]} "
                  f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    roof = ceiling(results, device) if {"a", "b"} & set(results) else None
    command = shlex.join(["python", "benchmarks/speed.py", *sys.argv[1:]])
    text = section(results, device, command, roof)
    print(text)
    if args.write:
        print(f"wrote {write_section(text)}", file=sys.stderr)


if __name__ == "__main__":
    main()
