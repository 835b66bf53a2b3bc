"""``ganctl sample`` and ``ganctl interpolate`` as library functions: from a model and options to
the file written (the CLI parses, calls one of these, and prints the path)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from ganctl.core.atomic import check_can_write
from ganctl.core.errors import GanctlError
from ganctl.families import registry
from ganctl.store import genspec
from ganctl.use import generators

Say = Callable[[str], None]


def _quiet(text: str) -> None:
    pass


def _label(meta: dict, spec: str | None) -> int | None:
    """The class index of --label, checked against the classes the model was trained on (``meta``:
    the generator's spec)."""
    if spec is None:
        return None
    if not meta.get("conditional"):
        raise GanctlError(f"--label needs a conditional model (cgan); this {meta.get('family')} generator ignores labels")
    return genspec.resolve_label(spec, meta["classes"])


def _generator(model: str, run, checkpoint, pretrained, device: str, say: Say, labels=()):
    """The generator to sample; ``labels`` (--label, --to-label) are checked against the chosen
    file's classes before torch is imported, so a wrong label is answered at once."""
    if registry.get(model).translates:  # an unknown family is a did-you-mean error here
        raise GanctlError(f"{model} translates images rather than sampling noise: use 'ganctl translate IMAGE -o OUT'")
    choice = generators.choose(model, run=run, checkpoint=checkpoint, pretrained=pretrained)
    if any(x is not None for x in labels):
        try:
            spec = genspec.read_file(choice.path)
        except GanctlError:
            spec = None  # the loader says what is wrong with the file
        if spec is not None and spec.get("family") == model:  # another family's file: the loader's message
            for x in labels:
                _label(spec, x)
    return generators.load(model, device, say=say, choice=choice)


def pick_seed(seed: int | None, say: Say) -> int:
    """``seed``, or a random one that is shown so the images can be made again."""
    if seed is None:
        import secrets

        seed = secrets.randbelow(2**31)
        say(f"seed {seed} (pass --seed {seed} to get these images again)")
    return seed


def is_folder_target(out: str) -> bool:
    return out.endswith(("/", "\\")) or Path(out).is_dir()


def sample(model: str, *, n: int = 64, output: str | None = None, seed: int | None = None, nrow: int | None = None,
           label: str | None = None, run: str | None = None, checkpoint: Path | None = None,
           pretrained: str | None = None, device: str = "auto", say: Say = _quiet) -> Path:
    """Write ``n`` generated images as one grid, or one PNG each into a folder; returns the path."""
    model = registry.get(model).name  # before torch is imported: a typo is answered at once
    if n < 1:
        raise GanctlError("-n must be at least 1")
    if nrow is not None and nrow < 1:
        raise GanctlError("--nrow must be at least 1")
    out = output or f"{model}_samples.png"
    check_can_write(Path(out), folder=is_folder_target(out))  # before the work, not after it
    gen = _generator(model, run, checkpoint, pretrained, device, say, (label,))  # before torch: no run, a wrong label
    import torch

    from ganctl.core import images
    from ganctl.use import inference

    y = _label(gen.meta, label)
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
    z = inference.latents(n, gen.z_dim, pick_seed(seed, say))
    fake = inference.generate(gen, z, labels)
    folder = Path(out) if is_folder_target(out) else Path(out).parent
    new = not folder.exists()  # made by the writer, as translate's output folder is: said below
    if is_folder_target(out):
        paths = images.save_each(fake, Path(out))
        say(f"wrote {len(paths)} images" + (f" into a new folder, {folder}" if new else ""))
        return Path(out)
    images.save_grid(fake, Path(out), nrow=nrow or math.ceil(math.sqrt(n)), row_labels=row_labels)
    if new:
        say(f"created folder {folder}")
    return Path(out)


def interpolate(model: str, *, steps: int = 10, method: str = "lerp", rows: int = 1, output: str | None = None,
                seed: int | None = None, label: str | None = None, to_label: str | None = None, run: str | None = None,
                checkpoint: Path | None = None, pretrained: str | None = None, device: str = "auto",
                say: Say = _quiet) -> Path:
    """Write walks through the latent space (or, with ``to_label``, through the label embedding)
    as a strip of frames, or a GIF when ``output`` ends in .gif; returns the path."""
    model = registry.get(model).name  # before torch is imported: a typo is answered at once
    if method not in ("lerp", "slerp"):
        raise GanctlError(f"unknown --method {method!r}: use lerp or slerp")
    if rows < 1:
        raise GanctlError("--rows must be at least 1")
    if steps < 2:
        raise GanctlError("--steps must be at least 2 (the two end points)")
    if to_label is not None and label is None:
        raise GanctlError("--to-label needs --label: the class to start from")
    out = Path(output or f"{model}_interpolation.png")
    check_can_write(out)
    gen = _generator(model, run, checkpoint, pretrained, device, say, (label, to_label))  # before torch: no run, a wrong label
    import torch

    from ganctl.core import images
    from ganctl.use import inference

    y0, y1 = _label(gen.meta, label), _label(gen.meta, to_label)
    ends = inference.latents(2 * rows, gen.z_dim, pick_seed(seed, say))
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
    new = not out.parent.exists()
    if out.suffix.lower() == ".gif":
        images.save_gif(fake.transpose(0, 1), out)  # frames: (steps, rows, C, H, W)
    else:
        images.save_grid(fake.flatten(0, 1), out, nrow=steps)
    if new:
        say(f"created folder {out.parent}")
    return out
