"""CycleGAN quality at equal epochs, ganctl against the official code, on a task with a known answer.

The task: unpaired colourisation made from real photographs. Domain A is grey crops (the
luminance, ITU-R 601, in all three channels), domain B colour crops taken at other places, so no
grey training crop has its colour version in B. Every photo's bottom quarter is held out: the
test pairs are crops from there, grey in testA and their true colours in testB under the same
name, so a trained A -> B generator is scored against the truth (L1 and PSNR on 0..1 RGB, and the
mean error of the two chroma channels, YCbCr's Cb and Cr, that colourisation has to invent). The
floor is the grey input itself (chroma error: that of no colour at all).

The photos are the colour pictures that scikit-image ships in its wheel (astronaut, chelsea,
coffee, hubble_deep_field, ihc, motorcycle_left, retina, rocket; ``motorcycle_right`` is left out,
the same scene as ``motorcycle_left``). Get them without installing anything::

    pip download scikit-image --no-deps -d /tmp/skimage-wheel
    mkdir -p /tmp/photos && unzip -jo /tmp/skimage-wheel/scikit_image-*.whl 'skimage/data/*' -d /tmp/photos

and the official code as ``benchmarks/cyclegan_speed.py`` says. Both sides train the same folder
with the same settings (the ``synthetic-facades-unpaired`` preset's: 64 px from 72, resnet_6blocks,
ngf = ndf = 32, batch 1; ``--epochs`` of which the last ``--decay`` decay the learning rate) and
seed 0, one after the other; each trained G_A then translates the test crops (in fp32, in this
process: ganctl's network class holds the official keys, so both files load into it)::

    python benchmarks/cyclegan_quality.py --official /tmp/official --photos /tmp/photos --epochs 10 --decay 5
    python benchmarks/cyclegan_quality.py --official /tmp/official --photos /tmp/photos --write
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from report import machine, write_section  # noqa: E402
from speedbench.common import GANCTL  # noqa: E402

PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "hubble_deep_field.jpg", "ihc.png", "motorcycle_left.png",
          "retina.jpg", "rocket.jpg")
SHORT_SIDE = 384  # each photo is resized so that its shorter side has this many pixels, then cropped
CROP = 96  # crops written to the folder; both sides resize them to the load size


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--official", required=True, help="the official checkout's folder (see benchmarks/cyclegan_speed.py)")
    ap.add_argument("--photos", required=True, help="folder holding the photos named in this file (see its docstring)")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--decay", type=int, default=5, help="of the --epochs, the last ones that decay the learning rate")
    ap.add_argument("--images", type=int, default=64, help="training crops per domain (default 64)")
    ap.add_argument("--test", type=int, default=32, help="held-out test pairs (default 32)")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--ngf", type=int, default=32)
    ap.add_argument("--ndf", type=int, default=32)
    ap.add_argument("--n-blocks", type=int, default=6, choices=(6, 9))
    ap.add_argument("--picture", help="write test inputs | ganctl | official | truth here (PNG)")
    ap.add_argument("--seed", type=int, default=0, help="ganctl's --seed (the official train.py takes none)")
    ap.add_argument("--no-run", action="store_true", help="train nothing: tabulate the results file (with --write)")
    ap.add_argument("--write", action="store_true",
                    help="replace this benchmark's section of docs/benchmarks.md with every result of these settings")
    args = ap.parse_args(argv)
    if not 0 <= args.decay <= args.epochs or args.epochs < 1:
        ap.error("--epochs must be positive and --decay between 0 and --epochs")
    if not (Path(args.official) / "train.py").is_file():
        ap.error("--official: the official checkout's folder, holding train.py")
    return args


# ---------------------------------------------------------------- the task


def grey(rgb: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) float RGB -> its luminance in all three channels."""
    y = 0.299 * rgb[..., 0:1, :, :] + 0.587 * rgb[..., 1:2, :, :] + 0.114 * rgb[..., 2:3, :, :]
    return y.expand_as(rgb)


