"""Headers, escaping, audit paging and the chain status."""

from __future__ import annotations

import html

import pytest
from tests.unit.web.conftest import Bearer, Site

from mlsecops.store import audit
from mlsecops.web import PAGE_CSP, REPORT_CSP
from mlsecops.web._graphics import lineage_svg
from mlsecops.web._queries import audit_page

PAYLOAD = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def test_security_headers_on_pages_api_errors_and_static(site: Site, bearer: Bearer) -> None:
    c = site.client()
    for path, headers in (
        ("/login", {}),
        ("/api/models", bearer("viewer")),
        ("/api/nothing", bearer("viewer")),
        ("/models", bearer("viewer")),
        ("/static/app.js", {}),
    ):
        answer = c.get(path, headers=headers)
        assert answer.headers["content-security-policy"] == PAGE_CSP, path
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "no-referrer"
        assert answer.headers["x-frame-options"] == "DENY"
    assert "script-src 'self'" in PAGE_CSP and "unsafe-inline" not in PAGE_CSP.split("style-src")[0]
    assert c.get("/models", headers=bearer("viewer")).headers["cache-control"] == "no-store"


def test_no_inline_script_or_handler_in_any_template() -> None:
    from pathlib import Path

    import mlsecops.web as web

    for template in (Path(web.__file__).parent / "templates").glob("*.html"):
        text = template.read_text()
        assert "<script>" not in text and " on" + "click=" not in text and "javascript:" not in text, template
        for line in text.splitlines():
            if "<script" in line:
                assert 'src="/static/' in line, template


def test_stored_report_route_has_the_strict_policy(site: Site, bearer: Bearer) -> None:
    import json

    from mlsecops.core.findings import Report
    from mlsecops.report import report_to_dict
    from mlsecops.store import PipelineRun, StoredReport

    with site.ws.session() as s:
        run = PipelineRun(
            pipeline="p",
            pipeline_sha256="0" * 64,
            started="2026-01-01T00:00:00+00:00",
            finished="2026-01-01T00:00:01+00:00",
            actor="ci",
            passed=True,
            gate="[]",
        )
        s.add(run)
        s.flush()
        body = json.dumps(report_to_dict(Report(subject=PAYLOAD, kind="artifact.scan")))
        s.add(
            StoredReport(
                run_id=run.id, stage=None, kind="artifact.scan", subject=PAYLOAD, created="x", body=body
            )
        )
        s.flush()
        run_id = run.id
    answer = site.client().get(f"/runs/{run_id}/report", headers=bearer("viewer"))
    assert answer.status_code == 200
    assert answer.headers["content-security-policy"] == REPORT_CSP
    assert PAYLOAD not in answer.text


def test_user_supplied_strings_are_escaped(site: Site, bearer: Bearer) -> None:
    with site.ws.session() as s:
        audit.append(s, actor="tester", action="test.escape", subject=PAYLOAD, details={"why": PAYLOAD})
    page = site.client().get("/audit?action=test.escape", headers={**bearer("viewer"), "Accept": "text/html"})
    assert page.status_code == 200
    assert PAYLOAD not in page.text
    assert html.escape(PAYLOAD, quote=True) in page.text or "&lt;script&gt;" in page.text


def test_lineage_svg_escapes_names_and_draws_both_directions() -> None:
    import xml.dom.minidom

    doc = {
        "root": 2,
        "nodes": {
            "1": {"kind": "dataset", "name": PAYLOAD, "version": "", "digest": None},
            "2": {"kind": "model_version", "name": "m", "version": "1", "digest": None},
            "3": {"kind": "deployment", "name": "m:production", "version": "1", "digest": None},
        },
        "edges": [[1, 2, "trained_on</text><script>"], [2, 3, "deployed_as"]],
    }
    svg = lineage_svg(doc)
    assert "<script" not in svg and "&lt;script&gt;" in svg
    dom = xml.dom.minidom.parseString(svg)  # well-formed
    xs = {
        t.firstChild.data: float(t.getAttribute("x"))
        for t in dom.getElementsByTagName("text")
        if t.firstChild is not None and t.getAttribute("font-size") == "13"
    }
    assert xs["m@1"] > min(xs.values()) and xs["m:production@1"] > xs["m@1"], "data -> version -> deployment"


def test_audit_keyset_paging_and_filters(site: Site, bearer: Bearer) -> None:
    with site.ws.session() as s:
        for i in range(120):
            audit.append(s, actor=f"pager{i % 2}", action="test.page", subject=f"item:{i}")
    first, after = audit_page(site.ws, action="test.page", limit=50)
    assert len(first) == 50 and after is not None and first[0]["subject"] == "item:119"
    second, after2 = audit_page(site.ws, action="test.page", before=after, limit=50)
    third, end = audit_page(site.ws, action="test.page", before=after2, limit=50)
    seqs = [e["seq"] for e in first + second + third]
    assert len(third) == 20 and end is None and seqs == sorted(seqs, reverse=True) and len(set(seqs)) == 120
    odd, _ = audit_page(site.ws, action="test.*", actor="pager1", limit=500)
    assert {e["actor"] for e in odd} == {"pager1"} and len(odd) == 60
    api = site.client().get("/api/audit?action=test.page&limit=10", headers=bearer("viewer")).json()
    assert len(api["events"]) == 10 and api["next_before"] == api["events"][-1]["seq"]


def test_chain_status_is_verified_and_cached_by_head(site: Site, bearer: Bearer) -> None:
    c = site.client()
    h = bearer("viewer")
    done = c.get("/api/audit/verify?wait=1", headers=h).json()
    assert done["state"] == "verified" and done["events"] == done["head"]
    assert c.get("/api/audit/verify", headers=h).json() == done, "same head: the cached result"
    with site.ws.session() as s:
        audit.append(s, actor="tester", action="test.more", subject="x")
    moved = c.get("/api/audit/verify", headers=h).json()
    assert moved["head"] == done["head"] + 1
    assert moved["state"] in ("verifying", "verified")


def test_chain_status_reports_tampering(site: Site, bearer: Bearer) -> None:
    from sqlalchemy import text

    from mlsecops.web import create_app

    with site.ws.session() as s:
        row = audit.append(s, actor="tester", action="test.tamper", subject="before")
        seq = row.seq
    with site.ws.engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET subject = 'after' WHERE seq = :s"), {"s": seq})
    try:
        doc = (
            site.client(create_app(site.ws)).get("/api/audit/verify?wait=1", headers=bearer("viewer")).json()
        )
        assert doc["state"] == "failed" and doc["bad_seq"] == seq
    finally:
        with site.ws.engine.begin() as conn:
            conn.execute(text("UPDATE audit_events SET subject = 'before' WHERE seq = :s"), {"s": seq})


def test_postures_are_served_while_a_refresh_runs(site: Site) -> None:
    import time

    from mlsecops.web._posture import PostureCache, posture_available

    if not posture_available():
        pytest.skip("mlsecops.posture is not installed")
    cache = PostureCache(site.ws)
    first = cache.all()
    assert not first.stale and first.as_of == first.head
    with site.ws.session() as s:
        audit.append(s, actor="tester", action="test.posture", subject="x")
    second = cache.all()
    assert second.head == first.head + 1 and second.as_of in (first.head, first.head + 1)
    deadline = time.monotonic() + 30
    while cache.all().stale and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not cache.all().stale
