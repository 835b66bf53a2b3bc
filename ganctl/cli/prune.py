"""ganctl prune: delete a run's older checkpoints (the newest and the marked epochs stay)."""

from __future__ import annotations

import typer

from ganctl.cli import ui
from ganctl.core import storedirs


def prune(
    run: str = typer.Argument(..., metavar="RUN", help="The run: NAME, FAMILY/NAME, or a run folder."),
    keep: int = typer.Option(1, "--keep", min=1, help="Checkpoints kept, the newest among them (default: the newest alone, all an exact --resume needs). Epochs marked with 'train --keep-epochs' are kept besides."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be deleted, delete nothing."),
) -> None:
    """Delete a run's older and damaged checkpoints to free space; the newest and the marked epochs stay.

    The newest checkpoint is all an exact --resume needs; epochs marked with 'train --keep-epochs'
    are never deleted. Leftovers of killed saves go too."""
    import sys

    from ganctl.core.errors import GanctlError
    from ganctl.store import layout, retention

    r = layout.find_run(run).check()  # a damaged config.json: its marked epochs are unknown
    if not layout.in_runs_dir(r.path):
        raise GanctlError(f"{r.path} is not a run in the store ({storedirs.runs_dir()}); ganctl only prunes its own runs")
    then = "or stop it, then prune it"
    layout.check_run_idle(r.path, r.id, then=then)
    marked = tuple(r.config().get("keep_epochs") or ())
    plan = retention.plan(r.path, keep, marked)
    size = {p: storedirs.dir_size(p) for p in [*plan.kept, *plan.gone]}
    why = {**{p: "older" for p in plan.checkpoints}, **{p: "damaged (moved aside by a resume)" for p in plan.broken},
           **{p: "left by a killed save" for p in plan.leftovers}}
    for p in plan.kept:
        reason = "newest" if p == plan.newest else ("marked" if retention.epoch_of(p) in marked else f"--keep {keep}")
        ui.info(f"keep    {p.name}  {storedirs.human_size(size[p])}  ({reason})")
    for p in plan.gone:
        ui.info(f"delete  {p.name}  {storedirs.human_size(size[p])}  ({why[p]})")
    total = sum(size[p] for p in plan.gone)
    if not plan.gone:
        ui.info(f"Nothing to prune in {r.id}." + ("" if plan.kept else " It has no checkpoints."))
        return
    if dry_run:
        ui.info(f"Dry run: would free {storedirs.human_size(total)}; no files were deleted.")
        return
    if not (yes or sys.stdin.isatty()):  # asked only once there is something to delete
        raise GanctlError("refusing to delete without confirmation: pass --yes (or --dry-run to see what would go)")
    if not yes and not typer.confirm(f"Delete {len(plan.gone)} folder(s) of {r.id}, {storedirs.human_size(total)}?", default=False, err=True):
        raise typer.Exit(1)
    with layout.run_lock(r.path, r.id, then=then):  # no save or other prune meanwhile
        if [p.name for p in retention.plan(r.path, keep, marked).gone] != [p.name for p in plan.gone]:
            raise GanctlError(f"run {r.id} changed while you answered: nothing was deleted; run 'ganctl prune {run}' again")
        retention.prune_run(r.path, keep, marked)
    ui.info(f"Freed {storedirs.human_size(total)}.")
    ui.result(r.id)


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Models and data")(prune)
