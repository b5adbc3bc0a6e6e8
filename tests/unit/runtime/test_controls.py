"""Per-principal controls: each change is one audit event and one revision bump in its transaction;
the cached view drops stale answers as soon as the revision moves; bad input is refused."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from mlsecops.core.errors import InputError
from mlsecops.core.findings import utcnow
from mlsecops.registry._revision import AccessRevision
from mlsecops.runtime import controls as controls_module
from mlsecops.runtime.controls import (
    ANONYMOUS,
    AccessWatch,
    Controls,
    ControlsView,
    block_principal,
    controls_for,
    list_controls,
    set_label_only,
    throttle_principal,
    unblock_principal,
    unthrottle_principal,
)
from mlsecops.store import Workspace, audit


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    w = Workspace.init(tmp_path / ".mlsecops", f"sqlite:///{tmp_path / 'ws.db'}", actor="test")
    yield w
    w.close()


def events(ws: Workspace) -> list[tuple[str, str, str, dict[str, object]]]:
    with ws.session(readonly=True) as s:
        return [
            (e.actor, e.action, e.subject, json.loads(e.details))
            for e in audit.iter_events(s, action="runtime.principal.*")
        ]


def revision(ws: Workspace) -> int:
    with ws.session(readonly=True) as s:
        return int(s.execute(select(AccessRevision.controls)).scalar_one())


def test_each_change_is_an_audit_event_and_a_revision_bump(ws: Workspace) -> None:
    start = revision(ws)
    later = utcnow() + dt.timedelta(hours=1)
    block_principal(
        ws, "jwt:svc-9", reason="extraction", actor="playbook:steal", until=later, alert_id="al-7"
    )
    throttle_principal(ws, "alice", requests_per_second=0.5, burst=2, reason="probing", actor="playbook:p")
    set_label_only(ws, "alice", reason="probing", actor="playbook:p", alert_id="al-8")
    unthrottle_principal(ws, "alice", reason="over", actor="root")
    set_label_only(ws, "alice", reason="over", actor="root", enabled=False)
    unblock_principal(ws, "jwt:svc-9", reason="false positive", actor="root")
    assert revision(ws) == start + 6
    got = events(ws)
    assert [(a, act, subj) for a, act, subj, _ in got] == [
        ("playbook:steal", "runtime.principal.block", "principal:jwt:svc-9"),
        ("playbook:p", "runtime.principal.throttle", "principal:alice"),
        ("playbook:p", "runtime.principal.label_only", "principal:alice"),
        ("root", "runtime.principal.unthrottle", "principal:alice"),
        ("root", "runtime.principal.label_only_off", "principal:alice"),
        ("root", "runtime.principal.unblock", "principal:jwt:svc-9"),
    ]
    assert got[0][3]["alert_id"] == "al-7" and got[0][3]["reason"] == "extraction"
    assert got[0][3]["until"] == later.isoformat(timespec="microseconds")
    assert got[1][3]["requests_per_second"] == 0.5
    with ws.session(readonly=True) as s:
        assert audit.verify(s).ok
    assert controls_for(ws, "alice") == Controls("alice")
    assert not controls_for(ws, "jwt:svc-9").is_blocked()


def test_state_reads_back(ws: Workspace) -> None:
    later = utcnow() + dt.timedelta(minutes=5)
    block_principal(ws, "bob", reason="r", actor="root", until=later)
    throttle_principal(ws, "bob", requests_per_second=2, burst=3, reason="r", actor="root")
    set_label_only(ws, "carol", reason="r", actor="root")
    bob = controls_for(ws, "bob")
    assert bob.is_blocked() and bob.block_until == later and bob.block_reason == "r"
    assert bob.throttle() == (2.0, 3)
    assert not bob.is_blocked(later + dt.timedelta(seconds=1))  # a timed block lapses by itself
    assert controls_for(ws, "carol").label_only
    assert [c.principal for c in list_controls(ws)] == ["bob", "carol"]
    assert controls_for(ws, "nobody") == Controls("nobody")
    assert controls_for(ws, "bob").to_json()["throttle"] == (2.0, 3)


def test_timed_throttle_lapses() -> None:
    now = utcnow()
    c = Controls("x", throttle_rps=1.0, throttle_burst=1, throttle_until=now + dt.timedelta(seconds=10))
    assert c.throttle(now) == (1.0, 1)
    assert c.throttle(now + dt.timedelta(seconds=11)) is None


def test_bad_input_is_refused_and_nothing_is_written(ws: Workspace) -> None:
    bad: list[dict[str, object]] = [
        {"principal": "two words"},
        {"principal": "*"},
        {"principal": "jwt:"},
        {"reason": "   "},
        {"until": dt.datetime(2030, 1, 1)},  # naive
        {"until": utcnow() - dt.timedelta(seconds=1)},
    ]
    for over in bad:
        args: dict[str, object] = {"principal": "alice", "reason": "r", "actor": "root", **over}
        principal = args.pop("principal")
        with pytest.raises(InputError):
            block_principal(ws, principal, **args)  # type: ignore[arg-type]
    for rps, burst in ((0, 1), (-1, 1), (1, 0), (float("inf"), 1), (float("nan"), 1)):
        with pytest.raises(InputError):
            throttle_principal(ws, "alice", requests_per_second=rps, burst=burst, reason="r", actor="root")
    assert events(ws) == []
    block_principal(ws, ANONYMOUS, reason="demo abuse", actor="root")
    assert controls_for(ws, ANONYMOUS).is_blocked()


def test_long_reasons_are_bounded(ws: Workspace) -> None:
    block_principal(ws, "alice", reason="x" * 10_000, actor="root")
    assert len(controls_for(ws, "alice").block_reason) == controls_module.MAX_REASON_CHARS


def test_view_caches_until_the_revision_moves(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    view = ControlsView(ws)
    reads: list[str] = []
    real = controls_module.controls_for

    def counting(w: Workspace, principal: str) -> Controls:
        reads.append(principal)
        return real(w, principal)

    monkeypatch.setattr(controls_module, "controls_for", counting)
    view.sync()
    for _ in range(3):
        assert not view.get("alice").is_blocked()
    assert reads == ["alice"]
    other = Workspace.open(ws.home, ws.url, actor="test")  # another process's connection
    try:
        block_principal(other, "alice", reason="r", actor="root")
    finally:
        other.close()
    assert not view.get("alice").is_blocked()  # not synced yet: the last request's view
    view.sync()
    assert view.get("alice").is_blocked()
    assert reads == ["alice", "alice"]
    view.watch.close()


def test_missing_revision_row_disables_caching(ws: Workspace) -> None:
    view = ControlsView(ws)
    with ws.session() as s:
        s.execute(AccessRevision.__table__.delete())
    assert view.sync() is None
    view.get("alice")
    block_principal(ws, "alice", reason="r", actor="root")  # recreates the row
    view.sync()
    assert view.get("alice").is_blocked()
    view.watch.close()


def test_watch_reconnects_after_a_broken_connection(ws: Workspace) -> None:
    watch = AccessWatch(ws)
    first = watch.read()
    assert first is not None
    watch._conn.driver_connection.close()  # the server dropped it
    assert watch.read() == first
    watch.close()
