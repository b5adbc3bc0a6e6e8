"""Tables of the runtime guard's per-principal state (created by migration ``0006``).

- ``runtime_controls``: one row per principal that a response playbook or an admin has acted on:
  blocked (until when, why), throttled (to what rate, until when), outputs switched to labels only.
  Every change bumps the ``controls`` access revision (``registry._revision``) and writes its audit
  event in the same transaction (``runtime.controls``).
- ``runtime_budgets``: rows queried per principal, model and UTC day, shared by every worker and
  replica on the workspace database. Workers reserve rows in chunks with one conditional ``UPDATE``
  (``used + n <= limit``), so ``used`` never passes the limit whatever the concurrency
  (``runtime.limits``). ``exhausted`` is set once, by whichever worker first found the budget spent,
  which writes the ``runtime.budget_exhausted`` event in that same transaction.

Times are UTC ISO 8601 strings with microseconds, like the audit trail.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mlsecops.store.models import Base

__all__ = ["BudgetUsage", "PrincipalControl"]


class PrincipalControl(Base):
    """What the guard imposes on one principal beyond the policy."""

    __tablename__ = "runtime_controls"

    principal: Mapped[str] = mapped_column(String(210), primary_key=True)
    blocked: Mapped[bool] = mapped_column(Boolean, default=False)
    block_until: Mapped[str | None] = mapped_column(String(40), nullable=True)
    """End of the block (None: until unblocked)."""
    block_reason: Mapped[str] = mapped_column(Text, default="")
    throttle_rps: Mapped[float | None] = mapped_column(Float, nullable=True)
    """Requests per second while throttled (None: not throttled)."""
    throttle_burst: Mapped[int | None] = mapped_column(Integer, nullable=True)
    throttle_until: Mapped[str | None] = mapped_column(String(40), nullable=True)
    label_only: Mapped[bool] = mapped_column(Boolean, default=False)
    alert_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    """The alert that caused the newest change, when a playbook made it."""
    updated: Mapped[str] = mapped_column(String(40))
    updated_by: Mapped[str] = mapped_column(String(200))


class BudgetUsage(Base):
    """Rows reserved by the guard's workers for one principal, model and UTC day."""

    __tablename__ = "runtime_budgets"

    principal: Mapped[str] = mapped_column(String(210), primary_key=True)
    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    """UTC date, ``YYYY-MM-DD``."""
    used: Mapped[int] = mapped_column(BigInteger, default=0)
    """Rows reserved so far (never above the limit: reservations are conditional updates)."""
    exhausted: Mapped[str | None] = mapped_column(String(40), nullable=True)
    """When the budget was first found spent (the audit event is written with it, once)."""
