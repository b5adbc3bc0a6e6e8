"""The alert store: dedup per (kind, principal, model) while unresolved, escalation, acknowledgement and
resolution, each audited in the transaction of the change; hostile evidence stays bounded JSON."""

from __future__ import annotations

import json
import threading
from typing import Any

import numpy as np
import pytest

from mlsecops.core.errors import InputError
from mlsecops.core.severity import Severity
from mlsecops.monitor.alerts import MAX_EVIDENCE_BYTES, AlertStatus, AlertStore
from mlsecops.monitor.interface import Alert
from mlsecops.store import Workspace, audit


def _alert(
    kind: str = "extraction",
    principal: str = "mallory",
    model: str = "fraud",
    severity: Severity = Severity.MEDIUM,
    query_index: int = 120,
    evidence: dict[str, Any] | None = None,
) -> Alert:
    return Alert(
        kind=kind,
        principal=principal,
        model=model,
        severity=severity,
        query_index=query_index,
        time=1_765_000_000.0 + query_index,
        evidence=evidence if evidence is not None else {"score": 0.9},
    )


def _events(ws: Workspace, action: str) -> list[dict[str, Any]]:
    with ws.session(readonly=True) as s:
        return [
            {"actor": e.actor, "subject": e.subject, **json.loads(e.details)}
            for e in audit.iter_events(s, action=action)
        ]


def test_repeats_of_one_triple_are_one_alert_with_a_count(workspace: Workspace) -> None:
    announced: list[tuple[str, Any]] = []
    store = AlertStore(workspace, actor="guard", notify=lambda e, p: announced.append((e, p)))
    first = store.record(_alert(query_index=120))
    second = store.record(_alert(query_index=150, evidence={"score": 0.95}))
    other_principal = store.record(_alert(principal="eve"))
    other_kind = store.record(_alert(kind="query_attack"))
    other_model = store.record(_alert(model="churn"))
    assert (first.change, second.change) == ("new", "repeat")
    assert second.alert.id == first.alert.id
    assert len({first.alert.id, other_principal.alert.id, other_kind.alert.id, other_model.alert.id}) == 4
    got = store.get(first.alert.id)
    assert (got.count, got.first_query_index, got.last_query_index) == (2, 120, 150)
    assert got.evidence == {"score": 0.95}
    assert got.first_seen < got.last_seen
    # every alert is an audit event naming the stored alert; only new ones are announced
    events = _events(workspace, "monitor.alert")
    assert [(e["alert_id"], e["change"], e["count"]) for e in events[:2]] == [
        (first.alert.id, "new", 1),
        (first.alert.id, "repeat", 2),
    ]
    assert all(e["actor"] == "guard" for e in events)
    assert [p["alert"]["id"] for e, p in announced] == [
        first.alert.id,
        other_principal.alert.id,
        other_kind.alert.id,
        other_model.alert.id,
    ]


def test_severity_escalates_and_never_goes_down(workspace: Workspace) -> None:
    announced: list[tuple[str, Any]] = []
    store = AlertStore(workspace, notify=lambda e, p: announced.append((e, p)))
    a = store.record(_alert(severity=Severity.MEDIUM)).alert
    store.acknowledge(a.id, actor="alice", note="looking")
    up = store.record(_alert(severity=Severity.HIGH))
    assert (up.change, up.previous, up.alert.severity) == ("escalated", Severity.MEDIUM, Severity.HIGH)
    assert up.alert.status is AlertStatus.OPEN  # alice acknowledged a lesser alert
    down = store.record(_alert(severity=Severity.LOW))
    assert (down.change, down.alert.severity) == ("repeat", Severity.HIGH)
    assert [(e, p.get("change")) for e, p in announced] == [
        ("alert.raised", "new"),
        ("alert.acknowledged", None),
        ("alert.raised", "escalated"),
    ]
    esc = _events(workspace, "monitor.alert")[1]
    assert (esc["change"], esc["previous_severity"], esc["severity"]) == ("escalated", "medium", "high")


