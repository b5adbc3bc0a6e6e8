"""The ``mlsecops`` command: a typer app whose commands live in one module each.

A command module exposes ``register(app)``; adding a command group is one line in ``_COMMANDS``.
``main(argv)`` runs the app in-process (tests call it directly) and owns the exit codes: 0 ok, 1 a
policy failed, 2 usage or input error with a one-line message (``--debug`` adds the traceback).
"""

from __future__ import annotations

import importlib
import logging
import sys
import traceback
from typing import Annotated

import typer

from mlsecops._version import __version__
from mlsecops.cli import _common
from mlsecops.cli._common import EXIT_ERROR
from mlsecops.core.errors import MlsecopsError

__all__ = ["app", "load_commands", "main"]

# One line per command module: the module and the top-level commands its register(app) adds. Only the
# module of the command being run is imported, so `mlsecops scan` never loads torch or the database.
_COMMANDS: dict[str, tuple[str, ...]] = {
    "mlsecops.cli.workspace": ("init", "checks"),
    "mlsecops.cli.audit": ("audit",),
    "mlsecops.cli.pipeline": ("run", "demo", "runs"),
    "mlsecops.cli.scan": ("scan",),
    "mlsecops.cli.signing": ("sign", "verify", "bom", "keys"),
    "mlsecops.cli.registry": ("registry", "lineage"),
    "mlsecops.cli.robustness": ("assess", "harden", "certify"),
    "mlsecops.cli.data": ("data",),
}
_registered: set[str] = set()

app = typer.Typer(
    name="mlsecops",
    help="Security for every stage of the machine-learning lifecycle.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
_state = {"debug": False}


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
    _state["debug"] = debug
    logging.getLogger("mlsecops").setLevel(logging.DEBUG if debug else logging.WARNING)
    if debug and not logging.getLogger("mlsecops").handlers:
        logging.getLogger("mlsecops").addHandler(logging.StreamHandler(sys.stderr))


def load_commands(argv: list[str] | None = None) -> None:
    """Register the command modules ``argv`` needs: the one owning its first word, or all of them
    (for help, or for an unknown word, so the error can list every command)."""
    args = argv or []
    first = next((a for a in args if not a.startswith("-")), None)
    if first is None and "--version" in args:
        return
    wanted = [m for m, names in _COMMANDS.items() if first in names] or list(_COMMANDS)
    for module in wanted:
        if module not in _registered:
            importlib.import_module(module).register(app)
            _registered.add(module)


def _fail(message: str) -> int:
    _common.err_console.print(
        f"[bold red]mlsecops: error:[/] {message}", markup=True, highlight=False, soft_wrap=True
    )
    if _state["debug"]:
        _common.err_console.print(traceback.format_exc(), markup=False, highlight=False)
    return EXIT_ERROR


def main(argv: list[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: ``sys.argv[1:]``) and return the exit code."""
    args = list(argv if argv is not None else sys.argv[1:])
    _state["debug"] = "--debug" in args
    try:
        load_commands(args)
        result = app(args=args, prog_name="mlsecops", standalone_mode=False)
    except MlsecopsError as err:
        return _fail(err.diagnostics())
    except typer.Exit as err:
        return int(err.exit_code)
    except typer.TyperException as err:  # usage errors: bad option, missing argument, bad value
        show = getattr(err, "show", None)
        if callable(show):
            show()
        else:
            _common.err_console.print(f"mlsecops: error: {err.format_message()}", markup=False)
        return EXIT_ERROR
    except typer.Abort:
        _common.err_console.print("aborted")
        return 130
    except KeyboardInterrupt:
        _common.err_console.print("interrupted")
        return 130
    except Exception as err:  # a bug of ours: still one line unless --debug
        return _fail(f"internal error: {type(err).__name__}: {err} (run with --debug for the traceback)")
    return int(result) if isinstance(result, int) else 0
