"""The audit trail: hash chain, tamper detection, concurrent appends, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import text

from mlsecops.store import Workspace, audit


def _append(ws: Workspace, n: int, actor: str = "alice") -> None:
    for i in range(n):
        with ws.session() as s:
            audit.append(s, actor=actor, action="test.touch", subject=f"item-{i}", details={"i": i})


def _verify(ws: Workspace) -> audit.ChainStatus:
    with ws.session(readonly=True) as s:
        return audit.verify(s)


def test_fresh_workspace_chain_is_intact(workspace: Workspace) -> None:
    _append(workspace, 5)
    status = _verify(workspace)
    assert status.ok and status.events == 6  # workspace.init + 5


def test_event_rolls_back_with_its_transaction(workspace: Workspace) -> None:
    with pytest.raises(RuntimeError), workspace.session() as s:
        audit.append(s, actor="a", action="x.y", subject="s")
        raise RuntimeError("the change failed")
    status = _verify(workspace)
    assert status.ok and status.events == 1


@pytest.mark.parametrize(
    ("sql", "bad"),
    [
        ("UPDATE audit_events SET actor = 'mallory' WHERE seq = 3", 3),
        ("UPDATE audit_events SET details = '[99]' WHERE seq = 4", 4),
        ("DELETE FROM audit_events WHERE seq = 2", 3),
        ("DELETE FROM audit_events WHERE seq = 1", 2),
    ],
    ids=["edit-actor", "edit-details", "delete-middle", "delete-first"],
)
def test_tampering_names_first_bad_event(workspace: Workspace, sql: str, bad: int) -> None:
    _append(workspace, 5)
    with workspace.engine.begin() as conn:
        conn.execute(text(sql))
    status = _verify(workspace)
    assert not status.ok
    assert status.bad_seq == bad


def test_deleting_newest_events_is_detected(workspace: Workspace) -> None:
    _append(workspace, 5)
    with workspace.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_events WHERE seq >= 5"))
    status = _verify(workspace)
    assert not status.ok and "deleted" in status.reason


def test_reordering_is_detected(workspace: Workspace) -> None:
    _append(workspace, 4)
    with workspace.engine.begin() as conn:
        # swap the contents of events 2 and 3 (keeping positions), as a reordering would
        rows = {r.seq: r for r in conn.execute(text("SELECT * FROM audit_events WHERE seq IN (2, 3)"))}
        for seq, other in ((2, 3), (3, 2)):
            conn.execute(
                text("UPDATE audit_events SET subject = :s, details = :d WHERE seq = :q"),
                {"s": rows[other].subject, "d": rows[other].details, "q": seq},
            )
    status = _verify(workspace)
    assert not status.ok and status.bad_seq == 2


def test_hand_inserted_event_is_detected(workspace: Workspace) -> None:
    _append(workspace, 2)
    with workspace.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO audit_events (seq, ts, actor, action, subject, details, prev_hash, hash) "
                "VALUES (4, '2026-01-01T00:00:00.000000+00:00', 'mallory', 'registry.promote', 'm@1', '{}', "
                ":prev, :h)"
            ),
            {"prev": "f" * 64, "h": "e" * 64},
        )
    status = _verify(workspace)
    assert not status.ok and status.bad_seq == 4


def test_filters(workspace: Workspace) -> None:
    _append(workspace, 3, actor="bob")
    with workspace.session(readonly=True) as s:
        assert [e.subject for e in audit.iter_events(s, actor="bob", subject="item-1")] == ["item-1"]
        assert len(list(audit.iter_events(s, action="test.*"))) == 3
        assert len(list(audit.iter_events(s, action="test"))) == 0
        assert len(list(audit.iter_events(s, limit=2))) == 2


_WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from mlsecops.store import Workspace, audit
    home, url, who = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    ws = Workspace.open(home, url)
    for i in range(500):
        with ws.session() as s:
            audit.append(s, actor=who, action="test.concurrent", subject=f"{who}-{i}")
    ws.close()
    """
)


def test_two_processes_append_500_each(workspace: Workspace, workspace_home: Path) -> None:
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(workspace_home), workspace.url, who])
        for who in ("p1", "p2")
    ]
    for p in procs:
        assert p.wait(timeout=300) == 0
    status = _verify(workspace)
    assert status.ok, status.reason
    assert status.events == 1001  # workspace.init + 2 x 500
    with workspace.session(readonly=True) as s:
        actors = [e.actor for e in audit.iter_events(s, action="test.concurrent")]
    assert actors.count("p1") == 500 and actors.count("p2") == 500
