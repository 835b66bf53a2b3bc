"""ganctl download"""

from __future__ import annotations

import typer

from ganctl.cli import completion, ui

EXAMPLES = """
Examples:

  ganctl download                 (list what can be downloaded)

  ganctl download mnist

  ganctl download fashion-mnist --mirror https://my.mirror.example/fashion/

  ganctl download facades         (pix2pix pairs: train/, val/, test/ of A|B images)

  ganctl download horse2zebra     (CycleGAN unpaired sets: trainA/, trainB/, testA/, testB/)

  ganctl download maps-unpaired   (CycleGAN's maps; 'maps' is the pix2pix archive)

  ganctl download facades_label2photo     (official pretrained pix2pix weights)

  ganctl download edges2shoes_pretrained  (the model; 'edges2shoes' is the dataset)

  ganctl download inception       (the Inception-v3 weights of FID, KID and precision/recall)
"""


def download(
    name: str = typer.Argument(None, help="Dataset or pretrained model to fetch; leave out to list them.", autocompletion=completion.downloadables),
    mirror: str = typer.Option(None, "--mirror", envvar="GANCTL_MIRROR", help="Base URL that serves the same file names."),
) -> None:
    """Download a dataset into the store (verified against its published checksums, or its image counts)."""
    from ganctl.core.storedirs import human_size
    from ganctl.data import catalog, fetch

    if name is None:
        from rich.table import Table

        table = Table(title="Datasets", title_justify="left", box=None, pad_edge=False)
        for col in ("name", "size", "status", "description"):
            table.add_column(col)
        for e in catalog.CATALOG.values():
            if e.layout == "embedded":
                status, size = "built in", "-"
            elif e.layout == "generated":
                status, size = ("in store" if e.is_present() else "generated on first use"), "-"
            elif e.layout == "manual":
                status, size = "prepare by hand", "-"
            else:
                exact = all(f.size for f in e.files)
                size = ("" if exact else "~") + human_size(e.download_size) if e.download_size else "unknown"
                status = "in store" if e.is_present() else "not downloaded"
            table.add_row(e.name, size, status, e.summary)
        ui.err().print(table)
        _list_pretrained()
        _list_weights()
        return
    from ganctl.evaluation import weights

    if name in weights.CATALOG:
        _download_weights(name, mirror)
        return
    if name not in catalog.CATALOG:  # datasets first: 'edges2shoes' is the dataset, edges2shoes_pretrained the model
        from ganctl.core.errors import did_you_mean
        from ganctl.store import pretrained

        if pretrained.find(name) is None:
            raise did_you_mean("dataset or pretrained model", name,
                               [*catalog.CATALOG, *pretrained.download_names(), *weights.CATALOG])
        _download_pretrained(name, mirror)
        return
    entry = catalog.get(name)
    if entry.layout == "embedded":
        ui.info(f"{name} ships with ganctl: nothing to download")
        ui.result(entry.local_dir())
        return
    if entry.is_present():
        ui.info(f"{name} is already in the store")
    elif entry.layout == "generated":
        ui.info(f"{name} is made by ganctl, not downloaded: generating it")
    progress = ui.DownloadProgress()
    path = fetch.fetch(entry, mirror, progress.for_file)
    ui.result(path)


def _list_pretrained() -> None:
    from rich.table import Table

    from ganctl.core.storedirs import human_size
    from ganctl.store import pretrained

    table = Table(title="Pretrained pix2pix and CycleGAN models (official weights)", title_justify="left", box=None, pad_edge=False)
    for col in ("name", "family", "size", "status", "direction", "description", "trained on"):
        table.add_column(col, no_wrap=col in ("name", "size"))
    for shown, m in zip(pretrained.download_names(), pretrained.CATALOG.values(), strict=True):
        present = (pretrained.model_dir(m.name) / pretrained.GENERATOR).is_file()
        table.add_row(shown, m.family, "~" + human_size(m.approx_size), "in store" if present else "not downloaded",
                      m.direction, m.description, m.dataset)
    ui.err().print()
    ui.err().print(table)


def _download_pretrained(name: str, mirror: str | None) -> None:
    from ganctl.models.cyclegan_official import summary as architecture_summary
    from ganctl.store import pretrained, pretrained_install

    model = pretrained.lookup(name)
    if (pretrained.model_dir(model.name) / pretrained.GENERATOR).is_file():
        ui.info(f"{model.name} is already in the store")
    path = pretrained_install.fetch(name, mirror, ui.DownloadProgress().for_file)
    meta = pretrained.read_meta(path)
    ui.info(f"{model.name}: {model.description} ({meta['direction']}), {architecture_summary(meta['generator'])}")
    ui.result(path)


def _list_weights() -> None:
    from rich.table import Table

    from ganctl.core.storedirs import human_size
    from ganctl.evaluation import weights

    table = Table(title="Feature extractor weights (ganctl evaluate)", title_justify="left", box=None, pad_edge=False)
    for col in ("name", "size", "status", "description"):
        table.add_column(col, no_wrap=col in ("name", "size"))
    for w in weights.CATALOG.values():
        table.add_row(w.name, human_size(w.size), "in store" if weights.is_present(w) else "not downloaded", w.description)
    ui.err().print()
    ui.err().print(table)


def _download_weights(name: str, mirror: str | None) -> None:
    from ganctl.evaluation import weights

    w = weights.CATALOG[name]
    if weights.is_present(w):
        ui.info(f"{name} is already in the store")
    path = weights.fetch(name, mirror, ui.DownloadProgress().for_file)
    ui.info(f"{name}: {w.file}, sha256 {w.sha256}")
    ui.result(path)


def register(app: typer.Typer) -> None:
    app.command(epilog=EXAMPLES, rich_help_panel="Models and data")(download)
