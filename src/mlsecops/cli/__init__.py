"""The thin command-line interface: parse, call the library, render. ``main`` is the entry point."""

from __future__ import annotations

from mlsecops.cli.main import app, main

__all__ = ["app", "main"]
