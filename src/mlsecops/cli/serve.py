"""``mlsecops serve MODEL``: the runtime guard (Open Inference Protocol v2) in front of a model.

MODEL is a registry reference (``fraud@production``, ``fraud@champion``, ``fraud@3``), a local model
file or directory, or, with ``--upstream URL``, the name of the model on an existing Open Inference
Protocol server. Everything is loaded and checked before the server listens: a model that is not
scanned ``safe`` or (from the registry) not verified with a trusted key, a bad policy or an
unreachable upstream is one line and exit 2. ``--dry-run`` stops there and prints what would be served
and what the output hardening costs on test data.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from mlsecops.core.errors import InputError

__all__ = ["register", "serve"]

MAX_WORKERS = 64
"""More worker processes than this is a typo, not a deployment (each loads the model)."""


def _check_host(host: str) -> None:
    if not host or any(c.isspace() for c in host) or len(host) > 255:
        raise InputError(f"--host must be an address or host name; got {host!r}")


def _dry_run(config: Any, test_data: Path | None, label: str | None) -> None:
    from mlsecops.runtime.app import close_guard, create_app

    app = create_app(config, access_log=None)
    guard = app.state.guard
    try:
        active = guard.active
        served = active.served
        out: dict[str, Any] = {
            "model": served.name,
            "version": served.version,
            "source": served.source,
            "digest": served.digest,
            "platform": served.platform,
            "input_shape": list(served.input_shape),
            "classes": served.n_classes,
            "follows": served.ref if guard.follower is not None else None,
            "upstream": config.upstream,
            "outputs": active.outputs.model_dump(),
            "validation": {
                "mode": guard.policy.validation.mode,
                "profile": getattr(active.validator, "origin", "") or None,
            },
            "auth": {
                "api_keys": guard.policy.auth.api_keys,
                "jwt": guard.policy.auth.jwt is not None,
                "anonymous": guard.policy.auth.anonymous,
            },
            "limits": guard.policy.limits.model_dump(exclude={"per_model"}),
        }
        if test_data is not None:
            from mlsecops.assess._data import encode_labels, load_dataset
            from mlsecops.runtime.hardening import utility_cost

            if config.upstream is not None:
                raise InputError("--test-data prices output hardening of a local model, not an upstream")
            x, y = load_dataset(test_data, label=label)
            classes = getattr(served.adapter, "classes", None)
            cost = utility_cost(served.adapter, x, encode_labels(y, classes), active.outputs)
            out["utility_cost"] = cost.to_json()
    finally:
        close_guard(guard)
    typer.echo(json.dumps(out, indent=2))


def serve(
    model: Annotated[
        str,
        typer.Argument(
            help="NAME@VERSION|STAGE|ALIAS, a model file or folder, or the upstream's model name."
        ),
    ],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8080,
    policy: Annotated[Path | None, typer.Option("--policy", "-p", help="Guard policy (guard.yaml).")] = None,
    workers: Annotated[int, typer.Option(min=1, max=MAX_WORKERS, help="Worker processes.")] = 1,
    name: Annotated[
        str | None, typer.Option(help="Serve a local model under this name (default: file stem).")
    ] = None,
    upstream: Annotated[
        str | None, typer.Option(help="Forward to this Open Inference Protocol server (http://host:port).")
    ] = None,
    no_follow: Annotated[
        bool, typer.Option("--no-follow", help="Keep the version a stage or alias named at start.")
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Check everything and print what would be served; do not listen."),
    ] = False,
    test_data: Annotated[
        Path | None,
        typer.Option(help="With --dry-run: labelled data (.npz X/y, CSV/Parquet) to price hardening."),
    ] = None,
    label: Annotated[str | None, typer.Option(help="Label column of --test-data (CSV/Parquet).")] = None,
) -> None:
    """Serve MODEL behind authentication, rate limits, input validation and output hardening."""
    from mlsecops.runtime.app import CONFIG_ENV, ServeConfig, close_guard, create_app, freeze_startup

    _check_host(host)
    if test_data is not None and not dry_run:
        raise InputError("--test-data goes with --dry-run (the utility cost is reported before serving)")
    if name is not None and upstream is not None:
        raise InputError(
            "--name applies to local models; with --upstream, MODEL is the upstream's model name"
        )
    config = ServeConfig(
        model=model,
        name=name,
        policy=str(policy.resolve()) if policy is not None else None,
        upstream=upstream,
        follow=not no_follow,
    )
    if dry_run:
        _dry_run(config, test_data, label)
        return
    import uvicorn

    common: dict[str, Any] = {
        "host": host,
        "port": port,
        "access_log": False,  # the guard writes its own access log, without headers
        "server_header": False,
        "log_level": "info",
        "timeout_graceful_shutdown": 10,
    }
    if workers == 1:
        app = create_app(config)
        served = app.state.guard.active.served
        typer.echo(
            f"serving {served.name} version {served.version} on http://{host}:{port}/v2/models/{served.name}",
            err=True,
        )
        freeze_startup()
        uvicorn.run(app, log_config=_log_config(), **common)
        return
    # workers load the model themselves; check it here first so a refusal is one line, before listening
    close_guard(create_app(config, access_log=None).state.guard)
    os.environ[CONFIG_ENV] = config.model_dump_json()
    uvicorn.run(
        "mlsecops.runtime.app:app_from_env", factory=True, workers=workers, log_config=_log_config(), **common
    )


def _log_config() -> dict[str, Any]:
    """Logging of uvicorn and the guard on stderr (the app writes the access lines itself)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "default": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        },
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "stream": "ext://sys.stderr",
            },
        },
        "loggers": {
            "mlsecops": {"handlers": ["default"], "level": "INFO", "propagate": False},
            "uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
        },
    }


def register(app: typer.Typer) -> None:
    """Add ``serve`` to the app."""
    app.command("serve")(serve)
