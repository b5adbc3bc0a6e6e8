"""The decision log: sampling, no raw data by default, retention, export to the replay format, outages."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DataError, OperationalError

from mlsecops.core.errors import WorkspaceError
from mlsecops.runtime._decision_tables import DecisionRecord
from mlsecops.runtime.decisions import DecisionLog, export_jsonl, input_digest, purge
from mlsecops.runtime.policy import LoggingPolicy
from mlsecops.store import Workspace, audit

RAW = LoggingPolicy(raw_inputs=True)


def rows(ws: Workspace) -> list[DecisionRecord]:
    with ws.session(readonly=True) as s:
        return list(s.execute(select(DecisionRecord).order_by(DecisionRecord.id)).scalars())


def count(ws: Workspace) -> int:
    with ws.session(readonly=True) as s:
        return int(s.execute(select(func.count()).select_from(DecisionRecord)).scalar_one())


def record(log: DecisionLog, i: int = 0, **kw: Any) -> bool:
    args: dict[str, Any] = {
        "principal": "alice",
        "model": "fraud",
        "version": "3",
        "decision": "accepted",
        "status": 200,
        "latency_ms": 1.5,
        "inputs": np.array([[float(i), 2.0, 3.0]]),
        "outputs": np.array([[0.25, 0.75]]),
    }
    args.update(kw)
    return log.record(**args)


class FlakyWorkspace:
    """The workspace with a database that can be switched off (``down``) or refuse one principal's rows."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.down = False
        self.refuse: str | None = None
        self.attempts = 0

    @contextmanager
    def session(self, *, readonly: bool = False) -> Iterator[Any]:
        self.attempts += 1
        if self.down:  # what Workspace.session raises when the server is gone
            cause = OperationalError("INSERT", {}, ConnectionRefusedError("connection refused"))
            raise WorkspaceError("database error on postgresql://db: connection refused") from cause
        with self.ws.session(readonly=readonly) as s:
            yield _Refusing(s, self.refuse) if self.refuse else s


class _Refusing:
    def __init__(self, session: Any, principal: str) -> None:
        self.session, self.principal = session, principal

    def execute(self, statement: Any, params: Any = None) -> Any:
        if isinstance(params, list) and any(p.get("principal") == self.principal for p in params):
            raise DataError("INSERT", {}, ValueError("value refused"))
        return self.session.execute(statement, params)


def test_orm_model_matches_the_migration(workspace: Workspace) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with workspace.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), DecisionRecord.metadata)
    assert [d for d in diff if "runtime_decisions" in repr(d)] == []


def test_raw_inputs_are_off_by_default_only_digest_and_counts_stored(workspace: Workspace) -> None:
    log = DecisionLog(workspace, LoggingPolicy())
    x = np.array([[0.125, 7.0, -3.5], [1.0, 2.0, 3.0]])
    assert record(log, inputs=x, outputs=np.array([[0.9, 0.1], [0.2, 0.8]]), principal="bob", source="s1")
    assert record(log, decision="rejected:invalid_input", status=422, inputs=None, outputs=None)
    log.close()
    (a, b) = rows(workspace)
    assert (a.principal, a.model, a.version, a.decision, a.status, a.rows, a.source) == (
        "bob",
        "fraud",
        "3",
        "accepted",
        200,
        2,
        "s1",
    )
    assert a.latency_ms == 1.5 and abs(a.ts_us / 1e6 - time.time()) < 60
    assert a.input_digest == input_digest(x) and len(a.input_digest) == 64
    assert a.inputs is None and a.outputs is None
    with workspace.session(readonly=True) as s:  # no raw value anywhere in the table
        dump = " ".join(str(r) for r in s.execute(text("SELECT * FROM runtime_decisions")).all())
    assert "0.125" not in dump and "-3.5" not in dump and "0.9" not in dump
    assert (b.decision, b.status, b.rows, b.input_digest) == ("rejected:invalid_input", 422, 0, "")
    assert log.stats()["written"] == 2 and log.stats()["dropped"] == 0


