"""Response headers that keep the dashboard's pages inert in the browser.

Every answer carries a Content-Security-Policy that allows scripts only from our own ``/static/``
files (no inline script, no ``on*=`` handler, no ``eval``), no plugins, no ``<base>`` rewriting and
no framing; images only from us or ``data:`` URIs (the charts and the lineage graph are SVG images,
which cannot run script when shown through ``<img>``). A stored run report is a self-contained HTML
document with inline styles; its route sets the stricter ``REPORT_CSP`` itself (no script at all,
nothing fetched), and this middleware leaves a policy it finds in place.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["PAGE_CSP", "REPORT_CSP", "SecurityHeaders"]

PAGE_CSP = (
    "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; img-src 'self' data:; form-action 'self'"
)
"""Policy of every dashboard page and API answer."""
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"
"""Policy of a stored report: its own inline styles and embedded images, nothing else."""

_FIXED = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
)


class SecurityHeaders:
    """Pure ASGI middleware adding the headers above (and ``Cache-Control: no-store`` on pages)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                if b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", PAGE_CSP.encode()))
                headers.extend(h for h in _FIXED if h[0] not in names)
                if not static and b"cache-control" not in names:
                    # pages show workspace data to one logged-in person: never kept by shared caches
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
