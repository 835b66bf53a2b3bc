"""ganctl evaluate"""

from __future__ import annotations

from pathlib import Path

import typer

from ganctl import seeds
from ganctl.cli import ui

EXAMPLES = """
Examples:

  ganctl evaluate dcgan/digits

  ganctl evaluate digits -n 5000 --seed 1

  ganctl evaluate cgan/mnist --checkpoint epoch_0010

  cat "$(ganctl evaluate dcgan/digits)"      (stdout is the path of eval.json)
"""


def evaluate(
    run: str = typer.Argument(..., help="The run: NAME, FAMILY/NAME or a run folder (see 'ganctl list')."),
    n: int = typer.Option(2000, "--num", "-n", help="How many images to generate (and real training images for the reference distance)."),
    seed: int = typer.Option(0, "--seed", "-s", callback=seeds.option, help="Seed for the latent points: the same seed gives the same number."),
    checkpoint: Path = typer.Option(None, "--checkpoint", "-c", help="Evaluate this generator file, checkpoint folder, or checkpoint of the run (e.g. epoch_0010) instead of the newest."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or mps.", rich_help_panel="Hardware"),
) -> None:
    """Score a run: Frechet distance to the real test images in a classifier's feature space, and label accuracy."""
    from ganctl import store
    from ganctl.errors import GanctlError

    if n < 2:
        raise GanctlError("-n must be at least 2 (a covariance needs two samples)")
    info = store.find_run(run)  # a mistyped run is answered before torch is imported
    from ganctl import evaluate as ev
    from ganctl import runtime

    dev = runtime.resolve_device(device)
    result, path = ev.evaluate_run(info, n=n, seed=seed, device=dev, checkpoint_path=checkpoint, progress=ui.info)
    _print(result)
    ui.result(path)


def _print(r: dict) -> None:
    from rich.table import Table

    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_column()
    epoch = f", epoch {r['epoch']}" if r.get("epoch") is not None else ""
    table.add_row("run", r["run"], f"{r['checkpoint']}{epoch}, {r['n']:,} samples, seed {r['seed']}")
    table.add_row("Frechet distance", f"{r['frechet_distance']:.3f}", "generated vs real test images (lower is better)")
    table.add_row("reference", f"{r['real_train_vs_test_frechet_distance']:.3f}", "real training vs test images: the floor")
    if r.get("label_accuracy") is not None:
        table.add_row("label accuracy", f"{r['label_accuracy']:.3f}", "samples the classifier sees as the label asked for")
    table.add_row("classifier", f"{r['classifier_test_accuracy']:.3f}", f"test accuracy ({r['classifier']})")
    ui.err().print(table)


def register(app: typer.Typer) -> None:
    app.command(epilog=EXAMPLES, rich_help_panel="Train")(evaluate)
