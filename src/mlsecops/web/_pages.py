"""The dashboard's HTML pages and forms (log-in, log-out, acknowledge)."""

from __future__ import annotations

import hmac
import logging
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from mlsecops.core.errors import InputError
from mlsecops.runtime.errors import GuardError
from mlsecops.web import _queries as q
from mlsecops.web._graphics import chart_uri, lineage_svg, svg_uri
from mlsecops.web._posture import Postures
from mlsecops.web._security import REPORT_CSP
from mlsecops.web._sessions import UI_ROLES
from mlsecops.web.app import (
    COOKIE,
    LOGIN_COOKIE,
    Ctx,
    UiError,
    audit_event,
    caller,
    check_csrf,
    read_form,
    render,
    require_ack,
    ui_of,
)

__all__ = ["BUCKETS", "router"]

router = APIRouter()
_log = logging.getLogger("mlsecops.web")

BUCKETS = {"hour": 3600, "day": 86_400, "week": 7 * 86_400}
"""Trend resolutions offered on the Trends page."""
LOGIN_FORM_TTL_S = 900


def _safe_next(target: str | None) -> str:
    """Only a local path may follow a log-in (no ``//host`` or ``https://`` open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/models"
    return target


def _set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=ui_of(request).secure_cookies or request.url.scheme == "https",
    )


# ------------------------------------------------------------------------------------ log-in


def _login_page(request: Request, *, next_path: str, error: str = "", status: int = 200) -> Response:
    token = secrets.token_urlsafe(32)
    response = render(
        request, None, "login.html", status=status, login_csrf=token, next=next_path, error=error
    )
    _set_cookie(request, response, LOGIN_COOKIE, token, LOGIN_FORM_TTL_S)
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None) -> Response:
    """The log-in form (an API key, or a JWT when the guard policy accepts them)."""
    if ui_of(request).sessions.get(request.cookies.get(COOKIE)) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return _login_page(request, next_path=_safe_next(next))


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the credential, record ``ui.login`` and start a session."""
    form = await read_form(request)
    ui = ui_of(request)
    next_path = _safe_next(form.get("next"))
    expected = request.cookies.get(LOGIN_COOKIE, "")
    given = form.get("csrf", "")
    if not expected or not given or not hmac.compare_digest(expected.encode(), given.encode()):
        raise UiError(403, "the log-in form expired or was not sent from this site; reload it and try again")
    credential = form.get("credential", "").strip()
    if not credential:
        return _login_page(request, next_path=next_path, error="enter an API key", status=400)
    address = request.client.host if request.client else "?"
    wait = ui.failed_logins.retry_after(address)
    if wait is not None:
        response = _login_page(
            request,
            next_path=next_path,
            error=f"too many failed log-ins; try again in {wait:.0f} s",
            status=429,
        )
        response.headers["Retry-After"] = str(int(wait))
        return response
    try:
        identity = await run_in_threadpool(ui.sessions.identify, credential)
    except GuardError as err:
        if err.status == 503:
            raise
        ui.failed_logins.failed(address)
        _log.warning("failed log-in from %s (%s)", address, err.code)
        return _login_page(
            request, next_path=next_path, error="the credential is not valid", status=err.status
        )
    if identity.role not in UI_ROLES:
        return _login_page(
            request,
            next_path=next_path,
            error=f"the role {identity.role} has no access to the dashboard",
            status=403,
        )
    not_after = ui.sessions.jwt_expiry(credential) if identity.kind == "jwt" else None
    details = {"method": identity.kind, "role": str(identity.role)}
    if identity.key_id is not None:
        details["key_id"] = identity.key_id
    await run_in_threadpool(
        audit_event,
        ui,
        actor=identity.name,
        action="ui.login",
        subject=f"user:{identity.name}",
        details=details,
    )
    token, session = ui.sessions.create(identity, not_after=not_after)
    response = RedirectResponse(next_path, status_code=303)
    _set_cookie(request, response, COOKIE, token, max(1, int(session.expires - _now())))
    response.delete_cookie(LOGIN_COOKIE, path="/")
    return response


