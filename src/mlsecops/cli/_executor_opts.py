"""Typer options shared by the commands that fan work out through an executor (``--executor``,
``--workers``, ``--address``); they become the check options of the same names
(``mlsecops.core.target_executor``).
"""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["AddressOpt", "ExecutorOpt", "WorkersOpt"]

ExecutorOpt = Annotated[
    str | None,
    typer.Option(
        help="Fan the work out on an engine: inline, process (local pool) or ray; the same seed gives the "
        "same report on every engine [default: in this process].",
    ),
]
WorkersOpt = Annotated[
    int | None, typer.Option(min=1, help="With --executor: parallel workers [default: CPU count].")
]
AddressOpt = Annotated[
    str | None,
    typer.Option(
        help="With --executor ray: the cluster's head HOST:PORT [default: RAY_ADDRESS, else local]."
    ),
]
