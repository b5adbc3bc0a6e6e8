"""Who is calling, and may they call this model: the guard's authentication and authorisation.

Per request the app calls ``Authenticator.authenticate(authorization_header)`` and then
``authorize(principal, model)``; both raise a ``GuardError`` the app turns into the HTTP answer:
``Unauthenticated`` (401) for missing, malformed, unknown, wrong, revoked or expired credentials (one
message whatever the cause), ``Forbidden`` (403) for a blocked principal, a role that may not infer or
no grant, ``Unavailable`` (503) when the workspace database or the identity provider cannot be reached.

Credentials (``Authorization: Bearer <credential>``):

- **API keys** of the workspace's users (``mlsk_<id>_<secret>``), verified with the registry's
  ``authenticate`` (salted scrypt, constant-time comparison). A verified key is cached under a keyed
  digest (the key itself is never kept, logged or shown), so later requests skip the ~50 ms scrypt.
- **JWTs** signed by an identity provider with RS256 or ES256 only (HS*, ``none`` and every other
  algorithm are refused before any key is looked at; the key a token names must be of the type its
  header claims, so an RSA public key can never serve as an HMAC secret). ``exp`` and ``aud`` are
  required, ``iss`` when the policy names an issuer, ``nbf`` honoured, all with the policy's leeway.
  Keys come from a JWKS file or from the issuer's OIDC discovery document (fetched with bounded
  timeouts and size, https unless loopback, cached; an unknown ``kid`` triggers at most one refetch a
  minute). ``kid`` is required when there are several keys. The principal is ``jwt:<sub>``.

Revocation on the very next request: every request first reads the ``access_revision`` row (one
primary-key SELECT on a kept connection, ``controls.AccessWatch``: ~15 us on SQLite). When the
``identity`` counter has moved since a cached key was checked, the key's row is re-read (no scrypt:
its hash cannot change) and a revoked key or disabled user is refused; when ``grants`` or
``controls`` moved, those caches are dropped. A change that bypasses mlsecops (hand-written SQL) is
still picked up within ``KEY_RECHECK_S``.

Authorisation is deny by default: a principal may infer on a model only when its role has the
``infer`` permission (``client``, ``admin``) *and* it holds a grant for that model (or an explicit
``*`` grant). With ``auth.anonymous`` (demos only) calls without credentials run as
``guard:anonymous`` on every model; credentials that are present are still checked.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import json
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from mlsecops.core.errors import ConfigError, PermissionDenied, WorkspaceError
from mlsecops.registry import WILDCARD, Actor, Permission, Role, authenticate, granted_models, key_states
from mlsecops.runtime.controls import ANONYMOUS, AccessWatch, ControlsView, Revision
from mlsecops.runtime.errors import Forbidden, Unauthenticated, Unavailable
from mlsecops.runtime.policy import AuthPolicy, JwtPolicy
from mlsecops.store import Workspace

__all__ = [
    "ANONYMOUS",
    "Authenticator",
    "Fetch",
    "JwtVerifier",
    "Principal",
    "fetch_bounded",
]

MAX_CREDENTIAL_CHARS = 8192
"""Longest ``Authorization`` header read; longer ones are refused before any parsing."""
KEY_CACHE_SIZE = 10_000
"""Verified API keys kept (least recently used beyond that are verified again)."""
FAILED_KEY_CACHE_SIZE = 10_000
"""Refused API keys remembered, so repeating a wrong key does not cost a scrypt each time."""
KEY_RECHECK_S = 60.0
"""A cached key's row is re-read at least this often, even if no revision moved."""
MAX_CONCURRENT_KEY_CHECKS = 4
"""Uncached keys verified at once (each scrypt costs ~16 MiB and tens of ms): a flood of random keys
queues here instead of exhausting memory and CPU; cached principals are not slowed."""
KEY_CHECK_WAIT_S = 5.0
"""How long a request waits for a verification slot before 503."""
GRANTS_CACHE_SIZE = 100_000
TOKEN_CACHE_SIZE = 10_000
"""Verified JWTs kept until they expire (keyed by digest), so a token's signature is checked once."""
MAX_JWKS_BYTES = 256 * 1024
"""A JWKS or discovery document is a few kilobytes; more is hostile or a mistake."""
MIN_RSA_BITS = 2048
JWKS_TTL_S = 3600.0
"""Fetched issuer keys are refreshed after this long."""
JWKS_RETRY_S = 5.0
"""While no issuer keys could be fetched, at most one attempt per this interval (others get 503)."""
JWKS_MIN_REFETCH_S = 60.0
"""At most one refetch per this interval on an unknown ``kid`` (no amplification of junk tokens)."""
JWKS_STALE_MAX_S = 86_400.0
"""Keys older than this are not used when the issuer cannot be reached (503 instead)."""
FETCH_TIMEOUT_S = 5.0
FETCH_CONNECT_TIMEOUT_S = 2.0
_KEY_RE = re.compile(r"^mlsk_([0-9a-f]{1,32})_[A-Za-z0-9_-]{1,200}$")
_SUBJECT_RE = re.compile(r"^[\x21-\x7e]{1,200}$")
_ALLOWED_ALGS = ("RS256", "ES256")