def test_input_digest_is_canonical() -> None:
    ints = np.array([[1, 2, 3]])
    assert input_digest(ints) == input_digest(ints.astype(np.float32)) == input_digest(ints.astype(float))
    assert input_digest(np.array([[0.0, 1.0]])) == input_digest(np.array([[-0.0, 1.0]]))
    assert input_digest(np.array([[1.0, 2.0]])) != input_digest(np.array([[2.0, 1.0]]))
    assert input_digest(np.array([[1.0, 2.0]])) != input_digest(np.array([[1.0], [2.0]]))
    assert input_digest(None) == ""
    assert len(input_digest(np.array([["a", "b"]]))) == 64


def test_sampling_keeps_about_the_policy_rate(tmp_path: Path) -> None:
    with Workspace.init(tmp_path / "ws", actor="test") as ws:
        log = DecisionLog(ws, LoggingPolicy(sample_rate=0.25), rng=random.Random(7))
        kept = sum(record(log, i) for i in range(2_000))
        log.close()
        stats = log.stats()
        assert stats["sampled"] == kept == count(ws) and stats["unsampled"] == 2_000 - kept
        assert 400 <= kept <= 600  # binomial(2000, 0.25): mean 500, sd 19
        none = DecisionLog(ws, LoggingPolicy(sample_rate=0.0))
        assert not any(record(none, i) for i in range(100))
        none.close()
        assert count(ws) == kept


def test_retention_purge_deletes_old_rows_and_is_audited(workspace: Workspace) -> None:
    now = time.time()
    log = DecisionLog(workspace, LoggingPolicy(retention_days=30), start=False)
    for age_days in (45, 31, 29, 1):
        record(log, time_s=now - age_days * 86_400, principal=f"p{age_days}")
    log.start()
    log.flush()
    # the writer purges once after its first batch, maybe at the same moment as this explicit purge:
    # close (joins the writer) before reading its count, so the two together deleted each row once
    deleted = purge(workspace, 30, now=now)
    log.close()
    deleted += log.stats()["purged"]
    assert deleted == 2
    assert sorted(r.principal for r in rows(workspace)) == ["p1", "p29"]
    with workspace.session(readonly=True) as s:
        events = [e for e in audit.iter_events(s) if e.action == "runtime.decisions.purge"]
        assert sum(json.loads(e.details)["deleted"] for e in events) == 2
        assert audit.verify(s).ok
    assert purge(workspace, 30, now=now) == 0  # nothing to delete: no event
    with workspace.session(readonly=True) as s:
        assert len([e for e in audit.iter_events(s) if e.action == "runtime.decisions.purge"]) == len(events)


def test_writer_purges_periodically(tmp_path: Path) -> None:
    with Workspace.init(tmp_path / "ws", actor="test") as ws:
        log = DecisionLog(ws, LoggingPolicy(retention_days=1), purge_interval_s=0.05)
        record(log, time_s=time.time() - 3 * 86_400)
        record(log, principal="recent")
        log.flush()
        deadline = time.monotonic() + 5
        while count(ws) > 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        log.close()
        assert [r.principal for r in rows(ws)] == ["recent"]
        assert log.stats()["purged"] == 1


