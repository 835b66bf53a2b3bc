"""ganctl list, ganctl rm, ganctl env"""

from __future__ import annotations

import typer

from ganctl.cli import ui
from ganctl.core import storedirs


def list_(
    runs_only: bool = typer.Option(False, "--runs", help="Only the runs, one id per line on stdout (for scripts)."),
) -> None:
    """Model families, datasets, pretrained models and runs in the store, and its disk use by kind."""
    from rich.table import Table

    from ganctl.data import catalog
    from ganctl.families import registry
    from ganctl.store import layout

    runs = layout.list_runs()
    if runs_only:
        for r in runs:
            ui.result(r.id)
        return
    con = ui.err()
    fams = Table(title="Model families", title_justify="left", box=None, pad_edge=False)
    for col in ("model", "description", "conditional", "dataset presets"):
        fams.add_column(col)
    for f in registry.FAMILIES.values():
        fams.add_row(f.name, f.summary, "yes" if f.conditional else "no", ", ".join(f.presets))
    con.print(fams)
    con.print()
    data = Table(title="Datasets", title_justify="left", box=None, pad_edge=False)
    for col in ("name", "in store", "size"):
        data.add_column(col)
    for e in catalog.CATALOG.values():
        present = e.layout == "embedded" or e.is_present()
        size = storedirs.dir_size(e.local_dir()) if present and e.layout != "embedded" else 0
        data.add_row(e.name, "built in" if e.layout == "embedded" else ("yes" if present else "no"), storedirs.human_size(size) if size else "-")
    con.print(data)
    con.print()
    _print_pretrained(con)
    con.print()
    table = Table(title=f"Runs in {storedirs.runs_dir()}", title_justify="left", box=None, pad_edge=False)
    for col in ("run", "dataset", "epochs", "created", "size", "prunable"):
        table.add_column(col, no_wrap=col in ("run", "epochs", "size"), overflow="fold")  # the id is what rm and --run take: never cut
    damaged = []
    for r in runs:
        if r.damage:  # its reason goes below the table, on a line of its own; the others are listed as usual
            table.add_row(r.id, "damaged (see below)", "?", "", storedirs.human_size(storedirs.dir_size(r.path)), "-")
            damaged.append(f"{r.id} is damaged: {r.damage}; {layout.REPAIR_CONFIG}")
            continue
        cfg = r.config()
        done = _epochs_done(r.path)
        table.add_row(r.id, str(cfg.get("dataset", "?")), f"{_count(done)}/{_count(cfg.get('epochs', '?'))}",
                      cfg.get("created", "")[:16].replace("T", " "),
                      storedirs.human_size(storedirs.dir_size(r.path)), _prunable(r, cfg))
    con.print(table if runs else f"No runs yet in {storedirs.runs_dir()}: try {layout.train_hint('dcgan')}, or 'ganctl sample dcgan --pretrained digits-dcgan' for the shipped demo.")
    for line in damaged:
        con.print(line)
    con.print()
    _print_disk_use(con)


def _count(value: object) -> str:
    """An epoch count short enough for its column: a config may hold any integer (10**300 is
    valid JSON), and a column that may not wrap would squeeze every other one to nothing."""
    text = str(value)
    if not isinstance(value, int) or len(text) <= 9:
        return text
    return f"{text[0]}.{text[1:3]}e+{len(text) - 1}"


def _prunable(run, cfg: dict) -> str:
    """What 'ganctl prune RUN' would free, or '-'."""
    from ganctl.store import retention

    freed = sum(storedirs.dir_size(p) for p in retention.plan(run.path, marked=cfg.get("keep_epochs") or ()).gone)
    return storedirs.human_size(freed) if freed else "-"


def _print_disk_use(con) -> None:
    """The store's size by kind, with the command that frees each."""
    from rich.table import Table

    from ganctl.store import layout

    use = layout.disk_use()
    table = Table(title=f"Disk use in {layout.home()}", title_justify="left", box=None, pad_edge=False)
    for col in ("kind", "size", "freed by"):
        table.add_column(col)
    freed_by = {
        "datasets": "deleting datasets/NAME/ (downloaded again when used)",
        "caches": "ganctl rm --cache (made again when used)",
        "runs": "ganctl prune RUN (older checkpoints), ganctl rm RUN",
        "pretrained": "deleting pretrained/NAME/",
        "total": "",
    }
    for kind, what in freed_by.items():
        table.add_row(kind, storedirs.human_size(use[kind]) if use[kind] else "-", what)
    con.print(table)


def _print_pretrained(con) -> None:
    """The pretrained generators in the store (downloaded or imported), and those shipped with ganctl."""
    from rich.table import Table

    from ganctl.store import pretrained

    found = pretrained.installed() + pretrained.shipped()
    if not found:
        con.print(f"No pretrained models in {storedirs.pretrained_dir()}: 'ganctl download' lists the official ones.")
        return
    table = Table(title=f"Pretrained models in {storedirs.pretrained_dir()} (and shipped with ganctl)", title_justify="left", box=None, pad_edge=False)
    for col in ("name", "direction", "description", "source", "size"):
        table.add_column(col, no_wrap=col == "name")
    for m in found:
        meta = m["meta"]
        source = "shipped (read in place)" if m.get("shipped") else meta.get("source_url") or "-"
        table.add_row(m["name"], meta.get("direction") or "-", meta.get("description") or "(unreadable metadata)",
                      source, storedirs.human_size(m["path"].stat().st_size))
    con.print(table)


