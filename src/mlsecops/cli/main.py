"""The ``mlsecops`` entry point: dispatch, error handling and exit codes.

``main(argv)`` runs in-process (tests call it directly) and owns the exit codes: 0 ok, 1 a policy
failed, 2 usage or input error with a one-line message (``--debug`` adds the traceback). An error type
may carry another code in ``exit_code`` (a refusal that is a policy verdict is 1). A missing optional
library (torch, pyarrow...) is one line naming the extra to install, whichever command hit it.
``--debug`` is accepted anywhere before a ``--``, before or after the subcommand.

``scan``, the command most users run on every model they download, parses its own arguments and
imports neither typer nor pydantic on its JSON path; every other command goes through the typer app in
``mlsecops.cli.app``, which imports only the module owning the command (the table below).
"""

from __future__ import annotations

import sys
import traceback

from mlsecops.cli._output import EXIT_ERROR, print_error
from mlsecops.core._lazy import missing_dependency
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
    "mlsecops.cli.registry": ("registry",),
    "mlsecops.cli.lineage": ("lineage",),
    "mlsecops.cli.robustness": ("assess", "harden", "certify"),
    "mlsecops.cli.explain": ("assess",),
    "mlsecops.cli.fairness": ("assess", "harden"),
    "mlsecops.cli.privacy_train": ("assess", "harden"),
    "mlsecops.cli.privacy": ("assess",),
    "mlsecops.cli.data": ("data",),
    "mlsecops.cli.monitor": ("monitor",),
    "mlsecops.cli.serve": ("serve",),
    "mlsecops.cli.alerts": ("alerts", "incidents"),
    "mlsecops.cli.encryption": ("workspace",),
    "mlsecops.cli.ui": ("ui",),
    "mlsecops.cli.posture": ("posture",),
}
_DEBUG = "--debug"


def _fail(message: str, *, debug: bool, code: int = EXIT_ERROR) -> int:
    print_error(message, traceback.format_exc() if debug else None)
    return code


def split_debug(args: list[str]) -> tuple[list[str], bool]:
    """``args`` without ``--debug`` (anywhere before a ``--``), and whether it was given."""
    end = args.index("--") if "--" in args else len(args)
    head = [a for a in args[:end] if a != _DEBUG]
    return head + args[end:], len(head) != end


def main(argv: list[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: ``sys.argv[1:]``) and return the exit code."""
    args, debug = split_debug(list(argv if argv is not None else sys.argv[1:]))
    if not debug:
        # Libraries' warnings (deprecations, numeric RuntimeWarnings inside torch, opacus, sklearn) are
        # for their callers' developers, not for a CLI user: findings and errors say what matters.
        # mlsecops itself warns through its reports, never through the warnings module.
        import warnings

        warnings.simplefilter("ignore")
    if debug:  # logging is imported only then: it is start-up time every other run would pay
        import logging

        log = logging.getLogger("mlsecops")
        log.setLevel(logging.DEBUG)
        if not log.handlers:
            log.addHandler(logging.StreamHandler(sys.stderr))
    try:
        if args[:1] == ["scan"]:
            from mlsecops.cli.scan import run_scan

            return run_scan(args[1:])
        from mlsecops.cli.app import run_app

        return run_app([_DEBUG, *args] if debug else args)
    except MlsecopsError as err:
        return _fail(err.diagnostics(), debug=debug, code=int(getattr(err, "exit_code", EXIT_ERROR)))
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except ModuleNotFoundError as err:
        missing = missing_dependency(err)
        if missing is None:
            return _fail(_internal(err), debug=debug)
        return _fail(missing.diagnostics(), debug=debug)
    except Exception as err:  # a bug of ours: still one line unless --debug
        return _fail(_internal(err), debug=debug)


def _internal(err: BaseException) -> str:
    return f"internal error: {type(err).__name__}: {err} (run with --debug for the traceback)"