def test_export_round_trip_to_the_replay_format(workspace: Workspace, tmp_path: Path) -> None:
    t0 = 1_800_000_000.0
    plain = DecisionLog(workspace, LoggingPolicy())
    record(plain, 99, time_s=t0 - 10)  # logged without raw inputs: not replayable
    plain.close()
    log = DecisionLog(workspace, RAW)
    sent = []
    for i in range(5):
        x = np.array([[i + 0.5, -1.0, 2.25], [3.0, 4.0, float(i)]])
        p = np.array([[0.1, 0.9], [0.6, 0.4]])
        record(
            log, i, inputs=x, outputs=p, principal=f"u{i % 2}", time_s=t0 + i, source="eu" if i == 4 else ""
        )
        sent.append((x, p))
    record(log, 7, decision="rejected:rate_limit", status=429, outputs=None, time_s=t0 + 2.5)
    record(log, 8, model="other", time_s=t0 + 1)
    record(log, 10, principal="", decision="rejected:unauthenticated", status=401, time_s=t0 + 7)
    record(
        log,
        9,
        inputs=np.array([[np.nan, 1.0, 2.0]]),
        outputs=None,
        decision="rejected:invalid_input",
        status=422,
        time_s=t0 + 6,
    )
    log.close()
    out = tmp_path / "queries.jsonl"
    result = export_jsonl(workspace, "fraud", out)
    counts = (result.written, result.skipped, result.rejected, result.corrupt, result.unreplayable)
    assert counts == (5, 1, 3, 0, 0)
    assert out.stat().st_mode & 0o777 == 0o600
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 5
    for i, (line, (x, p)) in enumerate(zip(lines, sent, strict=True)):
        assert set(line) == {"time", "principal", "inputs", "outputs", "model", "version"} | (
            {"source"} if i == 4 else set()
        )
        assert line["time"] == t0 + i and line["principal"] == f"u{i % 2}"
        assert np.array_equal(np.array(line["inputs"]), x) and np.array_equal(np.array(line["outputs"]), p)
        assert (line["model"], line["version"]) == ("fraud", "3")
    from mlsecops.monitor.replay import read_queries  # the reader of `mlsecops monitor replay`

    queries = list(read_queries(out, features=3, n_classes=2))
    assert [(q.time, q.principal, q.source, q.accepted) for q in queries] == [
        (t0 + i, f"u{i % 2}", "eu" if i == 4 else "", True) for i in range(5)
    ]
    assert all(np.array_equal(q.inputs, x) for q, (x, _p) in zip(queries, sent, strict=True))
    window = export_jsonl(workspace, "fraud", tmp_path / "w.jsonl", since=t0 + 1, until=t0 + 3)
    assert window.written == 3
    import datetime as dt

    iso = dt.datetime.fromtimestamp(t0 + 4, dt.UTC).replace(tzinfo=None)  # naive means UTC
    assert export_jsonl(workspace, "fraud", tmp_path / "w2.jsonl", since=iso).written == 1
    full = export_jsonl(workspace, "fraud", tmp_path / "all.jsonl", include_rejected=True)
    # the NaN row stays in the log (as null: standard JSON) but replay could not read it
    assert (full.written, full.unreplayable) == (6, 2)  # and the one without a principal
    marked = [json.loads(x) for x in (tmp_path / "all.jsonl").read_text().splitlines() if "accepted" in x]
    assert [(m["decision"], m["inputs"][0][0], m["accepted"]) for m in marked] == [
        ("rejected:rate_limit", 7.0, False)
    ]
    assert [q.accepted for q in read_queries(tmp_path / "all.jsonl")].count(False) == 1
    with workspace.session(readonly=True) as s:
        stored = s.execute(select(DecisionRecord.inputs).where(DecisionRecord.status == 422)).scalar_one()
    assert stored == "[[null,1.0,2.0]]"


def test_full_buffer_drops_and_counts_without_blocking(tmp_path: Path) -> None:
    with Workspace.init(tmp_path / "ws", actor="test") as ws:
        log = DecisionLog(ws, RAW, queue_size=5, start=False)
        took = []
        for i in range(8):
            start = time.perf_counter()
            record(log, i)
            took.append(time.perf_counter() - start)
        assert log.stats()["dropped"] == 3 and log.stats()["queued"] == 5
        assert max(took) < 0.01
        big = DecisionLog(ws, RAW, max_queued_bytes=10_000, start=False)
        assert record(big, inputs=np.zeros((100, 10)))  # 8,000 bytes fit
        assert not record(big, inputs=np.zeros((100, 10)))  # 16,000 would not
        assert big.stats()["dropped"] == 1
        big.close()
        log.start()
        log.close()
        assert count(ws) == 6 and log.stats()["written"] == 5


def test_database_outage_loses_nothing_within_the_bound(tmp_path: Path) -> None:
    with Workspace.init(tmp_path / "ws", actor="test") as real:
        flaky = FlakyWorkspace(real)
        log = DecisionLog(cast(Workspace, flaky), RAW, queue_size=40, batch_size=8)
        flaky.down = True
        took = []
        for i in range(60):
            start = time.perf_counter()
            record(log, i)
            took.append(time.perf_counter() - start)
        time.sleep(0.3)
        assert count(real) == 0 and log.stats()["retries"] >= 1
        assert (
            log.stats()["dropped"] == 20 and log.stats()["queued"] == 40
        )  # the bound, batch in hand included
        assert max(took) < 0.01  # the request path never waits for the database
        flaky.down = False
        assert log.flush(timeout=20)
        log.close()
        assert count(real) == 40 and log.stats()["written"] == 40
        assert sorted(json.loads(r.inputs or "")[0][0] for r in rows(real)) == [float(i) for i in range(40)]


