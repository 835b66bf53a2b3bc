"""ganctl sample, ganctl interpolate"""

from __future__ import annotations

from pathlib import Path

import typer

from ganctl.cli import completion, ui
from ganctl.core import seeds

SAMPLE_EXAMPLES = """
Examples:

  ganctl sample dcgan -o grid.png

  ganctl sample dcgan -n 16 --seed 3 --run digits-2 -o grid.png

  ganctl sample gan -n 100 -o samples/      (one PNG per image)

  ganctl sample cgan --label 5 -n 16 -o fives.png

  ganctl sample cgan -o grid.png            (one labelled row per class)

  ganctl sample cgan --pretrained digits-cgan -o grid.png   (the demo shipped with ganctl)
"""

INTERPOLATE_EXAMPLES = """
Examples:

  ganctl interpolate dcgan -o walk.png

  ganctl interpolate dcgan --steps 16 --method slerp --rows 4 -o walk.gif

  ganctl interpolate cgan --label 5 -o five.gif     (label fixed, latent moves)

  ganctl interpolate cgan --label 3 --to-label 8     (latent fixed, label moves)

  ganctl interpolate cgan --label 5 --pretrained digits-cgan -o five.gif
"""

_MODEL = typer.Argument(..., help="Model family (see 'ganctl list').", autocompletion=completion.models)
_RUN = typer.Option(None, "--run", "-r", help="Run name or folder (default: the newest run of MODEL).", rich_help_panel="Model")
_CKPT = typer.Option(None, "--checkpoint", "-c", help="A generator .safetensors file, checkpoint folder or run folder.", rich_help_panel="Model")
_PRETRAINED = typer.Option(None, "--pretrained", "-p", help="A pretrained model: a demo shipped with ganctl (digits-dcgan, digits-cgan) or one in the store.", rich_help_panel="Model")
_SEED = typer.Option(None, "--seed", "-s", callback=seeds.option, help="Seed for the latent points (default: random, and printed).")
_DEVICE = typer.Option("auto", "--device", help="auto, cpu, cuda or mps.", rich_help_panel="Hardware")
_LABEL = typer.Option(None, "--label", "-l", help="Class to generate (conditional models): a class name or index.", rich_help_panel="Conditional models")


def sample(
    model: str = _MODEL,
    n: int = typer.Option(64, "--num", "-n", help="How many images."),
    output: str = typer.Option(None, "--output", "-o", help="Grid image to write, or a folder (existing, or ending in /) for one PNG per image (default: MODEL_samples.png)."),
    seed: int = _SEED,
    nrow: int = typer.Option(None, "--nrow", help="Images per grid row (default: square-ish; one row per class for conditional models)."),
    label: str = _LABEL,
    run: str = _RUN,
    checkpoint: Path = _CKPT,
    pretrained: str = _PRETRAINED,
    device: str = _DEVICE,
) -> None:
    """Generate images with a trained generator."""
    from ganctl.use import sampling

    ui.result(sampling.sample(model, n=n, output=output, seed=seed, nrow=nrow, label=label, run=run,
                              checkpoint=checkpoint, pretrained=pretrained, device=device, say=ui.info))


def interpolate(
    model: str = _MODEL,
    steps: int = typer.Option(10, "--steps", help="Frames from one end to the other, both ends included."),
    method: str = typer.Option("lerp", "--method", help="lerp (straight line) or slerp (great circle)."),
    rows: int = typer.Option(1, "--rows", help="Independent walks, one per row."),
    output: str = typer.Option(None, "--output", "-o", help="PNG strip, or .gif animation (default: MODEL_interpolation.png)."),
    seed: int = _SEED,
    label: str = _LABEL,
    to_label: str = typer.Option(None, "--to-label", help="With --label: keep the latent point and move from --label to this class instead.", rich_help_panel="Conditional models"),
    run: str = _RUN,
    checkpoint: Path = _CKPT,
    pretrained: str = _PRETRAINED,
    device: str = _DEVICE,
) -> None:
    """Walk through the latent space between random points: a strip of frames, or a GIF.

    Conditional models keep --label fixed while the latent point moves (without --label, row r
    uses class r), or with --to-label keep the latent point and move through the label embedding.
    """
    from ganctl.use import sampling

    ui.result(sampling.interpolate(model, steps=steps, method=method, rows=rows, output=output, seed=seed, label=label,
                                   to_label=to_label, run=run, checkpoint=checkpoint, pretrained=pretrained, device=device, say=ui.info))


def register(app: typer.Typer) -> None:
    app.command(epilog=SAMPLE_EXAMPLES, rich_help_panel="Generate")(sample)
    app.command(epilog=INTERPOLATE_EXAMPLES, rich_help_panel="Generate")(interpolate)
