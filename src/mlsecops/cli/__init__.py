"""The thin command-line interface: parse, call the library, render. ``main`` is the entry point."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mlsecops.cli.main import main

if TYPE_CHECKING:
    from mlsecops.cli.app import app, load_commands

__all__ = ["app", "load_commands", "main"]


def __getattr__(name: str) -> Any:
    # The typer app loads on first use, so that ``mlsecops scan`` starts without typer.
    if name in ("app", "load_commands"):
        return getattr(importlib.import_module("mlsecops.cli.app"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
