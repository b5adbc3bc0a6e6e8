"""``mlsecops ui``: the security posture dashboard over the workspace.

People log in with a workspace API key (or, with ``--policy``, a JWT the guard policy's ``auth.jwt``
settings accept); scripts send ``Authorization: Bearer <API key>`` to the same pages or to ``/api/``.
With ``--certfile``/``--keyfile`` it serves HTTPS and marks its cookies ``Secure``; behind a TLS proxy,
``--secure-cookies`` does the latter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlsecops.core.errors import InputError

__all__ = ["register", "ui"]


def ui(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8090,
    policy: Annotated[
        Path | None, typer.Option("--policy", "-p", help="Guard policy whose auth.jwt settings to accept.")
    ] = None,
    certfile: Annotated[Path | None, typer.Option(help="TLS certificate (PEM): serve HTTPS.")] = None,
    keyfile: Annotated[Path | None, typer.Option(help="TLS private key (PEM) of --certfile.")] = None,
    secure_cookies: Annotated[
        bool, typer.Option("--secure-cookies", help="Mark cookies Secure (behind a TLS proxy).")
    ] = False,
    session_hours: Annotated[
        float, typer.Option(min=0.05, max=24 * 7, help="Log-in session lifetime in hours.")
    ] = 8.0,
) -> None:
    """Serve the dashboard: posture, runtime alerts and incidents, audit trail, lineage and runs."""
    from mlsecops.cli._common import open_workspace
    from mlsecops.cli.serve import _check_host, _log_config

    _check_host(host)
    if (certfile is None) != (keyfile is None):
        raise InputError("--certfile and --keyfile go together")
    for path in (certfile, keyfile):
        if path is not None and not path.is_file():
            raise InputError(f"no such file: {path}")
    auth = None
    if policy is not None:
        from mlsecops.runtime.policy import load_policy

        auth = load_policy(policy).auth
    import uvicorn

    from mlsecops.web import create_app

    ws = open_workspace()
    try:
        app = create_app(
            ws,
            auth=auth,
            secure_cookies=secure_cookies or certfile is not None,
            session_ttl_s=session_hours * 3600,
        )
        scheme = "https" if certfile is not None else "http"
        typer.echo(f"dashboard on {scheme}://{host}:{port}/ (workspace {ws.home})", err=True)
        uvicorn.run(
            app,
            host=host,
            port=port,
            access_log=False,
            server_header=False,
            log_config=_log_config(),
            log_level="info",
            timeout_graceful_shutdown=5,
            ssl_certfile=str(certfile) if certfile else None,
            ssl_keyfile=str(keyfile) if keyfile else None,
        )
    finally:
        ws.close()


def register(app: typer.Typer) -> None:
    """Add ``ui`` to the app."""
    app.command("ui")(ui)
