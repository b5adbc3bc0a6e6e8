"""Bad input and faults: each gets its 4xx/5xx with a JSON body, and the server keeps serving."""

from __future__ import annotations

import dataclasses
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.integration.runtime.conftest import Guard, train_digits

pytestmark = pytest.mark.timeout(300)


def _error(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["error"]["code"] == code
    assert "Traceback" not in r.text


def test_malformed_json_400(guard: Guard, client: Any) -> None:
    for body in (b"{not json", b"", b"\xff\xfe", b"[1, 2", b'{"inputs": [}'):
        r = client.post(
            "/v2/models/digits/infer",
            content=body,
            headers={**guard.headers(), "Content-Type": "application/json"},
        )
        assert r.status_code in (400, 422), (body, r.text)
        assert r.json()["error"]["code"] in ("bad_request", "invalid_input")
    r = client.post(
        "/v2/models/digits/infer",
        content=b"{not json",
        headers={**guard.headers(), "Content-Type": "application/json"},
    )
    _error(r, 400, "bad_request")


def test_wrong_content_type_415(guard: Guard, client: Any) -> None:
    for ctype in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = {**guard.headers(), **({"Content-Type": ctype} if ctype else {})}
        r = client.post("/v2/models/digits/infer", content=b'{"inputs": []}', headers=headers)
        _error(r, 415, "unsupported_media_type")


def test_body_over_the_limit_413_by_declared_length(guard: Guard, client: Any) -> None:
    big = b'{"inputs": [' + b" " * 70_000 + b"]}"
    r = client.post(
        "/v2/models/digits/infer",
        content=big,
        headers={**guard.headers(), "Content-Type": "application/json"},
    )
    _error(r, 413, "payload_too_large")


def test_body_over_the_limit_413_while_streaming(guard: Guard, client: Any) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"inputs": ['
        for _ in range(200):  # 200 KiB without a Content-Length (chunked)
            yield b" " * 1024

    r = client.post(
        "/v2/models/digits/infer",
        content=chunks(),
        headers={**guard.headers(), "Content-Type": "application/json"},
    )
    _error(r, 413, "payload_too_large")


def test_slow_client_408_and_the_server_keeps_serving(guard: Guard, client: Any) -> None:
    host, port = guard.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=15) as s:
        head = (
            "POST /v2/models/digits/infer HTTP/1.1\r\n"
            f"Host: {host}\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n"
            f"Authorization: Bearer {guard.keys['alice']}\r\n\r\n"
        )
        s.sendall(head.encode() + b'{"inputs": [')
        started = time.monotonic()
        # meanwhile, others are served
        assert (
            client.post("/v2/models/digits/infer", json=guard.body(), headers=guard.headers()).status_code
            == 200
        )
        answer = b""
        while b"\r\n\r\n" not in answer:
            part = s.recv(4096)
            if not part:
                break
            answer += part
        waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert 1.5 <= waited < 10  # the policy's request_timeout_s is 2


def test_zero_rows_and_many_rows(guard: Guard, client: Any) -> None:
    r = client.post("/v2/models/digits/infer", json=guard.body(guard.X[:0]), headers=guard.headers())
    assert r.status_code in (200, 422), r.text
    r = client.post("/v2/models/digits/infer", json=guard.body(guard.X[:50]), headers=guard.headers())
    assert r.status_code == 200
    assert len(r.json()["outputs"][-1]["data"]) == 50


# ----------------------------------------------------------------------------- in-process faults


@pytest.fixture(scope="module")
def local_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any, str]]:
    """The guard app in-process over a local model file, with a client key granted the model."""
    import joblib
    from starlette.testclient import TestClient

    from mlsecops.registry import Role, authenticate, create_api_key, create_user, grant
    from mlsecops.runtime.app import ServeConfig, create_app
    from mlsecops.store import Workspace

    tmp = tmp_path_factory.mktemp("local")
    home = tmp / ".mlsecops"
    ws = Workspace.init(home, actor="test")
    create_user(ws, "root", Role.ADMIN, actor=None)
    admin = authenticate(ws, create_api_key(ws, "root", actor=None))
    create_user(ws, "alice", Role.CLIENT, actor=admin)
    key = create_api_key(ws, "alice", actor=admin)
    grant(ws, "pixels", "alice", actor=admin)
    ws.close()
    model, _X, _y = train_digits()
    path = tmp / "pixels.joblib"
    joblib.dump(model, path)
    mp = pytest.MonkeyPatch()
    mp.setenv("MLSECOPS_HOME", str(home))
    mp.delenv("MLSECOPS_DATABASE_URL", raising=False)
    try:
        app = create_app(ServeConfig(model=str(path)))
        with TestClient(app, raise_server_exceptions=False) as tc:
            yield app, tc, key
    finally:
        mp.undo()


def _body(rows: int = 1) -> dict[str, Any]:
    return {"inputs": [{"name": "x", "shape": [rows, 64], "datatype": "FP32", "data": [1.0] * 64 * rows}]}


