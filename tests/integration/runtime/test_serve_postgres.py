"""``mlsecops serve --workers 2`` on a PostgreSQL workspace: both workers serve the registry model, and
together they hold ONE daily budget (never more accepted than the budget, at most 5% fewer)."""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest
from tests.integration.runtime.conftest import Guard, make_registry, start_guard, stop_guard, train_digits

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(600)]

BUDGET = 300
"""Rows alice may query per day: small enough to spend in seconds, large enough for 5% to mean something."""
POLICY = f"""\
version: 1
limits:
  requests_per_second: 100000
  burst: 100000
  daily_budget: {BUDGET}
"""


def test_two_workers_on_postgres_hold_one_budget(postgres_server: Any) -> None:
    import httpx

    url = postgres_server.create_database()
    tmp = Path(tempfile.mkdtemp(prefix="mlsecops-guard-pg-"))
    home = tmp / "ws" / ".mlsecops"
    reg = make_registry(home, tmp, url)
    try:
        model, X, y = train_digits()
        reg.release(model, "v1")
        policy = tmp / "guard.yaml"
        policy.write_text(POLICY)
        log = tmp / "guard.log"
        proc, base = start_guard(
            home, ["digits@production", "--policy", str(policy), "--workers", "2"], log, database_url=url
        )
        guard = Guard(base, home, tmp, reg.keys, reg.key_path, proc, log, X, y)
        accepted: list[int] = []
        refused: list[str] = []
        errors: list[str] = []
        lock = threading.Lock()

        def client() -> None:
            streak = 0
            with httpx.Client(
                base_url=base, timeout=20
            ) as c:  # one connection each: both workers get traffic
                while streak < 10:
                    r = c.post("/v2/models/digits/infer", json=guard.body(), headers=guard.headers())
                    with lock:
                        if r.status_code == 200:
                            accepted.append(1)
                            streak = 0
                        elif r.status_code == 429:
                            refused.append(r.json()["error"]["message"])
                            assert int(r.headers["retry-after"]) >= 1
                            streak += 1
                        else:
                            errors.append(f"{r.status_code} {r.text[:200]}")
                            return

        try:
            threads = [threading.Thread(target=client) for _ in range(6)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=300)
        finally:
            stop_guard(proc)
        assert errors == []
        assert len(accepted) <= BUDGET
        assert len(accepted) >= BUDGET * 0.95, (len(accepted), refused[:3])
        assert any("budget" in m for m in refused)
        text = log.read_text()
        assert text.count("Started server process") >= 2
        for secret in reg.keys.values():
            assert secret not in text
    finally:
        reg.ws.close()
