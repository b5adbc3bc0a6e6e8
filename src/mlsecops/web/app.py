"""The dashboard's ASGI app: pages, the JSON API under ``/api/``, log-in, and error answers.

``create_app(ws, auth=...)`` builds one FastAPI app over an opened workspace. Who may see what:

- Browsers log in with an API key (or, when the guard policy enables them, a JWT) and get a session
  cookie (``_sessions``); scripts send ``Authorization: Bearer <credential>`` on every request instead.
- ``client`` has no access; every other role reads everything; acknowledging an alert needs one of
  ``ACK_ROLES``. A refused action is answered 403 and recorded as ``ui.denied``.
- Every POST from a session carries the session's CSRF token (a form field); a Bearer request carries
  no ambient credential and needs none. Log-in, log-out and acknowledgement are audit events, written
  in the transaction of the change (the session is created only after its event committed).

Pages are Jinja2 templates with autoescaping; no page has inline script, and the only script is
``/static/app.js`` (``_security`` sets the Content-Security-Policy). Errors are short JSON (API,
scripts) or HTML pages, with the status saying what happened; never a traceback.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import jinja2
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from mlsecops._version import __version__
from mlsecops.core.errors import InputError, MlsecopsError, PermissionDenied, WorkspaceError
from mlsecops.runtime.errors import GuardError
from mlsecops.runtime.policy import AuthPolicy
from mlsecops.store import Workspace, audit
from mlsecops.web._posture import PostureCache, posture_available
from mlsecops.web._queries import NotFound, OverviewCache
from mlsecops.web._security import SecurityHeaders
from mlsecops.web._sessions import (
    ACK_ROLES,
    SESSION_TTL_S,
    UI_ROLES,
    FailedLogins,
    SessionStore,
    UiIdentity,
    UiSession,
)
from mlsecops.web._verify import ChainVerifier

__all__ = ["COOKIE", "LOGIN_COOKIE", "Ui", "UiError", "create_app"]

_log = logging.getLogger("mlsecops.web")

COOKIE = "mlsecops_session"
LOGIN_COOKIE = "mlsecops_login"
"""Pre-session CSRF token of the log-in form (double submit: cookie and field must match)."""
MAX_FORM_BYTES = 16 * 1024
"""Largest form body read; the dashboard's forms hold a token, a credential and a note."""
_HERE = Path(__file__).parent


