"""The dashboard in headless Chromium: log in, posture, alert -> incident, audit chain, roles, escaping."""

from __future__ import annotations

import re

from tests.browser.conftest import HTML_FILE, HTML_MODEL, HTML_PRINCIPAL, Tab


def _csrf(tab: Tab) -> str:
    value = tab.page.get_attribute("form[action='/logout'] input[name=csrf]", "value")
    assert value
    return str(value)


def test_login_shows_models_with_production(tab: Tab) -> None:
    tab.go("/models")
    assert tab.page.url.endswith("/login?next=/models"), "an anonymous visit goes to the log-in page"
    tab.shot("01-login")
    tab.login("admin")
    assert tab.page.url.endswith("/models")
    assert tab.page.inner_text("#whoami") == "root (admin)"
    table = tab.page.inner_text("#models")
    assert "digits" in table and "production: v1" in table
    tab.shot("02-models")
    assert tab.errors == [] and tab.dialogs == []


def test_wrong_key_and_client_role_are_refused(tab: Tab) -> None:
    tab.go("/login")
    tab.page.fill("#credential", "mlsk_0123456789abcdef_not-the-secret")
    tab.page.click("#login-submit")
    assert "not valid" in tab.page.inner_text("#login-error")
    tab.page.fill("#credential", tab.world.keys["client"])
    tab.page.click("#login-submit")
    assert "no access" in tab.page.inner_text("#login-error")
    assert tab.page.context.cookies() == [] or all(
        c["name"] != "mlsecops_session" for c in tab.page.context.cookies()
    )


def test_version_posture_page(tab: Tab) -> None:
    tab.login("viewer")
    tab.page.click("a[href='/models/digits/1']")
    tab.page.wait_for_load_state("load")
    assert tab.page.url.endswith("/models/digits/1")
    posture = tab.page.inner_text("#posture")
    assert "Posture" in posture
    if tab.page.query_selector("#parts") is not None:  # the posture package is installed
        assert len(tab.page.query_selector_all("#parts tr.part")) >= 3
    assert "ann" in tab.page.inner_text("#approvals")
    assert "passed" in tab.page.inner_text("#gate")
    tab.shot("03-version-posture")
    tab.page.click("text=lineage")
    tab.page.wait_for_load_state("load")
    assert tab.page.query_selector("#lineage-graph") is not None
    assert "digits-train.csv" in tab.page.inner_text("main"), "upstream: the training data"
    assert "digits:production" in tab.page.inner_text("main"), "downstream: the deployment"
    tab.shot("04-lineage")
    assert tab.errors == []


def test_what_was_in_production_at_a_time(tab: Tab) -> None:
    import datetime as dt

    tab.login("viewer")
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    tab.go(f"/models/digits?at={now}")
    held = tab.page.inner_text("#held-then")
    assert "stage:production: v1" in held
    tab.go("/models/digits?at=2000-01-01T00:00")
    assert "Nothing held" in tab.page.inner_text("#held-then")
    assert "registry.promote" not in tab.page.inner_text("#history")
    assert "production" in tab.page.inner_text("#history") and "dan" in tab.page.inner_text("#history")
    assert tab.errors == []


def test_alert_leads_to_its_incident(tab: Tab) -> None:
    tab.login("viewer")
    tab.go("/runtime")
    thief = tab.world.alerts["thief"]
    tab.page.click(f"#alerts a[href='/alerts/{thief}']")
    tab.page.wait_for_load_state("load")
    assert "extraction" in tab.page.inner_text("h1")
    tab.shot("05-alert")
    tab.page.click("#alert-incidents a.incident-link")
    tab.page.wait_for_load_state("load")
    assert tab.page.url.endswith(f"/incidents/{tab.world.incident}")
    assert "contain-model-thieves" in tab.page.inner_text("h1")
    assert "block" in tab.page.inner_text("#actions")
    assert "incident.completed" in tab.page.inner_text("#timeline")
    tab.shot("06-incident")
    assert tab.errors == []


def test_audit_chain_verified_live(tab: Tab) -> None:
    tab.login("viewer")
    tab.go("/audit")
    tab.page.wait_for_selector("#chain-status.verified", timeout=15_000)
    assert re.search(r"Chain verified: \d+ events", tab.page.inner_text("#chain-status"))
    assert "ui.login" in tab.page.inner_text("#events")
    tab.page.fill("#f-action", "registry.*")
    tab.page.click("#audit-filters button")
    tab.page.wait_for_load_state("load")
    actions = tab.page.locator("#events tbody tr td:nth-child(4)").all_inner_texts()
    assert actions and all(a.startswith("registry.") for a in actions)
    tab.shot("07-audit")
    assert tab.errors == []


