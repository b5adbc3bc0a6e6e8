"""``mlsecops monitor replay | drift | fairness | export-log | decisions``: the runtime detectors, offline.

Each subcommand lives in its own module (``_SUBCOMMANDS``), which adds itself to ``monitor_app``.
"""

from __future__ import annotations

import importlib

import typer

__all__ = ["monitor_app", "register"]

monitor_app = typer.Typer(
    help="Run the runtime detectors offline: replay a decision log, test batches for drift or disparity.",
    no_args_is_help=True,
)

# Modules that each expose ``register(monitor_app)``.
_SUBCOMMANDS: tuple[str, ...] = (
    "mlsecops.cli._monitor_export",
    "mlsecops.cli._monitor_replay",
    "mlsecops.cli._monitor_drift",
    "mlsecops.cli._monitor_fairness",
    "mlsecops.cli._monitor_decisions",
)


def register(app: typer.Typer) -> None:
    """Add ``monitor`` and its subcommands to the root app."""
    for module in _SUBCOMMANDS:
        importlib.import_module(module).register(monitor_app)
    app.add_typer(monitor_app, name="monitor")
