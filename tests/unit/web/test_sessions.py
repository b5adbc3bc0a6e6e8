"""Sessions: cookie attributes, log-in and log-out events, expiry, revocation."""

from __future__ import annotations

import time

from tests.unit.web.conftest import Site

from mlsecops.registry import authenticate, revoke_api_key
from mlsecops.store import audit
from mlsecops.web import create_app


def test_session_cookie_is_httponly_strict_and_expires(site: Site) -> None:
    c = site.client()
    site.login(c, "viewer")
    form = c.get("/login", follow_redirects=False)
    assert form.status_code == 303, "a logged-in visitor is sent on from the log-in page"
    c2 = site.client()
    page = c2.get("/login")
    import re

    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token is not None
    answer = c2.post(
        "/login", data={"csrf": token.group(1), "credential": site.keys["viewer"]}, follow_redirects=False
    )
    cookie = next(
        v for k, v in answer.headers.multi_items() if k == "set-cookie" and "mlsecops_session=" in v
    )
    low = cookie.lower()
    assert "httponly" in low and "samesite=strict" in low and "max-age=" in low and "path=/" in low
    assert "secure" not in low, "plain http on loopback: no Secure flag"


def test_login_and_logout_are_audited(site: Site) -> None:
    with site.ws.session(readonly=True) as s:
        before = len(list(audit.iter_events(s, action="ui.log*")))
    c = site.client()
    csrf = site.login(c, "admin")
    out = c.post("/logout", data={"csrf": csrf}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert c.get("/api/me").status_code == 401
    with site.ws.session(readonly=True) as s:
        events = list(audit.iter_events(s, action="ui.log*"))[before:]
    assert [(e.action, e.actor) for e in events] == [("ui.login", "root"), ("ui.logout", "root")]
    assert site.keys["admin"].split("_", 2)[2] not in events[0].details, "the secret never reaches the trail"


def test_logout_needs_the_csrf_token(site: Site) -> None:
    c = site.client()
    site.login(c, "viewer")
    assert c.post("/logout", data={}, follow_redirects=False).status_code == 403
    assert c.get("/api/me").status_code == 200, "the session survives a forged log-out"


def test_session_expires(site: Site) -> None:
    app = create_app(site.ws, session_ttl_s=3.0)
    c = site.client(app)
    site.login(c, "viewer")
    assert c.get("/api/me").status_code == 200
    time.sleep(3.2)
    assert c.get("/api/me").status_code == 401
    page = c.get("/models", headers={"Accept": "text/html"}, follow_redirects=False)
    assert page.status_code == 303


def test_revoking_the_key_ends_its_sessions(site: Site) -> None:
    from mlsecops.registry import Role, create_api_key, create_user

    admin = authenticate(site.ws, site.keys["admin"])
    create_user(site.ws, "temp", Role.VIEWER, actor=admin)
    key = create_api_key(site.ws, "temp", actor=admin)
    site.keys["temp"] = key
    c = site.client()
    site.login(c, "temp")
    assert c.get("/api/me").json()["name"] == "temp"
    revoke_api_key(site.ws, key.split("_")[1], actor=admin)
    assert c.get("/api/me").status_code == 401


def test_cookies_are_secure_when_served_over_tls(site: Site) -> None:
    import re

    c = site.client(create_app(site.ws, secure_cookies=True), scheme="https")
    form = c.get("/login")
    assert "secure" in form.headers["set-cookie"].lower(), "the log-in form's token cookie too"
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None
    answer = c.post(
        "/login", data={"csrf": token.group(1), "credential": site.keys["viewer"]}, follow_redirects=False
    )
    cookie = next(
        v for k, v in answer.headers.multi_items() if k == "set-cookie" and "mlsecops_session=" in v
    )
    assert "; secure" in cookie.lower()
