"""Entry point of the `k2m` command.

Sub-commands import `k2m_core` (and so torch) inside their bodies, never at module level, so
`k2m --help` stays instant. Errors a user can fix (`UserError`) end in one line and exit code 2;
anything else is a bug: exit 1, with the traceback under `--debug`.
"""

from __future__ import annotations

import errno
import os
import sys
import traceback
from dataclasses import dataclass

import typer

from k2m_core import __version__
from k2m_core.errors import UserError


@dataclass
class GlobalOptions:
    quiet: bool = False
    debug: bool = False


app = typer.Typer(
    name="k2m",
    help="Text-driven 3D human motion (SMPL) learned from 2D keypoints only.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"k2m {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                 help="Print the version and exit."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or summaries on stderr."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
) -> None:
    ctx.obj = GlobalOptions(quiet=quiet, debug=debug)


def _register_commands() -> None:
    from k2m_cli import (data, demo, evaluate, export, extract, from_mocap, gen, lift, plot, preprocess, render, synth,
                         t2m, train)

    app.command("gen")(gen.gen)
    app.command("extract")(extract.extract)
    app.command("preprocess")(preprocess.preprocess)
    data.app.command("synth")(synth.synth)
    data.app.command("from-mocap")(from_mocap.from_mocap)
    data.app.command("encode-text")(t2m.encode_text)
    data.app.command("tokenize")(t2m.tokenize)
    app.add_typer(data.app, name="data")
    train.app.command("transformer")(t2m.train_transformer)
    train.app.command("residual")(t2m.train_residual)
    train.app.command("length")(t2m.train_length)
    app.add_typer(train.app, name="train")
    app.add_typer(evaluate.app, name="eval")
    app.command("export")(export.export)
    app.command("plot")(plot.plot)
    app.command("render")(render.render)
    app.command("lift")(lift.lift)
    app.command("demo")(demo.demo)


_register_commands()


def _usage_errors() -> tuple[type[Exception], ...]:
    """Click-style usage errors (they carry ``show()`` and ``exit_code``). Recent typer vendors
    click and raises `typer.TyperException`; older typer raises click's own."""
    found = [getattr(typer, "TyperException", None)]
    try:
        import click

        found.append(click.ClickException)
    except ImportError:
        pass
    return tuple(t for t in found if t is not None)


# The file system refusing a path: what a user fixes by choosing another path or its permissions.
_REFUSED = {getattr(errno, name) for name in ("EACCES", "EPERM", "EROFS", "ENOSPC", "EDQUOT", "EEXIST", "ENOTDIR",
                                              "EISDIR", "ENAMETOOLONG") if hasattr(errno, name)}
_OWN_FILES = tuple(os.path.dirname(os.path.abspath(sys.modules[name].__file__)) + os.sep
                   for name in (__name__, UserError.__module__))  # k2m_cli/ and k2m_core/


def refused_path(exc: BaseException) -> str | None:
    """The user's path an OS error is about, when the file system refused it; None for any other
    error, and for k2m's own files (those are bugs)."""
    if not isinstance(exc, OSError) or exc.errno not in _REFUSED or not exc.filename:
        return None
    path = os.fsdecode(exc.filename)
    return None if os.path.abspath(path).startswith(_OWN_FILES) else path


def run(argv: list[str] | None = None) -> None:
    """Console-script entry: map outcomes to exit codes (0 ok, 2 user error, 1 internal failure)."""
    argv = sys.argv[1:] if argv is None else argv
    # --debug is read here too because errors can happen before the callback stores it.
    debug = "--debug" in argv or os.environ.get("K2M_DEBUG") == "1"
    try:
        try:
            code = app(args=argv, prog_name="k2m", standalone_mode=False)
        except typer.Abort as exc:
            # click turns an EOFError raised anywhere in a command into Abort; k2m reads no input,
            # so that is a failure reading a file, not an interruption.
            if isinstance(exc.__context__, EOFError):
                raise exc.__context__ from None
            raise
    except UserError as exc:
        if debug:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except _usage_errors() as exc:  # bad options: click's message, exit 2
        exc.show()
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:
        if debug:
            traceback.print_exc()
        path = refused_path(exc)
        if path is not None:
            print(f"error: {path}: {exc.strerror}; choose another path or fix its permissions", file=sys.stderr)
            sys.exit(2)
        print(f"internal error: {type(exc).__name__}: {exc} (this is a bug in k2m; rerun with --debug "
              "for the traceback and report it)", file=sys.stderr)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    run()
