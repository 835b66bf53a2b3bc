"""ganctl download"""

from __future__ import annotations

import typer

from ganctl.cli import completion, ui

EXAMPLES = """
Examples:

  ganctl download                 (list what can be downloaded)

  ganctl download mnist

  ganctl download fashion-mnist --mirror https://my.mirror.example/fashion/
"""


def download(
    name: str = typer.Argument(None, help="Dataset to fetch; leave out to list them.", autocompletion=completion.datasets),
    mirror: str = typer.Option(None, "--mirror", envvar="GANCTL_MIRROR", help="Base URL that serves the same file names."),
) -> None:
    """Download a dataset into the store (verified against its published checksums)."""
    from ganctl.data import catalog, fetch
    from ganctl.store import human_size

    if name is None:
        from rich.table import Table

        table = Table(title="Datasets", title_justify="left", box=None, pad_edge=False)
        for col in ("name", "size", "status", "description"):
            table.add_column(col)
        for e in catalog.CATALOG.values():
            if e.layout == "embedded":
                status, size = "built in", "-"
            else:
                status, size = ("in store" if e.is_present() else "not downloaded"), human_size(e.download_size)
            table.add_row(e.name, size, status, e.summary)
        ui.err().print(table)
        return
    entry = catalog.get(name)
    if entry.layout == "embedded":
        ui.info(f"{name} ships with ganctl: nothing to download")
        ui.result(entry.local_dir())
        return
    if entry.is_present():
        ui.info(f"{name} is already in the store")
    progress = ui.DownloadProgress()
    path = fetch.fetch(entry, mirror, progress.for_file)
    ui.result(path)


def register(app: typer.Typer) -> None:
    app.command(epilog=EXAMPLES, rich_help_panel="Models and data")(download)
