"""Recording signing state changes (key created, model signed) in a workspace's audit trail.

The library function that makes the change records it, so the CLI, the ``sign.model`` pipeline stage
and library callers all leave the same event. Signing works without a workspace; with one, the event
is written in its own transaction right after the files.

Order: the files first (key pair, signature bundle), then the event. A database transaction can roll
back and a file write cannot, so an event is never committed for a file that failed to be written;
the reverse failure (files written, event refused) is closed by removing the files this call wrote and
raising, so no signing key or signature exists that the trail does not know about. Details hold key
hints, paths and counts only: never a password or private key bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlsecops.store import Workspace

__all__ = ["record"]


def record(
    workspace: Workspace | None,
    *,
    actor: str,
    action: str,
    subject: str,
    details: Mapping[str, str | int],
    undo: Callable[[], None],
) -> None:
    """Append one event to ``workspace``'s audit trail; without a workspace, do nothing.

    Args:
        workspace: the open workspace, or ``None`` (nothing is recorded).
        actor: who made the change.
        action: ``key.create`` or ``artifact.sign``.
        subject: what changed (``key:NAME``, the model's path).
        details: small facts about the change (never secrets).
        undo: removes the files the change wrote; called when the event cannot be written.

    Raises:
        WorkspaceError: the event could not be written (the files were removed by ``undo``).
        VerificationError: the audit head was tampered with (the files were removed by ``undo``).
    """
    if workspace is None:
        return
    from mlsecops.store import audit  # the database layer only when there is a workspace

    try:
        with workspace.session() as s:
            audit.append(s, actor=actor, action=action, subject=subject, details=dict(details))
    except BaseException:
        undo()
        raise
