"""An incident end to end: the guard runs as a subprocess with a policy whose playbook blocks the principal
and rolls the model back on extraction alerts; a model thief queries it and a benign client does too.

We see the extraction alert, the automatic block (the thief's next requests get 403) and the rollback
(production is the previous signed version again, and the guard serves it) in ``mlsecops incidents
show``, ``mlsecops audit verify`` passing, and the benign client answered throughout and never flagged.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests._deps import require
from tests.integration.runtime.conftest import Registry, make_registry, start_guard, stop_guard

pytestmark = pytest.mark.timeout(420)

THIEF_QUERIES = 600
"""Most queries the thief sends; the goal is a block within 200 (the issue's target), with margin."""
BENIGN_QUERIES = 150

POLICY = """\
version: 1
limits:
  requests_per_second: 100000
  burst: 100000
  daily_budget: 10000000
validation:
  mode: observe
  profile: {profile}
monitor:
  detectors:
    extraction: {{}}
playbooks:
  - name: contain-model-thieves
    kind: extraction
    min_severity: high
    actions:
      - action: block
      - action: rollback
"""


@dataclasses.dataclass
class Scene:
    url: str
    home: Path
    tmp: Path
    reg: Registry
    world: Any
    proc: subprocess.Popen[bytes]
    log: Path
    versions: tuple[int, int]


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLSECOPS_")}
    env.update({"MLSECOPS_HOME": str(home), "COLUMNS": "200"})
    return env


def _cli(scene: Scene, *args: str, key: str | None = None) -> subprocess.CompletedProcess[str]:
    env = _env(scene.home)
    if key is not None:
        env["MLSECOPS_API_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "mlsecops.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=scene.home.parent,
    )


def _logreg(x: np.ndarray, y: np.ndarray, seed: int) -> Any:
    import warnings

    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    idx = rng.choice(len(x), size=int(0.9 * len(x)), replace=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return LogisticRegression(max_iter=200).fit(x[idx], y[idx])


@pytest.fixture(scope="module")
def scene() -> Iterator[Scene]:
    require("fastapi", "serve")
    require("httpx", "test")
    from sklearn.datasets import load_digits

    from mlsecops.monitor._thieves import World
    from mlsecops.registry import Role, authenticate, create_api_key, create_user, grant
    from mlsecops.runtime.response import RESPONSE_USER

    tmp = Path(tempfile.mkdtemp(prefix="mlsecops-incident-"))
    home = tmp / "ws" / ".mlsecops"
    reg = make_registry(home, tmp)
    admin = authenticate(reg.ws, reg.keys["admin"])
    create_user(reg.ws, "mallory", Role.CLIENT, actor=admin)
    reg.keys["mallory"] = create_api_key(reg.ws, "mallory", actor=admin)
    grant(reg.ws, "digits", "mallory", actor=admin)
    create_user(reg.ws, RESPONSE_USER, Role.DEPLOYER, actor=admin)  # rollback needs a deployer
    # The victim: a logistic regression on digits (v1), replaced in production by a second one (v2); the
    # rollback must bring v1 back. The thieves' world is built around the same rows and the served model.
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    x_train, y_train, x_pool = x[order[:1000]], y[order[:1000]], x[order[1000:]]
    v1 = reg.release(_logreg(x_train, y_train, 1), "v1")
    v2 = reg.release(_logreg(x_train, y_train, 2), "v2")
    world = World("digits", x_train, y_train, x_pool, 16.0 - x_pool, _logreg(x_train, y_train, 2))
    train = tmp / "train.csv"
    np.savetxt(train, x_train, delimiter=",", header=",".join(f"p{i}" for i in range(64)), comments="")
    profile = tmp / "profile.json"
    made = subprocess.run(
        [sys.executable, "-m", "mlsecops.cli", "data", "profile", str(train), "-o", str(profile)],
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    policy = tmp / "guard.yaml"
    policy.write_text(POLICY.format(profile=profile))
    log = tmp / "guard.log"
    proc, url = start_guard(home, ["digits@production", "--policy", str(policy)], log)
    try:
        yield Scene(url, home, tmp, reg, world, proc, log, (v1, v2))
    finally:
        stop_guard(proc)
        reg.ws.close()


def _body(rows: np.ndarray) -> dict[str, Any]:
    return {
        "inputs": [
            {
                "name": "input-0",
                "shape": list(rows.shape),
                "datatype": "FP64",
                "data": rows.reshape(-1).tolist(),
            }
        ]
    }


def _send(client: Any, scene: Scene, who: str, rows: np.ndarray) -> Any:
    return client.post(
        "/v2/models/digits/infer",
        json=_body(rows),
        headers={"Authorization": f"Bearer {scene.reg.keys[who]}"},
    )


def test_thief_is_blocked_and_model_rolled_back_benign_client_unaffected(scene: Scene) -> None:
    import httpx

    from mlsecops.monitor._thieves import benign_stream, thief_stream

    v1, v2 = scene.versions
    benign = benign_stream(scene.world, "natural", BENIGN_QUERIES, seed=7)
    thief = thief_stream(scene.world, "uniform", THIEF_QUERIES, seed=3)
    statuses: dict[str, list[int]] = {"alice": [], "mallory": []}
    first_thief_query = time.time()
    blocked_at: int | None = None
    with httpx.Client(base_url=scene.url, timeout=30) as client:
        for _, rows in benign[: BENIGN_QUERIES // 2]:
            statuses["alice"].append(_send(client, scene, "alice", rows).status_code)
        for i, (_, rows) in enumerate(thief, start=1):
            code = _send(client, scene, "mallory", rows).status_code
            statuses["mallory"].append(code)
            if code == 403:
                blocked_at = i
                break
            if i % 25 == 0:  # the detectors run off the request path: give them a moment to catch up
                time.sleep(0.05)
        # the block holds from the next request on
        deadline = time.monotonic() + 30
        while blocked_at is None and time.monotonic() < deadline:
            time.sleep(0.5)
            if _send(client, scene, "mallory", thief[-1][1]).status_code == 403:
                blocked_at = len(statuses["mallory"])
        seconds_to_block = time.time() - first_thief_query
        assert blocked_at is not None, scene.log.read_text()[-3000:]
        assert _send(client, scene, "mallory", thief[0][1]).status_code == 403
        # the guard follows production back to v1; the benign client is answered throughout
        versions = set()
        deadline = time.monotonic() + 60
        for _, rows in benign[BENIGN_QUERIES // 2 :]:
            r = _send(client, scene, "alice", rows)
            statuses["alice"].append(r.status_code)
            versions.add(r.json().get("model_version"))
        while str(v1) not in versions and time.monotonic() < deadline:
            r = _send(client, scene, "alice", benign[0][1])
            statuses["alice"].append(r.status_code)
            versions.add(r.json().get("model_version"))
            time.sleep(0.2)
    assert set(statuses["alice"]) == {200}
    assert str(v1) in versions, versions
    assert blocked_at <= 200 + 50, f"blocked after {blocked_at} queries"  # 200 to flag, slack for the queue

    alerts = json.loads(_cli(scene, "alerts", "list", "-f", "json").stdout)
    assert [(a["kind"], a["principal"]) for a in alerts] == [("extraction", "mallory")]  # alice never flagged
    incidents = json.loads(_cli(scene, "incidents", "list", "-f", "json").stdout)
    assert len(incidents) == 1 and incidents[0]["alert"]["id"] == alerts[0]["id"]
    shown = _cli(scene, "incidents", "show", str(incidents[0]["id"]), "-f", "json")
    assert shown.returncode == 0, shown.stderr
    incident = json.loads(shown.stdout)
    assert incident["status"] == "completed", incident["actions"]
    actions = {a["action"]: a for a in incident["actions"]}
    assert actions["block"]["detail"]["principal"] == "mallory"
    assert actions["rollback"]["detail"] == {"model": "digits", "from": v2, "to": v1}
    events = [e["event"] for e in incident["timeline"]]
    assert events[0] == "alert.raised" and events[-1] == "incident.completed"
    assert "action.block.done" in events and "action.rollback.done" in events
    text = _cli(scene, "incidents", "show", str(incidents[0]["id"]))
    assert text.returncode == 0 and "action.rollback.done" in text.stdout

    verified = _cli(scene, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    production = json.loads(
        _cli(scene, "registry", "show", "digits@production", "-f", "json", key=scene.reg.keys["admin"]).stdout
    )
    assert production["version"] == v1
    print(
        f"thief blocked after {blocked_at} queries, {seconds_to_block:.1f} s from its first query; "
        f"incident outcome {incident['time_to_outcome_s']:.2f} s after the alert"
    )
