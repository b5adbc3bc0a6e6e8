"""API-key authentication and per-model authorisation of the guard: deny by default, and every
revocation, disable, grant removal or block applies on the very next request."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlsecops.core.errors import InputError
from mlsecops.registry import (
    Role,
    authenticate,
    create_api_key,
    create_user,
    grant,
    list_grants,
    revoke_api_key,
    revoke_grant,
    set_user_disabled,
)
from mlsecops.runtime import auth as auth_module
from mlsecops.runtime.auth import ANONYMOUS, Authenticator, Principal
from mlsecops.runtime.controls import block_principal, set_label_only, unblock_principal
from mlsecops.runtime.errors import Forbidden, Unauthenticated
from mlsecops.runtime.policy import AuthPolicy
from mlsecops.store import Workspace, audit


@dataclass
class Access:
    ws: Workspace
    keys: dict[str, str]
    auth: Authenticator

    def other(self) -> Workspace:
        """A second connection to the same workspace, as the CLI in another process would have."""
        return Workspace.open(self.ws.home, self.ws.url, actor="test")


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A workspace with an admin, two clients and a viewer, built once (keys cost a scrypt each)."""
    root = tmp_path_factory.mktemp("seed")
    ws = Workspace.init(root / ".mlsecops", f"sqlite:///{root / '.mlsecops' / 'mlsecops.db'}", actor="test")
    create_user(ws, "root", Role.ADMIN, actor=None)
    keys = {"root": create_api_key(ws, "root", actor=None)}
    admin = authenticate(ws, keys["root"])
    for name, role in (("app", Role.CLIENT), ("app2", Role.CLIENT), ("viewer", Role.VIEWER)):
        create_user(ws, name, role, actor=admin)
        keys[name] = create_api_key(ws, name, actor=admin)
    grant(ws, "fraud", "app", actor=admin)
    grant(ws, "fraud", "viewer", actor=admin)
    ws.close()
    return root / ".mlsecops", keys


@pytest.fixture
def access(seeded: tuple[Path, dict[str, str]], tmp_path: Path) -> Iterator[Access]:
    home = tmp_path / ".mlsecops"
    shutil.copytree(seeded[0], home)
    ws = Workspace.open(home)
    authenticator = Authenticator(ws, AuthPolicy())
    yield Access(ws, dict(seeded[1]), authenticator)
    authenticator.close()
    ws.close()


def bearer(key: str) -> str:
    return f"Bearer {key}"


def admin(a: Access, ws: Workspace | None = None) -> object:
    return authenticate(ws or a.ws, a.keys["root"])


def test_missing_or_malformed_credentials_are_401(access: Access) -> None:
    for header in (None, "", "   ", "Basic abc", "Bearer", "Bearer ", "mlsk_x", "Bearer x" * 2000):
        with pytest.raises(Unauthenticated) as err:
            access.auth.authenticate(header)
        assert err.value.status == 401
        assert err.value.headers["WWW-Authenticate"].startswith("Bearer")


def test_wrong_unknown_and_truncated_keys_get_one_message(access: Access) -> None:
    key = access.keys["app"]
    prefix, key_id, secret = key.split("_", 2)
    wrong_secret = f"{prefix}_{key_id}_{'A' * len(secret)}"
    unknown_id = f"{prefix}_{'0' * len(key_id)}_{secret}"
    messages = set()
    for bad in (wrong_secret, unknown_id, key[:-1], key + "x", f"mlsk_{key_id}"):
        with pytest.raises(Unauthenticated) as err:
            access.auth.authenticate(bearer(bad))
        messages.add(err.value.message)
    assert messages == {"valid credentials required"}


def test_client_key_with_grant_may_infer_and_nothing_more(access: Access) -> None:
    principal = access.auth.authenticate(bearer(access.keys["app"]))
    assert principal == Principal("app", "api_key", Role.CLIENT)
    access.auth.authorize(principal, "fraud")
    with pytest.raises(Forbidden) as err:
        access.auth.authorize(principal, "churn")
    assert err.value.status == 403 and "churn" in err.value.message
    # The client role may do nothing else in the registry.
    from mlsecops.registry import Registry

    with pytest.raises(Exception, match="may not"):
        Registry(access.ws, authenticate(access.ws, access.keys["app"])).list_models()


def test_scheme_is_case_insensitive(access: Access) -> None:
    assert access.auth.authenticate(f"bearer {access.keys['app']}").name == "app"


def test_no_grant_is_403_for_every_role_admin_included(access: Access) -> None:
    root = access.auth.authenticate(bearer(access.keys["root"]))
    with pytest.raises(Forbidden):
        access.auth.authorize(root, "fraud")
    other = access.auth.authenticate(bearer(access.keys["app2"]))
    with pytest.raises(Forbidden):
        access.auth.authorize(other, "fraud")