def test_viewer_cannot_acknowledge(tab: Tab) -> None:
    drift = tab.world.alerts["drift"]
    tab.login("viewer")
    tab.go(f"/alerts/{drift}")
    assert tab.page.query_selector("#ack") is None, "a viewer is shown no Acknowledge button"
    assert tab.page.query_selector("#no-ack") is not None
    tab.shot("08-viewer-alert")
    forged = tab.page.request.post(
        f"{tab.world.url}/alerts/{drift}/ack", form={"csrf": _csrf(tab), "note": "forged"}, max_redirects=0
    )
    assert forged.status == 403
    from mlsecops.monitor.alerts import AlertStore

    with tab.world.workspace() as ws:
        assert str(AlertStore(ws).get(drift).status) == "open"
        from mlsecops.store import audit

        with ws.session(readonly=True) as s:
            denied = list(audit.iter_events(s, action="ui.denied", actor="vera"))
    assert denied and denied[-1].subject == f"alert:{drift}"


def test_admin_acknowledges_and_it_is_audited(tab: Tab) -> None:
    thief = tab.world.alerts["thief"]
    tab.login("admin")
    tab.go(f"/alerts/{thief}")
    forged = tab.page.request.post(
        f"{tab.world.url}/alerts/{thief}/ack", form={"csrf": "wrong", "note": "x"}, max_redirects=0
    )
    assert forged.status == 403, "a POST without the session's CSRF token is refused"
    tab.page.fill("#note", "blocked by the playbook; looking into it")
    tab.page.click("#ack")
    tab.page.wait_for_load_state("load")
    assert "by root" in tab.page.inner_text("#acked")
    tab.shot("09-acknowledged")
    with tab.world.workspace() as ws:
        from mlsecops.store import audit

        with ws.session(readonly=True) as s:
            acks = list(audit.iter_events(s, action="monitor.alert_ack", subject=f"alert:{thief}"))
    assert [e.actor for e in acks] == ["root"]
    assert tab.errors == []


def test_injected_html_stays_inert(tab: Tab) -> None:
    tab.login("admin")
    tab.go("/models/digits")
    assert HTML_FILE in tab.page.inner_text("main"), "the HTML file name is shown as text"
    tab.go("/models")
    assert HTML_FILE in tab.page.inner_text("#models")
    tab.go("/runtime")
    text = tab.page.inner_text("#alerts")
    assert HTML_MODEL in text and HTML_PRINCIPAL in text
    tab.go(f"/alerts/{tab.world.alerts['html']}")
    assert HTML_MODEL in tab.page.inner_text("#alert-facts")
    tab.go("/audit")
    tab.shot("10-escaped")
    assert tab.page.query_selector("main script") is None
    assert tab.page.query_selector("img[src='x']") is None
    assert tab.dialogs == [], "no injected script ran"
    assert tab.errors == []


def test_no_console_errors_on_any_page(tab: Tab) -> None:
    w = tab.world
    tab.login("admin")
    pages = [
        "/models",
        "/models/digits",
        "/models/digits?at=2099-01-01T00:00",
        "/models/digits/1",
        "/models/digits/2",
        "/models/digits/1/lineage",
        "/trends",
        "/trends?model=digits&bucket=hour",
        "/runtime",
        f"/alerts/{w.alerts['html']}",
        f"/incidents/{w.incident}",
        "/audit",
        "/runs",
        f"/runs/{w.run_id}",
        f"/runs/{w.run_id}/report?stage=scan",
        f"/runs/{w.run_id}/report",
    ]
    for i, path in enumerate(pages):
        response = tab.go(path)
        assert response.status == 200, path
        tab.shot(f"page-{i:02d}")
    assert tab.errors == [], tab.errors
    assert tab.dialogs == []
    missing = tab.go("/models/no-such-model")
    assert missing.status == 404
    assert "no registered model named 'no-such-model'" in tab.page.inner_text("#error-message")
    assert "Traceback" not in tab.page.content()


def test_logout_ends_the_session(tab: Tab) -> None:
    tab.login("viewer")
    cookie = next(c for c in tab.page.context.cookies() if c["name"] == "mlsecops_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    tab.page.click("#logout")
    tab.page.wait_for_load_state("load")
    assert "/login" in tab.page.url
    replay = tab.page.request.get(
        f"{tab.world.url}/api/me", headers={"Cookie": f"mlsecops_session={cookie['value']}"}
    )
    assert replay.status == 401, "the old session cookie no longer works"
