"""(c) ``ganctl translate`` of one 256x256 image against the official test.py way, and (d)
``ganctl --help`` against ``python -c "import torch"``: process start to finish."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from ganctl.models.pix2pix import UNetGenerator, init_pix2pix_weights

from .common import GANCTL, UNET_256, Sizes, median_wall, run, store_env

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

    from ganctl.data import synthetic_facades
    from ganctl.models.pix2pix_official import ganctl_to_official, save_official_file

    torch.manual_seed(0)
    G = UNetGenerator(**UNET_256)
    init_pix2pix_weights(G)
    state = G.state_dict()
    official = save_official_file(ganctl_to_official(state, UNET_256), work / "latest_net_G.pth")
    torch.save(state, work / "baseline_G.pth")  # the same tensors under the baseline's own key names
    _, labels = synthetic_facades.synthetic_facades(1, size=256, seed=1)
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
