"""Two guard worker processes on one PostgreSQL workspace hold ONE daily budget.

Each process runs its own ``Limiter`` (as each uvicorn worker or replica does) and hammers the same
principal and model until the budget refuses it several times in a row. Together they must never
accept more than the budget, nor fewer than the budget less one chunk, and the budget's exhaustion
is one audit event, not one per process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mlsecops.runtime.limits import CHUNK_FRACTION, budget_used
from mlsecops.store import Workspace, audit

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(300)]

BUDGET = 6_000
WORKER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from mlsecops.runtime.errors import RateLimited
    from mlsecops.runtime.limits import Limiter
    from mlsecops.runtime.policy import LimitsPolicy
    from mlsecops.store import Workspace

    home, url, budget, sizes, start = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
    sizes = [int(s) for s in sizes.split(",")]
    ws = Workspace.open(Path(home), url, actor="worker")
    lim = Limiter(ws, LimitsPolicy(requests_per_second=1e9, burst=10**9, daily_budget=budget))
    while time.time() < start:
        time.sleep(0.001)
    accepted = requests = refusals = 0
    while refusals < 5:
        rows = sizes[requests % len(sizes)]
        requests += 1
        try:
            lim.check("alice", "fraud", rows)
        except RateLimited as err:
            assert err.reason == "budget", err.reason
            refusals += 1
            continue
        accepted += rows
    lim.close()
    ws.close()
    print(json.dumps({"accepted": accepted, "requests": requests}))
    """
)


def test_two_processes_share_one_budget(postgres_server: object, tmp_path: Path) -> None:
    url = postgres_server.create_database()  # type: ignore[attr-defined]
    home = tmp_path / ".mlsecops"
    ws = Workspace.init(home, url, actor="test")
    try:
        start = time.time() + 3.0  # both past their imports and connected before the race starts
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", WORKER, str(home), url, str(BUDGET), sizes, str(start)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for sizes in ("1", "1,2,3")
        ]
        results = []
        for p in procs:
            out, err = p.communicate(timeout=240)
            assert p.returncode == 0, err[-2000:]
            results.append(json.loads(out.strip().splitlines()[-1]))
        accepted = sum(r["accepted"] for r in results)
        chunk = int(BUDGET * CHUNK_FRACTION)
        assert all(r["accepted"] > 0 for r in results), results  # both really competed
        assert accepted <= BUDGET, results
        assert accepted >= BUDGET - chunk, results
        assert abs(accepted - BUDGET) <= 0.05 * BUDGET
        used = budget_used(ws, "alice", "fraud")
        print(f"budget {BUDGET}: accepted {accepted} {results}, reserved {used}")
        assert accepted <= used <= BUDGET
        with ws.session(readonly=True) as s:
            exhausted = list(audit.iter_events(s, action="runtime.budget_exhausted"))
            assert len(exhausted) == 1
            assert audit.verify(s).ok
    finally:
        ws.close()


def test_revocation_and_blocks_apply_on_the_next_request_on_postgres(
    postgres_server: object, tmp_path: Path
) -> None:
    from mlsecops.registry import Role, authenticate, create_api_key, create_user, grant, revoke_api_key
    from mlsecops.runtime.auth import Authenticator
    from mlsecops.runtime.controls import block_principal, unblock_principal
    from mlsecops.runtime.errors import Forbidden, Unauthenticated
    from mlsecops.runtime.policy import AuthPolicy

    url = postgres_server.create_database()  # type: ignore[attr-defined]
    ws = Workspace.init(tmp_path / ".mlsecops", url, actor="test")
    guard_ws = Workspace.open(tmp_path / ".mlsecops", url, actor="guard")
    auth = Authenticator(guard_ws, AuthPolicy())
    try:
        create_user(ws, "root", Role.ADMIN, actor=None)
        admin = authenticate(ws, create_api_key(ws, "root", actor=None))
        create_user(ws, "app", Role.CLIENT, actor=admin)
        key = create_api_key(ws, "app", actor=admin)
        grant(ws, "fraud", "app", actor=admin)
        header = f"Bearer {key}"
        for _ in range(3):
            auth.authorize(auth.authenticate(header), "fraud")
        block_principal(ws, "app", reason="alert", actor="playbook:x")
        with pytest.raises(Forbidden):
            auth.authenticate(header)
        unblock_principal(ws, "app", reason="cleared", actor="root")
        auth.authorize(auth.authenticate(header), "fraud")
        revoke_api_key(ws, key.split("_")[1], actor=admin)
        with pytest.raises(Unauthenticated):
            auth.authenticate(header)
    finally:
        auth.close()
        guard_ws.close()
        ws.close()
