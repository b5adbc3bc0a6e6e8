"""How often a principal may call: a token bucket per principal, and a daily query budget per model.

``Limiter(ws, policy).check(principal, model, rows)`` returns, or raises ``RateLimited`` (429 with
``Retry-After``) with ``reason="rate"`` or ``"budget"``:

- **Rate** (in-process, per worker): a token bucket of ``requests_per_second`` refilling up to
  ``burst``, one per principal, or one per principal and model for models with their own rate in
  ``limits.per_model``. A throttle set by a playbook or an admin (``controls.throttle_principal``)
  lowers both numbers (the lower of policy and throttle wins). With N workers a principal gets up to
  N times the rate: the rate guards each worker's capacity; the budget is what is shared.
- **Budget** (shared by every worker and replica on the workspace database): rows a principal may
  query per model per UTC day (``daily_budget``; ``None``: unlimited). Workers reserve rows in
  chunks with one conditional ``UPDATE runtime_budgets SET used = used + n WHERE ... AND
  used + n <= limit``, so the database's count never passes the limit, whatever the concurrency,
  and the database is touched once per chunk, not per request. A chunk is 1% of the budget (at most
  ``MAX_CHUNK_ROWS``, at least what the request needs), shrinking as the budget runs out; rows a
  worker reserved but did not use before it stopped or the day ended are lost, so a principal gets
  at most the budget and, while it keeps calling, at least the budget less one chunk per worker.
  The first refusal of a principal, model and day writes ``runtime.budget_exhausted`` once, across
  all workers (a compare-and-set on the day's row, in the same transaction as the event).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from mlsecops.core.errors import ConfigError, WorkspaceError
from mlsecops.core.findings import utcnow
from mlsecops.runtime._tables import BudgetUsage
from mlsecops.runtime.controls import ControlsView
from mlsecops.runtime.errors import RateLimited, Unavailable
from mlsecops.runtime.policy import LimitsPolicy
from mlsecops.store import Workspace, audit

__all__ = ["BUDGET_ACTOR", "Limiter", "ModelLimits", "budget_used"]

CHUNK_FRACTION = 0.01
"""Share of a daily budget one reservation takes: bounds what a stopped worker can strand."""
MAX_CHUNK_ROWS = 1_000
"""Largest reservation, whatever the budget."""
MAX_BUCKETS = 100_000
"""Token buckets kept; beyond it, full buckets (no state worth keeping) then the oldest are dropped."""
MAX_BUDGET_STATES = 100_000
"""Per principal and model reservations kept; an evicted one strands at most one chunk."""
RESERVE_ATTEMPTS = 4
"""Compare-and-set rounds when taking the last rows of a budget that other workers also take."""
BUDGET_ACTOR = "guard"
"""Actor of the ``runtime.budget_exhausted`` event."""
_OVERRIDES = frozenset({"requests_per_second", "burst", "daily_budget"})


@dataclass(frozen=True)
class ModelLimits:
    """The limits that apply to one model."""

    requests_per_second: float
    burst: int
    daily_budget: int | None
    own_bucket: bool
    """True when the model has its own rate in ``per_model`` (its own bucket per principal)."""


@dataclass
class _Bucket:
    tokens: float
    stamp: float
    rate: float
    burst: float


@dataclass
class _Budget:
    day: str = ""
    local: int = 0
    """Rows reserved in the database by this worker and not used yet."""
    remaining: int | None = None
    """The database's remaining rows when last seen (it only falls within a day)."""
    refused: bool = False
    """The database refused a reservation today (so the exhausted event exists)."""
    lock: threading.Lock = field(default_factory=threading.Lock)


def _model_limits(policy: LimitsPolicy) -> dict[str, ModelLimits]:
    """Validate ``per_model`` once (the policy schema types it loosely).

    Raises:
        ConfigError: an unknown key or a value out of range.
    """
    out: dict[str, ModelLimits] = {}
    for model, values in policy.per_model.items():
        unknown = set(values) - _OVERRIDES
        if unknown:
            raise ConfigError(f"limits.per_model.{model}: unknown key(s) {sorted(unknown)}")
        rps = values.get("requests_per_second", policy.requests_per_second)
        burst = values.get("burst", policy.burst)
        budget = values.get("daily_budget", policy.daily_budget)
        if not isinstance(rps, int | float) or isinstance(rps, bool) or not rps > 0:
            raise ConfigError(f"limits.per_model.{model}.requests_per_second must be > 0")
        if not isinstance(burst, int) or isinstance(burst, bool) or burst < 1:
            raise ConfigError(f"limits.per_model.{model}.burst must be an integer >= 1")
        if budget is not None and (not isinstance(budget, int) or isinstance(budget, bool) or budget < 1):
            raise ConfigError(f"limits.per_model.{model}.daily_budget must be an integer >= 1 or null")
        own = "requests_per_second" in values or "burst" in values
        out[model] = ModelLimits(float(rps), burst, budget, own)
    return out


