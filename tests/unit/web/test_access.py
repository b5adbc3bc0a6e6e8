"""Who gets in and what they may do: 401, 403, CSRF refusal, roles, audit of refusals."""

from __future__ import annotations

import time
from typing import Any

from tests.unit.web.conftest import Bearer, Site

from mlsecops.core.severity import Severity
from mlsecops.monitor.alerts import AlertStore
from mlsecops.monitor.interface import Alert
from mlsecops.store import audit


def _alert(site: Site, kind: str) -> int:
    rec = AlertStore(site.ws).record(Alert(kind, "p1", "m1", Severity.HIGH, 10, time.time(), {"x": 1}))
    return rec.alert.id


def _events(site: Site, action: str) -> list[object]:
    with site.ws.session(readonly=True) as s:
        return list(audit.iter_events(s, action=action))


def test_no_credentials_is_401_json_for_the_api_and_a_login_redirect_for_pages(site: Site) -> None:
    c = site.client()
    api = c.get("/api/models")
    assert api.status_code == 401
    assert api.json() == {"error": {"status": 401, "message": "log in first"}}
    page = c.get("/models", headers={"Accept": "text/html"}, follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/login?next=/models"


def test_bad_bearer_credentials_are_401(site: Site) -> None:
    c = site.client()
    for header in ("Bearer mlsk_00aa_wrong", "Basic dXNlcjpwYXNz", "Bearer ", "Bearer not-a-key"):
        answer = c.get("/api/models", headers={"Authorization": header})
        assert answer.status_code == 401, header
        assert "Traceback" not in answer.text


def test_bearer_api_key_reads_and_client_role_is_403(site: Site, bearer: Bearer) -> None:
    c = site.client()
    assert c.get("/api/me", headers=bearer("viewer")).json() == {
        "name": "vera",
        "role": "viewer",
        "may_ack": False,
    }
    assert c.get("/api/me", headers=bearer("admin")).json()["may_ack"] is True
    refused = c.get("/api/models", headers=bearer("client"))
    assert refused.status_code == 403
    assert "no access to the dashboard" in refused.json()["error"]["message"]


def test_viewer_may_not_acknowledge_and_the_refusal_is_audited(site: Site, bearer: Bearer) -> None:
    alert_id = _alert(site, "extraction")
    c = site.client()
    refused = c.post(f"/api/alerts/{alert_id}/ack", headers=bearer("viewer"), json={"note": "x"})
    assert refused.status_code == 403
    assert str(AlertStore(site.ws).get(alert_id).status) == "open"
    denied = _events(site, "ui.denied")
    assert denied and denied[-1].subject == f"alert:{alert_id}" and denied[-1].actor == "vera"  # type: ignore[attr-defined]
    csrf = site.login(c, "viewer")
    page = c.get(f"/alerts/{alert_id}")
    assert 'id="ack"' not in page.text and 'id="no-ack"' in page.text
    assert c.post(f"/alerts/{alert_id}/ack", data={"csrf": csrf}, follow_redirects=False).status_code == 403


def test_admin_acknowledges_with_bearer_and_the_event_is_in_the_trail(site: Site, bearer: Bearer) -> None:
    alert_id = _alert(site, "query_attack")
    c = site.client()
    done = c.post(f"/api/alerts/{alert_id}/ack", headers=bearer("admin"), json={"note": "on it"})
    assert done.status_code == 200 and done.json()["status"] == "acknowledged"
    acks = [e for e in _events(site, "monitor.alert_ack") if e.subject == f"alert:{alert_id}"]  # type: ignore[attr-defined]
    assert [e.actor for e in acks] == ["root"]  # type: ignore[attr-defined]
    again = c.post(f"/api/alerts/{alert_id}/ack", headers=bearer("admin"), json={})
    assert again.status_code == 409


def test_session_post_without_or_with_a_wrong_csrf_token_is_refused(site: Site) -> None:
    alert_id = _alert(site, "drift")
    c = site.client()
    csrf = site.login(c, "admin")
    for data in ({}, {"csrf": "wrong"}, {"csrf": csrf[:-1]}):
        answer = c.post(f"/alerts/{alert_id}/ack", data=data, follow_redirects=False)
        assert answer.status_code == 403, data
        assert "CSRF" in answer.text
    assert str(AlertStore(site.ws).get(alert_id).status) == "open"
    ok = c.post(f"/alerts/{alert_id}/ack", data={"csrf": csrf, "note": "checked"}, follow_redirects=False)
    assert ok.status_code == 303
    assert str(AlertStore(site.ws).get(alert_id).status) == "acknowledged"


def test_login_form_needs_its_own_token(site: Site) -> None:
    c = site.client()
    refused = c.post("/login", data={"credential": site.keys["admin"]}, follow_redirects=False)
    assert refused.status_code == 403
    assert "mlsecops_session" not in refused.headers.get("set-cookie", "")


def test_unknown_things_are_404_and_bad_input_400_without_tracebacks(site: Site, bearer: Bearer) -> None:
    c = site.client()
    h = bearer("viewer")
    assert c.get("/api/alerts/999999", headers=h).status_code == 404
    assert c.get("/api/incidents/999999", headers=h).status_code == 404
    assert c.get("/api/runs/999999", headers=h).status_code == 404
    assert c.get("/api/models/nope/1", headers=h).status_code == 404
    assert c.get("/api/no-such-route", headers=h).status_code == 404
    bad = c.get("/api/audit?since=yesterday", headers=h)
    assert bad.status_code == 400 and "ISO 8601" in bad.json()["error"]["message"]
    assert c.get("/api/audit?before=0", headers=h).status_code == 400
    assert c.get("/api/alerts/abc", headers=h).status_code == 400
    html = c.get("/alerts/999999", headers={**h, "Accept": "text/html"})
    assert html.status_code == 404 and "<!doctype html>" in html.text and "Traceback" not in html.text


def test_session_post_from_another_origin_is_refused(site: Site) -> None:
    alert_id = _alert(site, "cross_site")
    c = site.client()
    csrf = site.login(c, "admin")
    answer = c.post(
        f"/alerts/{alert_id}/ack",
        data={"csrf": csrf},
        headers={"Origin": "http://evil.example"},
        follow_redirects=False,
    )
    assert answer.status_code == 403 and "another site" in answer.text
    assert str(AlertStore(site.ws).get(alert_id).status) == "open"


def test_repeated_failed_logins_are_slowed_down(site: Site) -> None:
    import re

    from mlsecops.web import create_app
    from mlsecops.web._sessions import FAILED_LOGINS_PER_WINDOW

    c = site.client(create_app(site.ws))
    codes = []
    for i in range(FAILED_LOGINS_PER_WINDOW + 1):
        token = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text)
        assert token is not None
        answer = c.post("/login", data={"csrf": token.group(1), "credential": f"mlsk_{i:04x}_wrong"})
        codes.append(answer.status_code)
    assert codes[:-1] == [401] * FAILED_LOGINS_PER_WINDOW and codes[-1] == 429
    token = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text)
    assert token is not None
    blocked = c.post("/login", data={"csrf": token.group(1), "credential": site.keys["viewer"]})
    assert blocked.status_code == 429 and "Retry-After" in blocked.headers


def test_a_bug_is_a_clean_500_without_traceback(site: Site, bearer: Bearer, monkeypatch: Any) -> None:
    from mlsecops.web import _queries

    def broken(*_: object, **__: object) -> object:
        raise RuntimeError("secret internal detail")

    from mlsecops.web import create_app

    monkeypatch.setattr(_queries, "models_overview", broken)
    c = site.client(create_app(site.ws))  # a fresh app: nothing cached yet
    api = c.get("/api/models", headers=bearer("viewer"))
    assert api.status_code == 500
    assert api.json() == {"error": {"status": 500, "message": "internal error (logged on the server)"}}
    page = c.get("/models", headers={**bearer("viewer"), "Accept": "text/html"})
    assert page.status_code == 500 and "<!doctype html>" in page.text
    for text in (api.text, page.text):
        assert "Traceback" not in text and "secret internal detail" not in text
