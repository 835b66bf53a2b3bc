"""ganctl report"""

from __future__ import annotations

import typer

from ganctl.cli import ui

EXAMPLES = """
Examples:

  ganctl report dcgan/digits                  (writes RUN/report/index.html)

  ganctl report dcgan/digits wgan/digits -o cmp/

  ganctl report dcgan/digits --gif            (writes RUN/progress.gif)
"""


def report(
    runs: list[str] = typer.Argument(..., help="The runs: NAME, FAMILY/NAME or run folders (see 'ganctl list')."),
    output: str = typer.Option(None, "--output", "-o", help="Folder to write index.html into, or a .html path (default: RUN/report/ for one run, ./ganctl-report/ for several)."),
    gif: bool = typer.Option(False, "--gif", help="Write each run's progress.gif (every epoch's picture as one animation) instead of the page."),
) -> None:
    """Look at runs: one HTML page with the config, fast paths, curves, epoch numbers, every epoch's pictures and the checkpoints."""
    if gif:
        _gifs(runs, output)
        return
    from ganctl.report import write_report

    ui.result(write_report(runs, output, say=ui.info))


def _gifs(refs: list[str], output: str | None) -> None:
    from ganctl.core.errors import GanctlError
    from ganctl.report import progress_gif, rundata

    if output is not None:
        raise GanctlError("--gif writes progress.gif into each run's folder: leave out -o")
    infos = [rundata.resolve(r) for r in refs]  # every name checked before anything is written
    for info in infos:
        made = progress_gif.write_for_report(info.path, info.id)
        if made.skipped:
            ui.warn(f"{len(made.skipped)} unreadable picture(s) left out: {', '.join(p.name for p in made.skipped)}")
        ui.info(f"{info.id}: {len(made.epochs)} frames (epochs {made.epochs[0]}-{made.epochs[-1]})")
        ui.result(made.path)


def register(app: typer.Typer) -> None:
    app.command(epilog=EXAMPLES, rich_help_panel="Train")(report)