def _now() -> float:
    import time

    return time.time()


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End the session (``ui.logout``)."""
    ui = ui_of(request)
    ctx = await run_in_threadpool(caller, request)
    check_csrf(request, ctx, await read_form(request))
    name = ctx.identity.name
    await run_in_threadpool(
        audit_event, ui, actor=name, action="ui.logout", subject=f"user:{name}", details={}
    )
    ui.sessions.drop(request.cookies.get(COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


# ------------------------------------------------------------------------------------ models


@router.get("/")
def home() -> Response:
    """The models page is the start page."""
    return RedirectResponse("/models", status_code=303)


def _with_posture(request: Request, models: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], Postures]:
    postures = ui_of(request).postures.all()
    for m in models:
        for v in m["versions"]:
            v["posture"] = postures.by_version.get((m["name"], v["version"]))
    return models, postures


@router.get("/models", response_class=HTMLResponse)
def models(request: Request) -> Response:
    """Every model and version with its posture at a glance, and what is in production."""
    ctx = caller(request)
    found, postures = _with_posture(request, ui_of(request).overview.get())
    return render(request, ctx, "models.html", models=found, postures=postures)


@router.get("/models/{name}", response_class=HTMLResponse)
def model(request: Request, name: str, at: str | None = None) -> Response:
    """A model's versions, its production history and what held production at a past time."""
    ctx = caller(request)
    ws = ui_of(request).ws
    found = [m for m in ui_of(request).overview.get() if m["name"] == name]
    if not found:
        raise UiError(404, f"no registered model named {name!r}")
    when = q.parse_time(at, "at")
    history = q.model_history(ws, name)
    held_then = q.model_history(ws, name, at=when) if when else None
    return render(
        request,
        ctx,
        "model.html",
        model=_with_posture(request, found)[0][0],
        history=history,
        at=at or "",
        held_then=held_then,
    )


@router.get("/models/{name}/{version}", response_class=HTMLResponse)
def version_page(request: Request, name: str, version: int) -> Response:
    """A version's posture: parts with why, findings with ATLAS/OWASP and remediation, approvals, gate."""
    ctx = caller(request)
    ui = ui_of(request)
    detail = q.version_detail(ui.ws, name, version)
    posture = ui.postures.one(name, version)
    alerts = q.alerts_page(ui.ws, model=name, limit=50)
    return render(request, ctx, "version.html", v=detail, posture=posture, alerts=alerts)


@router.get("/models/{name}/{version}/lineage", response_class=HTMLResponse)
def lineage_page(request: Request, name: str, version: int) -> Response:
    """The lineage graph of a version, drawn on the server."""
    ctx = caller(request)
    ws = ui_of(request).ws
    q.version_detail(ws, name, version)  # 404 for an unknown version
    doc = q.version_lineage_graph(ws, name, version)
    image = svg_uri(lineage_svg(doc)) if doc else None
    nodes = sorted(((int(k), v) for k, v in (doc or {}).get("nodes", {}).items()), key=lambda kv: kv[0])
    return render(request, ctx, "lineage.html", name=name, version=version, doc=doc, image=image, nodes=nodes)


# ------------------------------------------------------------------------------------ trends


@router.get("/trends", response_class=HTMLResponse)
def trends(request: Request, model: str | None = None, bucket: str = "day") -> Response:
    """Posture and runtime signals of one model over time, as charts."""
    ctx = caller(request)
    ui = ui_of(request)
    if bucket not in BUCKETS:
        raise UiError(400, f"bucket must be one of {', '.join(BUCKETS)}")
    names = [m["name"] for m in ui.overview.get()]
    chosen = model if model in names else (names[0] if names else None)
    if model and model not in names:
        raise UiError(404, f"no registered model named {model!r}")
    charts: list[dict[str, str]] = []
    if chosen is not None:
        drawn = ui.postures.charts(chosen, bucket_s=BUCKETS[bucket])
        if drawn is not None:
            charts = [{"title": title, "uri": svg_uri(svg)} for title, svg in drawn]
        else:  # without the posture package: the runtime signals read here
            runtime = q.runtime_series(ui.ws, chosen, bucket_s=BUCKETS[bucket])
            for key, label in (
                ("requests", "requests"),
                ("rejected", "rejections"),
                ("alerts", "alerts raised"),
            ):
                title = f"{chosen}: {label} per {bucket}"
                uri = chart_uri(title, {key: runtime[key]}, xlabel="time (unix s)", ylabel=label)
                charts.append({"title": title, "uri": uri})
    return render(
        request,
        ctx,
        "trends.html",
        names=names,
        chosen=chosen,
        bucket=bucket,
        buckets=list(BUCKETS),
        charts=charts,
    )


# ------------------------------------------------------------------------------------ runtime


@router.get("/runtime", response_class=HTMLResponse)
def runtime(request: Request, status: str | None = None, model: str | None = None) -> Response:
    """Alerts and incidents, newest first."""
    ctx = caller(request)
    ws = ui_of(request).ws
    alerts = q.alerts_page(ws, status=status or None, model=model or None)
    incidents = q.incidents_page(ws, model=model or None)
    return render(
        request,
        ctx,
        "runtime.html",
        alerts=alerts,
        incidents=incidents,
        alert_status=status or "",
        model=model or "",
    )


