"""The security posture dashboard (``mlsecops ui``): models, posture, runtime, audit, lineage and runs.

>>> from mlsecops.web import create_app
>>> # app = create_app(Workspace.open(home))      # then serve it with uvicorn on a loopback address

A read-mostly FastAPI app over a workspace (SQLite or PostgreSQL). People log in with a workspace API
key (or the guard policy's JWTs) and get a server-side session; scripts send ``Authorization: Bearer``.
Roles decide what is visible and what can be done; every state change is an audit event; pages run
no inline script under a strict Content-Security-Policy and load nothing from elsewhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlsecops.core._lazy import lazy_attributes as _lazy_attributes

if TYPE_CHECKING:
    from mlsecops.web._security import PAGE_CSP, REPORT_CSP
    from mlsecops.web._sessions import ACK_ROLES, UI_ROLES
    from mlsecops.web.app import create_app

# Loaded on first use (PEP 562): the audit verifier's child process imports ``mlsecops.web._verify``
# and must not pay for FastAPI, Jinja2 and the guard's modules.
_LAZY = {
    "ACK_ROLES": "mlsecops.web._sessions",
    "PAGE_CSP": "mlsecops.web._security",
    "REPORT_CSP": "mlsecops.web._security",
    "UI_ROLES": "mlsecops.web._sessions",
    "create_app": "mlsecops.web.app",
}

__all__ = ["ACK_ROLES", "PAGE_CSP", "REPORT_CSP", "UI_ROLES", "create_app"]

__getattr__, __dir__ = _lazy_attributes(__name__, _LAZY, __all__)