def test_a_role_without_infer_is_refused_even_with_a_grant(access: Access) -> None:
    viewer = access.auth.authenticate(bearer(access.keys["viewer"]))
    with pytest.raises(Forbidden, match="role viewer"):
        access.auth.authorize(viewer, "fraud")


def test_wildcard_grants_only_as_given(access: Access) -> None:
    a = admin(access)
    app2 = access.auth.authenticate(bearer(access.keys["app2"]))
    grant(access.ws, "*", "app2", actor=a)  # type: ignore[arg-type]
    access.auth.authenticate(bearer(access.keys["app2"]))
    access.auth.authorize(app2, "fraud")
    access.auth.authorize(app2, "anything-else")
    # A model literally named like a pattern grants nothing beyond itself.
    grant(access.ws, "fr.ud", "app", actor=a)  # type: ignore[arg-type]
    app = access.auth.authenticate(bearer(access.keys["app"]))
    with pytest.raises(Forbidden):
        access.auth.authorize(app, "frXud")
    # '*' as the principal: every authenticated principal whose role may infer.
    grant(access.ws, "churn", "*", actor=a)  # type: ignore[arg-type]
    root = access.auth.authenticate(bearer(access.keys["root"]))
    access.auth.authorize(root, "churn")
    viewer = access.auth.authenticate(bearer(access.keys["viewer"]))
    with pytest.raises(Forbidden):
        access.auth.authorize(viewer, "churn")


def test_revoked_key_is_refused_on_the_next_request(access: Access) -> None:
    key = access.keys["app"]
    assert access.auth.authenticate(bearer(key)).name == "app"  # now cached
    other = access.other()
    try:
        key_id = key.split("_")[1]
        revoke_api_key(other, key_id, actor=admin(access, other))  # type: ignore[arg-type]
    finally:
        other.close()
    with pytest.raises(Unauthenticated):
        access.auth.authenticate(bearer(key))
    with pytest.raises(Unauthenticated):
        access.auth.authenticate(bearer(key))


def test_disabled_user_is_refused_next_request_and_back_when_enabled(access: Access) -> None:
    key = access.keys["app"]
    access.auth.authenticate(bearer(key))
    set_user_disabled(access.ws, "app", True, actor=admin(access))  # type: ignore[arg-type]
    with pytest.raises(Unauthenticated):
        access.auth.authenticate(bearer(key))
    set_user_disabled(access.ws, "app", False, actor=admin(access))  # type: ignore[arg-type]
    assert access.auth.authenticate(bearer(key)).name == "app"


def test_grant_removal_applies_on_the_next_request(access: Access) -> None:
    principal = access.auth.authenticate(bearer(access.keys["app"]))
    access.auth.authorize(principal, "fraud")  # grants now cached
    revoke_grant(access.ws, "fraud", "app", actor=admin(access))  # type: ignore[arg-type]
    principal = access.auth.authenticate(bearer(access.keys["app"]))
    with pytest.raises(Forbidden):
        access.auth.authorize(principal, "fraud")


def test_block_applies_on_the_next_request_and_unblock_lifts_it(access: Access) -> None:
    key = access.keys["app"]
    access.auth.authorize(access.auth.authenticate(bearer(key)), "fraud")
    block_principal(access.ws, "app", reason="extraction alert", actor="playbook:steal", alert_id="a-1")
    with pytest.raises(Forbidden, match="blocked"):
        access.auth.authenticate(bearer(key))
    # A wrong key of a blocked principal is still 401: the block is never told to strangers.
    with pytest.raises(Unauthenticated):
        access.auth.authenticate(bearer(key[:-2] + "zz"))
    unblock_principal(access.ws, "app", reason="false positive", actor="root")
    access.auth.authorize(access.auth.authenticate(bearer(key)), "fraud")


def test_label_only_is_reported_for_the_principal(access: Access) -> None:
    principal = access.auth.authenticate(bearer(access.keys["app"]))
    assert access.auth.label_only(principal) is False
    set_label_only(access.ws, "app", reason="probing", actor="playbook:probe")
    principal = access.auth.authenticate(bearer(access.keys["app"]))
    assert access.auth.label_only(principal) is True


