"""The report page: one HTML file, no script, nothing fetched from the network.

Pictures are embedded as ``data:`` URIs, so the page is one file that can be mailed or archived.
A run whose pictures add up to more than :data:`EMBED_LIMIT` (a 200-epoch pix2pix run holds
hundreds of MB of validation grids) has them copied into ``<page>_files/`` beside the page instead:
a browser opens a page of that size slowly or not at all.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path

from ganctl import __version__, augment_spec
from ganctl.core import storedirs
from ganctl.core.atomic import atomic_write
from ganctl.report import svg
from ganctl.report.rundata import Checkpoint, RunData

EMBED_LIMIT = 48 * 2**20  # bytes of pictures a page embeds; past it they are written beside it
MIME = {".png": "image/png", ".gif": "image/gif"}

Say = Callable[[str], None]

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1200px;padding:0 16px;color:#222}
h1{font-size:22px}h2{font-size:19px;border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:36px}h3{font-size:16px;margin-top:24px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right;vertical-align:top}
th{background:#f4f4f4}td.l,th.l{text-align:left}code,pre{font:12px/1.4 ui-monospace,Menlo,Consolas,monospace}
pre{background:#f7f7f7;padding:8px;overflow:auto;max-height:480px}.muted{color:#777}
.charts{display:flex;flex-wrap:wrap;gap:12px}.chart{background:#fff;border:1px solid #eee}
.chart .title{font-size:13px;font-weight:600}.chart .tick{font-size:10px;fill:#555}
.chart .grid{stroke:#eee}.chart .frame{fill:none;stroke:#bbb}
.epochs{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
figure{margin:0;display:inline-block}figcaption{font-weight:600;margin-bottom:2px}
figure img{display:block;max-width:100%;height:auto;image-rendering:pixelated}.epochs img{max-width:400px}
.cols{display:grid;grid-template-columns:repeat(3,1fr);text-align:center;font-size:12px;color:#444}
"""


@dataclass
class Pictures:
    """Where the page's pictures go: into the page as data: URIs, or copied into ``folder``."""

    page: Path
    embed: bool

    @property
    def folder(self) -> Path:
        return self.page.parent / f"{self.page.stem}_files"

    def src(self, path: Path, name: str) -> str:
        data = path.read_bytes()
        if self.embed:
            mime = MIME.get(path.suffix.lower(), "application/octet-stream")
            return f"data:{mime};base64,{base64.b64encode(data).decode()}"
        atomic_write(self.folder / name, data)
        return f"{self.folder.name}/{name}"


def _image_size(path: Path) -> tuple[int, int] | str:
    """(width, height) of a picture that decodes, else why not (the page then says so instead of
    showing a broken image)."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.verify()
            return img.size
    except Exception as e:  # noqa: BLE001 - any decoder error: the picture is reported unreadable
        return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


def _img(pics: Pictures, path: Path, name: str, alt: str) -> str:
    size = _image_size(path)
    if isinstance(size, str):
        return f'<p class="muted">{escape(str(path))} cannot be shown ({escape(size)})</p>'
    w, h = size
    return f'<img src="{escape(pics.src(path, name))}" width="{w}" height="{h}" alt="{escape(alt)}">'


def _num(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return escape(str(v))


def _table(head: Sequence[str] | None, rows: Sequence[Sequence[object]], left: int = 1) -> str:
    """A table whose first ``left`` columns are text (left-aligned) and the others numbers; no
    header row when ``head`` is None."""
    def cell(tag: str, i: int, v: object) -> str:
        cls = ' class="l"' if i < left else ""
        return f"<{tag}{cls}>{v if isinstance(v, _Raw) else _num(v)}</{tag}>"

    out = ["<table>"]
    if head is not None:
        out += ["<tr>", *(cell("th", i, h) for i, h in enumerate(head)), "</tr>"]
    for r in rows:
        out += ["<tr>", *(cell("td", i, v) for i, v in enumerate(r)), "</tr>"]
    out.append("</table>")
    return "".join(out)


class _Raw(str):
    """Markup a table cell shows as it is."""


def _charts(runs: Sequence[RunData]) -> str:
    """One chart per logged series (per step), then one per validation/evaluation number (per
    epoch), with every run's line on it."""
    several = len(runs) > 1
    out = ["<h2 id=\"curves\">Curves</h2>", '<div class="charts">']
    step_keys = list(dict.fromkeys(k for r in runs for k in r.step_keys))
    for key in step_keys:
        lines = [(r.id, svg.color(i), r.series(key)) for i, r in enumerate(runs) if key in r.step_keys]
        out.append(svg.line_chart(lines if several else [(key, svg.color(0), lines[0][2])], key, "step"))
    epoch_keys = list(dict.fromkeys(k for r in runs for k in r.epoch_keys))
    for key in epoch_keys:
        lines = [(r.id, svg.color(i), [(e.epoch, e.numbers[key]) for e in r.epochs if key in e.numbers])
                 for i, r in enumerate(runs)]
        out.append(svg.line_chart([ln for ln in lines if ln[2]], key, "epoch"))
    if not step_keys and not epoch_keys:
        out.append('<p class="muted">No metrics logged yet (metrics.jsonl is empty or missing).</p>')
    out.append("</div>")
    return "".join(out)


