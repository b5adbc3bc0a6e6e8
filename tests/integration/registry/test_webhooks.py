"""Webhooks: registrations, promotions and rollbacks are POSTed with a verifiable HMAC-SHA256 signature;
a failing endpoint is audited and never blocks the change."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from tests._http_fakes import serve_slowly

from mlsecops.core.errors import InputError
from mlsecops.registry import verify_signature
from mlsecops.store import audit

from .conftest import World  # noqa: TID252 - pytest's importlib mode needs the sibling conftest's class

SECRET = "s3cret-for-webhook-tests"


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    received: list[tuple[dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((dict(self.headers), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return None

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()


def test_events_are_delivered_signed(
    world: World, receiver: tuple[str, list[tuple[dict[str, str], bytes]]]
) -> None:
    url, received = receiver
    world.regs["admin"].add_webhook(url, SECRET)
    v1 = world.ready_for_production("fraud", b"one")
    world.regs["deployer"].promote("fraud", v1, to="production")
    v2 = world.ready_for_production("fraud", b"two")
    world.regs["deployer"].promote("fraud", v2, to="production")
    world.regs["deployer"].rollback("fraud")
    events = [h["X-Mlsecops-Event"] for h, _ in received]
    assert events == [
        "model.registered",
        "model.promoted",
        "model.registered",
        "model.promoted",
        "model.rolled_back",
    ]
    for headers, body in received:
        assert verify_signature(SECRET, body, headers["X-Mlsecops-Signature"])
        assert not verify_signature("another-secret-of-16", body, headers["X-Mlsecops-Signature"])
    last = json.loads(received[-1][1])
    assert (last["model"], last["from"], last["to"], last["actor"]) == ("fraud", v2, v1, "deployer")


def test_failing_endpoint_is_audited_and_does_not_block(world: World) -> None:
    world.regs["admin"].add_webhook("http://127.0.0.1:9/unreachable", SECRET, ["model.registered"])
    info = world.regs["deployer"].register("fraud", world.model("m"))
    assert info.version == 1
    with world.ws.session(readonly=True) as s:
        assert [e.action for e in audit.iter_events(s, action="registry.webhook.failed")] == [
            "registry.webhook.failed"
        ]


def test_bad_webhook_settings_are_refused(world: World) -> None:
    with pytest.raises(InputError, match="https:// or http://"):
        world.regs["admin"].add_webhook("file:///etc/passwd", SECRET)
    with pytest.raises(InputError, match="at least 16"):
        world.regs["admin"].add_webhook("https://example.invalid/x", "short")
    with pytest.raises(InputError, match="unknown webhook event"):
        world.regs["admin"].add_webhook("https://example.invalid/x", SECRET, ["model.exploded"])


@pytest.fixture
def trickling_receiver() -> Iterator[str]:
    """Reads the delivery, then answers one byte every 0.2 s (a minute in all)."""
    status = b"HTTP/1.1 204 No Content\r\nX-Pad: " + b"a" * 300
    yield from serve_slowly([bytes([b]) for b in status], gap_s=0.2, path="/hook")


def test_trickling_receiver_cannot_hold_a_change(
    world: World, trickling_receiver: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 11 item 14: the delivery time-out bounded each read, so a receiver answering a byte at a
    time held `register` forever; the deadline now covers the whole delivery."""
    import time

    from mlsecops.registry import _webhooks

    monkeypatch.setattr(_webhooks, "TIMEOUT_S", 1.0)
    world.regs["admin"].add_webhook(trickling_receiver, SECRET, ["model.registered"])
    start = time.monotonic()
    assert _webhooks.deliver(world.ws, "model.registered", {"model": "fraud"}, actor="deployer") == 0
    assert time.monotonic() - start < 1.0 + 1.0
    with world.ws.session(readonly=True) as s:
        failed = list(audit.iter_events(s, action="registry.webhook.failed"))
    assert len(failed) == 1 and "did not answer within 1 s" in json.loads(failed[0].details)["error"]
    # the change itself still goes through
    assert world.regs["deployer"].register("fraud", world.model("m")).version == 1


@pytest.mark.parametrize(
    "template",
    [
        "http://hookuser:{s}@127.0.0.1:9/hook",
        "http://127.0.0.1:9/hook?token={s}",
        "http://127.0.0.1:9/hook?sv=2024&sig={s}",
        "http://127.0.0.1:9/services/T00000000/B00000000/{s}",
        "http://127.0.0.1:9/hook?api%5Fkey={s}",
    ],
    ids=["userinfo", "token", "sig", "slack-path", "encoded-name"],
)
def test_webhook_url_secrets_stay_out_of_audit_and_logs(
    world: World, caplog: pytest.LogCaptureFixture, template: str
) -> None:
    """Issue 11 item 8: webhook URLs with credentials were stored whole in audit details. The
    registry keeps the URL (it must deliver to it); audit events and log lines only a redacted form."""
    token = "Wq3uniqueHookToken88"
    url = template.format(s=token)
    with caplog.at_level("DEBUG"):
        world.regs["admin"].add_webhook(url, SECRET, ["model.registered"])
        world.regs["deployer"].register("fraud", world.model("m"))  # delivery to port 9 fails
    with world.ws.session(readonly=True) as s:
        events = list(audit.iter_events(s, action="registry.webhook.*"))
    assert [e.action for e in events] == ["registry.webhook.add", "registry.webhook.failed"]
    for e in events:
        assert token not in e.subject + e.details
    assert "127.0.0.1:9" in json.loads(events[0].details)["url"]  # where it points is kept
    assert token not in caplog.text
    assert "delivery of model.registered failed" in caplog.text


def test_refused_webhook_url_is_not_echoed_with_its_secret(world: World) -> None:
    with pytest.raises(InputError, match="https:// or http://") as info:
        world.regs["admin"].add_webhook("ftp://u:Wq3uniqueHookToken88@127.0.0.1/x", SECRET)
    assert "Wq3uniqueHookToken88" not in info.value.diagnostics()
