"""A workspace with an admin, a viewer and a client, and the dashboard app over it (in-process)."""

from __future__ import annotations

import re
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests._deps import require


@dataclass
class Site:
    """The workspace, its keys, and a factory of clients of a fresh app."""

    ws: Any
    keys: dict[str, str]
    app: Any

    def client(self, app: Any | None = None, *, scheme: str = "http") -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from fastapi.testclient import TestClient
        return TestClient(app or self.app, base_url=f"{scheme}://127.0.0.1")

    def login(self, client: Any, role: str) -> str:
        """Log in through the form; returns the session's CSRF token."""
        form = client.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert token is not None
        answer = client.post(
            "/login", data={"csrf": token.group(1), "credential": self.keys[role]}, follow_redirects=False
        )
        assert answer.status_code == 303, answer.text
        page = client.get("/models")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        return csrf.group(1)


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    require("fastapi", "serve")
    require("httpx", "test")
    from mlsecops.registry import Role, authenticate, create_api_key, create_user
    from mlsecops.store import Workspace
    from mlsecops.web import create_app

    home = Path(tempfile.mkdtemp(prefix="mlsecops-web-")) / ".mlsecops"
    ws = Workspace.init(home, actor="test")
    create_user(ws, "root", Role.ADMIN, actor=None)
    keys = {"admin": create_api_key(ws, "root", actor=None)}
    admin = authenticate(ws, keys["admin"])
    for user, role in (("vera", "viewer"), ("cleo", "client")):
        create_user(ws, user, Role(role), actor=admin)
        keys[role] = create_api_key(ws, user, actor=admin)
    try:
        yield Site(ws, keys, create_app(ws))
    finally:
        ws.close()


Bearer = Callable[[str], dict[str, str]]


@pytest.fixture
def bearer(site: Site) -> Bearer:
    return lambda role: {"Authorization": f"Bearer {site.keys[role]}"}