def test_a_local_file_is_served_under_its_stem(local_app: tuple[Any, Any, str]) -> None:
    _app, tc, key = local_app
    r = tc.post("/v2/models/pixels/infer", json=_body(), headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200, r.text
    assert r.json()["model_name"] == "pixels" and len(r.json()["model_version"]) == 12


def test_a_crashing_model_is_500_and_the_server_keeps_serving(
    local_app: tuple[Any, Any, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, tc, key = local_app
    guard = app.state.guard
    real = guard.active.predict  # the model call the request path makes (a kernel or the estimator's)

    def crash(x: np.ndarray) -> np.ndarray:
        if x.shape[0] == 2:
            raise RuntimeError("segfault-ish /secret/path/in/message")
        return np.asarray(real(x))

    monkeypatch.setattr(guard, "active", dataclasses.replace(guard.active, predict=crash))
    headers = {"Authorization": f"Bearer {key}"}
    r = tc.post("/v2/models/pixels/infer", json=_body(2), headers=headers)
    _error(r, 500, "model_failed")
    assert "secret" not in r.text  # the exception's text stays in the server log
    assert tc.post("/v2/models/pixels/infer", json=_body(1), headers=headers).status_code == 200


def test_a_model_that_hangs_is_cut_off(
    local_app: tuple[Any, Any, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import select

    from mlsecops.runtime._decision_tables import DecisionRecord

    app, tc, key = local_app
    guard = app.state.guard
    real = guard.active.predict

    def slow(x: np.ndarray) -> np.ndarray:
        if x.shape[0] == 3:
            time.sleep(1.5)
        return np.asarray(real(x))

    monkeypatch.setattr(guard, "active", dataclasses.replace(guard.active, predict=slow))
    monkeypatch.setattr(
        guard,
        "policy",
        guard.policy.model_copy(
            update={"server": guard.policy.server.model_copy(update={"model_timeout_s": 0.5})}
        ),
    )
    headers = {"Authorization": f"Bearer {key}"}
    _error(tc.post("/v2/models/pixels/infer", json=_body(3), headers=headers), 500, "model_failed")
    assert tc.post("/v2/models/pixels/infer", json=_body(1), headers=headers).status_code == 200
    time.sleep(1.5)  # the abandoned thread finishes its model call...
    assert guard.decisions.flush(30)
    with guard.ws.session(readonly=True) as s:
        rows = {(r.rows, r.decision, r.status) for r in s.execute(select(DecisionRecord)).scalars()}
    # ...and its late answer is not logged as served; the refusal the client saw is
    assert (3, "accepted", 200) not in rows
    assert any(decision.startswith("rejected:model_failed") for _n, decision, _s in rows)


def test_database_gone_is_503(local_app: tuple[Any, Any, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.exc import OperationalError

    app, tc, key = local_app
    guard = app.state.guard
    real = guard.auth.authenticate

    def down(authorization: str | None) -> Any:
        raise OperationalError("SELECT 1", {}, Exception("connection refused: password=hunter2"))

    monkeypatch.setattr(guard.auth, "authenticate", down)
    headers = {"Authorization": f"Bearer {key}"}
    r = tc.post("/v2/models/pixels/infer", json=_body(), headers=headers)
    _error(r, 503, "unavailable")
    assert "hunter2" not in r.text
    monkeypatch.setattr(guard.auth, "authenticate", real)
    assert tc.post("/v2/models/pixels/infer", json=_body(), headers=headers).status_code == 200


def test_unexpected_bug_is_a_json_500(
    local_app: tuple[Any, Any, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, tc, key = local_app
    guard = app.state.guard

    def bug(*_a: Any, **_k: Any) -> None:
        raise KeyError("internal-detail")

    monkeypatch.setattr(guard.limiter, "check", bug)
    r = tc.post("/v2/models/pixels/infer", json=_body(), headers={"Authorization": f"Bearer {key}"})
    _error(r, 500, "internal")
    assert "internal-detail" not in r.text


def test_refusals_of_what_would_be_served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file the scanner does not pass, a missing file, a bad policy: one line, exit 2."""
    import pickle

    from mlsecops.cli import main

    home = tmp_path / ".mlsecops"
    from mlsecops.store import Workspace

    Workspace.init(home, actor="test").close()
    monkeypatch.setenv("MLSECOPS_HOME", str(home))

    class Evil:
        def __reduce__(self) -> tuple[Any, ...]:
            return (eval, ("1+1",))

    bad = tmp_path / "evil.pkl"
    bad.write_bytes(pickle.dumps(Evil()))
    assert main(["serve", str(bad), "--dry-run"]) == 2
    assert main(["serve", str(tmp_path / "missing.joblib"), "--dry-run"]) == 2
    assert main(["serve", "nosuchmodel@production", "--dry-run"]) == 2
    policy = tmp_path / "guard.yaml"
    policy.write_text("limits:\n  burst: -1\n")
    assert main(["serve", str(bad), "--policy", str(policy), "--dry-run"]) == 2
