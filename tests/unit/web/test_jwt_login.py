"""Log-in with a JWT under the guard policy's ``auth.jwt`` settings (RS256 from a JWKS file)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from tests._deps import require
from tests.unit.web.conftest import Site

jwt = require("jwt", "serve")

from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402

from mlsecops.runtime.policy import AuthPolicy, JwtPolicy  # noqa: E402
from mlsecops.store import audit  # noqa: E402
from mlsecops.web import create_app  # noqa: E402

AUDIENCE = "mlsecops-ui"


def _token(key: Any, **claims: Any) -> str:
    now = int(time.time())
    body = {"sub": "alice", "aud": AUDIENCE, "exp": now + 300, "iat": now, **claims}
    return str(jwt.encode(body, key, algorithm="RS256", headers={"kid": "k1"}))


def _login(c: Any, credential: str) -> Any:
    token = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text)
    assert token is not None
    return c.post("/login", data={"csrf": token.group(1), "credential": credential}, follow_redirects=False)


def test_jwt_login_takes_its_role_and_ends_with_the_token(site: Site, tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**jwk, "kid": "k1"}]}))
    app = create_app(site.ws, auth=AuthPolicy(jwt=JwtPolicy(jwks_file=jwks, audience=AUDIENCE)))

    viewer = site.client(app)
    answer = _login(viewer, _token(key, role="viewer", exp=int(time.time()) + 120))
    assert answer.status_code == 303
    cookie = next(
        v for k, v in answer.headers.multi_items() if k == "set-cookie" and "mlsecops_session=" in v
    )
    max_age = int(re.search(r"Max-Age=(\d+)", cookie, re.IGNORECASE).group(1))  # type: ignore[union-attr]
    assert max_age <= 120, "the session ends when the token does"
    assert viewer.get("/api/me").json() == {"name": "jwt:alice", "role": "viewer", "may_ack": False}
    with site.ws.session(readonly=True) as s:
        last = list(audit.iter_events(s, action="ui.login", actor="jwt:alice"))[-1]
    assert json.loads(last.details)["method"] == "jwt"

    # a token without a role claim is a client's: no access; a wrong audience is not valid at all
    assert _login(site.client(app), _token(key)).status_code == 403
    assert _login(site.client(app), _token(key, role="admin", aud="other")).status_code == 401
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert _login(site.client(app), _token(other, role="admin")).status_code == 401
    # without the policy, JWTs are not accepted at all
    assert _login(site.client(), _token(key, role="admin")).status_code == 401
