"""``mlsecops serve digits --upstream URL`` in front of a real KServe ModelServer (``_peers.py``).

Both run as subprocesses on free loopback ports. The guard must forward what it accepts and answer
exactly what the peer answers; refuse unauthenticated (401), ungranted (403) and ill-shaped (422)
requests without the peer ever seeing them (the peer's own access log counts its inference requests);
and turn a peer that hangs (its model timeout) or goes away into a JSON 5xx while it keeps serving,
then recover when the peer is back.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests._deps import require
from tests.integration.runtime import _peers
from tests.integration.runtime._peers import (
    N_FEATURES,
    PEER_MODEL,
    Peer,
    free_port,
    start_kserve,
)

kserve_peer = _peers.kserve_peer  # the session's KServe peer, as a fixture of this module

pytestmark = pytest.mark.timeout(600)

GUARD_READY_TIMEOUT_S = 120.0
"""The guard reads the peer's metadata and probes it once before it listens."""

POLICY = """\
version: 1
server:
  model_timeout_s: 5
limits:
  requests_per_second: 100000
  burst: 100000
  daily_budget: 10000000
logging:
  sample_rate: 1.0
"""


@dataclass
class Upstreamed:
    """A guard in front of a peer, and the keys of the test workspace's clients."""

    url: str
    peer: Peer
    proc: subprocess.Popen[bytes]
    log_path: Path
    keys: dict[str, str]

    def headers(self, who: str = "alice") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _body(rows: np.ndarray, shape: list[int] | None = None) -> dict[str, Any]:
    return {
        "inputs": [
            {
                "name": "input-0",
                "shape": shape if shape is not None else list(rows.shape),
                "datatype": "FP64",
                "data": rows.reshape(-1).tolist(),
            }
        ]
    }


def _workspace(home: Path) -> dict[str, str]:
    """A workspace with alice (client, granted ``digits``) and bob (client, granted nothing)."""
    from mlsecops.registry import Role, authenticate, create_api_key, create_user, grant
    from mlsecops.store import Workspace

    ws = Workspace.init(home, actor="test")
    try:
        create_user(ws, "root", Role.ADMIN, actor=None)
        admin = authenticate(ws, create_api_key(ws, "root", actor=None))
        keys = {}
        for name in ("alice", "bob"):
            create_user(ws, name, Role.CLIENT, actor=admin)
            keys[name] = create_api_key(ws, name, actor=admin)
        grant(ws, PEER_MODEL, "alice", actor=admin)
    finally:
        ws.close()
    return keys


def _start_guard(home: Path, peer: Peer, policy: Path, log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    import httpx

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLSECOPS_")}
    env.update({"MLSECOPS_HOME": str(home), "PYTHONUNBUFFERED": "1"})
    cmd = [sys.executable, "-m", "mlsecops.cli", "serve", PEER_MODEL, "--upstream", peer.url]
    cmd += ["--policy", str(policy), "--host", "127.0.0.1", "--port", str(port)]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=home.parent)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + GUARD_READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"mlsecops serve --upstream exited {proc.returncode}: {log_path.read_text()[-2000:]}"
            )
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"mlsecops serve --upstream did not become ready: {log_path.read_text()[-2000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def upstreamed(kserve_peer: Peer) -> Iterator[Upstreamed]:
    """The guard in front of the session's KServe peer."""
    require("fastapi", "serve")
    tmp = Path(tempfile.mkdtemp(prefix="mlsecops-upstream-"))
    home = tmp / "ws" / ".mlsecops"
    keys = _workspace(home)
    policy = tmp / "guard.yaml"
    policy.write_text(POLICY)
    log_path = tmp / "guard.log"
    proc, url = _start_guard(home, kserve_peer, policy, log_path)
    try:
        yield Upstreamed(url, kserve_peer, proc, log_path, keys)
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    from sklearn.datasets import load_digits

    x, _ = load_digits(return_X_y=True)
    return np.asarray(x[:8], dtype=np.float64)


def _post(url: str, body: Any, headers: dict[str, str] | None = None) -> Any:
    import httpx

    return httpx.post(f"{url}/v2/models/{PEER_MODEL}/infer", json=body, headers=headers or {}, timeout=30)


def test_granted_requests_are_forwarded_and_answered_as_the_peer_answers(
    upstreamed: Upstreamed, rows: np.ndarray
) -> None:
    import httpx

    meta = httpx.get(f"{upstreamed.url}/v2/models/{PEER_MODEL}", headers=upstreamed.headers(), timeout=10)
    assert meta.status_code == 200, meta.text
    assert meta.json()["inputs"][0]["shape"] == [-1, N_FEATURES]
    for batch in (rows[:1], rows[1:5]):
        direct = _post(upstreamed.peer.url, _body(batch))
        assert direct.status_code == 200, direct.text
        expected = np.asarray(direct.json()["outputs"][0]["data"]).reshape(len(batch), -1)
        before = upstreamed.peer.infer_count()
        r = _post(upstreamed.url, _body(batch), upstreamed.headers())
        assert r.status_code == 200, r.text
        doc = r.json()
        assert doc["model_name"] == PEER_MODEL
        outputs = {o["name"]: o for o in doc["outputs"]}
        probs = outputs["probabilities"]
        assert probs["shape"] == [len(batch), 10] and probs["datatype"] == "FP64"
        np.testing.assert_allclose(
            np.asarray(probs["data"]).reshape(len(batch), -1), expected, rtol=0, atol=1e-12
        )
        assert upstreamed.peer.infer_count() == before + 1  # exactly one forwarded request
    assert upstreamed.keys["alice"] not in upstreamed.log()


