"""Issue 11 items 7 and 18: audit deletions that need no hashing, and re-typed columns.

Attackers planted here, on SQLite and PostgreSQL:
- database-only writers: delete the newest events and copy the new last hash into the head; delete
  every event and the head; forge a whole new chain with a head of their own; put an older head back
  after deleting the events behind it (a rollback);
- database-and-files writers, who hold the head key and the mark: only an exported anchor shows them;
- re-typed ``details`` (integer, bytes, invalid JSON): a verdict, never an internal error.
Each has its benign twin: untouched workspaces verify, with and without anchors.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest
from sqlalchemy import text

from mlsecops.core.errors import InputError, VerificationError, WorkspaceError
from mlsecops.store import Workspace, audit
from mlsecops.store._seal import KEY_FILE, MARK_FILE

pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")


def _append(ws: Workspace, n: int) -> None:
    for i in range(n):
        with ws.session() as s:
            audit.append(s, actor="alice", action="test.touch", subject=f"item-{i}", details={"i": i})


def _verify(ws: Workspace, *anchors: audit.Anchor) -> audit.ChainStatus:
    with ws.session(readonly=True) as s:
        return audit.verify(s, anchors=anchors)


def _sql(ws: Workspace, sql: str, **params: object) -> None:
    with ws.engine.begin() as conn:
        conn.execute(text(sql), params)


def _last(ws: Workspace) -> tuple[int, str]:
    with ws.engine.connect() as conn:
        row = conn.execute(text("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")).one()
    return int(row.seq), str(row.hash)


def _forget_mark(ws: Workspace) -> None:
    """Another host, or one that never saw the newer events: no mark on file."""
    (ws.keys_dir / MARK_FILE).unlink()


def test_benign_twin_fresh_and_busy_workspaces_verify(workspace: Workspace) -> None:
    status = _verify(workspace)
    assert status.ok and status.events == 1 and status.head is not None
    first = status.head
    _append(workspace, 5)
    status = _verify(workspace, first)
    assert status.ok and status.events == 6, status.reason
    assert status.head == audit.Anchor(*_last(workspace))


def test_deleting_newest_events_and_copying_the_last_hash_into_the_head(workspace: Workspace) -> None:
    _append(workspace, 5)
    _sql(workspace, "DELETE FROM audit_events WHERE seq >= 5")
    seq, digest = _last(workspace)
    _sql(workspace, "UPDATE audit_head SET seq = :s, hash = :h", s=seq, h=digest)
    status = _verify(workspace)
    assert not status.ok
    assert "MAC" in status.reason or "mark" in status.reason
    _forget_mark(workspace)  # even on a host without the mark, the head MAC gives it away
    status = _verify(workspace)
    assert not status.ok and "MAC does not match" in status.reason


def test_deleting_every_event_and_the_head(workspace: Workspace) -> None:
    _append(workspace, 3)
    _sql(workspace, "DELETE FROM audit_events")
    _sql(workspace, "DELETE FROM audit_head")
    status = _verify(workspace)
    assert not status.ok and status.events == 0
    assert "empty" in status.reason and "workspace.init" in status.reason
    _forget_mark(workspace)
    assert not _verify(workspace).ok


def test_forged_chain_with_a_head_of_its_own(workspace: Workspace) -> None:
    """The attacker rebuilds a consistent chain (the event hashes are not keyed) from a fake init
    event on, and a head with the right position and hash; only the head MAC is beyond reach."""
    _append(workspace, 3)
    _sql(workspace, "DELETE FROM audit_events")
    prev = audit.GENESIS
    for seq, action in ((1, "workspace.init"), (2, "test.touch")):
        fields = {"ts": "2026-01-01T00:00:00.000000+00:00", "actor": "mallory", "action": action}
        digest = audit.event_hash(prev, seq=seq, subject="s", details="{}", **fields)
        _sql(
            workspace,
            "INSERT INTO audit_events (seq, ts, actor, action, subject, details, prev_hash, hash) "
            "VALUES (:seq, :ts, :actor, :action, 's', '{}', :prev, :hash)",
            seq=seq,
            prev=prev,
            hash=digest,
            **fields,
        )
        prev = digest
    guessed_mac = hmac.new(b"guess", prev.encode(), hashlib.sha256).hexdigest()
    _sql(workspace, "UPDATE audit_head SET seq = 2, hash = :h, mac = :m", h=prev, m=guessed_mac)
    _forget_mark(workspace)
    status = _verify(workspace)
    assert not status.ok and "MAC does not match" in status.reason
    _sql(workspace, "UPDATE audit_head SET mac = NULL")
    assert not _verify(workspace).ok


def test_first_event_must_be_workspace_init(workspace: Workspace) -> None:
    _append(workspace, 2)
    with workspace.engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM audit_events WHERE seq = 1")).one()
    # rewrite event 1 as another action; recomputing every later hash is what a DB-only writer can do
    _sql(workspace, "UPDATE audit_events SET action = 'registry.promote' WHERE seq = 1")
    new = audit.event_hash(
        audit.GENESIS,
        seq=1,
        ts=row.ts,
        actor=row.actor,
        action="registry.promote",
        subject=row.subject,
        details=row.details,
    )
    _sql(workspace, "UPDATE audit_events SET hash = :h WHERE seq = 1", h=new)
    status = _verify(workspace)
    assert not status.ok and status.bad_seq == 1 and "workspace.init" in status.reason


def test_rollback_to_an_older_head_is_caught_by_the_mark_and_by_an_anchor(workspace: Workspace) -> None:
    """A database-only writer who read the head at event 3 deletes events 4.. and puts it back: the
    MAC is genuine, so only state outside the database shows the rollback."""
    _append(workspace, 2)
    with workspace.engine.connect() as conn:
        old_head = conn.execute(text("SELECT seq, hash, mac FROM audit_head")).one()
    _append(workspace, 3)
    anchor = _verify(workspace).head
    assert anchor is not None and anchor.seq == 6
    _sql(workspace, "DELETE FROM audit_events WHERE seq > :s", s=old_head.seq)
    _sql(
        workspace,
        "UPDATE audit_head SET seq = :s, hash = :h, mac = :m",
        s=old_head.seq,
        h=old_head.hash,
        m=old_head.mac,
    )
    status = _verify(workspace)
    assert not status.ok and "mark" in status.reason and status.bad_seq == 6
    _forget_mark(workspace)
    status = _verify(workspace, anchor)
    assert not status.ok and "anchor" in status.reason


def test_appending_after_a_rollback_does_not_erase_the_evidence(workspace: Workspace) -> None:
    _append(workspace, 1)
    with workspace.engine.connect() as conn:
        old_head = conn.execute(text("SELECT seq, hash, mac FROM audit_head")).one()
    _append(workspace, 3)
    _sql(workspace, "DELETE FROM audit_events WHERE seq > :s", s=old_head.seq)
    _sql(
        workspace,
        "UPDATE audit_head SET seq = :s, hash = :h, mac = :m",
        s=old_head.seq,
        h=old_head.hash,
        m=old_head.mac,
    )
    _append(workspace, 4)  # the chain grows past the old mark again, with other events
    status = _verify(workspace)
    assert not status.ok and "mark" in status.reason


def test_attacker_with_database_and_keys_is_caught_only_by_an_anchor(workspace: Workspace) -> None:
    """With the key file too, everything in the workspace can be rebuilt (documented limit);
    an anchor exported before still proves the deletion."""
    _append(workspace, 4)
    anchor = _verify(workspace).head
    assert anchor is not None
    key = bytes.fromhex((workspace.keys_dir / KEY_FILE).read_text().strip())
    _sql(workspace, "DELETE FROM audit_events WHERE seq >= 4")
    seq, digest = _last(workspace)
    mac = hmac.new(key, f"mlsecops-audit-head/1:{seq}:{digest}".encode(), hashlib.sha256).hexdigest()
    _sql(workspace, "UPDATE audit_head SET seq = :s, hash = :h, mac = :m", s=seq, h=digest, m=mac)
    _forget_mark(workspace)
    assert _verify(workspace).ok  # nothing inside the workspace can tell
    status = _verify(workspace, anchor)
    assert not status.ok and status.bad_seq == anchor.seq and "anchor" in status.reason


def test_missing_head_key_is_a_clear_error(workspace: Workspace) -> None:
    (workspace.keys_dir / KEY_FILE).unlink()
    ws = Workspace.open(workspace.home, workspace.url)
    try:
        with pytest.raises(WorkspaceError, match=r"audit head key .* is missing"):
            _verify(ws)
        with pytest.raises(WorkspaceError, match=r"audit head key .* is missing"), ws.session() as s:
            audit.append(s, actor="a", action="x.y", subject="s")
    finally:
        ws.close()


def test_wiped_database_is_not_silently_re_initialised(workspace_home: Path) -> None:
    Workspace.init(workspace_home).close()
    (workspace_home / "mlsecops.db").unlink()
    with pytest.raises(WorkspaceError, match="wiped or replaced"):
        Workspace.init(workspace_home)
    (workspace_home / "keys" / MARK_FILE).unlink()  # the documented way to start over on purpose
    with Workspace.init(workspace_home) as ws:
        assert _verify(ws).ok


def test_key_and_mark_files_are_private(workspace: Workspace) -> None:
    for name in (KEY_FILE, MARK_FILE):
        assert (workspace.keys_dir / name).stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    "value",
    [
        "7",  # an integer (SQLite keeps TEXT affinity; PostgreSQL re-types the column below)
        "x'00ff'",
        "'{not json'",
    ],
    ids=["integer", "bytes", "invalid-json"],
)
def test_retyped_details_are_a_verdict_not_an_internal_error(workspace: Workspace, value: str) -> None:
    _append(workspace, 2)
    if workspace.engine.dialect.name == "postgresql" and value != "'{not json'":
        pg_type = {"7": "integer USING 7", "x'00ff'": "bytea USING convert_to(details, 'UTF8')"}[value]
        _sql(workspace, f"ALTER TABLE audit_events ALTER COLUMN details TYPE {pg_type}")
    else:
        _sql(workspace, f"UPDATE audit_events SET details = {value} WHERE seq = 2")
    status = _verify(workspace)
    assert not status.ok
    assert "re-typed" in status.reason or "edited" in status.reason


def test_anchor_parsing_is_strict() -> None:
    assert audit.Anchor.parse(f"3:{'a' * 64}") == audit.Anchor(3, "a" * 64)
    for bad in ("", "3", "x:" + "a" * 64, "0:" + "a" * 64, "3:" + "g" * 64, "3:abc"):
        with pytest.raises(InputError, match="SEQ:HASH"):
            audit.Anchor.parse(bad)


def test_pre_seal_workspace_is_migrated_and_sealed(workspace_home: Path) -> None:
    """A workspace from before sealing (schema 0004, no key, no MAC) opens, is sealed by its
    ``workspace.migrate`` event, and verifies; its events are kept."""
    from alembic import command

    from mlsecops.store.workspace import _alembic_config

    with Workspace.init(workspace_home) as ws:
        _append(ws, 2)
        cfg = _alembic_config()  # back to schema 0004 through the migrations' own downgrades
        with ws.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0004")
    (workspace_home / "keys" / KEY_FILE).unlink()
    (workspace_home / "keys" / MARK_FILE).unlink()
    with Workspace.open(workspace_home) as ws:
        status = _verify(ws)
        assert status.ok and status.events == 4, status.reason
        with ws.session(readonly=True) as s:
            last = list(audit.iter_events(s))[-1]
        assert last.action == "workspace.migrate"
        assert json.loads(last.details)["head_sealed_from_here"] is True


def test_cli_on_retyped_details_and_anchors(cli, tmp_path: Path) -> None:
    """The CLI: `audit log` shows edited details with a warning, `audit verify` exits 1 with one line,
    `audit anchor` prints SEQ:HASH that `audit verify --anchor` accepts; never a traceback."""
    assert cli("init").code == 0
    anchor = cli("audit", "anchor")
    assert anchor.code == 0 and audit.Anchor.parse(anchor.out.strip()).seq == 1
    ok = cli("audit", "verify", "--anchor", anchor.out.strip())
    assert ok.code == 0 and "intact" in ok.out
    bad_anchor = cli("audit", "verify", "--anchor", "1:" + "0" * 64)
    assert bad_anchor.code == 1 and "anchor" in bad_anchor.err
    assert cli("audit", "verify", "--anchor", "nonsense").code == 2
    with Workspace.open(tmp_path / ".mlsecops") as ws:
        _sql(ws, "UPDATE audit_events SET details = x'00ff' WHERE seq = 1")
    verify = cli("audit", "verify")
    assert verify.code == 1 and "re-typed" in verify.err and "Traceback" not in verify.err
    log = cli("audit", "log", "--format", "json")
    assert log.code == 0 and "unreadable_details" in log.out and "audit verify" in log.err
    assert cli("audit", "anchor").code == 1


@pytest.mark.parametrize(
    "forge",
    [
        "UPDATE audit_head SET seq = :s, hash = :h",  # head copied from the new last event
        "UPDATE audit_head SET seq = :s, hash = :h, mac = NULL",  # ... posing as a pre-seal head
        "DELETE FROM audit_head",
    ],
    ids=["copied-head", "unsealed-head", "no-head"],
)
def test_a_legitimate_append_does_not_launder_a_forged_head(workspace: Workspace, forge: str) -> None:
    """Without this, the next real event would re-seal whatever head the attacker left."""
    _append(workspace, 4)
    _sql(workspace, "DELETE FROM audit_events WHERE seq >= 4")
    seq, digest = _last(workspace)
    _sql(workspace, forge, s=seq, h=digest)
    with pytest.raises(VerificationError, match="tampered"), workspace.session() as s:
        audit.append(s, actor="bob", action="registry.promote", subject="m@1")
    _forget_mark(workspace)
    assert not _verify(workspace).ok
