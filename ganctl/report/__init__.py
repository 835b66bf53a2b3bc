"""``ganctl report``: a run looked at in one page, and its epochs as one animation.

- :mod:`.rundata` reads what a run folder holds (config, metrics, pictures, checkpoints), torch-free;
- :mod:`.page` writes the HTML page, :mod:`.svg` draws its charts;
- :mod:`.progress_gif` writes ``progress.gif`` (the training callback
  :class:`ganctl.train.callbacks.animation.ProgressAnimation` calls it at the end of a run).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from ganctl.core.errors import GanctlError

PAGE = "index.html"


def page_path(run_dirs: Sequence[Path], output: str | None) -> Path:
    """Where the page goes: ``-o``'s folder (as ``index.html``) or ``.html`` file; by default
    ``RUN/report/index.html`` for one run, ``./ganctl-report/index.html`` for several."""
    if output is None:
        return (Path(run_dirs[0]) / "report" if len(run_dirs) == 1 else Path("ganctl-report")) / PAGE
    out = Path(output).expanduser()
    if out.suffix.lower() in (".html", ".htm") and not out.is_dir():
        return out
    if out.exists() and not out.is_dir() and not out.is_file():  # /dev/null, /dev/stdout: written through
        return out
    if out.exists() and not out.is_dir():
        raise GanctlError(f"-o {output} is a file: give a folder (the page is written into it as {PAGE}) "
                          "or a path ending in .html")
    return out / PAGE


def write_report(refs: Sequence[str], output: str | None = None, say: Callable[[str], None] = print) -> Path:
    """The page of the runs ``refs`` name (NAME, FAMILY/NAME or run folders); returns its path."""
    from ganctl.report import page, rundata

    infos = list({i.path: i for i in map(rundata.resolve, refs)}.values())  # a run named twice: once
    runs = [rundata.load(i) for i in infos]
    for run in runs:
        if run.damaged_rows:
            say(f"{run.id}: {run.damaged_rows} damaged line(s) of metrics.jsonl skipped")
    return page.write(runs, page_path([r.path for r in runs], output), say)
