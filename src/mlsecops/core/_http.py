"""One bounded HTTP exchange for every outgoing request (model endpoints, webhooks).

A socket time-out bounds each read, not the request: a server that trickles one byte a second never
trips it. ``http_post`` bounds the whole exchange instead. The deadline covers connecting, sending,
the status line, the headers and the body; a watchdog shuts the socket down when it passes, which
wakes any read blocked in it, so no server can hold the caller longer than the deadline plus a
fraction of a second. The answer body is read up to ``max_bytes`` and refused beyond it, so a server
cannot fill memory either. Headers are bounded by ``http.client`` (100 lines of 64 KiB).

Redirects are not followed (a redirect is an answer like any other: its status is returned) and no
proxy from the environment is used: a request goes exactly where its URL says. Credentials in a URL's
user information are sent as HTTP Basic authentication and never appear in error messages, which
name only scheme, host and port.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

from mlsecops.core.errors import MlsecopsError
from mlsecops.core.redaction import redact

__all__ = ["HttpAnswer", "HttpFailure", "http_get", "http_post", "url_origin"]

READ_CHUNK = 64 * 1024
"""Bytes asked for per read of the answer body."""


class HttpFailure(MlsecopsError):
    """A request did not get a complete answer: unreachable, timed out, or too large.

    ``kind`` says which: ``"unreachable"``, ``"timeout"`` or ``"too_large"``; ``detail`` is the cause
    alone (redacted), for callers that word their own message.
    """

    def __init__(self, message: str, *, kind: str, detail: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.detail = detail or message


@dataclass(frozen=True)
class HttpAnswer:
    """A complete HTTP answer."""

    status: int
    """The status code (redirects included: they are not followed)."""
    reason: str
    """The reason phrase, redacted and cut to 200 characters."""
    body: bytes
    """The whole body, at most the request's ``max_bytes``."""


def url_origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: what messages may say about where a request went."""
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{parts.scheme}://{parts.hostname or '?'}{f':{port}' if port else ''}"


def _connection(url: str, timeout: float) -> tuple[http.client.HTTPConnection, str, dict[str, str]]:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HttpFailure(
            f"not an http(s) URL with a host: {redact(url)[:200]}", kind="unreachable", detail="bad URL"
        )
    try:
        port = parts.port
    except ValueError as err:
        raise HttpFailure(
            f"{url_origin(url)} has an invalid port", kind="unreachable", detail="invalid port"
        ) from err
    host = parts.hostname
    extra: dict[str, str] = {}
    if parts.username is not None or parts.password is not None:
        user = urllib.parse.unquote(parts.username or "")
        password = urllib.parse.unquote(parts.password or "")
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        extra["Authorization"] = f"Basic {token}"
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=ssl.create_default_context())
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    target = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
    return conn, target, extra


def http_post(
    url: str,
    body: bytes,
    *,
    headers: Mapping[str, str] | None = None,
    deadline_s: float,
    max_bytes: int,
) -> HttpAnswer:
    """POST ``body`` to ``url`` and read the whole answer within ``deadline_s`` seconds in total.

    Args:
        url: ``http://`` or ``https://`` URL; user information becomes Basic authentication.
        body: the request body.
        headers: request headers (values are sent, never put in messages).
        deadline_s: seconds for the whole exchange, from connecting to the last byte of the body.
        max_bytes: largest answer body accepted.

    Returns:
        The status, reason and body (any status: the caller judges it).

    Raises:
        HttpFailure: unreachable or refused (``kind="unreachable"``), the deadline passed
            (``"timeout"``), or the body is larger than ``max_bytes`` (``"too_large"``).
    """
    return _exchange("POST", url, body, headers=headers, deadline_s=deadline_s, max_bytes=max_bytes)


def http_get(
    url: str, *, headers: Mapping[str, str] | None = None, deadline_s: float, max_bytes: int
) -> HttpAnswer:
    """GET ``url`` within ``deadline_s`` seconds in total; as :func:`http_post` otherwise."""
    return _exchange("GET", url, None, headers=headers, deadline_s=deadline_s, max_bytes=max_bytes)


def _exchange(
    method: str,
    url: str,
    body: bytes | None,
    *,
    headers: Mapping[str, str] | None,
    deadline_s: float,
    max_bytes: int,
) -> HttpAnswer:
    where = url_origin(url)
    start = time.monotonic()
    conn, target, extra = _connection(url, deadline_s)
    expired = threading.Event()

    def _expire() -> None:
        expired.set()
        sock = conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes a read blocked in another thread

    def _left() -> float:
        left = deadline_s - (time.monotonic() - start)
        if left <= 0 or expired.is_set():
            raise TimeoutError
        return left

    watchdog = threading.Timer(deadline_s, _expire)
    watchdog.daemon = True
    watchdog.start()
    try:
        conn.request(method, target, body=body, headers={**extra, **dict(headers or {})})
        _left()
        response = conn.getresponse()
        chunks: list[bytes] = []
        size = 0
        while True:
            if conn.sock is not None:
                conn.sock.settimeout(_left())
            chunk = response.read1(READ_CHUNK)
            if not chunk:
                break
            size += len(chunk)
            if size > max_bytes:
                raise HttpFailure(f"{where} answered more than {max_bytes} bytes", kind="too_large")
            chunks.append(chunk)
        _left()
        reason = redact(str(response.reason))[:200]
        return HttpAnswer(status=int(response.status), reason=reason, body=b"".join(chunks))
    except HttpFailure:
        raise
    except TimeoutError as err:
        raise HttpFailure(f"{where} did not answer within {deadline_s:g} s", kind="timeout") from err
    except (OSError, http.client.HTTPException, ValueError) as err:
        if expired.is_set():
            raise HttpFailure(f"{where} did not answer within {deadline_s:g} s", kind="timeout") from err
        why = redact(str(getattr(err, "strerror", None) or str(err) or type(err).__name__))[:200]
        raise HttpFailure(f"cannot reach {where}: {why}", kind="unreachable", detail=why) from err
    finally:
        watchdog.cancel()
        conn.close()