def _comparison(runs: Sequence[RunData]) -> str:
    finals = [r.final() for r in runs]
    keys = list(dict.fromkeys(k for f in finals for k in f))
    head = ["run", "family", "dataset", "epochs", "steps", *keys]
    rows = []
    for i, (r, f) in enumerate(zip(runs, finals, strict=True)):
        swatch = _Raw(f'<span style="color:{svg.color(i)}">&#9632;</span> <a href="#{escape(r.slug)}">{escape(r.id)}</a>')
        rows.append([swatch, r.config.get("family", "?"), r.config.get("dataset", "?"),
                     f"{r.epochs_done}/{r.config.get('epochs', '?')}", r.steps, *(f.get(k, "-") for k in keys)])
    note = '<p class="muted">Means over each run\'s last epoch; validation and evaluation numbers as last recorded.</p>'
    return f'<h2 id="comparison">Comparison</h2>{note}{_table(head, rows, left=3)}'


def _about(r: RunData) -> str:
    c = r.config
    rows = [("folder", _Raw(f"<code>{escape(str(r.path))}</code>")), ("family", c.get("family")),
            ("dataset", c.get("dataset")), ("preset", c.get("preset")), ("preset source", c.get("preset_source")),
            ("epochs", f"{r.epochs_done} done of {c.get('epochs', '?')}"), ("steps", r.steps),
            ("augmentation", _augmentation(c)),
            ("created", c.get("created")), ("ganctl", c.get("ganctl_version"))]
    return _table(None, [(_Raw(f"<b>{k}</b>"), v if v is not None else "-") for k, v in rows], left=2)


def _augmentation(config: dict) -> str:
    """What the run's discriminators saw (``--augment``); runs from before it existed had none."""
    aug = config.get("augment") or {}
    return augment_spec.describe(aug) if not augment_spec.check(aug) else f"unreadable: {aug!r:.60}"


def _sessions(r: RunData) -> str:
    out = ["<h3>Fast paths</h3>"]
    if not r.sessions:
        out.append('<p class="muted">Not recorded: this run was trained before ganctl wrote runtime.json.</p>')
        return "".join(out)
    rows = [(s.get("started", "?"), s.get("device", "?"), ", ".join(map(str, s.get("fast_paths", []))) or "-",
             s.get("torch", "?"), s.get("epoch", "?"), s.get("step", "?")) for s in r.sessions]
    out.append('<p class="muted">One row per training session (a resume adds one): where it started, what it '
               "ran on and the fast paths it used, as the first line of 'ganctl train' said.</p>")
    out.append(_table(["started", "device", "fast paths", "torch", "from epoch", "from step"], rows, left=4))
    return "".join(out)


def _epoch_table(r: RunData) -> str:
    out = ["<h3>Epochs</h3>"]
    if not r.epochs:
        out.append('<p class="muted">No epoch logged yet.</p>')
        return "".join(out)
    means = list(dict.fromkeys(k for e in r.epochs for k in e.means))
    numbers = list(dict.fromkeys(k for e in r.epochs for k in e.numbers))
    rows = [(e.epoch if e.complete else f"{e.epoch} (interrupted)", f"{e.first_step}-{e.last_step}",
             *(e.means.get(k, "-") for k in means), *(e.numbers.get(k, "-") for k in numbers)) for e in r.epochs]
    if numbers:
        out.append('<p class="muted">Losses: means over the epoch\'s steps; val_ and eval_ numbers: as recorded at '
                   "the end of the epoch.</p>")
    else:
        out.append('<p class="muted">Means over the epoch\'s steps.</p>')
    out.append(_table(["epoch", "steps", *means, *numbers], rows, left=0))
    return "".join(out)