def _seconds_to_midnight(now: dt.datetime) -> float:
    tomorrow = (now + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1.0, (tomorrow - now).total_seconds())


class Limiter:
    """Rate limit and daily budget per principal (thread-safe; one per guard worker).

    Args:
        ws: the workspace whose database holds the shared budgets.
        policy: the ``limits`` section of the guard policy.
        controls: the ``Authenticator.controls`` view, already synced by this request's
            ``authenticate`` (saves a revision read); without it the limiter polls its own view.
        clock: monotonic seconds (tests).
        now: the current UTC time, for the budget's day (tests).

    Raises:
        ConfigError: ``per_model`` has an unknown key or a bad value.
    """

    def __init__(
        self,
        ws: Workspace,
        policy: LimitsPolicy,
        *,
        controls: ControlsView | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self._ws = ws
        self._policy = policy
        self._default = ModelLimits(policy.requests_per_second, policy.burst, policy.daily_budget, False)
        self._models = _model_limits(policy)
        self._own_view = controls is None
        self._controls = controls or ControlsView(ws)
        self._clock = clock
        self._now = now
        self._lock = threading.Lock()
        self._buckets: OrderedDict[tuple[str, str], _Bucket] = OrderedDict()
        self._budgets: OrderedDict[tuple[str, str], _Budget] = OrderedDict()
        self._postgres = ws.engine.dialect.name == "postgresql"

    def limits_for(self, model: str) -> ModelLimits:
        """The limits that apply to ``model``."""
        return self._models.get(model, self._default)

    def check(self, principal: str, model: str, rows: int) -> None:
        """Admit one request of ``rows`` input rows, or raise.

        Takes a token first (in memory), then ``rows`` from the day's budget (in memory while this
        worker's reserved chunk lasts; one database transaction per chunk).

        Raises:
            RateLimited: bucket empty (``reason="rate"``, ``retry_after`` until a token is back) or
                budget spent (``reason="budget"``, ``retry_after`` until UTC midnight).
            Unavailable: the workspace database cannot be reached for a reservation.
        """
        if self._own_view:
            self._controls.sync()
        limits = self.limits_for(model)
        self._take_token(principal, model, limits)
        if limits.daily_budget is not None and rows > 0:
            self._take_budget(principal, model, rows, limits.daily_budget)

    # ---------------------------------------------------------------------------- token bucket

    def _take_token(self, principal: str, model: str, limits: ModelLimits) -> None:
        rate, burst = limits.requests_per_second, float(limits.burst)
        throttle = self._controls.get(principal).throttle()
        if throttle is not None:
            rate, burst = min(rate, throttle[0]), min(burst, float(throttle[1]))
        key = (principal, model if limits.own_bucket else "*")
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(burst, now, rate, burst)
                if len(self._buckets) > MAX_BUCKETS:
                    self._evict_buckets(now)
            else:
                self._buckets.move_to_end(key)
                bucket.tokens = min(bucket.burst, bucket.tokens + (now - bucket.stamp) * bucket.rate)
                bucket.stamp = now
                if bucket.rate != rate or bucket.burst != burst:
                    bucket.rate, bucket.burst = rate, burst
                    bucket.tokens = min(bucket.tokens, burst)
            if bucket.tokens < 1.0:
                wait = (1.0 - bucket.tokens) / rate
                raise RateLimited(
                    f"rate limit: {rate:g} requests per second, burst {burst:g}",
                    retry_after=wait,
                    reason="rate",
                )
            bucket.tokens -= 1.0

    def _evict_buckets(self, now: float) -> None:
        full = [k for k, b in self._buckets.items() if b.tokens + (now - b.stamp) * b.rate >= b.burst]
        for k in full:
            del self._buckets[k]
        while len(self._buckets) > MAX_BUCKETS:
            self._buckets.popitem(last=False)

    # ---------------------------------------------------------------------------------- budget

    def _state(self, principal: str, model: str) -> _Budget:
        key = (principal, model)
        with self._lock:
            state = self._budgets.get(key)
            if state is None:
                state = self._budgets[key] = _Budget()
                if len(self._budgets) > MAX_BUDGET_STATES:
                    self._budgets.popitem(last=False)
            else:
                self._budgets.move_to_end(key)
            return state

    def _take_budget(self, principal: str, model: str, rows: int, limit: int) -> None:
        now = self._now()
        day = now.date().isoformat()
        state = self._state(principal, model)
        with state.lock:
            if state.day != day:
                state.day, state.local, state.remaining, state.refused = day, 0, None, False
            if state.local >= rows:
                state.local -= rows
                return
            need = rows - state.local
            known_spent = state.refused and state.remaining is not None and state.remaining < need
            if rows <= limit and not known_spent:
                chunk = max(1, min(MAX_CHUNK_ROWS, int(limit * CHUNK_FRACTION)))
                if state.remaining is not None:
                    chunk = min(chunk, max(1, state.remaining // 8))
                granted, state.remaining = self._reserve(principal, model, day, limit, need, max(need, chunk))
                if granted >= need:
                    state.local += granted - rows
                    return
                state.refused = True  # the database said so (and the event is written): later, ask no more
        raise RateLimited(
            f"daily query budget of {limit} rows for {model!r} is spent",
            retry_after=_seconds_to_midnight(now),
            reason="budget",
        )

    def _reserve(
        self, principal: str, model: str, day: str, limit: int, need: int, want: int
    ) -> tuple[int, int]:
        """Reserve ``want`` rows (or the rest, if at least ``need``); returns (granted, remaining).

        When fewer than ``need`` are left, marks the day's row exhausted and writes
        ``runtime.budget_exhausted``, once across all workers, in the same transaction.

        Raises:
            Unavailable: the workspace database cannot be reached.
        """
        where = (BudgetUsage.principal == principal, BudgetUsage.model == model, BudgetUsage.day == day)
        try:
            with self._ws.session() as s:
                for _ in range(RESERVE_ATTEMPTS):
                    used = s.execute(
                        update(BudgetUsage)
                        .where(*where, BudgetUsage.used + want <= limit)
                        .values(used=BudgetUsage.used + want)
                        .returning(BudgetUsage.used)
                    ).scalar_one_or_none()
                    if used is not None:
                        return want, limit - int(used)
                    current = s.execute(select(BudgetUsage.used).where(*where)).scalar_one_or_none()
                    if current is None:
                        self._insert_day(s, principal, model, day)
                        continue
                    left = limit - int(current)
                    if left < need:
                        self._exhausted(s, principal, model, day, limit, where)
                        return 0, max(0, left)
                    # Take the rest, if nobody took any meanwhile (compare-and-set on ``used``).
                    done = s.execute(
                        update(BudgetUsage)
                        .where(*where, BudgetUsage.used == current)
                        .values(used=BudgetUsage.used + left)
                        .returning(BudgetUsage.used)
                    ).scalar_one_or_none()
                    if done is not None:
                        return left, 0
                return 0, 0
        except WorkspaceError as err:
            raise Unavailable("the workspace database is unavailable") from err

    def _insert_day(self, s: Session, principal: str, model: str, day: str) -> None:
        values = {"principal": principal, "model": model, "day": day, "used": 0}
        dialect = postgresql if self._postgres else sqlite
        s.execute(dialect.insert(BudgetUsage).values(values).on_conflict_do_nothing())

    def _exhausted(
        self, s: Session, principal: str, model: str, day: str, limit: int, where: tuple[Any, ...]
    ) -> None:
        marked = s.execute(
            update(BudgetUsage)
            .where(*where, BudgetUsage.exhausted.is_(None))
            .values(exhausted=utcnow().isoformat(timespec="microseconds"))
            .returning(BudgetUsage.day)
        ).scalar_one_or_none()
        if marked is not None:
            audit.append(
                s,
                actor=BUDGET_ACTOR,
                action="runtime.budget_exhausted",
                subject=f"principal:{principal}",
                details={"model": model, "day": day, "daily_budget": limit},
            )

    def close(self) -> None:
        """Release the connection of the limiter's own controls view, if it has one."""
        if self._own_view:
            self._controls.watch.close()


def budget_used(ws: Workspace, principal: str, model: str, day: dt.date | None = None) -> int:
    """Rows reserved for ``principal`` on ``model`` on ``day`` (default today, UTC) across workers."""
    day_text = (day or utcnow().date()).isoformat()
    with ws.session(readonly=True) as s:
        used = s.execute(
            select(BudgetUsage.used).where(
                BudgetUsage.principal == principal, BudgetUsage.model == model, BudgetUsage.day == day_text
            )
        ).scalar_one_or_none()
    return int(used or 0)
