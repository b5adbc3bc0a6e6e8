"""The thin command-line interface: parse, call the library, render. ``main`` is the entry point."""

from __future__ import annotations

from mlsecops.cli.main import app, load_commands, main

__all__ = ["app", "load_commands", "main"]