def _epochs_done(run_dir) -> int:
    import re

    latest = run_dir / "checkpoints" / "latest"
    try:
        tag = latest.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return 0
    m = re.match(r"epoch_(\d+)", tag)
    if m:
        return int(m.group(1))
    import json

    # an interrupt checkpoint: the last completed epoch is in the metrics
    try:
        lines = (run_dir / "metrics.jsonl").read_bytes().splitlines()
    except OSError:
        return 0
    for line in reversed(lines):
        try:  # a crash can leave the last line half-written (or bytes not UTF-8): use the last whole one
            epoch = json.loads(line.decode("utf-8"))["epoch"]
        except (ValueError, KeyError, TypeError, RecursionError):
            continue
        if isinstance(epoch, int) and not isinstance(epoch, bool):
            return max(0, epoch - 1)
    return 0


def rm(
    runs: list[str] = typer.Argument(None, metavar="RUNS", help="Runs to delete: NAME, FAMILY/NAME, or a run folder.", show_default=False),
    cache: bool = typer.Option(False, "--cache", help="Delete the caches ganctl makes again when needed: decoded image folders, evaluate's classifiers."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be deleted, delete nothing."),
) -> None:
    """Delete training runs (their checkpoints, samples and metrics) from the store, or with
    --cache the caches ganctl rebuilds."""
    from ganctl.core.errors import GanctlError
    from ganctl.store import layout

    runs = runs or []
    if not runs and not cache:
        raise typer.BadParameter("give the runs to delete (NAME, FAMILY/NAME or a run folder), or --cache", param_hint="'RUNS...'")
    found = [layout.find_run(r) for r in runs]
    for r in found:
        if not layout.in_runs_dir(r.path):
            raise GanctlError(f"{r.path} is not a run in the store ({storedirs.runs_dir()}); ganctl only deletes its own runs")
        layout.check_run_idle(r.path, r.id, then="or stop it, then delete it")
    import sys

    if not (yes or dry_run or sys.stdin.isatty()):
        raise GanctlError("refusing to delete without confirmation: pass --yes (or --dry-run to see what would go)")
    caches = layout.cache_files() if cache else []
    total = sum(storedirs.dir_size(r.path) for r in found) + sum(c.size for c in caches)
    for r in found:
        ui.info(f"{r.id}  {storedirs.human_size(storedirs.dir_size(r.path))}  {r.path}")
    for c in caches:
        ui.info(f"{c.what}  {storedirs.human_size(c.size)}  {c.path}")
    if cache and not caches:
        ui.info(f"No caches in {layout.home()}.")
        if not found:
            return
    if dry_run:
        ui.info(f"Dry run: would free {storedirs.human_size(total)}; no files were deleted.")
        return
    if not yes:
        what = " and ".join(x for x in (f"{len(found)} run(s)" if found else "", f"{len(caches)} cache file(s)" if caches else "") if x)
        if not typer.confirm(f"Delete {what}, {storedirs.human_size(total)}?", default=False, err=True):
            raise typer.Exit(1)
    for r in found:
        layout.delete_run(r)
        ui.result(r.id)
    for c in layout.delete_cache_files(caches):
        ui.result(c.path)


def env() -> None:
    """Versions, the device training would use, and the store's paths (for bug reports)."""
    import platform
    import sys

    import torch
    import torchvision

    from ganctl import __version__
    from ganctl.runtime import runtime
    from ganctl.store import layout

    rt = runtime.resolve("auto", "auto")
    rows = [
        ("ganctl", __version__),
        ("python", f"{platform.python_version()} ({sys.executable})"),
        ("torch", torch.__version__),
        ("torchvision", torchvision.__version__),
        ("platform", platform.platform()),
        ("cpu", f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, {torch.backends.cpu.get_cpu_capability()}, fast bf16: {'yes' if runtime.cpu_has_fast_bf16() else 'no'}"),
        ("cuda", f"{torch.version.cuda} - {torch.cuda.device_count()} GPU(s)" + (f": {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "") if torch.version.cuda else "not built with CUDA"),
        ("training device", rt.describe()),
        ("fast paths", "convolutional models: " + ", ".join(rt.fast_paths(True)) + "; fully connected: " + ", ".join(rt.fast_paths(False))),
        ("GANCTL_HOME", layout.home()),
        ("datasets", storedirs.datasets_dir()),
        ("runs", storedirs.runs_dir()),
        ("pretrained", storedirs.pretrained_dir()),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")


def version() -> None:
    """Print the version."""
    from ganctl import __version__

    print(f"ganctl {__version__}")


def register(app: typer.Typer) -> None:
    app.command(name="list", rich_help_panel="Models and data")(list_)
    app.command(rich_help_panel="Models and data")(rm)
    app.command(rich_help_panel="Info")(env)
    app.command(rich_help_panel="Info")(version)