def test_ack_and_resolve_are_audited_and_resolution_reopens_a_new_alert(workspace: Workspace) -> None:
    store = AlertStore(workspace)
    a = store.record(_alert()).alert
    acked = store.acknowledge(a.id, actor="alice", note="checking the client")
    assert (acked.status, acked.acked_by, acked.ack_note) == (
        AlertStatus.ACKNOWLEDGED,
        "alice",
        "checking the client",
    )
    assert store.record(_alert()).alert.id == a.id  # acknowledged is still open for dedup
    with pytest.raises(InputError, match="acknowledged already"):
        store.acknowledge(a.id, actor="bob")
    store.resolve(a.id, actor="bob")
    with pytest.raises(InputError, match="resolved already"):
        store.acknowledge(a.id, actor="bob")
    again = store.record(_alert())
    assert again.change == "new" and again.alert.id != a.id
    assert [(e["actor"], e["subject"], e["note"]) for e in _events(workspace, "monitor.alert_ack")] == [
        ("alice", f"alert:{a.id}", "checking the client")
    ]
    assert [e["actor"] for e in _events(workspace, "monitor.alert_resolve")] == ["bob"]
    assert [x.id for x in store.list(status="open")] == [again.alert.id]
    assert [x.id for x in store.list(status=AlertStatus.RESOLVED, model="fraud")] == [a.id]
    with workspace.session(readonly=True) as s:
        assert audit.verify(s).ok


def test_unknown_ids_and_filters_are_clear_errors(workspace: Workspace) -> None:
    store = AlertStore(workspace)
    with pytest.raises(InputError, match="no alert with id 7"):
        store.get(7)
    with pytest.raises(InputError, match="no alert with id 7"):
        store.acknowledge(7, actor="alice")
    with pytest.raises(InputError, match="status must be one of"):
        store.list(status="closed")
    with pytest.raises(InputError, match="limit"):
        store.list(limit=0)


def test_hostile_evidence_is_bounded_json(workspace: Workspace) -> None:
    store = AlertStore(workspace)
    deep: dict[str, Any] = {}
    cur = deep
    for _ in range(50):
        cur["x"] = {}
        cur = cur["x"]
    evidence = {
        "nan": float("nan"),
        "inf": np.float64("inf"),
        "array": np.arange(10_000),
        "int": np.int64(3),
        "deep": deep,
        "object": object(),
        "long": "a" * 100_000,
        "strings": ["b" * 5000] * 5,
    }
    stored = store.record(_alert(evidence=evidence)).alert
    assert stored.evidence["nan"] == "nan" and stored.evidence["inf"] == "inf"
    assert stored.evidence["int"] == 3 and len(stored.evidence["array"]) <= 64
    assert len(stored.evidence["long"]) <= 1000
    assert len(json.dumps(stored.evidence)) <= MAX_EVIDENCE_BYTES
    huge = {f"k{i}": "v" * 900 for i in range(60)}
    big = store.record(_alert(kind="drift", evidence=huge)).alert
    assert big.evidence["truncated"] is True and len(big.evidence["sha256"]) == 64
    first, second = _events(workspace, "monitor.alert")
    assert "evidence" not in first and len(first["evidence_sha256"]) == 64  # over the audit bound
    assert second["evidence"]["truncated"] is True
    with workspace.session(readonly=True) as s:
        assert audit.verify(s).ok


def test_long_principals_do_not_collide(workspace: Workspace) -> None:
    store = AlertStore(workspace)
    a = store.record(_alert(principal="p" * 300 + "1")).alert
    b = store.record(_alert(principal="p" * 300 + "2")).alert
    assert a.id != b.id and len(a.principal) <= 200 and a.principal != b.principal


def test_concurrent_writers_keep_one_open_alert(workspace: Workspace) -> None:
    stores = [AlertStore(workspace) for _ in range(4)]
    errors: list[BaseException] = []

    def raise_some(store: AlertStore) -> None:
        try:
            for i in range(5):
                store.record(_alert(query_index=i + 1))
        except BaseException as err:  # surfaced below
            errors.append(err)

    threads = [threading.Thread(target=raise_some, args=(st,)) for st in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    alerts = stores[0].list()
    assert len(alerts) == 1 and alerts[0].count == 20
