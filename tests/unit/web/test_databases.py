"""The dashboard's queries on both databases (SQLite and a throw-away PostgreSQL)."""

from __future__ import annotations

import time
from typing import Any

from mlsecops.core.severity import Severity
from mlsecops.monitor.alerts import AlertStore
from mlsecops.monitor.interface import Alert
from mlsecops.registry import Role, create_api_key, create_user
from mlsecops.runtime._decision_tables import DecisionRecord
from mlsecops.store import audit
from mlsecops.web import _queries as q
from mlsecops.web._verify import ChainVerifier


def _decision(ts_s: float, status: int) -> DecisionRecord:
    return DecisionRecord(
        ts_us=int(ts_s * 1_000_000),
        principal="p1",
        model="m1",
        version="1",
        decision="ok" if status < 400 else "rejected",
        status=status,
        latency_ms=1.0,
        input_digest="0" * 64,
        rows=1,
    )


def test_queries_on_each_database(workspace: Any) -> None:
    ws = workspace
    create_user(ws, "root", Role.ADMIN, actor=None)
    create_api_key(ws, "root", actor=None)
    day = 86_400
    base = (int(time.time()) // day) * day - 3 * day
    with ws.session() as s:
        for i in range(30):
            audit.append(s, actor="a" if i % 3 else "b", action="test.event", subject=f"x:{i}")
        # day 0: 3 requests, 1 rejected; day 2: 2 requests, both rejected
        for t, status in (
            (base + 10, 200),
            (base + 20, 200),
            (base + 30, 422),
            (base + 2 * day + 5, 429),
            (base + 2 * day + 9, 403),
        ):
            s.add(_decision(t, status))
    AlertStore(ws).record(Alert("drift", "", "m1", Severity.MEDIUM, 0, float(base + 100), {}))

    series = q.runtime_series(ws, "m1", bucket_s=day)
    assert series["requests"] == [(float(base), 3.0), (float(base + 2 * day), 2.0)]
    assert series["rejected"] == [(float(base), 1.0), (float(base + 2 * day), 2.0)]
    assert series["alerts"] == [(float(base), 1.0)]

    first, before = q.audit_page(ws, action="test.*", limit=20)
    rest, end = q.audit_page(ws, action="test.*", before=before, limit=20)
    assert len(first) == 20 and len(rest) == 10 and end is None
    only_b, _ = q.audit_page(ws, action="test.event", actor="b", limit=100)
    assert len(only_b) == 10
    since = q.parse_time(first[-1]["ts"], "since")
    recent, _ = q.audit_page(ws, action="test.event", since=since, limit=100)
    assert 20 <= len(recent) <= 30

    assert q.models_overview(ws) == []
    assert [a["kind"] for a in q.alerts_page(ws, model="m1")] == ["drift"]
    assert q.incidents_page(ws) == []
    status = ChainVerifier(ws).wait()
    assert status["state"] == "verified" and status["events"] == status["head"]
