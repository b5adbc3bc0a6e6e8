"""Decision auditing through the guard: sampled decisions are logged with their group and a local
explanation (computed in the sidecar, off the request path), labels sent as feedback are logged, the
``fairness`` detector raises an alert when a disparity opens in live traffic, and ``mlsecops monitor
fairness --log`` finds it in the decision log. A biased model (trained on labels that under-record
women's deaths, flchain: the healthcare case's data) raises the alert; its fair twin raises none.
No raw input, output or key is stored (``logging.raw_inputs`` is off)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from sqlalchemy import text

pytestmark = pytest.mark.timeout(300)

WINDOW = 800
"""Labelled rows per fairness audit (the detector's ``window``): the whole labelled stream."""


def _train(kind: str) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression

    from mlsecops.pipeline.healthcare import flchain_frame

    frame = flchain_frame()
    y = frame.pop("death").to_numpy().astype(int)
    x = frame.to_numpy(np.float64)
    s = list(frame.columns).index("female")
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(y))
    train, live = idx[:-WINDOW], idx[-WINDOW:]
    if kind == "biased":  # women's deaths under-recorded in the training labels: planted disparity
        labels = np.where((x[:, s] == 1) & (rng.random(len(y)) < 0.7), 0, y)
        model = LogisticRegression(max_iter=2000).fit(x[train], labels[train])
    else:  # the fair twin never sees the column
        blind = x.copy()
        blind[:, s] = 0.0
        model = LogisticRegression(max_iter=2000).fit(blind[train], y[train])
    return {"model": model, "x": x, "train": train, "live": live, "y": y, "columns": list(frame.columns)}


@pytest.fixture(scope="module", params=["biased", "fair"])
def app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The guard in-process (decision log and detectors in its sidecar) serving one of the two models."""
    import joblib
    from starlette.testclient import TestClient

    from mlsecops.registry import Role, authenticate, create_api_key, create_user, grant
    from mlsecops.runtime.app import ServeConfig, create_app
    from mlsecops.store import Workspace

    kind = request.param
    tmp = tmp_path_factory.mktemp(f"audit-{kind}")
    home = tmp / ".mlsecops"
    ws = Workspace.init(home, actor="test")
    create_user(ws, "root", Role.ADMIN, actor=None)
    keys = {"admin": create_api_key(ws, "root", actor=None)}
    admin = authenticate(ws, keys["admin"])
    create_user(ws, "alice", Role.CLIENT, actor=admin)
    keys["alice"] = create_api_key(ws, "alice", actor=admin)
    grant(ws, "risk", "alice", actor=admin)
    create_user(ws, "dora", Role.DEPLOYER, actor=admin)
    keys["dora"] = create_api_key(ws, "dora", actor=admin)
    ws.close()
    world = _train(kind)
    joblib.dump(world["model"], tmp / "risk.joblib")
    train = tmp / "flchain.csv"  # the profile covers the live rows' range too (validation enforces it)
    rows = [",".join(world["columns"])] + [",".join(f"{v:g}" for v in r) for r in world["x"]]
    train.write_text("\n".join(rows) + "\n")
    env = {**os.environ, "MLSECOPS_HOME": str(home)}
    env.pop("MLSECOPS_DATABASE_URL", None)
    cli = [sys.executable, "-m", "mlsecops.cli"]
    subprocess.run([*cli, "data", "profile", str(train), "-o", str(tmp / "p.json")], check=True, env=env)
    policy = tmp / "guard.yaml"
    policy.write_text(
        f"""version: 1
validation:
  profile: {tmp / "p.json"}
logging:
  explain: {{sample_rate: 0.5, top_k: 3}}
  group: {{columns: [6], names: [female]}}
monitor:
  detectors:
    fairness: {{sensitive_index: 6, window: {WINDOW}, max_difference: 0.2}}
