"""Export: a ganctl pix2pix or CycleGAN generator written as an official ``.pth`` the official code loads."""

from __future__ import annotations

import os
from pathlib import Path

from ganctl.core.errors import CheckpointError
from ganctl.store.pretrained import OFFICIAL_FILE, read_meta
from ganctl.store.pretrained_install import build_generator


def export(generator_path: str | Path, out_path: str | Path) -> tuple[Path, dict]:
    """Write a ganctl pix2pix or CycleGAN generator (a generator.safetensors, or a folder holding
    one) as an official ``.pth`` that the official ``UnetGenerator`` or ``ResnetGenerator`` loads
    strictly; return the file written and the generator's ganctl metadata.

    ``out_path`` may be a folder (or end in '/'): the file is then ``latest_net_G.pth`` inside it,
    the name the official ``test.py`` loads from ``checkpoints/NAME/``.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from ganctl.models import cyclegan_official, pix2pix_official
    from ganctl.store.checkpoint import check_finite
    from ganctl.use.generators import resolve_checkpoint

    src = resolve_checkpoint(Path(generator_path))
    meta = read_meta(src)
    if meta.get("arch") not in ("pix2pix", cyclegan_official.ARCH) or not isinstance(meta.get("generator"), dict):
        what = f"a {meta['family']!r} generator" if meta.get("family") else "no ganctl generator"
        raise CheckpointError(
            f"{src} holds {what}: only pix2pix U-Net and CycleGAN ResNet generators have an official layout to export to "
            "(--format onnx or pt2 export any generator)"
        )
    arch = meta["generator"]
    try:
        state = load_file(str(src))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{src} is not a readable safetensors file ({e}); it may be truncated") from e
    resnet = meta["arch"] == cyclegan_official.ARCH
    net = build_generator("cyclegan" if resnet else "pix2pix", arch, state, str(src))
    check_finite(src, net)
    convert = cyclegan_official.ganctl_to_official if resnet else pix2pix_official.ganctl_to_official
    out = Path(out_path).expanduser()
    if out.is_dir() or str(out_path).endswith(("/", os.sep)):
        out = out / OFFICIAL_FILE  # test.py --model test loads latest_net_G.pth too (--model_suffix '')
    return pix2pix_official.save_official_file(convert(net.state_dict(), arch), out), meta


def official_options(meta: dict) -> str:
    """The official test.py options that rebuild this generator, e.g. '--netG unet_256 --norm batch ...'."""
    g = meta["generator"]
    if meta.get("arch") == "cyclegan":
        from ganctl.models.cyclegan_official import official_options as resnet_options

        return resnet_options(g)
    opts = [
        "--model pix2pix",
        f"--netG unet_{2 ** g['num_downs']}",
        f"--norm {g['norm']}",
        f"--ngf {g['ngf']}",
        f"--input_nc {g['in_channels']}",
        f"--output_nc {g['out_channels']}",
    ]
    if not g.get("dropout", True):
        opts.append("--no_dropout")
    if meta.get("direction"):
        opts.append(f"--direction {meta['direction']}")
    return " ".join(opts)
