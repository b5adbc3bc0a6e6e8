"""JWT authentication: RS256 and ES256 only, keys from a JWKS file or OIDC discovery (a loopback
server here), every claim checked, and the classic JWT attacks refused (alg confusion, ``none``,
unknown ``kid``, tampering)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tests._deps import require

jwt = require("jwt", "serve")

from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: E402

from mlsecops.core.errors import ConfigError  # noqa: E402
from mlsecops.registry import Role, authenticate, create_api_key, create_user, grant  # noqa: E402
from mlsecops.runtime.auth import Authenticator, JwtVerifier, Principal  # noqa: E402
from mlsecops.runtime.errors import Forbidden, Unauthenticated, Unavailable  # noqa: E402
from mlsecops.runtime.policy import AuthPolicy, JwtPolicy  # noqa: E402
from mlsecops.store import Workspace  # noqa: E402

ISSUER = "https://idp.example"
AUDIENCE = "mlsecops-guard"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Keys:
    """Signing keys of a fake identity provider and their JWKS."""

    def __init__(self) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.rsa2 = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwk(self, key: Any, kid: str) -> dict[str, Any]:
        algo = (
            jwt.algorithms.RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey) else jwt.algorithms.ECAlgorithm
        )
        doc: dict[str, Any] = json.loads(algo.to_jwk(key.public_key()))
        doc["kid"] = kid
        return doc

    def jwks(self, *pairs: tuple[Any, str]) -> dict[str, Any]:
        return {"keys": [self.jwk(k, kid) for k, kid in pairs]}


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys()


def claims(**over: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"sub": "svc-42", "iss": ISSUER, "aud": AUDIENCE, "exp": now + 300, "iat": now}
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def sign(key: Any, alg: str, kid: str | None, **over: Any) -> str:
    headers = {"kid": kid} if kid else {}
    return str(jwt.encode(claims(**over), key, algorithm=alg, headers=headers))


def handmade(header: dict[str, Any], body: dict[str, Any], secret: bytes | None) -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(body).encode())}"
    sig = b"" if secret is None else hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(sig)}"


@pytest.fixture
def jwks_file(tmp_path: Path, keys: Keys) -> Path:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(keys.jwks((keys.rsa, "r1"), (keys.ec, "e1"))))
    return path


def verifier(path: Path, **over: Any) -> JwtVerifier:
    options: dict[str, Any] = {"jwks_file": path, "issuer": ISSUER, "audience": AUDIENCE, **over}
    return JwtVerifier(JwtPolicy(**options))


def test_valid_rs256_and_es256_tokens(jwks_file: Path, keys: Keys) -> None:
    v = verifier(jwks_file)
    assert v.verify(sign(keys.rsa, "RS256", "r1")) == Principal("jwt:svc-42", "jwt", Role.CLIENT)
    assert v.verify(sign(keys.ec, "ES256", "e1", sub="other")).name == "jwt:other"
    assert v.verify(sign(keys.rsa, "RS256", "r1", role="admin")).role is Role.ADMIN


@pytest.mark.parametrize(
    "over",
    [
        {"exp": int(time.time()) - 3600},
        {"exp": None},
        {"aud": "another-service"},
        {"aud": None},
        {"iss": "https://evil.example"},
        {"iss": None},
        {"nbf": int(time.time()) + 3600},
        {"sub": None},
        {"sub": "has space"},
        {"sub": ""},
        {"role": "superuser"},
        {"role": ["admin"]},
    ],
    ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()),
)
def test_bad_claims_are_401(jwks_file: Path, keys: Keys, over: dict[str, Any]) -> None:
    with pytest.raises(Unauthenticated):
        verifier(jwks_file).verify(sign(keys.rsa, "RS256", "r1", **over))


def test_leeway_accepts_a_token_just_expired(jwks_file: Path, keys: Keys) -> None:
    token = sign(keys.rsa, "RS256", "r1", exp=int(time.time()) - 5)
    assert verifier(jwks_file, leeway_s=30).verify(token).name == "jwt:svc-42"
    with pytest.raises(Unauthenticated):
        verifier(jwks_file, leeway_s=0).verify(token)


def test_hs256_with_the_public_key_as_secret_is_refused(jwks_file: Path, keys: Keys) -> None:
    pem = keys.rsa.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    jwk_n = keys.jwk(keys.rsa, "r1")["n"].encode()
    for secret in (pem, jwk_n):
        for kid in ("r1", None):
            header = {"alg": "HS256", "typ": "JWT", **({"kid": kid} if kid else {})}
            with pytest.raises(Unauthenticated):
                verifier(jwks_file).verify(handmade(header, claims(), secret))


def test_alg_none_is_refused(jwks_file: Path) -> None:
    for alg in ("none", "None", "NONE"):
        with pytest.raises(Unauthenticated):
            verifier(jwks_file).verify(handmade({"alg": alg, "kid": "r1"}, claims(), None))


def test_a_key_of_the_wrong_type_for_the_header_alg_is_refused(jwks_file: Path, keys: Keys) -> None:
    # An ES256 token naming the RSA key's kid (and vice versa) is refused before any verification.
    with pytest.raises(Unauthenticated):
        verifier(jwks_file).verify(sign(keys.ec, "ES256", "r1"))
    with pytest.raises(Unauthenticated):
        verifier(jwks_file).verify(sign(keys.rsa, "RS256", "e1"))


def test_algorithms_outside_the_policy_are_refused(jwks_file: Path, keys: Keys) -> None:
    with pytest.raises(Unauthenticated):
        verifier(jwks_file, algorithms=("ES256",)).verify(sign(keys.rsa, "RS256", "r1"))
    with pytest.raises(Unauthenticated):
        verifier(jwks_file).verify(sign(keys.rsa, "RS512", "r1"))
    with pytest.raises(Unauthenticated):
        verifier(jwks_file).verify(sign(keys.rsa, "PS256", "r1"))


def test_unknown_kid_and_missing_kid_with_several_keys_are_refused(
    jwks_file: Path, keys: Keys, tmp_path: Path
) -> None:
    with pytest.raises(Unauthenticated):
        verifier(jwks_file).verify(sign(keys.rsa, "RS256", "nope"))
    with pytest.raises(Unauthenticated):
        verifier(jwks_file).verify(sign(keys.rsa, "RS256", None))
    one = tmp_path / "one.json"
    one.write_text(json.dumps(keys.jwks((keys.rsa, "r1"))))
    assert verifier(one).verify(sign(keys.rsa, "RS256", None)).name == "jwt:svc-42"
    # A token signed by another key that claims a known kid fails the signature.
    with pytest.raises(Unauthenticated):
        verifier(one).verify(sign(keys.rsa2, "RS256", "r1"))


def test_tampered_tokens_are_refused(jwks_file: Path, keys: Keys) -> None:
    token = sign(keys.rsa, "RS256", "r1")
    head, body, sig = token.split(".")
    forged_body = b64(json.dumps(claims(sub="admin-svc")).encode())
    flipped = sig[:-2] + ("AA" if sig[-2:] != "AA" else "BB")
    for bad in (f"{head}.{forged_body}.{sig}", f"{head}.{body}.{flipped}", f"{head}.{body}.", "a.b.c"):
        with pytest.raises(Unauthenticated):
            verifier(jwks_file).verify(bad)


def test_key_file_rotation_is_picked_up_on_an_unknown_kid(jwks_file: Path, keys: Keys) -> None:
    v = verifier(jwks_file)
    token = sign(keys.rsa2, "RS256", "r2")
    with pytest.raises(Unauthenticated):
        v.verify(token)
    jwks_file.write_text(json.dumps(keys.jwks((keys.rsa, "r1"), (keys.rsa2, "r2"))))
    import os

    os.utime(jwks_file, (time.time() + 5, time.time() + 5))
    assert v.verify(token).name == "jwt:svc-42"


def test_weak_or_unusable_keys_are_not_loaded(tmp_path: Path, keys: Keys) -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    p384 = ec.generate_private_key(ec.SECP384R1())
    path = tmp_path / "weak.json"
    doc = keys.jwks((weak, "w"), (p384, "p"))
    doc["keys"].append({"kty": "oct", "k": b64(b"secret"), "kid": "h"})
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match="no usable"):
        verifier(path)
    path.write_text("[not json")
    with pytest.raises(ConfigError, match="not JSON"):
        verifier(path)


def test_policy_must_name_an_audience_and_a_key_source(jwks_file: Path) -> None:
    with pytest.raises(ConfigError, match="audience"):
        JwtVerifier(JwtPolicy(jwks_file=jwks_file))
    with pytest.raises(ConfigError, match="jwks_file"):
        JwtVerifier(JwtPolicy(audience=AUDIENCE))
    with pytest.raises(ConfigError, match="https"):
        JwtVerifier(JwtPolicy(audience=AUDIENCE, issuer="http://idp.example", oidc_discovery=True))


# ------------------------------------------------------------------------- with the workspace


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    w = Workspace.init(tmp_path / ".mlsecops", f"sqlite:///{tmp_path / 'ws.db'}", actor="test")
    yield w
    w.close()


def test_jwt_principals_need_a_grant_by_their_jwt_name(ws: Workspace, jwks_file: Path, keys: Keys) -> None:
    create_user(ws, "root", Role.ADMIN, actor=None)
    admin = authenticate(ws, create_api_key(ws, "root", actor=None))
    policy = AuthPolicy(jwt=JwtPolicy(jwks_file=jwks_file, issuer=ISSUER, audience=AUDIENCE))
    auth = Authenticator(ws, policy)
    try:
        token = f"Bearer {sign(keys.rsa, 'RS256', 'r1')}"
        principal = auth.authenticate(token)
        with pytest.raises(Forbidden):
            auth.authorize(principal, "fraud")
        grant(ws, "fraud", "jwt:svc-42", actor=admin)
        auth.authorize(auth.authenticate(token), "fraud")
        viewer = auth.authenticate(f"Bearer {sign(keys.ec, 'ES256', 'e1', role='viewer')}")
        grant(ws, "fraud", "jwt:svc-42", actor=admin)
        with pytest.raises(Forbidden):
            auth.authorize(viewer, "fraud")
        with pytest.raises(Unauthenticated):
            auth.authenticate(f"Bearer {sign(keys.rsa, 'RS256', 'r1', aud='other')}")
    finally:
        auth.close()


# ------------------------------------------------------------------------ OIDC discovery


class Idp:
    """Documents a loopback identity provider serves, and the requests it saw."""

    def __init__(self) -> None:
        self.docs: dict[str, bytes] = {}
        self.hits: list[str] = []
        self.port = 0

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def idp() -> Iterator[Idp]:
    state = Idp()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.hits.append(self.path)
            body = state.docs.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body or b"{}")

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def publish(idp: Idp, keys: Keys, *pairs: tuple[Any, str], issuer: str | None = None) -> None:
    idp.docs["/.well-known/openid-configuration"] = json.dumps(
        {"issuer": issuer or idp.issuer, "jwks_uri": f"{idp.issuer}/jwks"}
    ).encode()
    idp.docs["/jwks"] = json.dumps(keys.jwks(*pairs)).encode()
    idp.hits.clear()


def discovering(idp: Idp) -> JwtVerifier:
    return JwtVerifier(JwtPolicy(issuer=idp.issuer, audience=AUDIENCE, oidc_discovery=True))


def test_oidc_discovery_fetches_and_caches_the_issuers_keys(idp: Idp, keys: Keys) -> None:
    publish(idp, keys, (keys.rsa, "r1"), (keys.ec, "e1"))
    v = discovering(idp)
    for _ in range(3):
        assert v.verify(sign(keys.ec, "ES256", "e1", iss=idp.issuer)).name == "jwt:svc-42"
        assert v.verify(sign(keys.rsa, "RS256", "r1", iss=idp.issuer, sub="b")).name == "jwt:b"
    assert idp.hits == ["/.well-known/openid-configuration", "/jwks"]
    # A rotated key: one refetch on the unknown kid, then at most one a minute for junk kids.
    publish(idp, keys, (keys.rsa2, "r2"), (keys.rsa, "r1"))
    assert v.verify(sign(keys.rsa2, "RS256", "r2", iss=idp.issuer)).name == "jwt:svc-42"
    assert idp.hits == ["/.well-known/openid-configuration", "/jwks"]
    for i in range(5):
        with pytest.raises(Unauthenticated):
            v.verify(sign(keys.rsa2, "RS256", f"junk{i}", iss=idp.issuer))
    assert len(idp.hits) == 2


def test_oidc_discovery_refuses_another_issuer_and_reports_outages(idp: Idp, keys: Keys) -> None:
    publish(idp, keys, (keys.rsa, "r1"), issuer="https://evil.example")
    with pytest.raises(Unavailable, match="another issuer"):
        discovering(idp).load_keys()
    idp.docs.clear()
    with pytest.raises(Unavailable):
        discovering(idp).load_keys()
    down = JwtVerifier(JwtPolicy(issuer="http://127.0.0.1:9", audience=AUDIENCE, oidc_discovery=True))
    with pytest.raises(Unavailable):
        down.verify(sign(keys.rsa, "RS256", "r1"))


def test_oidc_documents_are_size_bounded(idp: Idp, keys: Keys) -> None:
    publish(idp, keys, (keys.rsa, "r1"))
    idp.docs["/jwks"] = b'{"keys": [' + b" " * (300 * 1024) + b"]}"
    with pytest.raises(Unavailable, match="too large"):
        discovering(idp).load_keys()


def test_authenticator_loads_issuer_keys_at_start(ws: Workspace, idp: Idp, keys: Keys) -> None:
    publish(idp, keys, (keys.ec, "e1"))
    policy = AuthPolicy(jwt=JwtPolicy(issuer=idp.issuer, audience=AUDIENCE, oidc_discovery=True))
    auth = Authenticator(ws, policy)
    try:
        assert idp.hits == []
        auth.load_keys()
        assert idp.hits == ["/.well-known/openid-configuration", "/jwks"]
        token = sign(keys.ec, "ES256", "e1", iss=idp.issuer)
        assert auth.authenticate(f"Bearer {token}").name == "jwt:svc-42"
        assert len(idp.hits) == 2
    finally:
        auth.close()