def _samples(r: RunData, pics: Pictures) -> str:
    if not r.paired:
        what = "Samples from fixed noise"
    else:  # one band of columns: pairs; a band each way: translations there and back (CycleGAN)
        what = "Validation pairs" if len(r.columns) <= 1 else "Translations each way and back"
    out = [f"<h3>{what}, every epoch</h3>"]
    if not r.pictures:
        out.append('<p class="muted">No epoch picture yet (samples/epoch_NNNN.png).</p>')
        return "".join(out)
    # the first band's heads above the picture, the next bands' (the rows below it) under it
    heads = [f'<div class="cols">{"".join(f"<span>{escape(c)}</span>" for c in band)}</div>' for band in r.columns]
    out.append('<div class="epochs">')
    for epoch, path in r.pictures:
        img = _img(pics, path, f"{r.slug}/{path.name}", f"{r.id} epoch {epoch}")
        out.append(f"<figure><figcaption>epoch {epoch}</figcaption>{''.join(heads[:1])}{img}{''.join(heads[1:])}</figure>")
    out.append("</div>")
    return "".join(out)


def _checkpoint_row(c: Checkpoint) -> tuple:
    name = _Raw(f"<code>{escape(str(c.path))}</code>" + (" (latest)" if c.latest else ""))
    return (name, "?" if c.epoch is None else c.epoch, "?" if c.step is None else c.step, storedirs.human_size(c.size))


def _checkpoints(r: RunData) -> str:
    out = ["<h3>Checkpoints</h3>"]
    if not r.checkpoints:
        out.append('<p class="muted">No checkpoint yet.</p>')
    else:
        out.append(_table(["folder", "epoch", "step", "size"], [_checkpoint_row(c) for c in r.checkpoints]))
    return "".join(out)


def _run_section(r: RunData, pics: Pictures) -> str:
    out = [f'<h2 id="{escape(r.slug)}">{escape(r.id)}</h2>', _about(r), _sessions(r)]
    if r.gif is not None:
        out.append("<h3>Progress</h3>")
        out.append(f"<figure>{_img(pics, r.gif, f'{r.slug}/progress.gif', f'{r.id} progress')}</figure>")
    out += [_epoch_table(r), _samples(r, pics), _checkpoints(r)]
    out.append("<h3>Config</h3><details open><summary>config.json</summary>"
               f"<pre>{escape(json.dumps(r.config, indent=2, sort_keys=True))}</pre></details>")
    return "".join(out)


def render(runs: Sequence[RunData], pics: Pictures) -> str:
    """The page's HTML."""
    ids = ", ".join(r.id for r in runs)
    toc = " &middot; ".join([*(['<a href="#comparison">comparison</a>'] if len(runs) > 1 else []),
                             '<a href="#curves">curves</a>',
                             *(f'<a href="#{escape(r.slug)}">{escape(r.id)}</a>' for r in runs)])
    when = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    # the policy forbids every fetch but the page's own pictures: a page that loads nothing else
    csp = "default-src 'none'; img-src data: 'self'; style-src 'unsafe-inline'"
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f'<meta http-equiv="Content-Security-Policy" content="{csp}">',
             '<meta name="viewport" content="width=device-width,initial-scale=1">',
             f"<title>ganctl report: {escape(ids)}</title><style>{CSS}</style></head><body>",
             f"<h1>ganctl report: {escape(ids)}</h1>",
             f'<p class="muted">Written {escape(when)} by ganctl {escape(__version__)}. {toc}</p>']
    if len(runs) > 1:
        parts.append(_comparison(runs))
    parts.append(_charts(runs))
    parts += [_run_section(r, pics) for r in runs]
    parts.append("</body></html>\n")
    return "".join(parts)


def picture_bytes(runs: Sequence[RunData]) -> int:
    paths = [p for r in runs for _, p in r.pictures] + [r.gif for r in runs if r.gif is not None]
    total = 0
    for p in paths:
        try:
            total += os.stat(p).st_size
        except OSError:
            pass
    return total


def write(runs: Sequence[RunData], page: Path, say: Say) -> Path:
    """Write the page of ``runs`` to ``page`` (atomically); returns its path."""
    taken: set[str] = set()
    for r in runs:  # two folders of the same FAMILY/NAME (copies outside the store) get their own anchors
        base = r.id.replace("/", "-")
        r.slug, k = base, 1
        while r.slug in taken:
            k += 1
            r.slug = f"{base}-{k}"
        taken.add(r.slug)
    size = picture_bytes(runs)
    # a page written through a device or a pipe (-o /dev/stdout) has no folder beside it: all in it
    stream = Path(page).exists() and not Path(page).is_file()
    pics = Pictures(Path(page), embed=size <= EMBED_LIMIT or stream)
    if not pics.embed:
        say(f"the pictures ({storedirs.human_size(size)}) are too many to embed: they are written to "
            f"{pics.folder}, which the page needs beside it")
    atomic_write(Path(page), render(runs, pics).encode())
    return Path(page)
