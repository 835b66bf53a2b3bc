"""ganctl sample, ganctl interpolate"""

from __future__ import annotations

from pathlib import Path

import typer

from ganctl.cli import completion, ui

SAMPLE_EXAMPLES = """
Examples:

  ganctl sample dcgan -o grid.png

  ganctl sample dcgan -n 16 --seed 3 --run digits-2 -o grid.png

  ganctl sample gan -n 100 -o samples/      (one PNG per image)
"""

INTERPOLATE_EXAMPLES = """
Examples:

  ganctl interpolate dcgan -o walk.png

  ganctl interpolate dcgan --steps 16 --method slerp --rows 4 -o walk.gif
"""

_MODEL = typer.Argument(..., help="Model family (see 'ganctl list').", autocompletion=completion.models)
_RUN = typer.Option(None, "--run", "-r", help="Run name or folder (default: the newest run of MODEL).", rich_help_panel="Model")
_CKPT = typer.Option(None, "--checkpoint", "-c", help="A generator .safetensors file, checkpoint folder or run folder.", rich_help_panel="Model")
_SEED = typer.Option(None, "--seed", "-s", help="Seed for the latent points (default: random, and printed).")
_DEVICE = typer.Option("auto", "--device", help="auto, cpu, cuda or mps.", rich_help_panel="Hardware")


def _load(model: str, run: str | None, checkpoint: Path | None, device: str):
    from ganctl import inference, registry, runtime, store
    from ganctl.errors import GanctlError

    registry.get(model)  # unknown family: a did-you-mean error
    if run and checkpoint:
        raise GanctlError("give --run or --checkpoint, not both")
    dev = runtime.resolve_device(device)
    if checkpoint is not None:
        gen = inference.load_generator(checkpoint, dev, family=model)
    else:
        info = store.find_run(run, model) if run else store.newest_run(model)
        if info is None:
            raise GanctlError(f"there is no {model} run in {store.runs_dir()}: train one with 'ganctl train {model} --dataset digits', or pass --checkpoint")
        gen = inference.load_generator(inference.generator_file(info), dev, family=model)
        how = "" if run else "newest run, "
        ui.info(f"using run {info.id} ({how}{gen.path.parent.name})")
    return gen


def _seed(seed: int | None) -> int:
    if seed is None:
        import secrets

        seed = secrets.randbelow(2**31)
        ui.info(f"seed {seed} (pass --seed {seed} to get these images again)")
    return seed


def _is_folder_target(out: str) -> bool:
    return out.endswith(("/", "\\")) or Path(out).is_dir()


def sample(
    model: str = _MODEL,
    n: int = typer.Option(64, "--num", "-n", help="How many images."),
    output: str = typer.Option(None, "--output", "-o", help="Grid image to write, or a folder (existing, or ending in /) for one PNG per image [default: MODEL_samples.png]."),
    seed: int = _SEED,
    nrow: int = typer.Option(None, "--nrow", help="Images per grid row (default: square-ish)."),
    run: str = _RUN,
    checkpoint: Path = _CKPT,
    device: str = _DEVICE,
) -> None:
    """Generate images with a trained generator."""
    import math

    from ganctl import images, inference
    from ganctl.errors import GanctlError

    if n < 1:
        raise GanctlError("-n must be at least 1")
    gen = _load(model, run, checkpoint, device)
    z = inference.latents(n, gen.z_dim, _seed(seed))
    fake = inference.generate(gen, z)
    out = output or f"{model}_samples.png"
    if _is_folder_target(out):
        paths = images.save_each(fake, Path(out))
        ui.info(f"wrote {len(paths)} images")
        ui.result(Path(out))
        return
    images.save_grid(fake, Path(out), nrow=nrow or math.ceil(math.sqrt(n)))
    ui.result(Path(out))


def interpolate(
    model: str = _MODEL,
    steps: int = typer.Option(10, "--steps", help="Frames from one end to the other, both ends included."),
    method: str = typer.Option("lerp", "--method", help="lerp (straight line) or slerp (great circle)."),
    rows: int = typer.Option(1, "--rows", help="Independent walks, one per row."),
    output: str = typer.Option(None, "--output", "-o", help="PNG strip, or .gif animation [default: MODEL_interpolation.png]."),
    seed: int = _SEED,
    run: str = _RUN,
    checkpoint: Path = _CKPT,
    device: str = _DEVICE,
) -> None:
    """Walk through the latent space between random points: a strip of frames, or a GIF."""
    import torch

    from ganctl import images, inference
    from ganctl.errors import GanctlError

    if method not in ("lerp", "slerp"):
        raise GanctlError(f"unknown --method {method!r}: use lerp or slerp")
    if rows < 1:
        raise GanctlError("--rows must be at least 1")
    if steps < 2:
        raise GanctlError("--steps must be at least 2 (the two end points)")
    gen = _load(model, run, checkpoint, device)
    ends = inference.latents(2 * rows, gen.z_dim, _seed(seed))
    walks = [inference.interpolate(ends[2 * r], ends[2 * r + 1], steps, method) for r in range(rows)]
    z = torch.stack(walks)  # (rows, steps, z)
    fake = inference.generate(gen, z.flatten(0, 1)).unflatten(0, (rows, steps))
    out = Path(output or f"{model}_interpolation.png")
    if out.suffix.lower() == ".gif":
        images.save_gif(fake.transpose(0, 1), out)  # frames: (steps, rows, C, H, W)
    else:
        images.save_grid(fake.flatten(0, 1), out, nrow=steps)
    ui.result(out)


def register(app: typer.Typer) -> None:
    app.command(epilog=SAMPLE_EXAMPLES, rich_help_panel="Generate")(sample)
    app.command(epilog=INTERPOLATE_EXAMPLES, rich_help_panel="Generate")(interpolate)
