"""Table of the guard's decision log (created by migration ``0007``).

One row per sampled request: when (``ts_us``, Unix microseconds, an integer so every database compares
and indexes it exactly), who, which model version, what the guard decided and answered, how long it
took, the SHA-256 of the canonical input bytes and the row count. ``inputs`` and ``outputs`` (JSON) are
filled only when the policy's ``logging.raw_inputs`` is on; otherwise the log holds no request data.

Decision auditing (migration ``0010``): ``groups``, ``predictions`` and ``explanation`` when the policy's
``logging.group`` / ``logging.explain`` ask for them, ``labels`` on rows logged from feedback
(``decision`` is then ``feedback``).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mlsecops.store.models import Base

__all__ = ["DecisionRecord"]


class DecisionRecord(Base):
    """One logged request of the runtime guard."""

    __tablename__ = "runtime_decisions"
    __table_args__ = (
        Index("ix_runtime_decisions_model_ts", "model", "ts_us"),
        Index("ix_runtime_decisions_principal_ts", "principal", "ts_us"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    ts_us: Mapped[int] = mapped_column(BigInteger, index=True)
    """Arrival time, Unix microseconds (UTC)."""
    principal: Mapped[str] = mapped_column(String(200))
    """Caller identity (user name or ``jwt:<subject>``); never a key or token."""
    model: Mapped[str] = mapped_column(String(200))
    version: Mapped[str] = mapped_column(String(100))
    """Version that answered (registry number or digest prefix), "" if none."""
    decision: Mapped[str] = mapped_column(String(100))
    """``accepted`` or ``rejected:<reason>``."""
    status: Mapped[int] = mapped_column(Integer)
    """HTTP status sent."""
    latency_ms: Mapped[float] = mapped_column(Float)
    input_digest: Mapped[str] = mapped_column(String(64))
    """SHA-256 of the canonical input bytes (``decisions.input_digest``), "" when no inputs were read."""
    rows: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(200), default="")
    """Stream or tenant label of the request, "" if none."""
    inputs: Mapped[str | None] = mapped_column(Text, nullable=True)
    """JSON rows as the model received them; only with ``logging.raw_inputs``."""
    outputs: Mapped[str | None] = mapped_column(Text, nullable=True)
    """JSON model output before hardening; only with ``logging.raw_inputs``."""
    groups: Mapped[str | None] = mapped_column(Text, nullable=True)
    """JSON list, the sensitive group of each row (``sex=1``); only with ``logging.group``."""
    predictions: Mapped[str | None] = mapped_column(Text, nullable=True)
    """JSON list, the predicted class of each row; only with ``logging.group``."""
    explanation: Mapped[str | None] = mapped_column(Text, nullable=True)
    """JSON: method, explained class and top contributions of the first rows; sampled decisions only."""
    labels: Mapped[str | None] = mapped_column(Text, nullable=True)
    """JSON list, true classes of the rows; feedback rows only."""
