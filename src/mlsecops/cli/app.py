"""The typer application behind every command but the ``scan`` fast path.

A command module exposes ``register(app)``; ``load_commands`` registers only the module that owns the
command being run (the table is ``mlsecops.cli.main._COMMANDS``). ``run_app`` runs the app and turns
typer's own outcomes (usage errors, ``Exit``, ``Abort``) into exit codes; ``main`` handles the rest.
"""

from __future__ import annotations

import importlib
import io
import sys
from typing import Annotated

import typer

from mlsecops._version import __version__
from mlsecops.cli._output import EXIT_ERROR, print_error
from mlsecops.cli.main import _COMMANDS
from mlsecops.report._safe import visible

__all__ = ["app", "load_commands", "run_app"]

_registered: set[str] = set()

app = typer.Typer(
    name="mlsecops",
    help="Security for every stage of the machine-learning lifecycle.",
    no_args_is_help=True,
    # help as plain text (the sub-apps inherit it): rich markup would eat "[default: ...]" in help
    # strings and clip comma lists at 80 columns; plain help wraps, and matches `scan --help`
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mlsecops {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Security for every stage of the machine-learning lifecycle."""
    # --debug itself is acted on by mlsecops.cli.main.main (logging, tracebacks) before typer runs.


def load_commands(argv: list[str] | None = None) -> None:
    """Register the command modules ``argv`` needs: the one owning its first word, or all of them
    (for help, or for an unknown word, so the error can list every command).
    """
    args = argv or []
    first = next((a for a in args if not a.startswith("-")), None)
    if first is None and "--version" in args:
        return
    wanted = [m for m, names in _COMMANDS.items() if first in names] or list(_COMMANDS)
    for module in wanted:
        if module not in _registered:
            importlib.import_module(module).register(app)
            _registered.add(module)


def run_app(args: list[str]) -> int:
    """Run the typer app on ``args`` and return its exit code (errors of ours propagate to ``main``)."""
    load_commands(args)
    try:
        result = app(args=args, prog_name="mlsecops", standalone_mode=False)
    except typer.Exit as err:
        return int(err.exit_code)
    except typer.TyperException as err:  # usage errors: bad option, missing argument, bad value
        show = getattr(err, "show", None)
        if callable(show):  # the usage line and the error, which may quote the input: shown safely
            buffer = io.StringIO()
            show(file=buffer)
            sys.stderr.write(visible(buffer.getvalue(), keep_newlines=True))
            sys.stderr.flush()
        else:
            print_error(err.format_message())
        return EXIT_ERROR
    except typer.Abort:
        sys.stderr.write("aborted\n")
        return 130
    return int(result) if isinstance(result, int) else 0
