"""The ``mlsecops`` entry point: dispatch, error handling and exit codes.

``main(argv)`` runs in-process (tests call it directly) and owns the exit codes: 0 ok, 1 a policy
failed, 2 usage or input error with a one-line message (``--debug`` adds the traceback). ``scan``, the
command most users run on every model they download, parses its own arguments and imports neither typer
nor pydantic on its JSON path; every other command goes through the typer app in ``mlsecops.cli.app``,
which imports only the module owning the command (the table below).
"""

from __future__ import annotations

import sys
import traceback

from mlsecops.cli._output import EXIT_ERROR, print_error
from mlsecops.core.errors import MlsecopsError

__all__ = ["main"]

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


def _fail(message: str, *, debug: bool) -> int:
    print_error(message, traceback.format_exc() if debug else None)
    return EXIT_ERROR


def main(argv: list[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: ``sys.argv[1:]``) and return the exit code."""
    args = list(argv if argv is not None else sys.argv[1:])
    debug = "--debug" in args
    if debug:  # logging is imported only then: it is start-up time every other run would pay
        import logging

        log = logging.getLogger("mlsecops")
        log.setLevel(logging.DEBUG)
        if not log.handlers:
            log.addHandler(logging.StreamHandler(sys.stderr))
    try:
        words = args[1:] if args[:1] == ["--debug"] else args
        if words[:1] == ["scan"]:
            from mlsecops.cli.scan import run_scan

            return run_scan(words[1:])
        from mlsecops.cli.app import run_app

        return run_app(args)
    except MlsecopsError as err:
        return _fail(err.diagnostics(), debug=debug)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except Exception as err:  # a bug of ours: still one line unless --debug
        return _fail(
            f"internal error: {type(err).__name__}: {err} (run with --debug for the traceback)", debug=debug
        )
