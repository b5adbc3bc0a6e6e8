"""Per-model inference grants and the access revision counter (tables created by migration ``0006``).

A principal may call a model in the runtime guard only when granted it: ``grant(ws, "fraud", "alice")``
(a workspace user, by name), ``grant(ws, "fraud", "jwt:svc-42")`` (a JWT subject), or a wildcard given
explicitly, ``"*"`` as the model (every model) or as the principal (every authenticated principal whose
role may infer). Only the literal ``*`` is a wildcard; no other pattern matches anything but itself.

Adding or removing a grant bumps the ``grants`` counter of ``access_revision`` (``_revision``) in the
same transaction as its audit event, so a guard that caches grants honours the change on its next
request.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlalchemy import Index, Integer, String, UniqueConstraint, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from mlsecops.core.errors import InputError
from mlsecops.core.findings import utcnow
from mlsecops.registry._identity import Actor, Permission, Role, audited, check
from mlsecops.registry._revision import bump_revision
from mlsecops.registry._tables import ApiKey, User
from mlsecops.registry._txn import writing
from mlsecops.registry._versions import check_model_name
from mlsecops.store import Workspace, audit
from mlsecops.store.models import Base

__all__ = [
    "WILDCARD",
    "Grant",
    "check_principal_name",
    "grant",
    "granted_models",
    "key_states",
    "list_grants",
    "revoke_grant",
]

WILDCARD = "*"
"""The only wildcard: as a model, every model; as a principal, every authenticated principal."""
JWT_PREFIX = "jwt:"
_JWT_SUBJECT = re.compile(r"^[\x21-\x7e]{1,200}$")
"""A JWT subject: 1-200 printable ASCII characters, no spaces or control characters."""
_USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")


class Grant(Base):
    """``principal`` may infer on ``model`` (either may be the wildcard ``*``)."""

    __tablename__ = "registry_grants"
    __table_args__ = (
        UniqueConstraint("model", "principal", name="uq_registry_grant"),
        Index("ix_registry_grants_principal", "principal"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(200))
    principal: Mapped[str] = mapped_column(String(210))
    created: Mapped[str] = mapped_column(String(40))
    created_by: Mapped[str] = mapped_column(String(200))


def check_principal_name(principal: str, *, wildcard: bool = True) -> str:
    """Validate a principal as grants and controls name it.

    ``NAME`` (a workspace user), ``jwt:SUBJECT`` (a JWT principal) or, when ``wildcard``, ``*``.

    Raises:
        InputError: none of those forms.
    """
    if wildcard and principal == WILDCARD:
        return principal
    if principal.startswith(JWT_PREFIX):
        if _JWT_SUBJECT.match(principal[len(JWT_PREFIX) :]):
            return principal
    elif _USER_NAME.match(principal):
        return principal
    raise InputError(
        f"principal {principal!r} must be a user name, jwt:SUBJECT (printable ASCII, no spaces)"
        + (" or '*'" if wildcard else "")
    )


def _check_model(model: str) -> str:
    return model if model == WILDCARD else check_model_name(model)


def _now() -> str:
    return utcnow().isoformat(timespec="microseconds")


def grant(ws: Workspace, model: str, principal: str, *, actor: Actor) -> bool:
    """Grant ``principal`` inference on ``model`` (admin); False when it was granted already.

    A user principal must exist (a typo would otherwise grant nobody); ``jwt:`` subjects and ``*``
    cannot be checked. The grant and its ``registry.grant.add`` event commit together.

    Raises:
        InputError: a malformed model or principal, or an unknown user.
        PermissionDenied: ``actor`` is not an admin.
        ConflictError: the same grant was added at the same moment.
    """
    _check_model(model)
    check_principal_name(principal)
    conflict = f"{principal} was granted {model} at the same moment"
    with audited(ws), writing(ws, conflict) as s:
        check(actor, Permission.ADMIN, f"grant:{model}:{principal}")
        if principal != WILDCARD and not principal.startswith(JWT_PREFIX):
            user = s.execute(select(User.role).where(User.name == principal)).scalar_one_or_none()
            if user is None:
                raise InputError(f"no user named {principal!r}; `mlsecops registry users list` shows them")
        found = s.execute(select(Grant.id).where(Grant.model == model, Grant.principal == principal)).first()
        if found is not None:
            return False
        s.add(Grant(model=model, principal=principal, created=_now(), created_by=actor.name))
        bump_revision(s, "grants")
        audit.append(
            s,
            actor=actor.name,
            action="registry.grant.add",
            subject=f"model:{model}",
            details={"principal": principal},
        )
        return True


def revoke_grant(ws: Workspace, model: str, principal: str, *, actor: Actor) -> None:
    """Remove a grant (admin); the guard refuses the principal from its next request on.

    Raises:
        InputError: no such grant.
        PermissionDenied: ``actor`` is not an admin.
    """
    _check_model(model)
    check_principal_name(principal)
    with audited(ws), ws.session() as s:
        check(actor, Permission.ADMIN, f"grant:{model}:{principal}")
        row = s.execute(
            select(Grant).where(Grant.model == model, Grant.principal == principal)
        ).scalar_one_or_none()
        if row is None:
            raise InputError(
                f"{principal!r} holds no grant on {model!r}; `mlsecops registry grants` lists them"
            )
        s.delete(row)
        bump_revision(s, "grants")
        audit.append(
            s,
            actor=actor.name,
            action="registry.grant.revoke",
            subject=f"model:{model}",
            details={"principal": principal},
        )


def list_grants(ws: Workspace, *, actor: Actor, model: str | None = None) -> list[dict[str, str]]:
    """Grants (admin), by model then principal; with ``model``, those naming it or ``*``.

    Raises:
        PermissionDenied: ``actor`` is not an admin.
    """
    if model is not None:
        _check_model(model)
    with audited(ws), ws.session(readonly=True) as s:
        check(actor, Permission.ADMIN, "grants")
        query = select(Grant).order_by(Grant.model, Grant.principal)
        if model is not None:
            query = query.where(or_(Grant.model == model, Grant.model == WILDCARD))
        return [
            {"model": g.model, "principal": g.principal, "created": g.created, "created_by": g.created_by}
            for g in s.execute(query).scalars()
        ]


def granted_models(session: Session, principal: str) -> frozenset[str]:
    """The models ``principal`` is granted, directly or through a ``*`` principal grant (``*`` among
    them means every model). For the guard; no actor check.
    """
    rows = session.execute(
        select(Grant.model).where(or_(Grant.principal == principal, Grant.principal == WILDCARD))
    ).scalars()
    return frozenset(rows)


def key_states(session: Session, key_ids: Iterable[str]) -> dict[str, tuple[str, Role]]:
    """For the guard's cache: the live (not revoked, user enabled) keys among ``key_ids``, each with
    its user's name and role. A key missing from the answer must no longer be accepted.
    """
    ids = list(dict.fromkeys(key_ids))
    out: dict[str, tuple[str, Role]] = {}
    for start in range(0, len(ids), 500):
        rows = session.execute(
            select(ApiKey.key_id, User.name, User.role)
            .join(User, User.id == ApiKey.user_id)
            .where(
                ApiKey.key_id.in_(ids[start : start + 500]),
                ApiKey.revoked.is_(None),
                User.disabled.is_(False),
            )
        )
        for key_id, name, role in rows:
            out[key_id] = (name, Role(role))
    return out