def test_verified_keys_are_cached_and_rechecked_without_scrypt(
    access: Access, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = auth_module.authenticate

    def counting(ws: Workspace, key: str) -> object:
        calls.append(1)
        return real(ws, key)

    monkeypatch.setattr(auth_module, "authenticate", counting)
    for _ in range(5):
        access.auth.authenticate(bearer(access.keys["app"]))
    assert len(calls) == 1
    # Another key's revocation moves the identity revision: the cached key is re-read, not re-hashed.
    revoke_api_key(access.ws, access.keys["app2"].split("_")[1], actor=admin(access))  # type: ignore[arg-type]
    assert access.auth.authenticate(bearer(access.keys["app"])).name == "app"
    assert len(calls) == 1
    # A wrong key is remembered as wrong: repeating it costs no scrypt either.
    bad = access.keys["app"][:-3] + "xyz"
    for _ in range(3):
        with pytest.raises(Unauthenticated):
            access.auth.authenticate(bearer(bad))
    assert len(calls) == 2


def test_cached_request_reads_only_the_revision_row(access: Access, monkeypatch: pytest.MonkeyPatch) -> None:
    principal = access.auth.authenticate(bearer(access.keys["app"]))
    access.auth.authorize(principal, "fraud")
    sessions: list[int] = []
    real = Workspace.session

    def counting(self: Workspace, **kw: bool) -> object:
        sessions.append(1)
        return real(self, **kw)

    monkeypatch.setattr(Workspace, "session", counting)
    for _ in range(10):
        access.auth.authorize(access.auth.authenticate(bearer(access.keys["app"])), "fraud")
    assert sessions == []


def test_anonymous_only_when_the_policy_allows_it(access: Access) -> None:
    anon = Authenticator(access.ws, AuthPolicy(anonymous=True))
    try:
        principal = anon.authenticate(None)
        assert principal == Principal(ANONYMOUS, "anonymous", Role.CLIENT)
        anon.authorize(principal, "any-model")
        with pytest.raises(Unauthenticated):  # a credential that is present is still checked
            anon.authenticate("Bearer mlsk_00_nope")
        block_principal(access.ws, ANONYMOUS, reason="abuse", actor="root")
        with pytest.raises(Forbidden):
            anon.authenticate(None)
    finally:
        anon.close()


def test_api_keys_can_be_turned_off(access: Access) -> None:
    off = Authenticator(access.ws, AuthPolicy(api_keys=False))
    try:
        with pytest.raises(Unauthenticated):
            off.authenticate(bearer(access.keys["app"]))
    finally:
        off.close()


def test_grants_need_an_admin_a_known_user_and_well_formed_names(access: Access) -> None:
    a = admin(access)
    client = authenticate(access.ws, access.keys["app"])
    with pytest.raises(Exception, match="may not"):
        grant(access.ws, "fraud", "app2", actor=client)
    with pytest.raises(InputError, match="no user"):
        grant(access.ws, "fraud", "ghost", actor=a)  # type: ignore[arg-type]
    for model, principal in (("fr aud", "app"), ("fraud", "a b"), ("fraud", "jwt:"), ("fraud", "jwt:a b")):
        with pytest.raises(InputError):
            grant(access.ws, model, principal, actor=a)  # type: ignore[arg-type]
    assert grant(access.ws, "fraud", "jwt:svc|42", actor=a) is True  # type: ignore[arg-type]
    assert grant(access.ws, "fraud", "jwt:svc|42", actor=a) is False  # type: ignore[arg-type]
    with pytest.raises(InputError, match="no grant"):
        revoke_grant(access.ws, "churn", "app", actor=a)  # type: ignore[arg-type]
    listed = list_grants(access.ws, actor=a, model="fraud")  # type: ignore[arg-type]
    assert [(g["model"], g["principal"]) for g in listed] == [
        ("fraud", "app"),
        ("fraud", "jwt:svc|42"),
        ("fraud", "viewer"),
    ]
    with pytest.raises(Exception, match="may not"):
        list_grants(access.ws, actor=client)
    with access.ws.session(readonly=True) as s:
        events = [(e.action, e.subject) for e in audit.iter_events(s, action="registry.grant*")]
        assert events.count(("registry.grant.add", "model:fraud")) == 3
        assert audit.verify(s).ok
        denied = [e.action for e in audit.iter_events(s, action="registry.denied")]
        assert len(denied) == 2


def test_no_key_or_token_reaches_logs_or_errors(access: Access, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    key = access.keys["app"]
    seen: list[str] = []
    for header in (bearer(key), bearer(key[:-1] + "Q"), bearer(key + "extra")):
        try:
            access.auth.authorize(access.auth.authenticate(header), "churn")
        except (Unauthenticated, Forbidden) as err:
            seen += [str(err), repr(err), str(err.body())]
    secret = key.split("_", 2)[2]
    for text in [*seen, *(r.getMessage() for r in caplog.records)]:
        assert secret not in text and secret[:12] not in text
    assert all(secret not in repr(v) for v in vars(access.auth).values())
