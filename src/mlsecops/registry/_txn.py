"""Write transactions of the registry: serialised per model, and a lost race is a ``ConflictError``.

Every registry mutation runs in ``writing(ws)``. On SQLite the transaction starts with ``BEGIN
IMMEDIATE`` (``store``), so writers queue on the database's write lock and each sees the state its
predecessor committed. PostgreSQL runs transactions concurrently under READ COMMITTED, so a mutation
first takes ``lock_model`` (``SELECT ... FOR UPDATE`` on the model's row): two changes to one model's
stages or aliases then run one after the other, and the second reads what the first wrote. Underneath,
database constraints make the invariants hold even if a code path forgot the lock (one open holder per
slot, one bootstrap admin, unique names); a write that breaks one is reported as ``ConflictError``,
as are PostgreSQL's deadlock and serialisation failures, never as an internal error.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from mlsecops.core.errors import ConflictError, InputError, WorkspaceError
from mlsecops.registry._tables import RegisteredModel
from mlsecops.store import Workspace

__all__ = ["RETRYABLE_SQLSTATES", "lock_model", "writing"]

RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})
"""PostgreSQL's serialization_failure and deadlock_detected: the other transaction won; retrying is safe."""


def _lost_race(err: BaseException) -> bool:
    cause = err.__cause__
    if isinstance(cause, IntegrityError):
        return True
    if isinstance(cause, DBAPIError):
        return getattr(cause.orig, "sqlstate", None) in RETRYABLE_SQLSTATES
    return False


@contextmanager
def writing(ws: Workspace, conflict: str) -> Iterator[Session]:
    """A write transaction; a constraint violation or lost lock race raises ``ConflictError(conflict)``.

    Raises:
        ConflictError: a concurrent change won (the transaction rolled back; nothing was written).
    """
    try:
        with ws.session() as s:
            yield s
    except IntegrityError as err:  # raised outside the session's own translation (a flush at exit)
        raise ConflictError(conflict) from err
    except WorkspaceError as err:
        if _lost_race(err):
            raise ConflictError(conflict) from err
        raise


def lock_model(s: Session, name: str) -> RegisteredModel:
    """The model's row, locked until the transaction ends (``FOR UPDATE``; SQLite's writer lock is
    already held), and read fresh from the database.

    Raises:
        InputError: no such model.
    """
    model = s.execute(
        select(RegisteredModel)
        .where(RegisteredModel.name == name)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if model is None:
        raise InputError(f"no registered model named {name!r}; `mlsecops registry list` shows them")
    return model
