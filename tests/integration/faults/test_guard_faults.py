"""Guard faults: SIGKILL of one guard worker under load (SQLite and PostgreSQL), and a PostgreSQL
restart during guard traffic. The guard keeps answering or fails cleanly (503 JSON), recovers, every
decision it answered is in the log afterwards, and the audit chain verifies."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.integration.faults.conftest import OwnedPostgres
from tests.integration.runtime.conftest import (
    GUARD_POLICY,
    Guard,
    make_registry,
    start_guard,
    stop_guard,
    train_digits,
)

from mlsecops.runtime.decisions import input_digest

pytestmark = pytest.mark.timeout(300)


def _guard(tmp: Path, db_url: str, *args: str) -> Iterator[Guard]:
    home = tmp / "ws" / ".mlsecops"
    reg = make_registry(home, tmp, db_url)
    model, X, y = train_digits(max_iter=20)
    reg.release(model, "v1")
    reg.ws.close()
    policy = tmp / "guard.yaml"
    policy.write_text(GUARD_POLICY)
    log = tmp / "guard.log"
    proc, url = start_guard(
        home, ["digits@production", "--policy", str(policy), *args], log, database_url=db_url
    )
    try:
        yield Guard(url, home, tmp, reg.keys, reg.key_path, proc, log, X, y, extra={"db_url": db_url})
    finally:
        stop_guard(proc)


class Traffic:
    """Requests from a thread, each with a distinct row; what each got back."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard
        self.answers: list[tuple[int, str]] = []  # (status or 0 for a connection error, input digest)
        self.stop = threading.Event()
        self.i = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def one(self, client: Any) -> int:
        import httpx

        row = self.guard.X[self.i % len(self.guard.X)][None, :] + (self.i // len(self.guard.X))
        self.i += 1
        try:
            r = client.post(
                "/v2/models/digits/infer", json=self.guard.body(row), headers=self.guard.headers()
            )
            status = r.status_code
            if status != 200:
                assert r.headers["content-type"].startswith("application/json"), r.text
                assert "Traceback" not in r.text
        except httpx.TransportError:
            status = 0
        self.answers.append((status, input_digest(np.asarray(row, dtype=float))))
        return status

    def _run(self) -> None:
        import httpx

        with httpx.Client(base_url=self.guard.url, timeout=10) as c:
            while not self.stop.is_set():
                self.one(c)

    def served(self) -> Counter[str]:
        return Counter(d for s, d in self.answers if s == 200)


def _logged(guard: Guard) -> Counter[str]:
    from sqlalchemy import select

    from mlsecops.runtime._decision_tables import DecisionRecord
    from mlsecops.store import Workspace

    with Workspace.open(guard.home, guard.extra["db_url"]) as ws, ws.session(readonly=True) as s:
        rows = s.execute(select(DecisionRecord.input_digest).where(DecisionRecord.status == 200)).scalars()
        return Counter(rows)


def _all_logged(guard: Guard, served: Counter[str], timeout: float = 40) -> None:
    """Every answered request is in the decision log (the writer retries with backoff up to 5 s)."""
    deadline = time.monotonic() + timeout
    while True:
        missing = served - _logged(guard)
        if not missing:
            return
        assert time.monotonic() < deadline, f"{sum(missing.values())} answered decisions not logged"
        time.sleep(0.5)


def _verify(guard: Guard) -> None:
    from mlsecops.store import Workspace, audit

    with Workspace.open(guard.home, guard.extra["db_url"]) as ws, ws.session(readonly=True) as s:
        status = audit.verify(s)
    assert status.ok, status.reason


def _workers(pid: int) -> list[int]:
    """The uvicorn worker processes of the serve process ``pid`` (spawned children)."""
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        kids += [int(k) for k in (task / "children").read_text().split()]
    return [k for k in kids if b"spawn_main" in Path(f"/proc/{k}/cmdline").read_bytes()]


@pytest.fixture
def guard2(tmp_path: Path, db_url: str) -> Iterator[Guard]:
    yield from _guard(tmp_path, db_url, "--workers", "2")


def test_a_killed_guard_worker_loses_no_logged_decision(guard2: Guard) -> None:
    import httpx

    workers = _workers(guard2.proc.pid)
    assert len(workers) == 2, workers
    traffic = Traffic(guard2)
    traffic.thread.start()
    time.sleep(3)
    before = traffic.served()
    _all_logged(guard2, before)  # what was answered so far is written...
    os.kill(workers[0], signal.SIGKILL)  # ...then one worker dies under load
    time.sleep(3)
    traffic.stop.set()
    traffic.thread.join(30)
    after_kill = [s for s, _d in traffic.answers[sum(before.values()) :]]
    assert after_kill.count(200) >= 10, Counter(after_kill)  # the other worker kept answering
    assert set(after_kill) <= {200, 0}, Counter(after_kill)  # at most the in-flight ones dropped
    with httpx.Client(base_url=guard2.url, timeout=10) as c:
        assert all(traffic.one(c) == 200 for _ in range(20))
    assert not before - _logged(guard2)  # nothing logged before the kill went missing
    assert guard2.proc.poll() is None
    _verify(guard2)


@pytest.mark.postgres
def test_postgres_restart_during_guard_traffic(tmp_path: Path, owned_postgres: OwnedPostgres) -> None:
    import httpx

    for guard in _guard(tmp_path, owned_postgres.create_database()):
        traffic = Traffic(guard)
        traffic.thread.start()
        time.sleep(2)
        n_before = len(traffic.answers)
        owned_postgres.stop()
        time.sleep(3)  # traffic meets a database that is gone
        owned_postgres.start()
        n_down = len(traffic.answers)
        time.sleep(2)
        traffic.stop.set()
        traffic.thread.join(30)
        statuses = Counter(s for s, _d in traffic.answers)
        assert set(statuses) <= {200, 503}, statuses  # answered or refused cleanly, never a 500
        assert n_down > n_before  # requests kept being answered meanwhile (served or 503)
        with httpx.Client(base_url=guard.url, timeout=10) as c:  # recovered
            deadline = time.monotonic() + 20
            while traffic.one(c) != 200:
                assert time.monotonic() < deadline, "the guard did not recover"
                time.sleep(0.2)
            assert all(traffic.one(c) == 200 for _ in range(10))
        _all_logged(guard, traffic.served())  # every answered decision was kept and written
        _verify(guard)
