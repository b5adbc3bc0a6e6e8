"""The demo's people: one admin per demo workspace, and the users the cases need.

Every case of ``mlsecops demo`` may run alone or after the others in one shared workspace, so none can
bootstrap the first admin on its own. ``demo_admin`` bootstraps ``demo-admin`` in an empty workspace and
keeps its API key in the workspace's ``keys/demo-admin.key`` (mode 0600, beside the keys that seal the
trail); later cases read it from there. ``demo_user`` creates a user once and gives it a fresh key each
time.
"""

from __future__ import annotations

import os
from pathlib import Path

from mlsecops.core.errors import InputError
from mlsecops.registry import Actor, Role, authenticate, create_api_key, create_user, grant, list_users
from mlsecops.store import Workspace

__all__ = ["ADMIN", "admin_key_file", "demo_admin", "demo_user", "fresh_user"]

ADMIN = "demo-admin"
_KEY_FILE = "demo-admin.key"


def admin_key_file(ws: Workspace) -> Path:
    """Where the demo admin's API key is kept."""
    return ws.keys_dir / _KEY_FILE


def demo_admin(ws: Workspace) -> tuple[Actor, str]:
    """The demo's admin and its API key (bootstrapped on first use).

    Raises:
        InputError: the workspace has users but no demo admin key (not a demo workspace), or the key file
            is not a small regular file.
    """
    from mlsecops.supplychain import signing

    key_file = admin_key_file(ws)
    if not key_file.is_file():
        try:
            create_user(ws, ADMIN, Role.ADMIN, actor=None)
        except Exception as err:
            raise InputError(
                f"the workspace at {ws.home} has users already and no demo admin key ({key_file}); run the "
                "demo in a fresh --dir"
            ) from err
        _write_secret(key_file, create_api_key(ws, ADMIN, actor=None, label="demo"))
    key = (
        signing.read_regular(key_file, limit=4096, what="the demo admin key")
        .decode("utf-8", "replace")
        .strip()
    )
    return authenticate(ws, key), key


def _write_secret(path: Path, text: str) -> None:
    """``text`` and a newline into ``path``, created with mode 0600 (never through a link)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        os.fchmod(fh.fileno(), 0o600)
        fh.write(text + "\n")


def demo_user(
    ws: Workspace, admin: Actor, name: str, role: Role, *, models: tuple[str, ...] = (), label: str = "demo"
) -> str:
    """Create ``name`` with ``role`` unless it exists, grant it ``models``; a fresh API key (``label``)."""
    if name not in {str(u["name"]) for u in list_users(ws, actor=admin)}:
        create_user(ws, name, role, actor=admin)
    for model in models:
        grant(ws, model, name, actor=admin)
    return create_api_key(ws, name, actor=admin, label=label)


def fresh_user(
    ws: Workspace, admin: Actor, base: str, role: Role, *, models: tuple[str, ...] = ()
) -> tuple[str, str]:
    """A user no earlier run made (``base``, else ``base-2``, ``base-3`` ...) and its key: a thief blocked
    by an earlier run of the demo stays blocked, so each run needs a new one.
    """
    taken = {str(u["name"]) for u in list_users(ws, actor=admin)}
    name = base
    k = 1
    while name in taken:
        k += 1
        name = f"{base}-{k}"
    return name, demo_user(ws, admin, name, role, models=models)
