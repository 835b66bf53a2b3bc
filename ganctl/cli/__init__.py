"""The ganctl command line. Thin: parse, validate, call the library, print the result path.

No torch import happens here or in any command module at import time, so ``ganctl --help``
answers fast; each command imports what it needs inside its body.
"""

from __future__ import annotations

import os
import sys

import typer
from typer.core import TyperCommand, TyperGroup

from ganctl import __version__
from ganctl.core.errors import GanctlError, NoSpaceError, is_disk_full


def _debug() -> bool:
    return os.environ.get("GANCTL_DEBUG", "").lower() in ("1", "true", "yes")


def _fail(message: str, code: int = 1, lost_peer: bool = False) -> None:
    from rich.markup import escape

    from ganctl.cli import ui
    from ganctl.runtime import launch

    if launch.write_error(message, lost_peer):  # a worker of `train --nproc-per-node`: the launcher prints it, once
        raise typer.Exit(code)
    # escaped: a message's own brackets (pip install "ganctl[export]") are text, not markup
    ui.err().print(f"[red]error:[/red] {escape(message)}", markup=True, highlight=False)
    raise typer.Exit(code)


def _is_cli_control(e: BaseException) -> bool:
    """Exit, Abort and usage errors of Typer (or Click, in older Typer): theirs to handle."""
    return type(e).__module__.split(".")[0] in ("typer", "click")


def _plain_flags(params: list) -> list:
    """On/off flags take no value: show none in --help (Typer's rich help would print ``<bool>``)."""
    for p in params:
        if getattr(p, "is_flag", False) and p.metavar is None:
            p.metavar = ""
    return params


class _Command(TyperCommand):
    """Every command: flags without a metavar, and usage errors with the Usage line."""

    def get_params(self, ctx):
        return _plain_flags(super().get_params(ctx))

    def parse_args(self, ctx, args):
        ctx.meta["ganctl_args"] = list(args)  # as given: `train --nproc-per-node` passes them on to its workers
        try:
            return super().parse_args(ctx, args)
        except Exception as e:
            # Typer's parser raises "Option '--pretrained' requires an argument." (and "does not
            # take a value") without the context, so it was printed without Usage and --help lines
            if _is_cli_control(e) and hasattr(e, "ctx") and e.ctx is None:
                e.ctx, e.cmd = ctx, self
            raise


class _Group(TyperGroup):
    """The one error boundary: known errors become one line on stderr and exit 1."""

    def get_params(self, ctx):
        return _plain_flags(super().get_params(ctx))

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except GanctlError as e:
            if _debug():
                raise
            _fail(str(e))
        except KeyboardInterrupt:
            if _debug():
                raise
            _fail("interrupted", 130)
        except OSError as e:
            if _debug():
                raise
            if is_disk_full(e):
                _fail(str(NoSpaceError(e.filename)))
            where = f": {e.filename}" if e.filename else ""
            _fail(f"{e.strerror or e}{where}")
        except Exception as e:  # a bug: say so in one line, full traceback with GANCTL_DEBUG=1
            if _debug() or _is_cli_control(e):
                raise
            if is_disk_full(e):  # a writer that wrapped the OSError (torch, safetensors)
                _fail(str(NoSpaceError(getattr(e, "filename", None))))
            from ganctl.runtime import launch

            if launch.lost_peer(e):  # another rank of the job went away; the launcher names it if it can
                _fail(f"lost the connection to another rank of the job ({type(e).__name__}: {e})", lost_peer=True)
            _fail(f"internal error ({type(e).__name__}: {e}); set GANCTL_DEBUG=1 for the traceback and please report it")


class _App(typer.Typer):
    def command(self, *args, cls=None, **kwargs):
        return super().command(*args, cls=cls or _Command, **kwargs)


app = _App(
    cls=_Group,
    no_args_is_help=True,
    help="Train and use generative adversarial networks: GAN, DCGAN, WGAN, conditional GAN and pix2pix.",
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        print(f"ganctl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", "-V", help="Print the version and exit.", callback=_version, is_eager=True),
) -> None:
    """Train and use generative adversarial networks: GAN, DCGAN, WGAN, conditional GAN and pix2pix."""


from ganctl.cli import download as _download  # noqa: E402
from ganctl.cli import evaluate as _evaluate  # noqa: E402
from ganctl.cli import generate as _generate  # noqa: E402
from ganctl.cli import manage as _manage  # noqa: E402
from ganctl.cli import pretrained as _pretrained  # noqa: E402
from ganctl.cli import prune as _prune  # noqa: E402
from ganctl.cli import report as _report  # noqa: E402
from ganctl.cli import train as _train  # noqa: E402
from ganctl.cli import translate as _translate  # noqa: E402

for _module in (_train, _evaluate, _report, _generate, _translate, _download, _pretrained, _manage, _prune):
    _module.register(app)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:  # outside any command (e.g. while parsing)
        sys.exit(130)


def entry() -> None:
    """The console script and ``python -m ganctl``: :func:`main`, then the end of the process.

    Once a command has loaded torch, the interpreter's teardown (every module and object freed
    one by one) takes 0.5-0.7 s on a 2-core CPU after a training, for nothing. So the end does
    what Python's exit does that matters, in its order (wait for the threads that are not daemons,
    run the atexit handlers, flush stdout and stderr) and then ends the process with the same
    exit status. Before torch is loaded (``--help``, mistakes) it is Python's own exit."""
    try:
        main()
        code: object = 0
    except SystemExit as e:
        code = e.code
    if "torch" not in sys.modules:
        sys.exit(code)
    _end(code)


def _end(code: object) -> None:
    import atexit
    import os
    import threading

    shutdown, run_atexit = getattr(threading, "_shutdown", None), getattr(atexit, "_run_exitfuncs", None)
    if shutdown is None or run_atexit is None:  # another interpreter than CPython's: its own exit
        sys.exit(code)
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # sys.exit("message"): the message on stderr and status 1, as Python does
        print(code, file=sys.stderr)
        status = 1
    shutdown()  # joins non-daemon threads; thread pools finish the work they were given
    run_atexit()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (ganctl ... | head): nothing more to say
            pass
    os._exit(status & 0xFF)  # what the OS keeps of any status, as with sys.exit