class UiError(Exception):
    """A refusal or failure with its HTTP status and a one-line message for the person or script."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Ctx:
    """The authenticated caller of one request."""

    identity: UiIdentity
    session: UiSession | None
    """None for a Bearer request."""


@dataclass
class Ui:
    """What every route shares (``app.state.ui``)."""

    ws: Workspace
    sessions: SessionStore
    verifier: ChainVerifier
    postures: PostureCache
    overview: OverviewCache
    templates: jinja2.Environment
    secure_cookies: bool
    failed_logins: FailedLogins = field(default_factory=FailedLogins)

    def close(self) -> None:
        """Release database connections."""
        self.sessions.close()


def _templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_HERE / "templates")),
        autoescape=True,  # every value is HTML-escaped unless a template says otherwise (none does)
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["tojson_pretty"] = lambda v: json.dumps(v, indent=2, sort_keys=True, default=str)
    env.filters["short"] = lambda t: str(t or "")[:19].replace("T", " ") if t else ""
    env.filters["seconds"] = lambda v: "" if v is None else f"{float(v):.3g} s"
    env.globals["mlsecops_version"] = __version__
    return env


def wants_json(request: Request) -> bool:
    """API paths and callers that do not ask for HTML get JSON errors."""
    if request.url.path.startswith("/api/"):
        return True
    accept = request.headers.get("accept", "")
    return "text/html" not in accept and "authorization" in request.headers


def ui_of(request: Request) -> Ui:
    """The shared state."""
    ui: Ui = request.app.state.ui
    return ui


# ------------------------------------------------------------------------------------ who is calling


def caller(request: Request) -> Ctx:
    """The authenticated caller with dashboard access.

    Raises:
        UiError: 401 without valid credentials or session, 403 for the ``client`` role.
        GuardError: a bad, revoked or blocked credential (401/403) or the database is down (503).
    """
    ui = ui_of(request)
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, credential = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            raise UiError(401, "send Authorization: Bearer <API key>")
        ctx = Ctx(ui.sessions.identify(credential), None)
    else:
        session = ui.sessions.get(request.cookies.get(COOKIE))
        if session is None:
            raise UiError(401, "log in first")
        ctx = Ctx(session.identity, session)
    if ctx.identity.role not in UI_ROLES:
        raise UiError(403, f"the role {ctx.identity.role} has no access to the dashboard")
    return ctx


def check_csrf(request: Request, ctx: Ctx, form: dict[str, str]) -> None:
    """Refuse a session's POST without its CSRF token, or sent from another origin (Bearer requests
    carry no cookie to abuse and need neither).

    Raises:
        UiError: 403.
    """
    if ctx.session is None:
        return
    origin = request.headers.get("origin")
    if origin is not None and origin != "null":
        host = request.headers.get("host", "")
        if urlsplit(origin).netloc.lower() != host.lower():
            raise UiError(403, "the form was sent from another site")
    if not ctx.session.csrf_ok(form.get("csrf")):
        raise UiError(403, "the form's CSRF token is missing or wrong; reload the page and try again")


async def read_form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (first value of each field), bounded in size.

    Raises:
        UiError: 413 when too large, 415 for another content type.
    """
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise UiError(413, f"form larger than {MAX_FORM_BYTES} bytes")
    if not body:
        return {}
    if ctype == "application/json":
        try:
            doc = json.loads(body)
        except ValueError:
            raise UiError(400, "the body is not JSON") from None
        if not isinstance(doc, dict):
            raise UiError(400, "the body must be a JSON object")
        return {str(k): str(v) for k, v in doc.items() if isinstance(v, str | int | float)}
    if ctype != "application/x-www-form-urlencoded":
        raise UiError(415, "send a form (application/x-www-form-urlencoded) or JSON")
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        raise UiError(400, "the form could not be read") from None
    return {k: v[0] for k, v in parsed.items() if v}


def audit_event(ui: Ui, *, actor: str, action: str, subject: str, details: dict[str, Any]) -> None:
    """Append one event in its own transaction (log-in, log-out, refusals)."""
    with ui.ws.session() as s:
        audit.append(s, actor=actor, action=action, subject=subject, details=details)


def require_ack(ui: Ui, ctx: Ctx, subject: str) -> None:
    """Refuse (403, audited as ``ui.denied``) unless the caller's role may acknowledge alerts.

    Raises:
        UiError: 403.
    """
    if ctx.identity.may_ack:
        return
    audit_event(
        ui,
        actor=ctx.identity.name,
        action="ui.denied",
        subject=subject,
        details={"permission": "alert.ack", "role": str(ctx.identity.role)},
    )
    allowed = " or ".join(sorted(str(r) for r in ACK_ROLES))
    raise UiError(
        403, f"{ctx.identity.name} ({ctx.identity.role}) may not acknowledge alerts; that needs {allowed}"
    )


def render(
    request: Request, ctx: Ctx | None, template: str, *, status: int = 200, **values: Any
) -> HTMLResponse:
    """A page from its template, with the caller, its CSRF token and the navigation."""
    ui = ui_of(request)
    html = ui.templates.get_template(template).render(
        me=ctx.identity if ctx else None,
        csrf=ctx.session.csrf if ctx and ctx.session else "",
        path=request.url.path,
        posture_installed=posture_available(),
        **values,
    )
    return HTMLResponse(html, status_code=status)


# ------------------------------------------------------------------------------------ errors


def _error_response(
    request: Request, status: int, message: str, headers: dict[str, str] | None = None
) -> Response:
    if status == 401 and not wants_json(request):
        target = request.url.path if request.method == "GET" else "/"
        return RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303)
    if wants_json(request):
        return JSONResponse(
            {"error": {"status": status, "message": message}}, status_code=status, headers=headers
        )
    try:
        return render(request, None, "error.html", status=status, status_code=status, message=message)
    except Exception:  # the error page itself failed: plain text, still no traceback
        return Response(f"{status}: {message}", status_code=status, media_type="text/plain")


