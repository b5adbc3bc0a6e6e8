"""The dashboard's JSON API (``/api/...``): the data of every page, for scripts and the page script.

Authenticate with ``Authorization: Bearer <API key>`` (or a session cookie from the browser). The only
state change is ``POST /api/alerts/{id}/ack``, with the same role rule as the page (and the session's
CSRF token as the ``csrf`` field when called with a cookie).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from mlsecops.core.errors import InputError
from mlsecops.web import _queries as q
from mlsecops.web._pages import BUCKETS, acknowledge
from mlsecops.web.app import UiError, caller, check_csrf, read_form, ui_of

__all__ = ["posture_summary", "router"]

router = APIRouter(prefix="/api")


@router.get("/me")
def me(request: Request) -> dict[str, Any]:
    """Who is calling and what they may do."""
    ctx = caller(request)
    return {"name": ctx.identity.name, "role": str(ctx.identity.role), "may_ack": ctx.identity.may_ack}


def posture_summary(posture: dict[str, Any] | None) -> dict[str, Any] | None:
    """A version's posture at a glance: grade, score, open alerts and incidents, and the parts that
    fail (name and why); every part in full is at ``/api/models/{name}/{version}``.
    """
    if posture is None:
        return None
    failing = [
        {"name": p.get("name"), "summary": p.get("summary")}
        for p in posture.get("parts", [])
        if isinstance(p, dict) and p.get("status") == "fail"
    ]
    return {
        "grade": posture.get("grade"),
        "score": posture.get("score"),
        "failing": failing,
        "open_alerts": posture.get("open_alerts"),
        "open_incidents": posture.get("open_incidents"),
    }


@router.get("/models")
def models(request: Request) -> dict[str, Any]:
    """Every model and version, with each posture's grade, score and failing parts (the parts in full
    are per version) when the posture package is installed.
    """
    caller(request)
    ui = ui_of(request)
    postures = ui.postures.all()
    out = ui.overview.get()
    for m in out:
        for v in m["versions"]:
            v["posture"] = posture_summary(postures.by_version.get((m["name"], v["version"])))
    return {"models": out, "postures_as_of_event": postures.as_of, "audit_head": postures.head}


@router.get("/models/{name}/history")
def history(request: Request, name: str, at: str | None = None) -> dict[str, Any]:
    """Stage and alias holdings of a model; with ``at`` (ISO time) only those open then."""
    caller(request)
    when = q.parse_time(at, "at")
    return {"model": name, "at": when, "history": q.model_history(ui_of(request).ws, name, at=when)}


@router.get("/models/{name}/{version}")
def version(request: Request, name: str, version: int) -> dict[str, Any]:
    """A version's registry facts, approvals, gate and posture."""
    caller(request)
    ui = ui_of(request)
    detail = q.version_detail(ui.ws, name, version)
    detail["posture"] = ui.postures.one(name, version)
    return detail


@router.get("/models/{name}/{version}/lineage")
def lineage(request: Request, name: str, version: int) -> dict[str, Any]:
    """The lineage document of a version (404 when none is recorded)."""
    caller(request)
    ws = ui_of(request).ws
    q.version_detail(ws, name, version)
    doc = q.version_lineage_graph(ws, name, version)
    if doc is None:
        raise UiError(404, f"no lineage recorded for {name}@{version}")
    return doc


@router.get("/trends/{name}")
def trends(request: Request, name: str, bucket: str = "day") -> dict[str, Any]:
    """Posture trends and runtime series (requests, rejections, alerts) per bucket."""
    caller(request)
    if bucket not in BUCKETS:
        raise UiError(400, f"bucket must be one of {', '.join(BUCKETS)}")
    ui = ui_of(request)
    q.model_history(ui.ws, name)  # 404 for an unknown model
    return {
        "model": name,
        "bucket_s": BUCKETS[bucket],
        "trends": ui.postures.trends(name, bucket_s=BUCKETS[bucket]),
        "runtime": q.runtime_series(ui.ws, name, bucket_s=BUCKETS[bucket]),
    }


@router.get("/alerts")
def alerts(request: Request, status: str | None = None, model: str | None = None) -> dict[str, Any]:
    """Alerts newest first."""
    caller(request)
    return {"alerts": q.alerts_page(ui_of(request).ws, status=status, model=model)}


@router.get("/alerts/{alert_id}")
def alert(request: Request, alert_id: int) -> dict[str, Any]:
    """One alert and the incidents it triggered."""
    from mlsecops.monitor.alerts import AlertStore

    caller(request)
    ws = ui_of(request).ws
    try:
        doc = AlertStore(ws).get(alert_id).to_json()
    except InputError as err:
        raise UiError(404, str(err)) from None
    doc["incidents"] = q.incidents_page(ws, alert_id=alert_id)
    return doc


@router.post("/alerts/{alert_id}/ack")
async def ack(request: Request, alert_id: int) -> dict[str, Any]:
    """Acknowledge an open alert (roles in ``ACK_ROLES``; audited)."""
    ctx = await run_in_threadpool(caller, request)
    form = await read_form(request)
    check_csrf(request, ctx, form)
    result: dict[str, Any] = await run_in_threadpool(
        acknowledge, request, ctx, alert_id, form.get("note", "")
    )
    return result


@router.get("/incidents")
def incidents(request: Request, model: str | None = None) -> dict[str, Any]:
    """Incidents newest first (without their actions; ``/api/incidents/{id}`` has them)."""
    caller(request)
    return {"incidents": q.incidents_page(ui_of(request).ws, model=model)}


@router.get("/incidents/{incident_id}")
def incident(request: Request, incident_id: int) -> dict[str, Any]:
    """One incident with its actions and timeline."""
    from mlsecops.runtime.incidents import get_incident

    caller(request)
    try:
        doc: dict[str, Any] = get_incident(ui_of(request).ws, incident_id).to_json()
    except InputError as err:
        raise UiError(404, str(err)) from None
    return doc


@router.get("/audit")
def audit_events(
    request: Request,
    action: str | None = None,
    actor: str | None = None,
    subject: str | None = None,
    since: str | None = None,
    until: str | None = None,
    before: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = q.AUDIT_PAGE,
) -> dict[str, Any]:
    """Audit events newest first; pass ``next_before`` back as ``before`` for the next page."""
    caller(request)
    events, next_before = q.audit_page(
        ui_of(request).ws,
        action=action,
        actor=actor,
        subject=subject,
        since=q.parse_time(since, "since"),
        until=q.parse_time(until, "until"),
        before=before,
        limit=limit,
    )
    return {"events": events, "next_before": next_before}


@router.get("/audit/verify")
def audit_verify(request: Request, wait: bool = False) -> dict[str, Any]:
    """The chain's verification status (``verifying`` until the background check covers the head)."""
    caller(request)
    verifier = ui_of(request).verifier
    return verifier.wait() if wait else verifier.status()


@router.get("/runs")
def runs(request: Request) -> dict[str, Any]:
    """Pipeline runs newest first."""
    caller(request)
    return {"runs": q.runs_page(ui_of(request).ws)}


@router.get("/runs/{run_id}")
def run(request: Request, run_id: int) -> dict[str, Any]:
    """One run with its gate rules and reports."""
    caller(request)
    return q.run_detail(ui_of(request).ws, run_id)
