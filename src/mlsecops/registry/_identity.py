"""Identity and roles: users, API keys and what each role may do.

An API key looks like ``mlsk_<id>_<secret>``. Only the id, a random salt and the scrypt hash of the
secret are stored; the key itself is shown once, when it is created. ``authenticate`` looks the key up
by id, compares hashes in constant time and refuses a revoked key, a disabled user or a wrong secret
with the same message (no hint which part was wrong).

Roles: ``client`` may only call models in the runtime guard (``infer``), and only those it is
granted (``registry._grants``); ``viewer`` reads; ``approver`` reads and approves versions;
``deployer`` reads, registers, promotes, rolls back, archives and sets aliases; ``admin`` does
everything, including users, keys, trusted signing keys and webhooks (and infers where granted).
Revoking a key and disabling or enabling a user bump the ``identity`` access revision
(``registry._revision``) in the same transaction, so the guard's key cache drops them at once.
The first user of a workspace can be created without a key, and
must be an admin (bootstrap), and gets the first key; both are marked ``bootstrap`` under a unique
constraint, so of concurrent bootstraps (on PostgreSQL, or across processes) exactly one succeeds and
the others get ``ConflictError``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mlsecops.core.errors import ConflictError, GovernanceRefusal, InputError, PermissionDenied
from mlsecops.core.findings import utcnow
from mlsecops.registry._revision import bump_revision
from mlsecops.registry._tables import ApiKey, User
from mlsecops.registry._txn import writing
from mlsecops.store import Workspace, audit

__all__ = [
    "Actor",
    "Denied",
    "Permission",
    "Role",
    "audited",
    "authenticate",
    "check",
    "create_api_key",
    "create_user",
    "list_users",
    "revoke_api_key",
    "set_user_disabled",
]

_KEY_PREFIX = "mlsk"
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")


class Role(StrEnum):
    """Registry roles."""

    ADMIN = "admin"
    APPROVER = "approver"
    DEPLOYER = "deployer"
    VIEWER = "viewer"
    CLIENT = "client"

    def __str__(self) -> str:
        return self.value


class Permission(StrEnum):
    """Actions a role may be allowed."""

    READ = "read"
    APPROVE = "approve"
    REGISTER = "register"
    PROMOTE = "promote"
    ROLLBACK = "rollback"
    ARCHIVE = "archive"
    ALIAS = "alias"
    ATTACH = "attach"
    ADMIN = "admin"
    INFER = "infer"
    """Call a model in the runtime guard (still only the models the principal is granted)."""

    def __str__(self) -> str:
        return self.value


_DEPLOY = {
    Permission.REGISTER,
    Permission.PROMOTE,
    Permission.ROLLBACK,
    Permission.ARCHIVE,
    Permission.ALIAS,
    Permission.ATTACH,
}
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({Permission.READ}),
    Role.APPROVER: frozenset({Permission.READ, Permission.APPROVE}),
    Role.DEPLOYER: frozenset({Permission.READ, *_DEPLOY}),
    Role.ADMIN: frozenset(Permission),
    Role.CLIENT: frozenset({Permission.INFER}),
}


@dataclass(frozen=True)
class Actor:
    """Who is acting: an authenticated user and their role."""

    name: str
    role: Role

    def can(self, permission: Permission) -> bool:
        """Whether the role allows ``permission``."""
        return permission in ROLE_PERMISSIONS[self.role]


def _now() -> str:
    return utcnow().isoformat(timespec="microseconds")


def _hash(secret: str, salt: bytes) -> str:
    return hashlib.scrypt(secret.encode(), salt=salt, **_SCRYPT).hex()


class Denied(GovernanceRefusal):
    """A role check failed (exit 1, a governance verdict).

    ``audited`` records it after the refused action's transaction rolled back.
    """

    def __init__(self, message: str, *, actor: Actor, permission: Permission, subject: str) -> None:
        super().__init__(message)
        self.actor = actor
        self.permission = permission
        self.subject = subject


def check(actor: Actor, permission: Permission, subject: str) -> None:
    """Refuse the action unless ``actor`` may do it.

    Raises:
        Denied: the role does not allow ``permission`` (a ``PermissionDenied``).
    """
    if actor.can(permission):
        return
    allowed = sorted(str(r) for r, perms in ROLE_PERMISSIONS.items() if permission in perms)
    raise Denied(
        f"{actor.name} ({actor.role}) may not {permission} {subject}; that needs the role {' or '.join(allowed)}",
        actor=actor,
        permission=permission,
        subject=subject,
    )


@contextmanager
def audited(ws: Workspace) -> Iterator[None]:
    """Write a ``registry.denied`` event for a ``Denied`` raised inside the block, then re-raise it.

    Use it outside the action's session, so the event is written after that transaction rolled back
    (on SQLite a second writer inside the first would wait for its lock).
    """
    try:
        yield
    except Denied as err:
        with ws.session() as s:
            audit.append(
                s,
                actor=err.actor.name,
                action="registry.denied",
                subject=err.subject,
                details={"permission": str(err.permission), "role": str(err.actor.role)},
            )
        raise


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise InputError(f"user name {name!r} must be 1-100 letters, digits, '.', '_', '@' or '-'")
    return name


def create_user(ws: Workspace, name: str, role: Role, *, actor: Actor | None) -> None:
    """Create a user. Without an ``actor`` only the first user, an admin, may be created (bootstrap).

    Raises:
        PermissionDenied: not an admin, or a bootstrap that is not the first user or not an admin.
        ConflictError: the name is taken.
    """
    _check_name(name)
    conflict = (
        "another first admin was created at the same moment; creating more users needs an admin's API key"
        if actor is None
        else f"a user named {name!r} was created at the same moment"
    )
    with audited(ws), writing(ws, conflict) as session:
        _create_user(session, name, role, actor)


def _create_user(session: Session, name: str, role: Role, actor: Actor | None) -> None:
    count = session.execute(select(func.count()).select_from(User)).scalar_one()
    if actor is None:
        if count:
            raise PermissionDenied(
                "users exist already: creating one needs an admin's API key (MLSECOPS_API_KEY)"
            )
        if role is not Role.ADMIN:
            raise PermissionDenied("the first user of a workspace must be an admin (--role admin)")
        by = name
    else:
        check(actor, Permission.ADMIN, f"user:{name}")
        by = actor.name
    if session.execute(select(User.id).where(User.name == name)).first() is not None:
        raise ConflictError(f"a user named {name!r} exists already")
    # The bootstrap marker is unique: of two first-admin bootstraps racing past the count above, the
    # database lets exactly one insert (the other gets ConflictError from ``writing``).
    user = User(
        name=name,
        role=str(role),
        created=_now(),
        created_by=by,
        disabled=False,
        bootstrap=1 if actor is None else None,
    )
    session.add(user)
    session.flush()
    audit.append(
        session, actor=by, action="registry.user.create", subject=f"user:{name}", details={"role": str(role)}
    )


def create_api_key(ws: Workspace, user_name: str, *, actor: Actor | None, label: str = "") -> str:
    """Create an API key for ``user_name`` and return it (the only time it is seen).

    ``actor`` must be an admin, or ``None`` right after bootstrapping the first admin for itself.

    Raises:
        InputError: no such user.
        PermissionDenied: not allowed.
    """
    conflict = "another API key was created at the same moment without credentials; ask an admin for one"
    with audited(ws), writing(ws, conflict) as session:
        return _create_api_key(session, user_name, actor, label)


def _create_api_key(session: Session, user_name: str, actor: Actor | None, label: str) -> str:
    user = session.execute(select(User).where(User.name == user_name)).scalar_one_or_none()
    if user is None:
        raise InputError(f"no user named {user_name!r}; create it with `mlsecops registry users add`")
    if actor is None:
        keys = session.execute(select(func.count()).select_from(ApiKey)).scalar_one()
        if keys or user.role != Role.ADMIN:
            raise PermissionDenied("creating an API key needs an admin's API key (MLSECOPS_API_KEY)")
        by = user.name
    else:
        check(actor, Permission.ADMIN, f"user:{user_name}")
        by = actor.name
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_bytes(16)
    session.add(
        ApiKey(
            key_id=key_id,
            user_id=user.id,
            salt=salt.hex(),
            hash=_hash(secret, salt),
            label=label[:200],
            created=_now(),
            bootstrap=1 if actor is None else None,
        )
    )
    session.flush()
    audit.append(
        session,
        actor=by,
        action="registry.key.create",
        subject=f"user:{user_name}",
        details={"key_id": key_id, "label": label},
    )
    return f"{_KEY_PREFIX}_{key_id}_{secret}"


def authenticate(ws: Workspace, api_key: str) -> Actor:
    """The actor an API key belongs to.

    Raises:
        PermissionDenied: malformed, unknown, revoked or wrong key, or a disabled user.
    """
    refused = PermissionDenied(
        "the API key is not valid (unknown, revoked or wrong); ask an admin for a new one"
    )
    parts = api_key.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != _KEY_PREFIX:
        raise refused
    with ws.session(readonly=True) as session:
        return _authenticate(session, parts, refused)


def _authenticate(session: Session, parts: list[str], refused: PermissionDenied) -> Actor:
    row = session.execute(select(ApiKey).where(ApiKey.key_id == parts[1])).scalar_one_or_none()
    if row is None:
        _hash(parts[2], b"0" * 16)  # same work either way, so timing does not tell which ids exist
        raise refused
    ok = hmac.compare_digest(_hash(parts[2], bytes.fromhex(row.salt)), row.hash)
    user = session.get(User, row.user_id)
    if not ok or row.revoked is not None or user is None or user.disabled:
        raise refused
    return Actor(name=user.name, role=Role(user.role))


def revoke_api_key(ws: Workspace, key_id: str, *, actor: Actor) -> None:
    """Revoke a key by its id (the part after ``mlsk_``); it is refused from the next request on.

    Raises:
        InputError: no such key.
    """
    with audited(ws), ws.session() as session:
        check(actor, Permission.ADMIN, f"key:{key_id}")
        row = session.execute(select(ApiKey).where(ApiKey.key_id == key_id)).scalar_one_or_none()
        if row is None:
            raise InputError(f"no API key with id {key_id!r}")
        if row.revoked is None:
            row.revoked = _now()
            bump_revision(session, "identity")
            audit.append(
                session, actor=actor.name, action="registry.key.revoke", subject=f"key:{key_id}", details={}
            )


def set_user_disabled(ws: Workspace, name: str, disabled: bool, *, actor: Actor) -> None:
    """Disable (or enable) a user; a disabled user's keys are refused.

    Raises:
        InputError: no such user.
    """
    with audited(ws), ws.session() as session:
        check(actor, Permission.ADMIN, f"user:{name}")
        user = session.execute(select(User).where(User.name == name)).scalar_one_or_none()
        if user is None:
            raise InputError(f"no user named {name!r}")
        user.disabled = disabled
        bump_revision(session, "identity")
        action = "registry.user.disable" if disabled else "registry.user.enable"
        audit.append(session, actor=actor.name, action=action, subject=f"user:{name}", details={})


def list_users(ws: Workspace, *, actor: Actor) -> list[dict[str, object]]:
    """Users with their role and key ids (never hashes)."""
    with audited(ws), ws.session(readonly=True) as session:
        check(actor, Permission.READ, "users")
        return _list_users(session)


def _list_users(session: Session) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for u in session.execute(select(User).order_by(User.name)).scalars():
        keys = session.execute(select(ApiKey).where(ApiKey.user_id == u.id).order_by(ApiKey.id)).scalars()
        out.append(
            {
                "name": u.name,
                "role": u.role,
                "disabled": u.disabled,
                "keys": [
                    {"id": k.key_id, "label": k.label, "created": k.created, "revoked": k.revoked}
                    for k in keys
                ],
            }
        )
    return out