PrincipalKind = Literal["api_key", "jwt", "anonymous"]
Fetch = Callable[[str], bytes]
"""``fetch(url) -> bytes``: a bounded GET of a discovery or JWKS document (``fetch_bounded``)."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: the name grants, budgets and controls are keyed by, and the role."""

    name: str
    """A user name (API keys), ``jwt:<sub>`` (JWTs) or ``guard:anonymous``."""
    kind: PrincipalKind
    role: Role


@dataclass
class _KeyEntry:
    key_id: str
    name: str
    role: Role
    identity: int
    """The identity revision at which the key was last found live."""
    checked: float
    """``time.monotonic()`` of that check."""


def _refused() -> Unauthenticated:
    return Unauthenticated("valid credentials required")


class Authenticator:
    """Authenticates requests and authorises them per model (thread-safe; one per guard worker).

    Args:
        ws: the workspace (users, keys, grants and controls live in its database).
        policy: the ``auth`` section of the guard policy.
        fetch: JWKS/discovery fetcher for tests (default: httpx with bounded timeouts).

    Raises:
        ConfigError: the JWT policy is incomplete (no audience, no key source) or its key file is bad.
    """

    def __init__(self, ws: Workspace, policy: AuthPolicy, *, fetch: Fetch | None = None) -> None:
        self._ws = ws
        self._policy = policy
        self._watch = AccessWatch(ws)
        self.controls = ControlsView(ws, watch=self._watch)
        """Per-principal controls, synced by ``authenticate``; pass it to ``Limiter(controls=...)``."""
        self._jwt = JwtVerifier(policy.jwt, fetch=fetch) if policy.jwt is not None else None
        self._digest_key = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self._keys: OrderedDict[bytes, _KeyEntry] = OrderedDict()
        self._failed: OrderedDict[bytes, int | None] = OrderedDict()
        self._grants: OrderedDict[str, frozenset[str]] = OrderedDict()
        self._revision: Revision | None = None
        self._slots = threading.BoundedSemaphore(MAX_CONCURRENT_KEY_CHECKS)

    # ----------------------------------------------------------------------------- authenticate

    def authenticate(self, authorization: str | None) -> Principal:
        """The principal behind an ``Authorization`` header value (None: no header).

        Reads the access revision once (so a revocation, grant removal or block committed before
        this request applies to it), then verifies the credential.

        Raises:
            Unauthenticated: no usable credential (and anonymous calls are off), or a bad one.
            Forbidden: the principal is blocked.
            Unavailable: the workspace database or the identity provider cannot be reached.
        """
        revision = self._sync()
        principal = self._identify(authorization, revision)
        if self.controls.get(principal.name).is_blocked():
            raise Forbidden("this principal is blocked")
        return principal

    def cached(self, authorization: str | None) -> bool:
        """Whether ``authenticate`` can answer for this header from memory (no key hashing, no JWKS).

        True for an API key verified recently and not known to have failed; a hint for the request
        path (run inline or in a thread), never a decision: ``authenticate`` still checks everything.
        """
        if not authorization or len(authorization) > MAX_CREDENTIAL_CHARS:
            return authorization is None or not authorization.strip()
        scheme, _, credential = authorization.strip().partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential.startswith("mlsk_"):
            return False
        digest = self._digest(credential)
        with self._lock:
            entry = self._keys.get(digest)
            return entry is not None and time.monotonic() - entry.checked < KEY_RECHECK_S

    def _identify(self, authorization: str | None, revision: Revision | None) -> Principal:
        if authorization is None or not authorization.strip():
            if self._policy.anonymous:
                return Principal(ANONYMOUS, "anonymous", Role.CLIENT)
            raise _refused()
        if len(authorization) > MAX_CREDENTIAL_CHARS:
            raise _refused()
        scheme, _, credential = authorization.strip().partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            raise _refused()
        if credential.startswith("mlsk_"):
            if not self._policy.api_keys:
                raise _refused()
            return self._api_key(credential, revision)
        if self._jwt is not None and credential.count(".") == 2:
            return self._jwt.verify(credential)
        raise _refused()

    def _sync(self) -> Revision | None:
        revision = self._watch.read()
        self.controls.refresh(revision)
        with self._lock:
            if revision is None or self._revision is None or revision.grants != self._revision.grants:
                self._grants.clear()
            if revision is None or self._revision is None or revision.identity != self._revision.identity:
                self._failed.clear()
            self._revision = revision
        return revision

    def _digest(self, credential: str) -> bytes:
        return hmac.digest(self._digest_key, credential.encode(), "sha256")

    def _api_key(self, key: str, revision: Revision | None) -> Principal:
        match = _KEY_RE.match(key)
        if match is None:
            raise _refused()
        digest = self._digest(key)
        identity = None if revision is None else revision.identity
        now = time.monotonic()
        with self._lock:
            if digest in self._failed and identity is not None and self._failed[digest] == identity:
                raise _refused()
            entry = self._keys.get(digest)
            if entry is not None:
                self._keys.move_to_end(digest)
                if (
                    identity is not None
                    and entry.identity == identity
                    and now - entry.checked < KEY_RECHECK_S
                ):
                    return Principal(entry.name, "api_key", entry.role)
        if entry is not None and identity is not None:
            return self._recheck(digest, entry, identity, now)
        return self._verify_key(key, match.group(1), digest, identity, now)

    def _recheck(self, digest: bytes, entry: _KeyEntry, identity: int, now: float) -> Principal:
        """Re-read a cached key's row (its secret already matched; only its liveness can change)."""
        try:
            with self._ws.session(readonly=True) as s:
                live = key_states(s, [entry.key_id]).get(entry.key_id)
        except WorkspaceError as err:
            raise Unavailable("the workspace database is unavailable") from err
        with self._lock:
            if live is None:
                self._keys.pop(digest, None)
                self._remember_failure(digest, identity)
                raise _refused()
            if self._revision is not None and self._revision.identity == identity:
                entry.name, entry.role, entry.identity, entry.checked = live[0], live[1], identity, now
        return Principal(live[0], "api_key", live[1])

    def _verify_key(
        self, key: str, key_id: str, digest: bytes, identity: int | None, now: float
    ) -> Principal:
        if not self._slots.acquire(timeout=KEY_CHECK_WAIT_S):
            raise Unavailable("too many API keys being verified at once; retry shortly")
        try:
            actor = authenticate(self._ws, key)
        except PermissionDenied:
            with self._lock:
                self._remember_failure(digest, identity)
            raise _refused() from None
        except WorkspaceError as err:
            raise Unavailable("the workspace database is unavailable") from err
        finally:
            self._slots.release()
        with self._lock:
            # Cache only if no identity change was seen meanwhile (else the check may predate it).
            if identity is not None and self._revision is not None and self._revision.identity == identity:
                self._keys[digest] = _KeyEntry(key_id, actor.name, actor.role, identity, now)
                if len(self._keys) > KEY_CACHE_SIZE:
                    self._keys.popitem(last=False)
        return Principal(actor.name, "api_key", actor.role)

    def _remember_failure(self, digest: bytes, identity: int | None) -> None:
        if identity is None:
            return
        self._failed[digest] = identity
        if len(self._failed) > FAILED_KEY_CACHE_SIZE:
            self._failed.popitem(last=False)

    # ------------------------------------------------------------------------------- authorize

    def authorize(self, principal: Principal, model: str) -> None:
        """Allow ``principal`` to infer on ``model``, or raise.

        Uses the state read by this request's ``authenticate`` (call that first).

        Raises:
            Forbidden: blocked, a role without ``infer``, or no grant of this model (nor ``*``).
            Unavailable: the workspace database cannot be reached.
        """
        if self.controls.get(principal.name).is_blocked():
            raise Forbidden("this principal is blocked")
        if principal.kind == "anonymous":
            return  # only produced when the policy allows anonymous calls, on every model
        if not Actor(principal.name, principal.role).can(Permission.INFER):
            raise Forbidden(f"the role {principal.role} may not call models")
        models = self._granted(principal.name)
        if model not in models and WILDCARD not in models:
            raise Forbidden(f"{principal.name} is not granted model {model!r}")

    def _granted(self, name: str) -> frozenset[str]:
        with self._lock:
            hit = self._grants.get(name)
            if hit is not None:
                self._grants.move_to_end(name)
                return hit
            stamp = self._revision
        try:
            with self._ws.session(readonly=True) as s:
                models = granted_models(s, name)
        except WorkspaceError as err:
            raise Unavailable("the workspace database is unavailable") from err
        with self._lock:
            if stamp is not None and self._revision is not None and stamp.grants == self._revision.grants:
                self._grants[name] = models
                if len(self._grants) > GRANTS_CACHE_SIZE:
                    self._grants.popitem(last=False)
        return models

    def label_only(self, principal: Principal) -> bool:
        """Whether ``principal``'s answers must be labels only (``controls.set_label_only``)."""
        return self.controls.get(principal.name).label_only

    def load_keys(self) -> None:
        """Fetch the JWT issuer's keys now (at start, to fail early); nothing without OIDC discovery.

        Raises:
            Unavailable: the identity provider cannot be reached or sends no usable keys.
        """
        if self._jwt is not None:
            self._jwt.load_keys()

    def close(self) -> None:
        """Release the kept database connection."""
        self._watch.close()