def _alert(request: Request, alert_id: int) -> dict[str, Any]:
    from mlsecops.monitor.alerts import AlertStore

    try:
        return AlertStore(ui_of(request).ws).get(alert_id).to_json()
    except InputError as err:
        raise UiError(404, str(err)) from None


@router.get("/alerts/{alert_id}", response_class=HTMLResponse)
def alert_page(request: Request, alert_id: int) -> Response:
    """One alert, its evidence, the incidents it triggered, and (for roles that may) acknowledge."""
    ctx = caller(request)
    alert = _alert(request, alert_id)
    incidents = q.incidents_page(ui_of(request).ws, alert_id=alert_id)
    return render(request, ctx, "alert.html", alert=alert, incidents=incidents, may_ack=ctx.identity.may_ack)


@router.post("/alerts/{alert_id}/ack")
async def ack(request: Request, alert_id: int) -> Response:
    """Acknowledge an open alert (audited as ``monitor.alert_ack`` in the same transaction)."""
    ctx: Ctx = await run_in_threadpool(caller, request)
    form = await read_form(request)
    check_csrf(request, ctx, form)
    await run_in_threadpool(acknowledge, request, ctx, alert_id, form.get("note", ""))
    return RedirectResponse(f"/alerts/{alert_id}", status_code=303)


def acknowledge(request: Request, ctx: Ctx, alert_id: int, note: str) -> dict[str, Any]:
    """Check the role, then acknowledge through the alert store (which writes the audit event).

    Raises:
        UiError: 403 for a role that may not, 404 for no such alert, 409 when not open.
    """
    from mlsecops.monitor.alerts import AlertStore
    from mlsecops.runtime.response import webhook_notifier

    ui = ui_of(request)
    require_ack(ui, ctx, f"alert:{alert_id}")
    store = AlertStore(ui.ws, notify=webhook_notifier(ui.ws, actor=ctx.identity.name))
    current = _alert(request, alert_id)
    if current["status"] != "open":
        raise UiError(409, f"alert {alert_id} is {current['status']} already")
    try:
        acked = store.acknowledge(alert_id, actor=ctx.identity.name, note=note[:2000], role=ctx.identity.role)
        return acked.to_json()
    except InputError as err:  # lost a race with another acknowledgement
        raise UiError(409, str(err)) from None


@router.get("/incidents/{incident_id}", response_class=HTMLResponse)
def incident_page(request: Request, incident_id: int) -> Response:
    """One incident: alert -> actions -> outcome, with the timeline."""
    from mlsecops.runtime.incidents import get_incident

    ctx = caller(request)
    try:
        incident = get_incident(ui_of(request).ws, incident_id).to_json()
    except InputError as err:
        raise UiError(404, str(err)) from None
    return render(request, ctx, "incident.html", incident=incident)


# ------------------------------------------------------------------------------------ audit


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    action: str = "",
    actor: str = "",
    subject: str = "",
    since: str = "",
    until: str = "",
    before: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    """Audit events newest first, filtered, 50 per page, with the chain's verification status."""
    ctx = caller(request)
    events, next_before = q.audit_page(
        ui_of(request).ws,
        action=action or None,
        actor=actor or None,
        subject=subject or None,
        since=q.parse_time(since, "since"),
        until=q.parse_time(until, "until"),
        before=before,
    )
    filters = {"action": action, "actor": actor, "subject": subject, "since": since, "until": until}
    return render(request, ctx, "audit.html", events=events, next_before=next_before, filters=filters)


# ------------------------------------------------------------------------------------ runs


@router.get("/runs", response_class=HTMLResponse)
def runs(request: Request) -> Response:
    """Pipeline runs with their gate decisions."""
    ctx = caller(request)
    return render(request, ctx, "runs.html", runs=q.runs_page(ui_of(request).ws))


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, run_id: int) -> Response:
    """One run: gate rules and its reports."""
    ctx = caller(request)
    return render(request, ctx, "run.html", run=q.run_detail(ui_of(request).ws, run_id))


@router.get("/runs/{run_id}/report")
def run_report(request: Request, run_id: int, stage: str | None = None) -> Response:
    """A stored report as the self-contained HTML document, under the stricter ``REPORT_CSP``."""
    from mlsecops.pipeline.history import run_report as load
    from mlsecops.report import Format
    from mlsecops.report import render as render_report

    caller(request)
    try:
        report = load(ui_of(request).ws, run_id, stage=stage)
    except InputError as err:
        raise UiError(404, str(err)) from None
    except (ValueError, KeyError, TypeError) as err:  # a stored body that no longer parses
        raise UiError(500, f"stored report of run {run_id} cannot be read: {type(err).__name__}") from None
    html = render_report(report, Format.HTML)
    return HTMLResponse(html, headers={"Content-Security-Policy": REPORT_CSP})
