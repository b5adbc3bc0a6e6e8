"""Webhooks: registrations, promotions and rollbacks announced to HTTP endpoints, HMAC-signed.

Each delivery is a JSON ``POST`` with ``X-Mlsecops-Event`` (the event name), ``X-Mlsecops-Delivery``
(a random id) and ``X-Mlsecops-Signature: sha256=<hex>``, the HMAC-SHA256 of the exact body with the
webhook's secret; a receiver recomputes it with ``verify_signature`` (constant-time compare). Deliveries
happen after the change committed, each bounded by a total deadline (``TIMEOUT_S``, not per socket
read) and an answer size cap, without following redirects; a failed delivery is logged and written to
the audit trail but never undoes or blocks the change. Webhook URLs may carry tokens (Slack paths,
``?token=``, user information): logs and audit events only ever hold them through
``mlsecops.core.redact``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from mlsecops.core import HttpFailure, http_post, url_origin
from mlsecops.core.errors import InputError
from mlsecops.core.findings import utcnow
from mlsecops.core.redaction import redact
from mlsecops.registry._tables import Webhook
from mlsecops.store import Workspace, audit

__all__ = ["EVENTS", "deliver", "sign_body", "verify_signature"]

EVENTS = (
    "model.registered",
    "model.promoted",
    "model.rolled_back",
    "model.archived",
    "alert.raised",
    "alert.acknowledged",
)
_log = logging.getLogger("mlsecops.registry.webhooks")
TIMEOUT_S = 5.0
"""Deadline for one whole delivery (connect to last byte), so a trickling receiver cannot hold a change."""
MAX_ANSWER_BYTES = 64 * 1024
"""Largest receiver answer read; a bigger one counts as a failed delivery (memory bound)."""


def sign_body(secret: str, body: bytes) -> str:
    """The ``X-Mlsecops-Signature`` header value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str) -> bool:
    """Whether ``header`` is the signature of ``body`` with ``secret`` (for receivers)."""
    return hmac.compare_digest(sign_body(secret, body), header)


def check_url(url: str) -> str:
    """Accept only http(s) URLs.

    Raises:
        InputError: another scheme.
    """
    if not url.startswith(("https://", "http://")):
        raise InputError(f"webhook URL must start with https:// or http://; got {redact(url)[:60]!r}")
    return url


def deliver(ws: Workspace, event: str, payload: Mapping[str, Any], *, actor: str) -> int:
    """Send ``event`` to every active webhook subscribed to it; return the number delivered (2xx)."""
    with ws.session(readonly=True) as s:
        hooks = [
            (h.id, h.url, h.secret)
            for h in s.execute(select(Webhook).where(Webhook.active.is_(True))).scalars()
            if h.events == "*" or event in h.events.split(",")
        ]
    if not hooks:
        return 0
    body = json.dumps(
        {"event": event, "sent": utcnow().isoformat(), "actor": actor, **payload}, sort_keys=True
    ).encode()
    ok = 0
    for hook_id, url, secret in hooks:
        headers = {
            "Content-Type": "application/json",
            "X-Mlsecops-Event": event,
            "X-Mlsecops-Delivery": secrets.token_hex(8),
            "X-Mlsecops-Signature": sign_body(secret, body),
        }
        try:
            answer = http_post(url, body, headers=headers, deadline_s=TIMEOUT_S, max_bytes=MAX_ANSWER_BYTES)
        except HttpFailure as err:
            status, why = 0, redact(err.detail)[:200]
        else:
            status, why = answer.status, ""
        if 200 <= status < 300:
            ok += 1
            continue
        _log.warning(
            "webhook %s (%s): delivery of %s failed (%s)", hook_id, url_origin(url), event, why or status
        )
        with ws.session() as s:
            audit.append(
                s,
                actor=actor,
                action="registry.webhook.failed",
                subject=f"webhook:{hook_id}",
                details={"event": event, "url": redact(url), "status": status, "error": why},
            )
    return ok