def _install_error_handlers(app: FastAPI) -> None:
    async def ui_error(request: Request, err: Exception) -> Response:
        assert isinstance(err, UiError)
        return _error_response(request, err.status, err.message)

    async def guard_error(request: Request, err: Exception) -> Response:
        assert isinstance(err, GuardError)
        return _error_response(request, err.status, err.message, err.headers)

    async def http_error(request: Request, err: Exception) -> Response:
        assert isinstance(err, StarletteHTTPException)
        message = {404: "no such page", 405: "method not allowed"}.get(err.status_code, str(err.detail))
        return _error_response(request, err.status_code, message)

    async def validation_error(request: Request, err: Exception) -> Response:
        assert isinstance(err, RequestValidationError)
        first = err.errors()[0] if err.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("path", "query", "body"))
        return _error_response(
            request, 400, f"bad value for {where or 'a parameter'}: {first.get('msg', 'invalid')}"
        )

    async def library_error(request: Request, err: Exception) -> Response:
        assert isinstance(err, MlsecopsError)
        if isinstance(err, NotFound):
            return _error_response(request, 404, str(err))
        if isinstance(err, PermissionDenied):
            return _error_response(request, 403, str(err))
        if isinstance(err, WorkspaceError):
            _log.warning("workspace error: %s", err)
            return _error_response(request, 503, "the workspace database is unavailable")
        if isinstance(err, InputError):
            return _error_response(request, 400, str(err))
        return _error_response(request, 500, "the request could not be completed")

    async def internal(request: Request, err: Exception) -> Response:
        _log.error(
            "internal error on %s %s: %s: %s", request.method, request.url.path, type(err).__name__, err
        )
        return _error_response(request, 500, "internal error (logged on the server)")

    app.add_exception_handler(UiError, ui_error)
    app.add_exception_handler(GuardError, guard_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(MlsecopsError, library_error)
    app.add_exception_handler(Exception, internal)


# ------------------------------------------------------------------------------------ app


def _warm(ui: Ui) -> None:
    """Compute what the first pages need (every posture, the models overview, the compiled templates),
    so none of it lands on the first request after start; a failure is logged and left to the page.
    """
    ui.postures.warm(wait=True)
    try:
        ui.overview.get()
    except Exception as err:  # start anyway: the page reports the error as it does for any request
        _log.warning("warming the models overview failed: %s: %s", type(err).__name__, err)
    for name in ui.templates.list_templates():
        ui.templates.get_template(name)


def create_app(
    ws: Workspace,
    *,
    auth: AuthPolicy | None = None,
    secure_cookies: bool = False,
    session_ttl_s: float = SESSION_TTL_S,
) -> FastAPI:
    """The dashboard over ``ws``.

    Args:
        ws: an opened workspace (the app does not close it).
        auth: the guard policy's ``auth`` section (JWT settings); API keys only when None.
        secure_cookies: mark cookies ``Secure`` (serve over TLS, directly or behind a proxy).
        session_ttl_s: lifetime of a log-in session.
    """
    from mlsecops.web import _api, _pages

    ui = Ui(
        ws=ws,
        sessions=SessionStore(ws, auth, ttl_s=session_ttl_s),
        verifier=ChainVerifier(ws),
        postures=PostureCache(ws),
        overview=OverviewCache(ws),
        templates=_templates(),
        secure_cookies=secure_cookies,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Fill the caches before the server listens, so the first page after start is a warm one.
        await run_in_threadpool(_warm, ui)
        ui.verifier.status()  # start verifying the chain now: the audit page is likely to find it done
        yield
        ui.close()

    app = FastAPI(
        title="mlsecops dashboard",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/openapi.json",
        lifespan=lifespan,
    )
    app.state.ui = ui
    _install_error_handlers(app)
    app.mount("/static", StaticFiles(directory=str(_HERE / "static")), name="static")
    app.include_router(_pages.router)
    app.include_router(_api.router)
    app.add_middleware(SecurityHeaders)

    @app.middleware("http")
    async def _no_tracebacks(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        # Starlette's ServerErrorMiddleware would print a traceback for an error raised outside a
        # route; answer it here, logged as one line.
        try:
            return await call_next(request)
        except Exception as err:
            _log.error(
                "internal error on %s %s: %s: %s", request.method, request.url.path, type(err).__name__, err
            )
            _log.debug("traceback", exc_info=True)
            return _error_response(request, 500, "internal error (logged on the server)")

    return app