"""
    )
    mp = pytest.MonkeyPatch()
    mp.setenv("MLSECOPS_HOME", str(home))
    mp.delenv("MLSECOPS_DATABASE_URL", raising=False)
    try:
        guard_app = create_app(ServeConfig(model=str(tmp / "risk.joblib"), policy=str(policy)))
        with TestClient(guard_app, raise_server_exceptions=False) as tc:
            world.update(app=guard_app, tc=tc, keys=keys, kind=kind, env=env, cli=cli)
            _traffic(world)
            yield world
    finally:
        mp.undo()


def _body(x: np.ndarray, labels: list[int] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "inputs": [{"name": "x", "shape": list(x.shape), "datatype": "FP64", "data": x.reshape(-1).tolist()}]
    }
    if labels is not None:
        body["labels"] = labels
    return body


def _traffic(world: dict[str, Any]) -> None:
    """Live requests from a client, then the labels of the live rows from a deployer."""
    tc, keys, x, y, live = world["tc"], world["keys"], world["x"], world["y"], world["live"]
    for i in live[:60]:
        r = tc.post(
            "/v2/models/risk/infer",
            json=_body(x[i : i + 1]),
            headers={"Authorization": f"Bearer {keys['alice']}"},
        )
        assert r.status_code == 200, r.text
    for start in range(0, WINDOW, 100):
        part = live[start : start + 100]
        r = tc.post(
            "/v2/models/risk/feedback",
            json=_body(x[part], [int(v) for v in y[part]]),
            headers={"Authorization": f"Bearer {keys['dora']}"},
        )
        assert r.status_code == 200, r.text
    assert world["app"].state.guard.decisions.flush(120)  # written and examined by the sidecar


def _rows(world: dict[str, Any]) -> list[Any]:
    with world["app"].state.guard.ws.session(readonly=True) as s:
        return list(s.execute(text("SELECT * FROM runtime_decisions ORDER BY id")).mappings())


def test_a_disparity_opening_in_live_traffic_raises_a_fairness_alert_for_the_biased_model_only(
    app: dict[str, Any],
) -> None:
    from mlsecops.monitor.alerts import AlertStore

    alerts = AlertStore(app["app"].state.guard.ws).list(kind="fairness", model="risk")
    if app["kind"] == "biased":
        assert len(alerts) == 1
        evidence = alerts[0].evidence
        assert evidence["metric"] == "equal_opportunity_difference" and evidence["interval"][0] > 0.2
    else:
        assert alerts == []


def test_monitor_fairness_log_audits_the_logged_groups_and_labels(app: dict[str, Any]) -> None:
    out = subprocess.run(
        [*app["cli"], "monitor", "fairness", "--log", "risk", "--window", str(WINDOW), "--max-difference", "0.2",
         "-f", "json"],
        env=app["env"], capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == (1 if app["kind"] == "biased" else 0), out.stderr
    report = json.loads(out.stdout)
    (window,) = report["windows"]
    assert window["rows"] == WINDOW and window["beyond"] is (app["kind"] == "biased")
    assert set(window["groups"]) == {"female=0", "female=1"}
    trend = report["attributions"]
    assert set(trend) == {"female=0", "female=1"}
    if app["kind"] == "biased":  # being a woman is what drives the biased model's decisions for women
        assert trend["female=1"][0]["top"][0][0] == "female"
    else:
        assert all(f != "female" for s in trend["female=1"] for f, _ in s["top"])


def test_sampled_decisions_carry_group_and_explanation_and_nothing_raw_or_secret(app: dict[str, Any]) -> None:
    rows = _rows(app)
    accepted = [r for r in rows if r["decision"] == "accepted"]
    feedback = [r for r in rows if r["decision"] == "feedback"]
    assert len(accepted) == 60 and len(feedback) == WINDOW // 100
    explained = [r for r in accepted if r["explanation"] is not None]
    assert 10 <= len(explained) <= 50  # explain.sample_rate 0.5 of the logged decisions
    for r in explained:
        doc = json.loads(r["explanation"])
        assert doc["method"] == "linear" and len(doc["rows"][0]["top"]) == 3
        assert {f for f, _ in doc["rows"][0]["top"]} <= set(app["columns"])  # names from the profile
    assert all(json.loads(r["groups"])[0] in ("female=0", "female=1") for r in accepted)
    assert all(r["explanation"] is None and len(json.loads(r["labels"])) == 100 for r in feedback)
    assert all(r["inputs"] is None and r["outputs"] is None for r in rows)  # raw_inputs is off
    dump = json.dumps([dict(r) for r in rows], default=str)
    assert not any(key in dump for key in app["keys"].values())
    out = subprocess.run(
        [*app["cli"], "monitor", "decisions", "risk", "--explain", "--json", "--limit", "5"],
        env=app["env"], capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    shown = json.loads(out.stdout)["decisions"]
    assert len(shown) == 5 and all(d["explanation"]["method"] == "linear" for d in shown)
    assert all("inputs" not in d for d in shown)
