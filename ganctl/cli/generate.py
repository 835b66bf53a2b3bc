"""ganctl sample, ganctl interpolate"""

from __future__ import annotations

from pathlib import Path

import typer

from ganctl import seeds
from ganctl.cli import completion, ui

SAMPLE_EXAMPLES = """
Examples:

  ganctl sample dcgan -o grid.png

  ganctl sample dcgan -n 16 --seed 3 --run digits-2 -o grid.png

  ganctl sample gan -n 100 -o samples/      (one PNG per image)

  ganctl sample cgan --label 5 -n 16 -o fives.png

  ganctl sample cgan -o grid.png            (one labelled row per class)
"""

INTERPOLATE_EXAMPLES = """
Examples:

  ganctl interpolate dcgan -o walk.png

  ganctl interpolate dcgan --steps 16 --method slerp --rows 4 -o walk.gif

  ganctl interpolate cgan --label 5 -o five.gif     (label fixed, latent moves)

  ganctl interpolate cgan --label 3 --to-label 8     (latent fixed, label moves)
"""

_MODEL = typer.Argument(..., help="Model family (see 'ganctl list').", autocompletion=completion.models)
_RUN = typer.Option(None, "--run", "-r", help="Run name or folder (default: the newest run of MODEL).", rich_help_panel="Model")
_CKPT = typer.Option(None, "--checkpoint", "-c", help="A generator .safetensors file, checkpoint folder or run folder.", rich_help_panel="Model")
_SEED = typer.Option(None, "--seed", "-s", callback=seeds.option, help="Seed for the latent points (default: random, and printed).")
_DEVICE = typer.Option("auto", "--device", help="auto, cpu, cuda or mps.", rich_help_panel="Hardware")
_LABEL = typer.Option(None, "--label", "-l", help="Class to generate (conditional models): a class name or index.", rich_help_panel="Conditional models")


def _label(gen, spec: str | None) -> int | None:
    """The class index of --label, checked against the classes the model was trained on."""
    from ganctl import inference
    from ganctl.errors import GanctlError

    if spec is None:
        return None
    if not gen.meta.get("conditional"):
        raise GanctlError(f"--label needs a conditional model (cgan); this {gen.meta.get('family')} generator ignores labels")
    return inference.resolve_label(spec, gen.meta["classes"])


def _load(model: str, run: str | None, checkpoint: Path | None, device: str):
    from ganctl import inference, registry, runtime, store
    from ganctl.errors import GanctlError

    if registry.get(model).paired:  # an unknown family is a did-you-mean error here
        raise GanctlError("pix2pix translates images rather than sampling noise: use 'ganctl translate IMAGE -o OUT'")
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
    output: str = typer.Option(None, "--output", "-o", help="Grid image to write, or a folder (existing, or ending in /) for one PNG per image (default: MODEL_samples.png)."),
    seed: int = _SEED,
    nrow: int = typer.Option(None, "--nrow", help="Images per grid row (default: square-ish; one row per class for conditional models)."),
    label: str = _LABEL,
    run: str = _RUN,
    checkpoint: Path = _CKPT,
    device: str = _DEVICE,
) -> None:
    """Generate images with a trained generator."""
    import math

    import torch

    from ganctl import images, inference
    from ganctl.errors import GanctlError

    if n < 1:
        raise GanctlError("-n must be at least 1")
    if nrow is not None and nrow < 1:
        raise GanctlError("--nrow must be at least 1")
    gen = _load(model, run, checkpoint, device)
    y = _label(gen, label)
    row_labels = None
    if y is not None:
        labels = torch.full((n,), y, dtype=torch.long)
    elif gen.meta.get("conditional"):
        # no --label: one row per class, labelled, about n images in all
        classes = gen.meta["classes"]
        nrow = nrow or max(1, round(n / len(classes)))
        n = nrow * len(classes)
        labels = torch.arange(len(classes)).repeat_interleave(nrow)
        row_labels = classes
    else:
        labels = None
    z = inference.latents(n, gen.z_dim, _seed(seed))
    fake = inference.generate(gen, z, labels)
    out = output or f"{model}_samples.png"
    if _is_folder_target(out):
        paths = images.save_each(fake, Path(out))
        ui.info(f"wrote {len(paths)} images")
        ui.result(Path(out))
        return
    images.save_grid(fake, Path(out), nrow=nrow or math.ceil(math.sqrt(n)), row_labels=row_labels)
    ui.result(Path(out))


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
    device: str = _DEVICE,
) -> None:
    """Walk through the latent space between random points: a strip of frames, or a GIF.

    Conditional models keep --label fixed while the latent point moves (without --label, row r
    uses class r), or with --to-label keep the latent point and move through the label embedding.
    """
    import torch

    from ganctl import images, inference
    from ganctl.errors import GanctlError

    if method not in ("lerp", "slerp"):
        raise GanctlError(f"unknown --method {method!r}: use lerp or slerp")
    if rows < 1:
        raise GanctlError("--rows must be at least 1")
    if steps < 2:
        raise GanctlError("--steps must be at least 2 (the two end points)")
    if to_label is not None and label is None:
        raise GanctlError("--to-label needs --label: the class to start from")
    gen = _load(model, run, checkpoint, device)
    y0, y1 = _label(gen, label), _label(gen, to_label)
    ends = inference.latents(2 * rows, gen.z_dim, _seed(seed))
    if y1 is not None:
        # latent fixed (one per row), label embedding moving from y0 to y1
        e0, e1 = inference.label_embedding(gen, y0), inference.label_embedding(gen, y1)
        emb = inference.interpolate(e0, e1, steps, "lerp")  # (steps, embed)
        z = ends[::2].unsqueeze(1).expand(rows, steps, -1)
        fake = inference.generate_embedded(gen, z.flatten(0, 1), emb.repeat(rows, 1)).unflatten(0, (rows, steps))
    else:
        walks = [inference.interpolate(ends[2 * r], ends[2 * r + 1], steps, method) for r in range(rows)]
        z = torch.stack(walks)  # (rows, steps, z)
        labels = None
        if gen.meta.get("conditional"):
            classes = len(gen.meta["classes"])
            per_row = [y0 if y0 is not None else r % classes for r in range(rows)]
            labels = torch.tensor(per_row).repeat_interleave(steps)
        fake = inference.generate(gen, z.flatten(0, 1), labels).unflatten(0, (rows, steps))
    out = Path(output or f"{model}_interpolation.png")
    if out.suffix.lower() == ".gif":
        images.save_gif(fake.transpose(0, 1), out)  # frames: (steps, rows, C, H, W)
    else:
        images.save_grid(fake.flatten(0, 1), out, nrow=steps)
    ui.result(out)


def register(app: typer.Typer) -> None:
    app.command(epilog=SAMPLE_EXAMPLES, rich_help_panel="Generate")(sample)
    app.command(epilog=INTERPOLATE_EXAMPLES, rich_help_panel="Generate")(interpolate)
