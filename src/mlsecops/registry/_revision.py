"""The access revision: counters that move with every change the runtime guard caches.

``access_revision`` (migration ``0006``) is one row of three counters: ``identity`` (keys revoked,
users disabled or enabled), ``grants`` and ``controls`` (principal blocks, throttles, label-only).
Each such change bumps its counter inside its own transaction, beside its audit event, so the guard
can cache verified keys, grants and controls and still honour a change on the very next request: per
request it reads this row by primary key and reloads only what a moved counter covers.
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy import BigInteger, Integer, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from mlsecops.store.models import Base

__all__ = ["ACCESS_REVISION_ID", "AccessRevision", "RevisionScope", "bump_revision"]

ACCESS_REVISION_ID = 1
"""Primary key of the single ``access_revision`` row."""

RevisionScope = Literal["identity", "grants", "controls"]


class AccessRevision(Base):
    """Counters bumped by every change the guard caches (one row, ``id`` 1)."""

    __tablename__ = "access_revision"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    identity: Mapped[int] = mapped_column(BigInteger, default=0)
    """Keys revoked, users disabled or enabled."""
    grants: Mapped[int] = mapped_column(BigInteger, default=0)
    controls: Mapped[int] = mapped_column(BigInteger, default=0)
    """Principal blocks, throttles and label-only switches."""


def bump_revision(session: Session, scope: RevisionScope) -> None:
    """Bump one counter inside the caller's transaction (re-creating the row if it was deleted).

    On PostgreSQL the row lock it takes also serialises concurrent access changes.
    """
    column = getattr(AccessRevision, scope)
    done = session.execute(
        update(AccessRevision).where(AccessRevision.id == ACCESS_REVISION_ID).values({column: column + 1})
    )
    if getattr(done, "rowcount", 1) == 0:
        session.add(AccessRevision(id=ACCESS_REVISION_ID, identity=1, grants=1, controls=1))
        session.flush()