def chroma(rgb: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) 0..1 RGB -> (N, 2, H, W): YCbCr's Cb and Cr (0..1, 0.5 for grey)."""
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    cb = 0.5 - 0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 0.5 + 0.5 * r - 0.418688 * g - 0.081312 * b
    return torch.stack((cb, cr), 1)


def load_photos(folder: Path) -> list[tuple[str, torch.Tensor]]:
    from PIL import Image

    out = []
    for name in PHOTOS:
        path = folder / name
        if not path.is_file():
            raise SystemExit(f"--photos: {path} is missing (see this file's docstring for where the photos come from)")
        img = Image.open(path).convert("RGB")
        scale = SHORT_SIDE / min(img.size)
        img = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.BICUBIC)
        t = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8).view(img.height, img.width, 3)
        out.append((path.stem, t.permute(2, 0, 1).float() / 255))
    return out


def crops(photos, n: int, gen: torch.Generator, held_out: bool) -> list[torch.Tensor]:
    """``n`` CROP x CROP crops, the photos taken in turn, each at a random place in the photo's top
    three quarters (training) or bottom quarter (``held_out``)."""
    out = []
    for i in range(n):
        _, img = photos[i % len(photos)]
        h, w = img.shape[1:]
        top = h - max(CROP, h // 4)  # the held-out band: the bottom quarter, at least a crop high
        y0, y1 = (top, h - CROP) if held_out else (0, top - CROP)
        y = y0 + int(torch.randint(0, y1 - y0 + 1, (1,), generator=gen))
        x = int(torch.randint(0, w - CROP + 1, (1,), generator=gen))
        out.append(img[:, y:y + CROP, x:x + CROP])
    return out


def write_task(dest: Path, photos, images: int, test: int) -> Path:
    from PIL import Image

    def save(t: torch.Tensor, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        arr = (t.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous()
        Image.frombytes("RGB", (arr.shape[1], arr.shape[0]), arr.numpy().tobytes()).save(path)

    gen = torch.Generator().manual_seed(0)
    for i, c in enumerate(crops(photos, images, gen, False)):
        save(grey(c), dest / "trainA" / f"{i + 1}.png")
    for i, c in enumerate(crops(photos, images, gen, False)):  # other places: unpaired
        save(c, dest / "trainB" / f"{i + 1}.png")
    for i, c in enumerate(crops(photos, test, gen, True)):
        save(grey(c), dest / "testA" / f"{i + 1}.png")
        save(c, dest / "testB" / f"{i + 1}.png")
    return dest


def test_pairs(data: Path, test: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(grey inputs, true colours) of the test split at ``size``, -1..1, bicubic as both sides resize."""
    from PIL import Image

    def load(path: Path) -> torch.Tensor:
        img = Image.open(path).convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
        t = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8).view(size, size, 3)
        return t.permute(2, 0, 1).float() / 127.5 - 1

    names = [f"{i + 1}.png" for i in range(test)]
    return (torch.stack([load(data / "testA" / n) for n in names]), torch.stack([load(data / "testB" / n) for n in names]))


def scores(out: torch.Tensor, truth: torch.Tensor) -> dict[str, float]:
    """L1 and PSNR on 0..1 RGB, and the mean absolute error of Cb and Cr."""
    a, b = (out.clamp(-1, 1) + 1) / 2, (truth + 1) / 2
    mse = ((a - b) ** 2).mean((1, 2, 3))
    return {"l1": float((a - b).abs().mean()), "psnr": float((10 * torch.log10(1 / mse.clamp_min(1e-10))).mean()),
            "chroma": float((chroma(a) - chroma(b)).abs().mean())}


# ---------------------------------------------------------------- the two trainings


def run(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{shlex.join(cmd)} failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-4000:]}")
    return time.perf_counter() - t0


def build_generator(args):
    from ganctl.models.cyclegan import ResnetGenerator

    return ResnetGenerator(3, 3, ngf=args.ngf, n_blocks=args.n_blocks, norm="instance", dropout=False)


def translate(net, inputs: torch.Tensor) -> torch.Tensor:
    net.eval()
    with torch.no_grad():
        return torch.cat([net(x[None]) for x in inputs])


RESULTS = ROOT / "benchmarks" / "results" / "cyclegan_quality.jsonl"
SETTINGS = ("epochs", "decay", "images", "test", "size", "ngf", "ndf", "n_blocks")


def main() -> None:
    args = parse_args()
    if not args.no_run:
        train_and_score(args)
    if args.write:
        print(f"wrote {write_section('cyclegan_quality', '## CycleGAN', table(args))}", file=sys.stderr)


def train_and_score(args: argparse.Namespace) -> None:
    """Both programs on the task, scored; one line appended to the results file."""
    official = Path(args.official).resolve()
    photos = load_photos(Path(args.photos))
    results, walls = {}, {}
    with tempfile.TemporaryDirectory(prefix="ganctl-cyclegan-quality-") as tmp:
        work = Path(tmp)
        data = write_task(work / "data", photos, args.images, args.test)
        inputs, truth = test_pairs(data, args.test, args.size)
        results["grey input (the floor)"] = scores(inputs, truth)

        env = {**os.environ, "GANCTL_HOME": str(work / "store"), "GANCTL_DISABLE_PROGRESS_BARS": "1"}
        walls["ganctl"] = run([*GANCTL, "train", "cyclegan", "--dataset", str(data), "--image-size", str(args.size),
                               "--ngf", str(args.ngf), "--ndf", str(args.ndf), "--n-blocks", str(args.n_blocks),
                               "--epochs", str(args.epochs), "--epochs-decay", str(args.decay), "--seed", str(args.seed),
                               "--name", "quality", "--device", "cpu"], env)
        from ganctl.use.inference import load_generator

        ckpt = work / "store" / "runs" / "cyclegan" / "quality" / "checkpoints"
        latest = (ckpt / "latest").read_text().strip()
        ours = load_generator(ckpt / latest / "G_A" / "generator.safetensors", torch.device("cpu")).net.float()
        out_g = translate(ours, inputs)
        results["ganctl"] = scores(out_g, truth)

        walls["official"] = run([sys.executable, "train.py", "--dataroot", str(data), "--name", "quality",
                                 "--model", "cycle_gan", "--checkpoints_dir", str(work / "official"),
                                 "--load_size", str(round(args.size * 286 / 256)), "--crop_size", str(args.size),
                                 "--ngf", str(args.ngf), "--ndf", str(args.ndf), "--netG", f"resnet_{args.n_blocks}blocks",
                                 "--n_epochs", str(args.epochs - args.decay), "--n_epochs_decay", str(args.decay),
                                 "--no_html", "--save_epoch_freq", str(args.epochs)],
                                {**os.environ, "CUDA_VISIBLE_DEVICES": ""}, cwd=official)
        theirs = build_generator(args)
        state = torch.load(work / "official" / "quality" / "latest_net_G_A.pth", map_location="cpu", weights_only=True)
        theirs.load_state_dict(state)
        out_o = translate(theirs, inputs)
        results["official"] = scores(out_o, truth)
        if args.picture:
            save_picture(Path(args.picture), inputs[:8], out_g[:8], out_o[:8], truth[:8])

    row = {"settings": {k: getattr(args, k) for k in SETTINGS}, "seed": args.seed, "machine": machine(),
           "load": os.getloadavg()[0], "threads": os.environ.get("OMP_NUM_THREADS", "default"),
           "when": time.strftime("%Y-%m-%d %H:%M"), "results": results, "walls": walls}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row), file=sys.stderr)


def table(args: argparse.Namespace) -> str:
    """The doc section: each recorded run of these settings, then the mean and spread of each side."""
    import statistics

    want = {k: getattr(args, k) for k in SETTINGS}
    rows = [r for r in map(json.loads, RESULTS.read_text().splitlines()) if r["settings"] == want] if RESULTS.exists() else []
    if not rows:
        raise SystemExit(f"no result for these settings in {RESULTS}: run without --no-run first")
    command = shlex.join(["python", "benchmarks/cyclegan_quality.py", "--official", "OFFICIAL", "--photos", "PHOTOS",
                          "--epochs", str(args.epochs), "--decay", str(args.decay), "--seed", "S"])
    lines = [f"Machine: {rows[-1]['machine']}. Command: `{command}` for each seed S, then the same with "
             "`--no-run --write` (OFFICIAL: the official checkout, PHOTOS: scikit-image's photos, see the script). "
             f"Task: {args.images} grey and {args.images} colour crops ({CROP}x{CROP}, from {len(PHOTOS)} photos at "
             f"{SHORT_SIDE} px on the short side) from other places of the photos' top three quarters; {args.test} "
             f"held-out pairs from their bottom quarters. Both sides: {args.size} px, resnet_{args.n_blocks}blocks, "
             f"ngf {args.ngf}, ndf {args.ndf}, batch 1, {args.epochs} epochs ({args.decay} decaying); ganctl with "
             "--seed S (the official train.py is not seeded); G_A of the last epoch on the test crops, scored "
             "against their true colours (0..1). Lower L1 and chroma error, higher PSNR: better.", "",
             "| run | translation | L1 | PSNR (dB) | chroma error (Cb, Cr) | training wall time | threads, load |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        for name, s in r["results"].items():
            wall = f"{r['walls'][name] / 60:.1f} min" if name in r["walls"] else "-"
            lines.append(f"| seed {r['seed']}, {r['when']} | {name} | {s['l1']:.4f} | {s['psnr']:.2f} | "
                         f"{s['chroma']:.4f} | {wall} | {r['threads']}, {r['load']:.1f} |")
    def sd(v: list[float]) -> float:
        return statistics.stdev(v) if len(v) > 1 else 0.0

    for name in ("ganctl", "official"):
        vals = {k: [r["results"][name][k] for r in rows] for k in ("l1", "psnr", "chroma")}
        lines.append(f"| mean of {len(rows)} | **{name}** | {statistics.mean(vals['l1']):.4f} ± {sd(vals['l1']):.4f} | "
                     f"{statistics.mean(vals['psnr']):.2f} ± {sd(vals['psnr']):.2f} | "
                     f"{statistics.mean(vals['chroma']):.4f} ± {sd(vals['chroma']):.4f} | | |")
    text = "\n".join(lines) + "\n"
    if args.picture:
        text += f"\nTest crops, grey input | ganctl | official | truth: ![colourisation]({picture_link(args.picture)})\n"
    return text


def picture_link(path: str) -> str:
    p = Path(path).resolve()
    docs = ROOT / "docs"
    return p.relative_to(docs).as_posix() if p.is_relative_to(docs) else str(path)


def save_picture(path: Path, *rows: torch.Tensor) -> None:
    """Rows of images side by side: each test crop's input, the two translations and the truth."""
    from PIL import Image

    n, _, s, _ = rows[0].shape
    grid = torch.ones(3, n * (s + 2), len(rows) * (s + 2))
    for c, imgs in enumerate(rows):
        for r in range(n):
            grid[:, r * (s + 2):r * (s + 2) + s, c * (s + 2):c * (s + 2) + s] = (imgs[r].clamp(-1, 1) + 1) / 2
    arr = (grid * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous()
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.frombytes("RGB", (arr.shape[1], arr.shape[0]), arr.numpy().tobytes()).save(path)


if __name__ == "__main__":
    main()