# ----------------------------------------------------------------------------------------- JWT


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_url(url: str, what: str) -> str:
    parts = urlsplit(url)
    if parts.scheme == "https" or (parts.scheme == "http" and _is_loopback(parts.hostname)):
        return url
    raise ConfigError(f"{what} {url!r} must be https (plain http only on loopback)")


def fetch_bounded(url: str) -> bytes:
    """GET ``url`` with bounded timeouts and size, no redirects.

    Raises:
        Unavailable: unreachable, slow, not 200, or larger than ``MAX_JWKS_BYTES``.
    """
    import httpx

    timeout = httpx.Timeout(FETCH_TIMEOUT_S, connect=FETCH_CONNECT_TIMEOUT_S)
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client,
            client.stream("GET", url, headers={"Accept": "application/json"}) as response,
        ):
            if response.status_code != 200:
                raise Unavailable(f"the identity provider answered {response.status_code}")
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise Unavailable("the identity provider's document is too large")
            return bytes(body)
    except httpx.HTTPError as err:
        raise Unavailable("the identity provider cannot be reached") from err


def _parse_keys(data: bytes, source: str) -> dict[str | None, Any]:
    """``kid -> PyJWK`` of the usable signing keys (RSA >= 2048 bits for RS256, P-256 for ES256).

    Raises:
        ConfigError: not a JWKS, or no usable key in it.
    """
    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise ConfigError(f"JWKS {source}: not JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise ConfigError(f"JWKS {source}: expected an object with a 'keys' list")
    keys: dict[str | None, Any] = {}
    for raw in doc["keys"]:
        if not isinstance(raw, dict) or raw.get("use", "sig") != "sig":
            continue
        kty, alg = raw.get("kty"), raw.get("alg")
        want = {"RSA": "RS256", "EC": "ES256"}.get(kty) if isinstance(kty, str) else None
        if want is None or (alg is not None and alg != want):
            continue
        if kty == "EC" and raw.get("crv") != "P-256":
            continue
        public = {k: v for k, v in raw.items() if k not in ("d", "p", "q", "dp", "dq", "qi", "oth")}
        try:
            jwk = jwt.PyJWK(public, algorithm=want)
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
            continue
        key = jwk.key
        if want == "RS256" and not (isinstance(key, rsa.RSAPublicKey) and key.key_size >= MIN_RSA_BITS):
            continue
        if want == "ES256" and not isinstance(key, ec.EllipticCurvePublicKey):
            continue
        kid = raw.get("kid") if isinstance(raw.get("kid"), str) else None
        keys[kid] = jwk
    if not keys:
        raise ConfigError(f"JWKS {source}: no usable RS256 (RSA >= {MIN_RSA_BITS} bits) or ES256 (P-256) key")
    return keys


class JwtVerifier:
    """Verifies JWTs against the policy's keys (see the module docstring for the rules).

    Raises:
        ConfigError: no audience, no key source, or a bad JWKS file.
    """

    def __init__(self, policy: JwtPolicy, *, fetch: Fetch | None = None) -> None:
        if not policy.audience:
            raise ConfigError("auth.jwt.audience is required: tokens for other services must be refused")
        if policy.jwks_file is None and not (policy.oidc_discovery and policy.issuer):
            raise ConfigError("auth.jwt needs jwks_file, or issuer with oidc_discovery: true")
        if policy.oidc_discovery and policy.issuer:
            _check_url(policy.issuer, "auth.jwt.issuer")
        self._policy = policy
        self._algorithms = tuple(a for a in policy.algorithms if a in _ALLOWED_ALGS)
        self._fetch = fetch or fetch_bounded
        self._lock = threading.Lock()
        self._keys: dict[str | None, Any] = {}
        self._loaded = -float("inf")
        self._attempted = -float("inf")
        self._kid_refetch = -float("inf")
        self._file_mtime: float | None = None
        self._tokens: OrderedDict[bytes, tuple[Principal, float, float]] = OrderedDict()
        self._digest_key = secrets.token_bytes(32)
        if policy.jwks_file is not None:
            self._load_file()

    def _load_file(self) -> None:
        path = Path(self._policy.jwks_file or "")
        try:
            stat = path.stat()
            if stat.st_size > MAX_JWKS_BYTES:
                raise ConfigError(f"JWKS {path}: larger than {MAX_JWKS_BYTES} bytes")
            data = path.read_bytes()
        except OSError as err:
            raise ConfigError(f"JWKS {path}: cannot read it ({err.strerror or err})") from err
        self._keys = _parse_keys(data, str(path))
        self._file_mtime = stat.st_mtime
        self._loaded = time.monotonic()
        self._tokens.clear()

    def _discover(self) -> None:
        issuer = (self._policy.issuer or "").rstrip("/")
        try:
            doc = json.loads(self._fetch(f"{issuer}/.well-known/openid-configuration"))
        except (ValueError, UnicodeDecodeError):
            raise Unavailable("the identity provider's discovery document is not JSON") from None
        if not isinstance(doc, dict) or doc.get("issuer") != self._policy.issuer:
            raise Unavailable("the identity provider's discovery document names another issuer")
        jwks_uri = doc.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise Unavailable("the identity provider's discovery document has no jwks_uri")
        try:
            _check_url(jwks_uri, "jwks_uri")
            self._keys = _parse_keys(self._fetch(jwks_uri), "from the identity provider")
        except ConfigError as err:
            raise Unavailable(str(err)) from err
        self._loaded = time.monotonic()
        self._tokens.clear()

    def load_keys(self) -> None:
        """Fetch the issuer's keys now (call at start to fail early; otherwise the first JWT does).

        A JWKS file was read by the constructor already; this does nothing for it.

        Raises:
            Unavailable: the identity provider cannot be reached or sends no usable keys.
        """
        if self._policy.jwks_file is not None:
            return
        with self._lock:
            self._attempted = time.monotonic()
            self._discover()

    def _refresh(self, *, unknown_kid: bool) -> None:
        """Reload keys: the file when it changed; the issuer's when none are loaded yet (at most
        every ``JWKS_RETRY_S``), when stale (``JWKS_TTL_S``), or on an unknown ``kid`` (at most once
        per ``JWKS_MIN_REFETCH_S``).

        Raises:
            Unavailable: no usable issuer keys (never fetched, or too old and the issuer is down).
        """
        now = time.monotonic()
        if self._policy.jwks_file is not None:
            try:
                mtime = Path(self._policy.jwks_file).stat().st_mtime
            except OSError:
                return  # keep the keys already loaded
            if mtime != self._file_mtime:
                # a half-written file: keep the previous keys, retry on the next miss
                with contextlib.suppress(ConfigError):
                    self._load_file()
            return
        if not self._keys:
            due = now - self._attempted >= JWKS_RETRY_S
        elif unknown_kid:
            due = now - self._kid_refetch >= JWKS_MIN_REFETCH_S
        else:
            due = now - self._loaded > JWKS_TTL_S and now - self._attempted >= JWKS_RETRY_S
        if not due:
            if not self._keys:
                raise Unavailable("the identity provider's keys cannot be fetched; retry shortly")
            if now - self._loaded > JWKS_STALE_MAX_S:
                raise Unavailable("the identity provider's keys are too old and cannot be refreshed")
            return
        self._attempted = now
        if unknown_kid:
            self._kid_refetch = now
        try:
            self._discover()
        except Unavailable:
            if not self._keys or now - self._loaded > JWKS_STALE_MAX_S:
                raise

    def verify(self, token: str) -> Principal:
        """The principal of a valid token.

        Raises:
            Unauthenticated: malformed, wrong algorithm, unknown or missing ``kid``, bad signature,
                expired or not yet valid, wrong audience or issuer, or a bad subject or role claim.
            Unavailable: the issuer's keys cannot be fetched.
        """
        import jwt

        digest = hmac.digest(self._digest_key, token.encode(), "sha256")
        now = time.time()
        leeway = self._policy.leeway_s
        with self._lock:
            hit = self._tokens.get(digest)
            if hit is not None:
                if hit[1] - leeway <= now < hit[2] + leeway:
                    return hit[0]
                del self._tokens[digest]
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise _refused() from None
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in self._algorithms or (kid is not None and not isinstance(kid, str)):
            raise _refused()
        key = self._key_for(kid)
        if key is None or key.algorithm_name != alg:
            raise _refused()
        required = ["exp", "aud", self._policy.principal_claim]
        if self._policy.issuer:
            required.append("iss")
        try:
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=[alg],
                audience=self._policy.audience,
                issuer=self._policy.issuer,
                leeway=leeway,
                options={"require": required, "verify_signature": True},
            )
        except jwt.PyJWTError:
            raise _refused() from None
        principal = self._principal(claims)
        exp = float(claims["exp"])
        nbf_claim = claims.get("nbf")
        nbf = float(nbf_claim) if isinstance(nbf_claim, int | float) else -float("inf")
        with self._lock:
            self._tokens[digest] = (principal, nbf, exp)
            if len(self._tokens) > TOKEN_CACHE_SIZE:
                self._tokens.popitem(last=False)
        return principal

    def _key_for(self, kid: str | None) -> Any:
        with self._lock:
            self._refresh(unknown_kid=False)
            found = self._pick(kid)
            if found is None and kid is not None:
                self._refresh(unknown_kid=True)  # a rotated key: look again (rate-limited)
                found = self._pick(kid)
            return found

    def _pick(self, kid: str | None) -> Any:
        if kid is None:
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)

    def _principal(self, claims: dict[str, Any]) -> Principal:
        subject = claims.get(self._policy.principal_claim)
        if not isinstance(subject, str) or not _SUBJECT_RE.match(subject):
            raise _refused()
        role_claim = claims.get(self._policy.role_claim)
        if role_claim is None:
            role = Role.CLIENT
        elif isinstance(role_claim, str) and role_claim in {r.value for r in Role}:
            role = Role(role_claim)
        else:
            raise _refused()
        return Principal(f"jwt:{subject}", "jwt", role)
