"""``POST /v2/models/{name}/feedback``: labels reach the drift detector (in the sidecar), and a drop in
the actual accuracy raises a ``performance`` alert; who may send labels, and bad feedback bodies."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from tests.integration.runtime.conftest import train_digits

pytestmark = pytest.mark.timeout(300)

WINDOW = 100
"""Labelled rows per accuracy test (the policy's ``feedback_window``)."""


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The guard in-process (detectors in its sidecar) with a drift detector taking feedback."""
    import joblib
    from starlette.testclient import TestClient

    from mlsecops.registry import Role, authenticate, create_api_key, create_user, grant
    from mlsecops.runtime.app import ServeConfig, create_app
    from mlsecops.store import Workspace

    tmp = tmp_path_factory.mktemp("feedback")
    home = tmp / ".mlsecops"
    ws = Workspace.init(home, actor="test")
    create_user(ws, "root", Role.ADMIN, actor=None)
    keys = {"admin": create_api_key(ws, "root", actor=None)}
    admin = authenticate(ws, keys["admin"])
    create_user(ws, "alice", Role.CLIENT, actor=admin)
    keys["alice"] = create_api_key(ws, "alice", actor=admin)
    grant(ws, "pixels", "alice", actor=admin)
    create_user(ws, "dora", Role.DEPLOYER, actor=admin)
    keys["dora"] = create_api_key(ws, "dora", actor=admin)
    create_user(ws, "vic", Role.VIEWER, actor=admin)
    keys["vic"] = create_api_key(ws, "vic", actor=admin)
    ws.close()
    model, X, y = train_digits()
    joblib.dump(model, tmp / "pixels.joblib")
    from sklearn.datasets import load_digits

    np.save(tmp / "train.npy", load_digits(return_X_y=True)[0])
    subprocess.run(
        [
            sys.executable,
            "-m",
            "mlsecops.cli",
            "data",
            "profile",
            str(tmp / "train.npy"),
            "-o",
            str(tmp / "p.json"),
        ],
        check=True,
        capture_output=True,
    )
    policy = tmp / "guard.yaml"
    policy.write_text(
        f"""version: 1
validation:
  profile: {tmp / "p.json"}
monitor:
  detectors:
    drift: {{feedback_window: {WINDOW}}}
"""
    )
    mp = pytest.MonkeyPatch()
    mp.setenv("MLSECOPS_HOME", str(home))
    mp.delenv("MLSECOPS_DATABASE_URL", raising=False)
    try:
        guard_app = create_app(ServeConfig(model=str(tmp / "pixels.joblib"), policy=str(policy)))
        with TestClient(guard_app, raise_server_exceptions=False) as tc:
            yield {"app": guard_app, "tc": tc, "keys": keys, "X": X, "y": y, "model": model}
    finally:
        mp.undo()


def _body(x: np.ndarray, labels: list[int] | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "inputs": [{"name": "x", "shape": list(x.shape), "datatype": "FP64", "data": x.reshape(-1).tolist()}]
    }
    if labels is not None:
        body["labels"] = labels
    return body


def _post(app: dict[str, Any], who: str | None, body: Any) -> Any:
    headers = {} if who is None else {"Authorization": f"Bearer {app['keys'][who]}"}
    return app["tc"].post("/v2/models/pixels/feedback", json=body, headers=headers)


def _performance_alerts(app: dict[str, Any]) -> list[Any]:
    from mlsecops.monitor.alerts import AlertStore

    guard = app["app"].state.guard
    assert guard.decisions.flush(60)  # the sidecar has examined everything sent so far
    return AlertStore(guard.ws).list(kind="performance", model="pixels")


def test_true_labels_raise_nothing_and_wrong_labels_raise_a_performance_alert(app: dict[str, Any]) -> None:
    X, y = app["X"], app["y"]
    for start in range(0, 2 * WINDOW, 50):  # two windows of the model's real accuracy (~0.95)
        rows = slice(start, start + 50)
        r = _post(app, "dora", _body(X[rows], [int(v) for v in y[rows]]))
        assert r.status_code == 200, r.text
        assert r.json()["rows"] == 50 and r.json()["model_name"] == "pixels"
    assert _performance_alerts(app) == []
    # the world changes: a third of the labels now disagree with what the model answers
    wrong = [int((v + 1) % 10) if i % 3 == 0 else int(v) for i, v in enumerate(y[:WINDOW])]
    assert _post(app, "dora", _body(X[:WINDOW], wrong)).status_code == 200
    deadline = time.monotonic() + 30
    while not (alerts := _performance_alerts(app)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(alerts) == 1 and alerts[0].kind == "performance"


@pytest.mark.parametrize(
    ("who", "status"),
    [(None, 401), ("alice", 403), ("vic", 403)],  # clients and viewers cannot steer the drift alerts
)
def test_only_deployers_and_admins_send_labels(app: dict[str, Any], who: str | None, status: int) -> None:
    r = _post(app, who, _body(app["X"][:2], [0, 1]))
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] in ("unauthenticated", "forbidden")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("labels-too-few", "labels"),
        ("labels-out-of-range", "labels"),
        ("no-labels", "labels"),
        ("wrong-width", "inputs[0]"),
        ("nan", "inputs[0]"),
    ],
)
def test_bad_feedback_is_422_naming_the_field(app: dict[str, Any], body: str, field: str) -> None:
    x = app["X"][:3]
    bodies = {
        "labels-too-few": _body(x, [1, 2]),
        "labels-out-of-range": _body(x, [1, 2, 10]),
        "no-labels": _body(x, None),
        "wrong-width": _body(x[:, :63], [1, 2, 3]),
        "nan": {
            "inputs": [{"name": "x", "shape": [1, 64], "datatype": "FP64", "data": ["NaN"] + [0.0] * 63}],
            "labels": [1],
        },
    }
    r = _post(app, "admin", bodies[body])
    assert r.status_code in (400, 422), r.text
    err = r.json()["error"]
    assert err.get("field", "").startswith(field), err


def test_malformed_json_and_unknown_model(app: dict[str, Any]) -> None:
    headers = {"Authorization": f"Bearer {app['keys']['admin']}", "Content-Type": "application/json"}
    r = app["tc"].post("/v2/models/pixels/feedback", content=b"{not json", headers=headers)
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request"
    r = app["tc"].post("/v2/models/other/feedback", json=_body(app["X"][:1], [0]), headers=headers)
    assert r.status_code == 404


def test_feedback_without_a_label_taking_detector_is_409(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import joblib
    from starlette.testclient import TestClient

    from mlsecops.registry import Role, create_api_key, create_user
    from mlsecops.runtime.app import ServeConfig, create_app
    from mlsecops.store import Workspace

    home = tmp_path / ".mlsecops"
    ws = Workspace.init(home, actor="test")
    create_user(ws, "root", Role.ADMIN, actor=None)
    key = create_api_key(ws, "root", actor=None)
    ws.close()
    model, X, _y = train_digits(max_iter=5)
    joblib.dump(model, tmp_path / "pixels.joblib")
    monkeypatch.setenv("MLSECOPS_HOME", str(home))
    monkeypatch.delenv("MLSECOPS_DATABASE_URL", raising=False)
    guard_app = create_app(ServeConfig(model=str(tmp_path / "pixels.joblib")), sidecar=False)
    with TestClient(guard_app, raise_server_exceptions=False) as tc:
        r = tc.post(
            "/v2/models/pixels/feedback", json=_body(X[:1], [0]), headers={"Authorization": f"Bearer {key}"}
        )
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_monitored"
