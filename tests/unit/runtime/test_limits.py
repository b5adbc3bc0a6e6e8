"""Rate limits (token bucket per principal, throttles from controls) and the shared daily budget."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlsecops.core.errors import ConfigError, WorkspaceError
from mlsecops.runtime import limits as limits_module
from mlsecops.runtime.controls import ControlsView, throttle_principal, unthrottle_principal
from mlsecops.runtime.errors import RateLimited, Unavailable
from mlsecops.runtime.limits import Limiter, budget_used
from mlsecops.runtime.policy import LimitsPolicy
from mlsecops.store import Workspace, audit

NOON = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    w = Workspace.init(tmp_path / ".mlsecops", f"sqlite:///{tmp_path / 'ws.db'}", actor="test")
    yield w
    w.close()


def limiter(
    ws: Workspace, clock: Clock | None = None, when: list[dt.datetime] | None = None, **policy: object
) -> Limiter:
    moments = when or [NOON]
    return Limiter(ws, LimitsPolicy.model_validate(policy), clock=clock or Clock(), now=lambda: moments[0])


def exhausted_events(ws: Workspace) -> list[tuple[str, str]]:
    with ws.session(readonly=True) as s:
        return [(e.subject, e.details) for e in audit.iter_events(s, action="runtime.budget_exhausted")]


def test_token_bucket_allows_the_burst_then_429_with_retry_after(ws: Workspace) -> None:
    clock = Clock()
    lim = limiter(ws, clock, requests_per_second=2, burst=3, daily_budget=None)
    for _ in range(3):
        lim.check("alice", "fraud", 1)
    with pytest.raises(RateLimited) as err:
        lim.check("alice", "fraud", 1)
    assert err.value.reason == "rate" and err.value.status == 429
    assert err.value.retry_after == pytest.approx(0.5)
    assert err.value.headers["Retry-After"] == "1"
    lim.check("bob", "fraud", 1)  # per principal, not global
    clock.t += 0.5
    lim.check("alice", "fraud", 1)
    with pytest.raises(RateLimited):
        lim.check("alice", "fraud", 1)
    clock.t += 100  # refills only up to the burst
    for _ in range(3):
        lim.check("alice", "fraud", 1)
    with pytest.raises(RateLimited):
        lim.check("alice", "fraud", 1)


def test_models_share_the_principals_bucket_unless_they_have_their_own_rate(ws: Workspace) -> None:
    lim = limiter(
        ws,
        requests_per_second=1,
        burst=2,
        daily_budget=None,
        per_model={"cheap": {"requests_per_second": 100, "burst": 5}},
    )
    lim.check("alice", "fraud", 1)
    lim.check("alice", "churn", 1)
    with pytest.raises(RateLimited):
        lim.check("alice", "fraud", 1)
    for _ in range(5):
        lim.check("alice", "cheap", 1)
    with pytest.raises(RateLimited):
        lim.check("alice", "cheap", 1)


def test_throttle_from_controls_lowers_the_rate_on_the_next_request(ws: Workspace) -> None:
    clock = Clock()
    lim = limiter(ws, clock, requests_per_second=100, burst=100, daily_budget=None)
    lim.check("alice", "fraud", 1)
    throttle_principal(ws, "alice", requests_per_second=1, burst=1, reason="probing", actor="playbook:p")
    lim.check("alice", "fraud", 1)  # the bucket shrinks to one token
    with pytest.raises(RateLimited) as err:
        lim.check("alice", "fraud", 1)
    assert err.value.retry_after == pytest.approx(1.0)
    lim.check("bob", "fraud", 1)  # others unaffected
    # A throttle can only lower the policy's rate, never raise it.
    throttle_principal(ws, "bob", requests_per_second=10_000, burst=10_000, reason="x", actor="root")
    for _ in range(99):
        lim.check("bob", "fraud", 1)
    with pytest.raises(RateLimited):
        lim.check("bob", "fraud", 1)
    unthrottle_principal(ws, "alice", reason="cleared", actor="root")
    clock.t += 1
    lim.check("alice", "fraud", 1)  # refilled at the throttled rate until now; the policy's from here
    clock.t += 1
    for _ in range(50):
        lim.check("alice", "fraud", 1)


def test_shared_controls_view_is_not_polled_again(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    view = ControlsView(ws)
    view.sync()
    lim = Limiter(ws, LimitsPolicy(daily_budget=None), controls=view)
    reads: list[int] = []
    monkeypatch.setattr(view.watch, "read", lambda: reads.append(1))
    for _ in range(5):
        lim.check("alice", "fraud", 1)
    assert reads == []
    view.watch.close()


def test_budget_is_spent_then_429_until_midnight_and_one_audit_event(ws: Workspace) -> None:
    lim = limiter(ws, requests_per_second=1e6, burst=10**6, daily_budget=10)
    for _ in range(3):
        lim.check("alice", "fraud", 3)
    with pytest.raises(RateLimited) as err:
        lim.check("alice", "fraud", 3)
    assert err.value.reason == "budget"
    assert err.value.retry_after == pytest.approx(12 * 3600)
    assert err.value.headers["Retry-After"] == str(12 * 3600)
    lim.check("alice", "fraud", 1)  # the last row still fits
    for _ in range(3):
        with pytest.raises(RateLimited):
            lim.check("alice", "fraud", 1)
    lim.check("alice", "churn", 5)  # per model
    lim.check("bob", "fraud", 5)  # per principal
    assert budget_used(ws, "alice", "fraud", NOON.date()) == 10
    events = exhausted_events(ws)
    assert len(events) == 1
    assert events[0][0] == "principal:alice" and '"model":"fraud"' in events[0][1]
    # Another worker on the same workspace finds it spent too, and writes no second event.
    other = limiter(ws, requests_per_second=1e6, burst=10**6, daily_budget=10)
    with pytest.raises(RateLimited):
        other.check("alice", "fraud", 1)
    assert len(exhausted_events(ws)) == 1
    with ws.session(readonly=True) as s:
        assert audit.verify(s).ok


def test_a_request_larger_than_the_budget_is_refused(ws: Workspace) -> None:
    lim = limiter(ws, daily_budget=10)
    with pytest.raises(RateLimited) as err:
        lim.check("alice", "fraud", 11)
    assert err.value.reason == "budget"
    lim.check("alice", "fraud", 10)
    lim.check("alice", "fraud", 0)  # a request without rows spends nothing


def test_a_new_utc_day_has_a_new_budget(ws: Workspace) -> None:
    when = [NOON]
    lim = limiter(ws, when=when, daily_budget=4)
    lim.check("alice", "fraud", 4)
    with pytest.raises(RateLimited):
        lim.check("alice", "fraud", 1)
    when[0] = NOON + dt.timedelta(hours=12)
    lim.check("alice", "fraud", 4)
    assert budget_used(ws, "alice", "fraud", when[0].date()) == 4


def test_per_model_budget_override_and_unlimited(ws: Workspace) -> None:
    lim = limiter(
        ws, daily_budget=2, per_model={"open": {"daily_budget": None}, "tight": {"daily_budget": 1}}
    )
    lim.check("alice", "open", 1000)
    lim.check("alice", "tight", 1)
    with pytest.raises(RateLimited):
        lim.check("alice", "tight", 1)
    lim.check("alice", "fraud", 2)


def test_budget_is_reserved_in_chunks_not_per_request(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    lim = limiter(ws, requests_per_second=1e6, burst=10**6, daily_budget=10_000)
    calls: list[int] = []
    real = Limiter._reserve

    def counting(self: Limiter, *a: object) -> tuple[int, int]:
        calls.append(1)
        return real(self, *a)  # type: ignore[arg-type]

    monkeypatch.setattr(Limiter, "_reserve", counting)
    for _ in range(250):
        lim.check("alice", "fraud", 1)
    assert len(calls) == 3  # chunks of 1% (100 rows)
    assert budget_used(ws, "alice", "fraud", NOON.date()) == 300


def test_threads_sharing_one_budget_never_pass_it(ws: Workspace) -> None:
    budget = 2_000
    accepted = [0, 0, 0, 0]
    workers = [limiter(ws, requests_per_second=1e9, burst=10**9, daily_budget=budget) for _ in accepted]

    def hammer(i: int) -> None:
        refusals = 0
        while refusals < 3:
            try:
                workers[i].check("alice", "fraud", 1 + i % 3)
                accepted[i] += 1 + i % 3
            except RateLimited:
                refusals += 1

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(len(accepted))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert budget_used(ws, "alice", "fraud", NOON.date()) <= budget
    assert budget - 3 * len(accepted) <= sum(accepted) <= budget
    assert len(exhausted_events(ws)) == 1


def test_per_model_settings_are_checked(ws: Workspace) -> None:
    for bad in (
        {"m": {"rps": 1}},
        {"m": {"requests_per_second": 0}},
        {"m": {"burst": 0.5}},
        {"m": {"daily_budget": 0}},
        {"m": {"burst": True}},
    ):
        with pytest.raises(ConfigError, match=r"per_model\.m"):
            limiter(ws, per_model=bad)


def test_database_outage_is_unavailable_not_a_crash(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    lim = limiter(ws, daily_budget=100)

    def broken(self: Workspace, **kw: object) -> object:
        raise WorkspaceError("database error: gone")

    monkeypatch.setattr(Workspace, "session", broken)
    with pytest.raises(Unavailable):
        lim.check("alice", "fraud", 1)
    monkeypatch.undo()
    lim.check("alice", "fraud", 1)
    assert limits_module.budget_used(ws, "alice", "fraud", NOON.date()) == 1
