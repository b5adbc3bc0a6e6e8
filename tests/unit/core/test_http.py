"""``http_post`` bounds the whole request, not each socket read: trickling and flooding servers on a
free loopback port fail within the deadline; a normal server still answers."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from tests._http_fakes import serve_slowly

from mlsecops.core import HttpFailure, http_post, url_origin

DEADLINE_S = 1.0
MARGIN_S = 1.0  # scheduling slack on a loaded 2-core machine


@pytest.fixture
def trickle_headers() -> Iterator[str]:
    """One byte of the status line every 0.2 s, for a minute."""
    status = b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"a" * 400
    yield from serve_slowly([bytes([b]) for b in status], gap_s=0.2)


@pytest.fixture
def trickle_body() -> Iterator[str]:
    """Prompt headers announcing 10,000 bytes, then one body byte every 0.2 s."""
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 10000\r\n\r\n"
    yield from serve_slowly([head, *[b"x"] * 10000], gap_s=0.2)


@pytest.fixture
def flood() -> Iterator[str]:
    """A 4 MiB body sent at once."""
    body = b"y" * (4 * 1024 * 1024)
    yield from serve_slowly([b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body), body], gap_s=0)


@pytest.fixture
def normal() -> Iterator[str]:
    body = b'{"ok": true}'
    yield from serve_slowly([b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body], gap_s=0)


@pytest.mark.parametrize("server", ["trickle_headers", "trickle_body"])
def test_trickling_server_fails_within_the_deadline(server: str, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue(server)
    start = time.monotonic()
    with pytest.raises(HttpFailure, match=r"did not answer within 1 s") as info:
        http_post(url, b"{}", deadline_s=DEADLINE_S, max_bytes=1 << 20)
    elapsed = time.monotonic() - start
    assert info.value.kind == "timeout"
    assert elapsed < DEADLINE_S + MARGIN_S, f"held for {elapsed:.2f} s"


def test_flooding_server_is_cut_at_the_size_cap(flood: str) -> None:
    with pytest.raises(HttpFailure, match="answered more than 65536 bytes") as info:
        http_post(flood, b"{}", deadline_s=5, max_bytes=65536)
    assert info.value.kind == "too_large"


def test_normal_server_answers(normal: str) -> None:
    answer = http_post(normal, b"{}", headers={"X-Token": "t"}, deadline_s=DEADLINE_S, max_bytes=1024)
    assert (answer.status, answer.body) == (200, b'{"ok": true}')


def test_unreachable_and_credentials_stay_out_of_messages() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://alice:pw-Secret-42@127.0.0.1:{port}/x?token=tok-Secret-43"
    with pytest.raises(HttpFailure) as info:
        http_post(url, b"{}", deadline_s=DEADLINE_S, max_bytes=1024)
    assert info.value.kind == "unreachable"
    text = info.value.diagnostics()
    assert "Secret" not in text and f"127.0.0.1:{port}" in text
    assert url_origin(url) == f"http://127.0.0.1:{port}"