def test_a_row_the_database_refuses_is_isolated(tmp_path: Path) -> None:
    with Workspace.init(tmp_path / "ws", actor="test") as real:
        flaky = FlakyWorkspace(real)
        flaky.refuse = "poison"
        log = DecisionLog(cast(Workspace, flaky), LoggingPolicy(), start=False)
        for i in range(6):
            record(log, i, principal="poison" if i == 3 else "alice")
        log.start()
        log.close()
        assert log.stats()["errors"] == 1 and count(real) == 5


def test_close_gives_up_on_a_dead_database_and_counts_the_loss(tmp_path: Path) -> None:
    with Workspace.init(tmp_path / "ws", actor="test") as real:
        flaky = FlakyWorkspace(real)
        flaky.down = True
        log = DecisionLog(cast(Workspace, flaky), LoggingPolicy())
        for i in range(10):
            record(log, i)
        start = time.monotonic()
        log.close(timeout=0.3)
        assert time.monotonic() - start < 6
        assert log.stats()["dropped"] == 10 and log.stats()["queued"] == 0
        assert not record(log, 11)  # closed: refused and counted
        assert log.stats()["dropped"] == 11


def test_text_fields_are_stored_whatever_the_caller_sends(workspace: Workspace) -> None:
    log = DecisionLog(workspace, LoggingPolicy())
    record(log, principal="jwt:a\x00b" + "x" * 500, version="v" * 300, source="\x00")
    log.close()
    (r,) = rows(workspace)
    assert r.principal.startswith("jwt:a\\x00b") and len(r.principal) == 200
    assert len(r.version) == 100 and r.source == "\\x00"
    assert log.stats()["errors"] == 0


@pytest.mark.postgres
@pytest.mark.timeout(120)
def test_postgres_going_away_and_back_loses_nothing(postgres_server: Any) -> None:
    import psycopg

    url = postgres_server.create_database()
    dbname = url.rsplit("/", 1)[1]
    admin = f"host=127.0.0.1 port={postgres_server.port} user=postgres dbname=postgres"
    home = Path(__import__("tempfile").mkdtemp()) / "ws"
    with Workspace.init(home, url, actor="test") as ws:
        log = DecisionLog(ws, RAW, queue_size=500, batch_size=50)
        for i in range(20):
            record(log, i)
        assert log.flush(timeout=20)
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS false')
            c.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (dbname,))
        try:
            for i in range(20, 120):
                record(log, i)
            deadline = time.monotonic() + 10
            while log.stats()["retries"] == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert log.stats()["retries"] >= 1 and log.stats()["written"] == 20
        finally:
            with psycopg.connect(admin, autocommit=True) as c:
                c.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true')
        assert log.flush(timeout=30)
        log.close()
        assert log.stats()["dropped"] == 0 and count(ws) == 120
        assert sorted(json.loads(r.inputs or "")[0][0] for r in rows(ws)) == [float(i) for i in range(120)]


def test_cli_export_log_writes_the_replay_file(cli: Any, tmp_path: Path) -> None:
    home = tmp_path / ".mlsecops"
    with Workspace.init(home, actor="test") as ws:
        log = DecisionLog(ws, RAW)
        record(log, 1, time_s=1_800_000_000.0)
        record(log, 2, time_s=1_800_000_100.0)
        log.close()
        plain = DecisionLog(ws, LoggingPolicy())
        record(plain, 3, time_s=1_800_000_200.0)
        plain.close()
    env = {"MLSECOPS_HOME": str(home)}
    res = cli("monitor", "export-log", "fraud", "-o", "q.jsonl", "--since", "2027-01-15T08:00", env=env)
    assert res.code == 0, res.err
    assert (
        "exported 2 request(s) of fraud to q.jsonl" in res.err and "1 logged request(s) had no raw" in res.err
    )
    lines = [json.loads(x) for x in (tmp_path / "q.jsonl").read_text().splitlines()]
    assert [x["inputs"][0][0] for x in lines] == [1.0, 2.0]
    res = cli("monitor", "export-log", "fraud", "-o", "q2.jsonl", "--until", "2027-01-15T08:00:50Z", env=env)
    assert res.code == 0 and "exported 1 request(s)" in res.err
    res = cli("monitor", "export-log", "fraud", "-o", "q3.jsonl", "--since", "yesterday", env=env)
    assert res.code == 2 and "--since must be an ISO date" in res.err and "Traceback" not in res.err