def test_no_or_unknown_key_is_401_and_never_reaches_the_peer(
    upstreamed: Upstreamed, rows: np.ndarray
) -> None:
    before = upstreamed.peer.infer_count()
    for headers in ({}, {"Authorization": "Bearer mlsk_notakey.notasecret"}, {"Authorization": "Basic eDp5"}):
        r = _post(upstreamed.url, _body(rows[:1]), headers)
        assert r.status_code == 401, r.text
        assert r.json()["error"]["code"] == "unauthenticated"
        assert r.headers["www-authenticate"].startswith("Bearer")
    assert upstreamed.peer.infer_count() == before


def test_a_principal_without_a_grant_is_403_and_never_reaches_the_peer(
    upstreamed: Upstreamed, rows: np.ndarray
) -> None:
    before = upstreamed.peer.infer_count()
    r = _post(upstreamed.url, _body(rows[:1]), upstreamed.headers("bob"))
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "forbidden"
    assert upstreamed.peer.infer_count() == before


@pytest.mark.parametrize(
    ("data", "shape"),
    [
        (np.zeros(N_FEATURES - 1), [1, N_FEATURES - 1]),  # one feature short
        (np.zeros(N_FEATURES + 1), [1, N_FEATURES + 1]),  # one feature too many
        (np.zeros(N_FEATURES), [N_FEATURES]),  # no batch dimension
        (np.zeros(N_FEATURES - 1), [1, N_FEATURES]),  # shape and data disagree
    ],
)
def test_a_wrong_shape_is_422_naming_the_field_before_the_peer(
    upstreamed: Upstreamed, data: np.ndarray, shape: list[int]
) -> None:
    before = upstreamed.peer.infer_count()
    r = _post(upstreamed.url, _body(data, shape), upstreamed.headers())
    assert r.status_code in (400, 422), r.text
    if len(data) == int(np.prod(shape)):  # a well-formed tensor of the wrong shape: the schema check's 422
        assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["field"].startswith("inputs"), error
    assert "Traceback" not in r.text
    assert upstreamed.peer.infer_count() == before


def test_a_peer_that_hangs_or_goes_down_is_a_json_error_then_the_guard_recovers(
    tmp_path: Path,
    kserve_peer: Peer,
    rows: np.ndarray,
) -> None:
    """A peer of its own (the session's keeps serving the other tests): kill it, restart it, same port."""
    import httpx

    require("fastapi", "serve")
    peer = start_kserve(kserve_peer.model_path, tmp_path / "peer.log")
    home = tmp_path / "ws" / ".mlsecops"
    keys = _workspace(home)
    policy = tmp_path / "guard.yaml"
    policy.write_text(POLICY)
    log_path = tmp_path / "guard.log"
    proc, url = _start_guard(home, peer, policy, log_path)
    headers = {"Authorization": f"Bearer {keys['alice']}"}
    try:
        assert _post(url, _body(rows[:1]), headers).status_code == 200
        peer.proc.send_signal(signal.SIGSTOP)  # a peer that hangs: the guard's model timeout answers
        try:
            t0 = time.monotonic()
            r = _post(url, _body(rows[:1]), headers)
            assert r.status_code in (502, 503, 504), r.text
            assert r.json()["error"]["code"] and "Traceback" not in r.text
            assert time.monotonic() - t0 < 25  # bounded by server.model_timeout_s (5 s), not the client's 30
        finally:
            peer.proc.send_signal(signal.SIGCONT)
        assert _post(url, _body(rows[:1]), headers).status_code == 200
        peer.stop()
        for _ in range(3):
            r = _post(url, _body(rows[:1]), headers)
            assert r.status_code in (502, 503), r.text
            assert r.headers["content-type"].startswith("application/json")
            error = r.json()["error"]
            assert error["code"] and error["message"]
            assert "Traceback" not in r.text and "httpx" not in r.text
        assert proc.poll() is None  # the guard keeps running and answering
        assert httpx.get(f"{url}/v2/health/live", timeout=5).json() == {"live": True}
        peer = start_kserve(peer.model_path, tmp_path / "peer.log", port=peer.port)
        r = _post(url, _body(rows[:1]), headers)
        assert r.status_code == 200, r.text
        assert "Traceback" not in Path(log_path).read_text(errors="replace")
        assert keys["alice"] not in Path(log_path).read_text(errors="replace")
    finally:
        _stop(proc)
        peer.stop()
