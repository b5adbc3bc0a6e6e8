"""What every ``mlsecops registry`` command module shares: the acting user's API key and the registry.

The acting user is the owner of the API key in ``MLSECOPS_API_KEY`` (never a command-line option,
where it would show in the process list).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from mlsecops.cli._common import console, open_workspace, safe
from mlsecops.core.errors import PermissionDenied
from mlsecops.registry import Registry, authenticate

__all__ = ["KEY_ENV", "JsonOpt", "api_key", "registry_session", "show_key"]

KEY_ENV = "MLSECOPS_API_KEY"
JsonOpt = Annotated[bool, typer.Option("--json", hidden=True, help="Same as --format json.")]


def api_key() -> str:
    """The acting user's API key from ``MLSECOPS_API_KEY``.

    Raises:
        PermissionDenied: the variable is not set.
    """
    key = os.environ.get(KEY_ENV, "").strip()
    if not key:
        raise PermissionDenied(
            f"set {KEY_ENV} to your registry API key (an admin creates it with `mlsecops registry keys create`)"
        )
    return key


@contextmanager
def registry_session() -> Iterator[Registry]:
    """The workspace's registry, acting as the owner of ``MLSECOPS_API_KEY``."""
    with open_workspace() as ws:
        yield Registry(ws, authenticate(ws, api_key()))


def show_key(user: str, key: str) -> None:
    """Print a new API key once, with where to keep it."""
    console.print(f"API key for [bold]{safe(user)}[/] (shown only now; store it as {KEY_ENV}):")
    typer.echo(key)
