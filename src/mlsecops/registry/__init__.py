"""The model registry: versions, stages, aliases, approvals, gated promotion, rollback and identity.

>>> from mlsecops.registry import Registry, Role, authenticate, create_user, create_api_key
>>> # create_user(ws, "alice", Role.ADMIN, actor=None)           # bootstrap the first admin
>>> # key = create_api_key(ws, "alice", actor=None)              # shown once; stored as a salted hash
>>> # reg = Registry(ws, authenticate(ws, key))
>>> # reg.register("fraud", Path("model/")); reg.promote("fraud", 1, to="staging")

Every action checks the actor's role and is written to the audit trail. Registration scans the bytes
it stores (never the path a second time). Promotion *and rollback* to production need a signature by a
trusted key re-verified over the stored files, a safe scan, a passing gate run that evaluated this
version's exact files, and an approval of this pinned version by another user; concurrent promotions
are compare-and-set, so exactly one wins and the other gets ``ConflictError``, and database constraints
keep one open holder per stage or alias and one bootstrap admin.

Grants say which principal may call which model in the runtime guard (``grant``, ``revoke_grant``,
``list_grants``); key, user and grant changes bump an access revision the guard polls per request.
"""

from __future__ import annotations

from mlsecops.registry._grants import (
    WILDCARD,
    check_principal_name,
    grant,
    granted_models,
    key_states,
    list_grants,
    revoke_grant,
)
from mlsecops.registry._identity import (
    Actor,
    Permission,
    Role,
    authenticate,
    create_api_key,
    create_user,
    list_users,
    revoke_api_key,
    set_user_disabled,
)
from mlsecops.registry._registry import Registry, version_lineage
from mlsecops.registry._revision import bump_revision
from mlsecops.registry._scanning import ScanOutcome, scan_artifact
from mlsecops.registry._versions import HistoryEntry, VersionInfo, parse_ref, resolve
from mlsecops.registry._webhooks import EVENTS, sign_body, verify_signature

__all__ = [
    "EVENTS",
    "WILDCARD",
    "Actor",
    "HistoryEntry",
    "Permission",
    "Registry",
    "Role",
    "ScanOutcome",
    "VersionInfo",
    "authenticate",
    "bump_revision",
    "check_principal_name",
    "create_api_key",
    "create_user",
    "grant",
    "granted_models",
    "key_states",
    "list_grants",
    "list_users",
    "parse_ref",
    "resolve",
    "revoke_api_key",
    "revoke_grant",
    "scan_artifact",
    "set_user_disabled",
    "sign_body",
    "verify_signature",
    "version_lineage",
]
