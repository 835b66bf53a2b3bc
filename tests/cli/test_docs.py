"""The docs name only options that exist: every ``--option`` in ``docs/COMMAND.md`` is one that
``ganctl COMMAND --help`` shows.

Docs and commands are both read when the test runs, so a new command, option or page is covered
without editing this file. An option is checked against the command the text gives it to:
``ganctl sample --run`` (or ``sample --run`` at the start of a code span) is sample's wherever it
is written; elsewhere it is the page's command's (docs/pretrained.md: import, export and download).
Options of other programs are left out: those after a ``*.py`` script or ``python`` in the same
code span or code line, and the official pix2pix code's options in a paragraph that speaks of it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import invoke

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGE_COMMANDS = {"pretrained": ("import", "export", "download")}  # pages that are not named after one command
# the official junyanz/pytorch-CycleGAN-and-pix2pix options the docs compare ganctl's with
OFFICIAL = {"--norm", "--eval", "--ngf", "--ndf", "--netG", "--dataroot", "--model", "--name", "--direction"}
ROOT = ""  # the group itself: ganctl --version

_OPTION = re.compile(r"(?<![\w-])--[a-zA-Z][a-zA-Z0-9-]*(?![\w])")
_FENCE = re.compile(r"^\s*```")


def _commands() -> dict[str, object]:
    import typer.main

    from ganctl.cli import app

    group = typer.main.get_command(app)
    return {ROOT: group, **group.commands}


def _declared(command) -> set[str]:
    return {o for p in command.params if not getattr(p, "hidden", False) for o in (*p.opts, *p.secondary_opts)} | {"--help"}


def _scopes(line: str, in_code_block: bool, commands) -> list[tuple[int, int, str | None]]:
    """(start, end, owner) for each place the line hands options to a command (owner: its name,
    ROOT, or None for another program); a later one wins where they overlap."""
    spans = [] if in_code_block else [m.span() for m in re.finditer(r"`[^`]*`", line)]
    quotes = [m.span() for m in re.finditer(r"'ganctl [^']*'", line)]

    def end_of(pos: int) -> int:
        for a, b in quotes + spans:  # the innermost first: a quoted command inside a code span
            if a <= pos < b:
                return b
        return len(line)

    found = []
    for m in re.finditer(r"\bganctl(?: ([a-z][a-z-]*))?", line):
        name = m.group(1)
        if name in commands:
            found.append((m.start(), end_of(m.start()), name))
        elif name is None and line[m.end():].lstrip().startswith("-"):
            found.append((m.start(), end_of(m.start()), ROOT))
    for a, b in spans:  # `sample --run`: a code span that starts with a command's name
        m = re.match(r"`([a-z][a-z-]*) -", line[a:b])
        if m and m.group(1) in commands:
            found.append((a, b, m.group(1)))
    for m in re.finditer(r"\S+\.py\b|\bpython\b", line):  # another program's options
        found.append((m.start(), end_of(m.start()), None))
    for m in re.finditer(r"(?:^|`)\s*(?:tensorboard|wandb|mlflow) ", line):  # the trackers' own commands
        found.append((m.start(), end_of(m.start()), None))
    return sorted(found)


def named_options(text: str, page: tuple[str, ...], commands) -> list[tuple[int, str, tuple[str, ...] | None]]:
    """(line number, option, the commands it must be on; None: another program's) for each
    ``--option`` the page names."""
    out = []
    in_code_block = False
    lines = text.splitlines()
    official = _official_paragraphs(lines)
    for number, line in enumerate(lines, 1):
        if _FENCE.match(line):
            in_code_block = not in_code_block
            continue
        scopes = _scopes(line, in_code_block, commands)
        for m in _OPTION.finditer(line):
            owners = [owner for a, b, owner in scopes if a < m.start() < b]
            if owners:
                owner = owners[-1]
                out.append((number, m.group(), None if owner is None else (owner,)))
            elif number in official and m.group() in OFFICIAL:
                out.append((number, m.group(), None))
            else:
                out.append((number, m.group(), page))
    return out


def _official_paragraphs(lines: list[str]) -> set[int]:
    """Numbers of the lines whose paragraph speaks of the official pix2pix code."""
    found, paragraph = set(), []
    for number, line in enumerate([*lines, ""], 1):
        if line.strip():
            paragraph.append(number)
            continue
        if any("official" in lines[n - 1].lower() for n in paragraph):
            found.update(paragraph)
        paragraph = []
    return found


def _pages() -> list[tuple[str, tuple[str, ...]]]:
    commands = _commands()
    pages = []
    for doc in sorted(DOCS.glob("*.md")):
        page = PAGE_COMMANDS.get(doc.stem) or ((doc.stem,) if doc.stem in commands and doc.stem != ROOT else None)
        if page:
            pages.append((doc.name, page))
    return pages


def test_every_command_has_a_page():
    covered = {c for _, page in _pages() for c in page}
    missing = sorted(set(_commands()) - covered - {ROOT, "version"})  # version: docs/env.md
    assert missing == [], f"commands without a docs/NAME.md page: {missing}"


@pytest.mark.parametrize(("doc", "page"), _pages(), ids=[name for name, _ in _pages()])
def test_every_option_a_page_names_exists(doc, page):
    commands = _commands()
    helps = {}
    wrong = []
    for number, option, owners in named_options((DOCS / doc).read_text(encoding="utf-8"), page, commands):
        if owners is None:
            continue
        if not any(option in _declared(commands[c]) for c in owners):
            wrong.append(f"docs/{doc}:{number}: {option} is not an option of {' or '.join(o or 'ganctl' for o in owners)}")
            continue
        for c in owners:  # and --help shows it
            if option in _declared(commands[c]):
                if c not in helps:
                    r = invoke(*([c] if c else []), "--help")
                    assert r.exit_code == 0, r.output
                    helps[c] = r.output
                assert option in helps[c], f"{option} is declared by {c or 'ganctl'} but its --help does not show it"
    assert wrong == []


def test_the_check_finds_an_option_a_page_gives_the_wrong_command():
    commands = _commands()
    text = "\n".join([
        "Use `--num 4` and `--no-such-flag`.",                       # the page's command: sample
        "Then `ganctl train dcgan --dataset digits --resume`.",     # train's, in a code span
        "An error: `no run: train one with 'ganctl train gan --dataset digits', or pass --checkpoint`",
        "Official `test.py --dataroot x` loads with",                # another program's
        "`--norm batch`.",
        "```",
        "ganctl --version",
        "python benchmarks/profile_step.py --ab",
        "tensorboard --logdir runs",
        "```",
        "`ganctl train dcgan --log tensorboard`, then `tensorboard --logdir RUN`.",
    ])
    got = named_options(text, ("sample",), commands)
    assert got == [
        (1, "--num", ("sample",)), (1, "--no-such-flag", ("sample",)),
        (2, "--dataset", ("train",)), (2, "--resume", ("train",)),
        (3, "--dataset", ("train",)), (3, "--checkpoint", ("sample",)),
        (4, "--dataroot", None), (5, "--norm", None),
        (7, "--version", (ROOT,)),
        (8, "--ab", None),
        (9, "--logdir", None),
        (11, "--log", ("train",)), (11, "--logdir", None),
    ]
    missing = [o for _, o, owners in got if owners and not any(o in _declared(commands[c]) for c in owners)]
    assert missing == ["--no-such-flag"]


def test_the_source_files_the_docs_name_exist():
    """A path such as ``ganctl/train/objectives/cyclegan.py`` or ``benchmarks/faults.py`` in the docs
    or the README names a file of the repository (the package moved into stage folders once)."""
    repo = DOCS.parent
    pages = [*DOCS.glob("*.md"), repo / "README.md"]
    named = {m for page in pages for m in re.findall(r"\b(?:ganctl|benchmarks|tests)/[\w/]+\.py\b", page.read_text())
             if not re.search(r"/[A-Z]+\.py$", m)}  # ganctl/families/NAME.py: a pattern
    assert len(named) > 10
    assert sorted(p for p in named if not (repo / p).is_file()) == []
