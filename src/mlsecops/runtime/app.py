"""The guard service: a FastAPI app that speaks the Open Inference Protocol v2 in front of one model.

``create_app(config)`` loads everything before it returns (the policy, the workspace, the model,
verified and scanned, or the upstream's metadata), so a server that starts is a server that serves.

The request path of ``POST /v2/models/{name}[/versions/{v}]/infer``, in order::

    content type (415) -> body within server.max_body_bytes (413) and the deadline (408)
      -> authn (401) -> authz (403) -> JSON and tensor decoding (400/422) -> rate limit and budget (429)
      -> input validation (422) -> model (500 model_failed, never the process) -> output hardening
      -> detector hook (bounded queue, never blocks) -> decision log (batched writer) -> response

Everything after the body is read runs in one worker-thread hop (the model is CPU-bound), the
statistical work (detectors, the decision log's writes) off the request path. Every refusal is a
:class:`~mlsecops.runtime.errors.GuardError` turned into ``{"error": {"code", "message", "field"}}``
with its status; an unexpected exception is a 500 with a fixed message, logged as one line, never a
traceback to the client. A database that goes away is 503 on the requests that need it.

Each request writes one JSON access-log line to stderr (``create_app(access_log=...)``):
time, method, path (without the query string), status, milliseconds, bytes, principal, model, version
and the refusal code. Headers are never logged, so neither are keys nor tokens.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import math
import os
import re
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any, TextIO, TypeVar

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from mlsecops._version import __version__
from mlsecops.core.errors import InputError, MlsecopsError, WorkspaceError
from mlsecops.models import ModelError, SklearnModel
from mlsecops.monitor.interface import Observation
from mlsecops.registry import Actor, Permission, Role
from mlsecops.runtime._kernels import linear_kernel
from mlsecops.runtime.errors import (
    BadRequest,
    Forbidden,
    GuardError,
    InvalidInput,
    ModelFailed,
    ModelNotFound,
    NotMonitored,
    PayloadTooLarge,
    RateLimited,
    RequestTimeout,
    Unavailable,
)
from mlsecops.runtime.hardening import harden, output_names, output_tensors
from mlsecops.runtime.hook import Feedback
from mlsecops.runtime.metrics import CONTENT_TYPE, GuardMetrics
from mlsecops.runtime.policy import GuardPolicy, OutputPolicy, load_policy
from mlsecops.runtime.protocol import (
    FeedbackRequest,
    FeedbackResponse,
    InferenceRequest,
    InferenceResponse,
    ModelMetadata,
    ServerMetadata,
    decode_tensor,
    encode_tensor,
)
from mlsecops.runtime.serving import AliasFollower, ServedModel, load_served

__all__ = [
    "CONFIG_ENV",
    "SIDECAR_ENV",
    "Guard",
    "ServeConfig",
    "UnsupportedMediaType",
    "app_from_env",
    "close_guard",
    "create_app",
    "freeze_startup",
]

CONFIG_ENV = "MLSECOPS_SERVE_CONFIG"
"""Environment variable carrying the JSON ``ServeConfig`` to worker processes (no secrets in it: the
database URL and keys stay in their own variables and files)."""

SIDECAR_ENV = "MLSECOPS_SERVE_SIDECAR"
"""``0`` keeps the detectors and the decision log's writes in threads of the server process."""

KERNELS_ENV = "MLSECOPS_SERVE_KERNELS"
"""``0`` calls every model's own ``predict_proba`` (no verified kernel; to measure what kernels save)."""

log = logging.getLogger("mlsecops.runtime")


class UnsupportedMediaType(GuardError):
    """The body is not ``application/json``."""

    status, code = 415, "unsupported_media_type"


class ServeConfig(BaseModel):
    """What ``mlsecops serve`` was asked to serve (JSON-able, handed to worker processes)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    """Registry reference ``NAME@VERSION|STAGE|ALIAS``, a local model path, or the upstream's model name."""
    name: str | None = None
    policy: str | None = None
    upstream: str | None = None
    follow: bool = True
    """Follow a stage or alias (switch when it moves)."""
    poll_interval: float = 1.0


class _ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorBody(BaseModel):
    """Every error response."""

    error: _ErrorDetail


class _Health(BaseModel):
    live: bool | None = None
    ready: bool | None = None


@dataclass(frozen=True)
class _Active:
    """One served model version with what its requests need, swapped as a whole."""

    served: ServedModel
    validator: Any
    outputs: OutputPolicy
    metadata: dict[str, Any]
    predict: Callable[[np.ndarray], np.ndarray]
    profile: dict[str, Any] | None = None


@dataclass
class _Ctx:
    """Per-request facts for the access log and the metrics."""

    endpoint: str = "other"
    principal: str | None = None
    model: str | None = None
    version: str | None = None
    code: str | None = None
    rows: int = 0
    started: float = field(default_factory=time.perf_counter)
    abandoned: bool = False
    """Set when the model's deadline passed: the worker thread must not record the late answer."""


@dataclass
class Guard:
    """The app's state: policy, workspace, controls, the active model, metrics."""

    config: ServeConfig
    policy: GuardPolicy
    ws: Any
    auth: Any
    limiter: Any
    decisions: Any
    hook: Any
    metrics: GuardMetrics
    backend: Any = None
    active: _Active | None = None
    follower: AliasFollower | None = None
    sidecar: Any = None
    inline: _InlineGate = field(default_factory=lambda: _InlineGate(False))
    _rows: dict[str, Any] = field(default_factory=dict)

    def rows_counter(self, model: str) -> Any:
        """The rows counter's child for ``model`` (cached: a label lookup takes a lock)."""
        child = self._rows.get(model)
        if child is None:
            child = self._rows[model] = self.metrics.model_rows.labels(model)
        return child


# ----------------------------------------------------------------------------- wiring


def _metadata(served: ServedModel, outputs: OutputPolicy, input_datatype: str = "FP32") -> dict[str, Any]:
    k = served.n_classes
    shapes = {"probabilities": [-1, k], "top_k_classes": [-1, min(outputs.top_k, k)], "label": [-1]}
    shapes["top_k_probabilities"] = shapes["top_k_classes"]
    types = {
        "probabilities": "FP64",
        "top_k_classes": "INT64",
        "top_k_probabilities": "FP64",
        "label": "INT64",
    }
    return ModelMetadata.model_validate(
        {
            "name": served.name,
            "versions": [served.version],
            "platform": served.platform,
            "inputs": [{"name": "input-0", "datatype": input_datatype, "shape": [-1, *served.input_shape]}],
            "outputs": [{"name": n, "datatype": types[n], "shape": shapes[n]} for n in output_names(outputs)],
            "parameters": {"n_classes": k},
        }
    ).model_dump()


def _activate(guard: Guard, served: ServedModel) -> _Active:
    """Build what requests to ``served`` need (validator, output policy, metadata); no swap yet."""
    from mlsecops.runtime.validation import InputValidator, find_profile

    registry_version = served.version if served.version_id is not None else None
    found = find_profile(guard.ws, guard.policy.validation, served.name, registry_version)
    validator = InputValidator.for_model(
        served.adapter,
        guard.policy.validation,
        found.profile if found is not None else None,
        origin=found.origin if found is not None else "",
    )
    outputs = guard.policy.output_policy(served.name)
    return _Active(
        served=served,
        validator=validator,
        outputs=outputs,
        metadata=_metadata(served, outputs),
        predict=_predictor(served),
        profile=found.profile if found is not None else None,
    )


def _predictor(served: ServedModel) -> Callable[[np.ndarray], np.ndarray]:
    """The model's ``predict_proba`` on validated ``(n, *input_shape)`` float64 rows.

    A scikit-learn estimator is called directly: the validator has already checked the shape and
    that every value is finite, so the adapter's second pass over the inputs is skipped; the output
    is still checked for its shape and finiteness (about a third of the model step on digits).
    Logistic regressions are evaluated by a verified kernel (``_kernels.linear_kernel``): the same
    formula on the same fitted arrays, without scikit-learn's per-call input checks.
    """
    adapter = served.adapter
    if not isinstance(adapter, SklearnModel) or not callable(
        getattr(adapter.estimator, "predict_proba", None)
    ):
        return adapter.predict_proba
    estimator: Any = adapter.estimator
    k = served.n_classes
    width = math.prod(served.input_shape)
    kernel = linear_kernel(estimator, width, k) if os.environ.get(KERNELS_ENV, "1") != "0" else None
    proba: Callable[[np.ndarray], Any] = kernel or estimator.predict_proba

    def fast(x: np.ndarray) -> np.ndarray:
        p = np.asarray(proba(x.reshape(x.shape[0], -1)), dtype=np.float64)
        if p.shape != (x.shape[0], k) or not np.isfinite(p).all():
            raise ModelError(
                f"the estimator returned {p.shape} values, not finite probabilities ({x.shape[0]}, {k})"
            )
        return p

    return fast


def _install(guard: Guard) -> Callable[[ServedModel], None]:
    def install(served: ServedModel) -> None:
        active = _activate(guard, served)
        guard.active = active  # one reference assignment: in-flight requests keep the one they read
        guard.metrics.switches.inc()

    return install


def _build_guard(config: ServeConfig, *, sidecar: bool = True) -> Guard:
    """Policy, workspace, model, controls; nothing listens yet (see ``lifespan``).

    With ``sidecar`` the detectors and the decision log's writes run in a process of their own
    (:mod:`mlsecops.runtime.sidecar`), started here so that a failure to start is a startup error.
    """
    from mlsecops.core.settings import Settings
    from mlsecops.runtime.auth import Authenticator
    from mlsecops.runtime.decisions import DecisionLog
    from mlsecops.runtime.hook import DetectorHook
    from mlsecops.runtime.limits import Limiter
    from mlsecops.store import Workspace

    policy = load_policy(config.policy)
    ws = Workspace.from_settings(Settings())
    guard = Guard(
        config=config,
        policy=policy,
        ws=ws,
        auth=None,
        limiter=None,
        decisions=None,
        hook=None,
        metrics=GuardMetrics(),
    )
    try:
        # the model first: a model that is refused costs no connection and no thread
        if config.upstream is not None:
            from mlsecops.runtime.upstream import UpstreamModel

            guard.backend = UpstreamModel.connect(
                config.upstream, config.model, timeout=policy.server.model_timeout_s
            )
            served = guard.backend.served
        else:
            served = load_served(ws, config.model, name=config.name)
        guard.active = _activate(guard, served)
        build = getattr(_optional("mlsecops.monitor.detectors"), "build_detectors", None)
        detect = policy.monitor.enabled and build is not None
        if sidecar and (detect or policy.logging.sample_rate > 0):
            _start_sidecar(guard, served, detect)
        else:
            detectors = []
            if detect and build is not None:
                model = served.adapter if guard.backend is None else _model_info(served)
                detectors = list(
                    build(policy.monitor, model, baseline=guard.active.profile, model_name=served.name)
                )
            from mlsecops.runtime.decision_audit import build_auditor

            auditor = build_auditor(
                policy.logging,
                served.adapter if guard.backend is None else None,
                guard.active.profile,
            )
            guard.decisions = DecisionLog(ws, policy.logging, start=False, auditor=auditor)
            guard.hook = DetectorHook(
                detectors, queue_size=policy.monitor.queue_size, on_alerts=_on_alerts(guard)
            )
        from sqlalchemy.engine import make_url

        sqlite = make_url(ws.url).get_backend_name() == "sqlite"
        guard.inline = _InlineGate(sqlite and os.environ.get(INLINE_ENV, "1") != "0")
        guard.auth = Authenticator(ws, policy.auth)
        guard.limiter = Limiter(ws, policy.limits, controls=guard.auth.controls)
        guard.metrics.gauge_function(
            "mlsecops_guard_detector_dropped",
            "Observations the detectors never saw (a full queue or buffer, or the hook stopped)",
            lambda: float(getattr(guard.hook, "dropped", 0)),
        )
        guard.metrics.gauge_function(
            "mlsecops_guard_decision_log_dropped",
            "Sampled requests the decision log could not write (a full buffer, or the database down at close)",
            lambda: float(guard.decisions.stats()["dropped"]) if guard.decisions is not None else 0.0,
        )
        if served.ref is not None and config.follow and config.upstream is None:
            guard.follower = AliasFollower(ws, served, _install(guard), interval=config.poll_interval)
        return guard
    except BaseException:
        close_guard(guard)
        raise


def _start_sidecar(guard: Guard, served: ServedModel, detect: bool) -> None:
    """Detectors and decision-log writes in a process of their own (off this process's GIL)."""
    from mlsecops.core.errors import ConfigError
    from mlsecops.runtime.sidecar import RemoteDecisionLog, RemoteHook, Sidecar, SidecarError, SidecarSpec

    if guard.backend is not None:
        model_spec, info = None, _model_info(served)
    elif served.version_id is not None:
        model_spec, info = f"{served.name}@{served.version}", None  # pinned: the version served now
    else:
        model_spec, info = served.source, None
    spec = SidecarSpec(
        policy=guard.policy,
        model_spec=model_spec,
        model_name=served.name,
        model_digest=served.digest,
        model_info=info,
        profile=guard.active.profile if guard.active is not None else None,
        detect=detect,
    )
    try:
        car = Sidecar(spec)
    except SidecarError as err:
        raise ConfigError(f"the detector sidecar could not start: {err}") from None
    guard.sidecar = car
    guard.hook = RemoteHook(car)
    guard.decisions = RemoteDecisionLog(car, guard.policy.logging)


def _model_info(served: ServedModel) -> dict[str, Any]:
    return {
        "name": served.name,
        "version": served.version,
        "n_classes": served.n_classes,
        "input_shape": list(served.input_shape),
        "digest": served.digest,
    }


def _optional(module: str) -> Any:
    """A module of a layer that may not be installed in this build (detectors, playbooks), or None."""
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name != module:
            raise
        return None


def _on_alerts(guard: Guard) -> Callable[[list[Any]], None] | None:
    """The alert sink (alert storage and playbooks, when that layer is installed)."""
    make = getattr(_optional("mlsecops.runtime.response"), "alert_sink", None)
    return make(guard.ws, guard.policy) if make is not None else None


# ----------------------------------------------------------------------------- responses


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    text = json.dumps(body, separators=(",", ":"), allow_nan=False)
    return Response(text, status_code=status, headers=headers, media_type="application/json")


def _error(err: GuardError) -> Response:
    return _json(err.body(), err.status, err.headers or None)


def _db_down(err: Exception) -> Unavailable:
    log.warning("workspace database unavailable: %s", " ".join(str(err).split())[:200])
    return Unavailable("the workspace database is unavailable; try again later")


# ----------------------------------------------------------------------------- request path


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    main = content_type.split(";", 1)[0].strip().lower()
    return main == "application/json" or (main.startswith("application/") and main.endswith("+json"))


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused (413) as soon as it is known to exceed ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise BadRequest("Content-Length is not a number")
        if int(declared) > limit:
            raise PayloadTooLarge(f"the body is {int(declared)} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise PayloadTooLarge(f"the body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse(body: bytes, model: type[_Body]) -> _Body:
    try:
        return model.model_validate_json(body)
    except ValidationError as err:
        first = err.errors(include_url=False, include_input=False)[0]
        if first["type"] in ("json_invalid", "json_type"):
            raise BadRequest("the body is not valid JSON") from None
        where = _loc(first["loc"])
        raise InvalidInput(f"{first['msg'][:200]}", field=where or None) from None


_Body = TypeVar("_Body", bound=BaseModel)


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out[:200]


def _rows(array: np.ndarray) -> int:
    return int(array.shape[0]) if array.ndim >= 1 else 1


def _model_input(array: np.ndarray, served: ServedModel) -> np.ndarray:
    """The validated tensor as the model's ``(n, *input_shape)`` float batch."""
    shape = served.input_shape
    if array.ndim >= 2 and tuple(array.shape[1:]) == tuple(shape):
        return np.ascontiguousarray(array, dtype=np.float64)
    raise InvalidInput(
        f"shape {list(array.shape)} does not hold rows of {list(shape)}; send [n, {', '.join(map(str, shape))}]",
        field="inputs[0].shape",
    )


def _predict(active: _Active, x: np.ndarray) -> np.ndarray:
    served = active.served
    try:
        return np.asarray(active.predict(x))
    except ModelError as err:
        log.error("model %s@%s failed: %s", served.name, served.version, err.diagnostics()[:300])
        raise ModelFailed("the model failed to answer this request") from None
    except InputError as err:
        raise InvalidInput(err.diagnostics()[:300], field="inputs[0]") from None
    except Exception as err:
        log.error(
            "model %s@%s raised %s: %s", served.name, served.version, type(err).__name__, str(err)[:300]
        )
        raise ModelFailed("the model failed to answer this request") from None


def _select_outputs(
    req: InferenceRequest, tensors: dict[str, tuple[np.ndarray, str]]
) -> dict[str, tuple[np.ndarray, str]]:
    if not req.outputs:
        return tensors
    chosen = {}
    for i, out in enumerate(req.outputs):
        if out.name not in tensors:
            raise InvalidInput(
                f"output {out.name[:64]!r} is not available; this model answers with {', '.join(tensors)}",
                field=f"outputs[{i}].name",
            )
        chosen[out.name] = tensors[out.name]
    return chosen


INLINE_ENV = "MLSECOPS_SERVE_INLINE"
"""``0`` always answers inference in a worker thread (never on the event loop)."""
INLINE_MAX_BODY = 16 << 10
"""Largest body answered on the event loop: its decoding and the model call stay short (rows are few)."""
INLINE_MODEL_MAX_S = 0.002
"""A small-body model call using more CPU than this is a strike against answering inline."""
INLINE_WALL_MAX_S = 0.02
"""A small-body model call taking longer than this (waiting included: a model that waits on threads
of its own) is a strike too; the margin over ``INLINE_MODEL_MAX_S`` absorbs scheduler and GIL waits."""
INLINE_STRIKES = 3
"""Strikes within ``INLINE_AFTER`` calls that stop inline answering (one is not enough: on a busy
machine the scheduler alone stretches a call now and then); a slow model strikes on every call."""
INLINE_STALL_S = 0.05
"""One small-body model call using this much CPU stops inline answering at once."""
INLINE_AFTER = 64
"""Consecutive small-body calls without a strike before answering inline (again)."""


class _InlineGate:
    """Decides when a request is answered on the event loop instead of a worker thread.

    The thread hop costs about a sixth of a small request's CPU. A request is answered inline only
    when its body is small, its API key is cached (no scrypt, no key-source fetch on the loop), the
    workspace is a local SQLite file (its reads take microseconds) and the model has answered the
    last ``INLINE_AFTER`` small requests within ``INLINE_MODEL_MAX_S`` of CPU and
    ``INLINE_WALL_MAX_S`` in all. ``INLINE_STRIKES`` slower calls in a window, or one over
    ``INLINE_STALL_S`` of CPU, turn it off until the model proves fast again
    in threads. The model timeout still holds for inline calls in what the client sees (a call that
    overran it is answered 500 and not logged as served), but an inline call cannot be abandoned
    while it runs: that is why only proven-fast models and small bodies qualify.
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.fast = 0
        self.calls = 0
        self.strikes = 0
        self.inline = 0
        """Requests answered on the event loop."""
        self.threaded = 0
        """Requests answered in a worker thread."""

    def allows(self, size: int) -> bool:
        return self.enabled and size <= INLINE_MAX_BODY and self.fast >= INLINE_AFTER

    def observe(self, cpu: float, wall: float, size: int) -> None:
        """Count one model call: ``cpu`` seconds of its thread's CPU, ``wall`` seconds in all."""
        if size > INLINE_MAX_BODY:
            return
        self.calls += 1
        if self.calls >= INLINE_AFTER:
            self.calls = self.strikes = 0
        if cpu < INLINE_MODEL_MAX_S and wall < INLINE_WALL_MAX_S:
            if self.fast < INLINE_AFTER:
                self.fast += 1
            return
        self.strikes += 1
        if self.strikes >= INLINE_STRIKES or cpu >= INLINE_STALL_S or self.fast < INLINE_AFTER:
            if self.fast >= INLINE_AFTER:
                log.info(
                    "model call took %.1f ms (%.1f ms CPU): answering in worker threads again",
                    wall * 1000,
                    cpu * 1000,
                )
            self.fast = 0


class _Outcome:
    """What the worker-thread part of a request produced."""

    __slots__ = ("active", "array", "label_only", "principal", "req")

    def __init__(self, principal: Any, req: InferenceRequest, array: np.ndarray, active: _Active) -> None:
        self.principal = principal
        self.req = req
        self.array = array
        self.active = active
        self.label_only = False


def _admit(
    guard: Guard, ctx: _Ctx, authorization: str | None, body: bytes, name: str, version: str | None
) -> _Outcome:
    """Authentication, authorisation, decoding, rate limit, validation (in a worker thread)."""
    active = guard.active  # this request's model, even if a switch installs another meanwhile
    assert active is not None
    served = active.served
    ctx.version = served.version
    try:
        principal = guard.auth.authenticate(authorization)
        ctx.principal = principal.name
        if name != served.name:
            raise ModelNotFound(f"no model named {name[:64]!r} is served here")
        if version is not None and version != served.version:
            raise ModelNotFound(
                f"{served.name} version {version[:32]!r} is not served (serving {served.version})"
            )
        guard.auth.authorize(principal, served.name)
        try:
            req = _parse(body, InferenceRequest)
            if len(req.inputs) != 1:
                raise InvalidInput(f"the model takes 1 input tensor; got {len(req.inputs)}", field="inputs")
            array = decode_tensor(req.inputs[0], "inputs[0]")
        except GuardError:
            # the rows are not known, but a malformed request still takes a token: refusals must not be
            # a way around the rate limit
            guard.limiter.check(principal.name, served.name, 0)
            raise
        ctx.rows = _rows(array)
        guard.limiter.check(principal.name, served.name, ctx.rows)
        flags = active.validator.validate(array, field="inputs[0]")
        if flags:
            guard.metrics.validation_flags.labels(served.name).inc()
            log.info("inputs flagged (observe mode) for %s: %s", principal.name, flags[0][:200])
    except (WorkspaceError, SQLAlchemyError) as err:
        raise _db_down(err) from None
    outcome = _Outcome(principal, req, array, active)
    outcome.label_only = bool(guard.auth.label_only(principal))
    return outcome


def _answer(guard: Guard, outcome: _Outcome, proba: np.ndarray, started: float) -> dict[str, Any]:
    """Output hardening, detector hook, decision log; the response body."""
    active = outcome.active
    served = active.served
    policy = OutputPolicy(mode="label") if outcome.label_only else active.outputs
    tensors = _select_outputs(outcome.req, output_tensors(harden(proba, policy)))
    principal = outcome.principal.name
    now = time.time()
    if guard.hook.detectors:  # no detectors: no hand-off (it would wake a thread for nothing)
        guard.hook.submit(
            Observation(
                time=now,
                principal=principal,
                model=served.name,
                inputs=outcome.array,
                outputs=proba,
                version=served.version,
            )
        )
    latency_ms = (time.perf_counter() - started) * 1000
    _record(guard, principal, served, "accepted", 200, latency_ms, inputs=outcome.array, outputs=proba)
    body: dict[str, Any] = {
        "model_name": served.name,
        "model_version": served.version,
        "outputs": [encode_tensor(n, a, datatype=dt) for n, (a, dt) in tensors.items()],
    }
    if outcome.req.id is not None:
        body["id"] = outcome.req.id
    return body


def _record(
    guard: Guard,
    principal: str | None,
    served: ServedModel,
    decision: str,
    status: int,
    latency_ms: float,
    *,
    inputs: np.ndarray | None = None,
    outputs: np.ndarray | None = None,
) -> None:
    try:
        guard.decisions.record(
            principal=principal or "",
            model=served.name,
            version=served.version,
            decision=decision,
            status=status,
            latency_ms=latency_ms,
            inputs=inputs,
            outputs=outputs,
        )
    except Exception as err:  # the decision log never fails a request
        log.warning("decision log: %s", " ".join(str(err).split())[:200])


async def _infer(guard: Guard, request: Request, name: str, version: str | None) -> Response:
    guard.metrics.in_flight.inc()
    try:
        return await _infer_one(guard, request, name, version)
    finally:
        guard.metrics.in_flight.dec()


async def _infer_one(guard: Guard, request: Request, name: str, version: str | None) -> Response:
    started = time.perf_counter()
    ctx: _Ctx = request.scope["mlsecops.ctx"]
    ctx.model = name[:100]
    server = guard.policy.server
    if not _is_json(request.headers.get("content-type")):
        raise UnsupportedMediaType("send the request as Content-Type: application/json")
    try:
        async with asyncio.timeout(server.request_timeout_s):
            body = await _read_body(request, server.max_body_bytes)
    except TimeoutError:
        raise RequestTimeout(f"the request was not received within {server.request_timeout_s:g} s") from None
    authorization = request.headers.get("authorization")
    from anyio import to_thread

    if guard.backend is None:
        gate = guard.inline
        size = len(body)

        def run() -> dict[str, Any]:
            outcome = _admit(guard, ctx, authorization, body, name, version)
            x = _model_input(outcome.array, outcome.active.served)
            t0, c0 = time.perf_counter(), time.thread_time()
            try:
                proba = _predict(outcome.active, x)
            finally:
                took = time.perf_counter() - t0
                gate.observe(time.thread_time() - c0, took, size)
            if ctx.abandoned or took > server.model_timeout_s:
                # the client was (or is being) answered 500: not served, so not logged as served
                ctx.abandoned = True
                raise ModelFailed(f"the model did not answer within {server.model_timeout_s:g} s")
            return _answer(guard, outcome, proba, started)

        if gate.allows(size) and guard.auth.cached(authorization):
            gate.inline += 1
            result = run()  # a proven-fast model, a small body, a cached key: no thread hop
        else:
            gate.threaded += 1
            try:
                async with asyncio.timeout(server.model_timeout_s):
                    result = await to_thread.run_sync(run, abandon_on_cancel=True)
            except TimeoutError:
                ctx.abandoned = True
                raise ModelFailed(f"the model did not answer within {server.model_timeout_s:g} s") from None
    else:
        outcome = await to_thread.run_sync(_admit, guard, ctx, authorization, body, name, version)
        x = _model_input(outcome.array, outcome.active.served)
        proba = await guard.backend.predict_proba(x, outcome.req)
        result = await to_thread.run_sync(_answer, guard, outcome, proba, started)
    guard.rows_counter(guard.active.served.name if guard.active else "unknown").inc(ctx.rows)
    return _json(result)


# ----------------------------------------------------------------------------- edge (pure ASGI)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


_Direct = Callable[[Scope, Receive, Send, str, "str | None"], Awaitable[None]]
_INFER_PATH = re.compile(r"/v2/models/(?:([^/]+)/versions/([^/]+)|([^/]+))/infer")
"""The inference routes (``{name}`` and ``{version}`` as the framework's router matches them)."""


def _route_path(scope: Scope) -> str:
    path = str(scope.get("path", ""))
    root = str(scope.get("root_path", ""))
    return path[len(root) :] if root and path.startswith(root) else path


class _Edge:
    """Request metrics and the access log line for every HTTP request; the inference fast lane.

    ``POST`` on the inference routes goes straight to ``infer`` (the same handler and error handlers
    the framework's routes call; the routes stay declared for the OpenAPI document): the router,
    dependency solving and three middleware layers cost a fifth of a one-row request. Any exception
    that escaped the handlers becomes a JSON 500 here (never a traceback).
    """

    def __init__(
        self,
        app: ASGIApp,
        guard: Guard,
        stream: TextIO | None,
        handler: Callable[[Request, Exception], Awaitable[Response]],
        infer: _Direct | None = None,
    ) -> None:
        self.app = app
        self.infer = infer
        self.guard = guard
        self.stream = stream
        self.handler = handler
        # metric children by label values (a label lookup takes a lock; every label set is bounded)
        self._children: dict[tuple[str, int], tuple[Any, Any]] = {}
        self._per_model: dict[tuple[str, str, str], Any] = {}
        self._per_principal: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        ctx = _Ctx()
        scope["mlsecops.ctx"] = ctx
        status = 500
        sent = 0

        started_response = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, sent, started_response
            if message["type"] == "http.response.start":
                status = int(message["status"])
                started_response = True
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            route = _INFER_PATH.fullmatch(_route_path(scope)) if scope.get("method") == "POST" else None
            if route is not None and self.infer is not None:
                await self.infer(scope, receive, send_wrapper, route[1] or route[3], route[2])
            else:
                await self.app(scope, receive, send_wrapper)
        except Exception as err:  # escaped every handler: a JSON 500, never a traceback
            if started_response:
                log.error("internal error after the response started: %s", type(err).__name__)
            else:
                response = await self.handler(Request(scope), err)
                await response(scope, receive, send_wrapper)
        finally:
            self._account(scope, ctx, status, sent, time.perf_counter() - started)

    def _account(self, scope: Scope, ctx: _Ctx, status: int, sent: int, seconds: float) -> None:
        m = self.guard.metrics
        key = (ctx.endpoint, status)
        children = self._children.get(key)
        if children is None:  # label lookups take a lock; the set of (endpoint, status) is small
            children = (m.requests.labels(ctx.endpoint, str(status)), m.latency.labels(ctx.endpoint))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)
        if ctx.endpoint == "infer":
            outcome = "ok" if status == 200 else (ctx.code or str(status))
            active = self.guard.active
            served = active.served.name if active is not None else None
            model = ctx.model if ctx.model == served else "unknown"  # never a name a client made up
            mkey = (model or "unknown", ctx.version or "", outcome)
            child = self._per_model.get(mkey)
            if child is None:
                child = self._per_model[mkey] = m.model_requests.labels(*mkey)
            child.inc()
            if ctx.principal is not None:
                pkey = (m.principal_label(ctx.principal[:100]), outcome)
                child = self._per_principal.get(pkey)
                if child is None:
                    child = self._per_principal[pkey] = m.principal_requests.labels(*pkey)
                child.inc()
        if status >= 400 and ctx.code is not None:
            m.rejections.labels(ctx.code).inc()
        if self.stream is not None:
            client = scope.get("client")
            line = {
                "ts": round(time.time(), 3),
                "method": scope.get("method"),
                "path": str(scope.get("path", ""))[:200],
                "status": status,
                "ms": round(seconds * 1000, 3),
                "bytes_out": sent,
                "client": client[0] if client else None,
                "principal": ctx.principal,
                "model": ctx.model,
                "version": ctx.version,
                "rows": ctx.rows,
                "code": ctx.code,
            }
            # one write per line from the event loop's thread (the logging module costs 4x as much)
            with contextlib.suppress(OSError, ValueError):  # a closed log stream never fails a request
                self.stream.write(json.dumps(line, separators=(",", ":")) + "\n")


# ----------------------------------------------------------------------------- the app

_ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"model": ErrorBody, "description": d}
    for s, d in {
        400: "malformed request",
        401: "no valid credentials",
        403: "not granted this model, or blocked",
        404: "unknown model or version",
        408: "request not received in time",
        413: "body over the size limit",
        415: "not application/json",
        422: "inputs fail the protocol, the model's schema or its data profile",
        429: "rate limit or daily budget reached (Retry-After)",
        500: "the model failed",
        503: "the workspace database or the upstream server is unavailable",
    }.items()
}


def create_app(
    config: ServeConfig, *, access_log: TextIO | None = sys.stderr, sidecar: bool | None = None
) -> FastAPI:
    """Build the guard app for ``config``: loads the policy, the workspace and the model first.

    Args:
        config: what to serve, and the policy file.
        access_log: where the JSON access lines go (None: nowhere).
        sidecar: run the detectors and the decision log's writes in a process of their own (the
            default, unless ``MLSECOPS_SERVE_SIDECAR=0``); False keeps them in threads of this process.

    Raises:
        InputError, ConfigError, VerificationError, WorkspaceError: what ``mlsecops serve`` reports in
            one line with exit 2 (a bad policy, a model that is not safe or not verified...).
    """
    if sidecar is None:
        sidecar = os.environ.get(SIDECAR_ENV, "1") != "0"
    guard = _build_guard(config, sidecar=sidecar)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        guard.decisions.start()
        guard.hook.start()
        if guard.follower is not None:
            guard.follower.start()
        served = guard.active.served if guard.active else None
        if served is not None:
            log.info("serving %s version %s from %s", served.name, served.version, served.source)
        if guard.policy.auth.anonymous:
            log.warning("auth.anonymous is on: anyone who reaches this server may call the model")
        try:
            yield
        finally:
            if guard.backend is not None:
                await guard.backend.aclose()
            close_guard(guard)

    app = FastAPI(
        title="mlsecops guard",
        version=__version__,
        description="Open Inference Protocol v2 in front of a model, with authentication, rate limits, "
        "input validation and output hardening.",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.guard = guard

    async def on_guard_error(request: Request, err: Exception) -> Response:
        assert isinstance(err, GuardError)
        ctx = request.scope.get("mlsecops.ctx")
        if isinstance(ctx, _Ctx):
            ctx.code = err.code
            if isinstance(err, RateLimited):
                ctx.code = f"{err.code}:{str(err.reason)[:32]}"
            _record_refusal(guard, ctx, err)
        return _error(err)

    async def on_http_error(request: Request, err: Exception) -> Response:
        assert isinstance(err, StarletteHTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(err.status_code, "bad_request")
        ctx = request.scope.get("mlsecops.ctx")
        if isinstance(ctx, _Ctx):
            ctx.code = code
        return _json({"error": {"code": code, "message": str(err.detail)[:200]}}, err.status_code)

    async def on_unexpected(request: Request, err: Exception) -> Response:
        log.error("internal error on %s: %s: %s", request.url.path[:200], type(err).__name__, str(err)[:300])
        ctx = request.scope.get("mlsecops.ctx")
        if isinstance(ctx, _Ctx):
            ctx.code = "internal"
        return _json({"error": {"code": "internal", "message": "internal error"}}, 500)

    app.add_exception_handler(GuardError, on_guard_error)
    app.add_exception_handler(Exception, on_unexpected)
    app.add_exception_handler(StarletteHTTPException, on_http_error)

    def endpoint(name: str, request: Request) -> None:
        ctx = request.scope.get("mlsecops.ctx")
        if isinstance(ctx, _Ctx):
            ctx.endpoint = name

    @app.get("/v2/health/live", response_model=_Health, tags=["health"])
    async def live(request: Request) -> Response:
        endpoint("health", request)
        return _json({"live": True})

    @app.get("/v2/health/ready", response_model=_Health, tags=["health"], responses={503: _ERRORS[503]})
    async def ready(request: Request) -> Response:
        endpoint("health", request)
        return _json({"ready": guard.active is not None})

    @app.get("/v2", response_model=ServerMetadata, tags=["metadata"])
    async def server_metadata(request: Request) -> Response:
        endpoint("metadata", request)
        return _json({"name": "mlsecops-guard", "version": __version__, "extensions": []})

    model_errors: dict[int | str, dict[str, Any]] = {s: _ERRORS[s] for s in (401, 403, 404, 503)}

    async def _model_meta(request: Request, name: str, version: str | None) -> Response:
        endpoint("metadata", request)
        active = await _authorized(guard, request, name, version)
        return _json(active.metadata)

    async def _model_ready(request: Request, name: str, version: str | None) -> Response:
        endpoint("health", request)
        await _authorized(guard, request, name, version)
        return _json({"name": name, "ready": True})

    @app.get("/v2/models/{name}", response_model=ModelMetadata, tags=["metadata"], responses=model_errors)
    async def model_metadata(request: Request, name: str) -> Response:
        return await _model_meta(request, name, None)

    @app.get(
        "/v2/models/{name}/versions/{version}",
        response_model=ModelMetadata,
        tags=["metadata"],
        responses=model_errors,
    )
    async def model_version_metadata(request: Request, name: str, version: str) -> Response:
        return await _model_meta(request, name, version)

    @app.get("/v2/models/{name}/ready", response_model=_ModelReady, tags=["health"], responses=model_errors)
    async def model_ready(request: Request, name: str) -> Response:
        return await _model_ready(request, name, None)

    @app.get(
        "/v2/models/{name}/versions/{version}/ready",
        response_model=_ModelReady,
        tags=["health"],
        responses=model_errors,
    )
    async def model_version_ready(request: Request, name: str, version: str) -> Response:
        return await _model_ready(request, name, version)

    infer_doc: dict[str, Any] = {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": InferenceRequest.model_json_schema(ref_template=_REF)}
            },
        }
    }

    @app.post(
        "/v2/models/{name}/infer",
        response_model=InferenceResponse,
        tags=["inference"],
        responses=_ERRORS,
        openapi_extra=infer_doc,
    )
    async def infer(request: Request, name: str) -> Response:
        endpoint("infer", request)
        return await _infer(guard, request, name, None)

    @app.post(
        "/v2/models/{name}/versions/{version}/infer",
        response_model=InferenceResponse,
        tags=["inference"],
        responses=_ERRORS,
        openapi_extra=infer_doc,
    )
    async def infer_version(request: Request, name: str, version: str) -> Response:
        endpoint("infer", request)
        return await _infer(guard, request, name, version)

    feedback_doc: dict[str, Any] = {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": FeedbackRequest.model_json_schema(ref_template=_REF)}},
        }
    }

    @app.post(
        "/v2/models/{name}/feedback",
        response_model=FeedbackResponse,
        tags=["monitoring"],
        responses={**_ERRORS, 409: {"model": ErrorBody, "description": "no detector takes labels"}},
        openapi_extra=feedback_doc,
    )
    async def feedback(request: Request, name: str) -> Response:
        endpoint("feedback", request)
        return await _feedback(guard, request, name)

    @app.get(
        "/metrics",
        tags=["metrics"],
        response_class=Response,
        responses={s: _ERRORS[s] for s in (401, 403, 503)},
    )
    async def metrics(request: Request) -> Response:
        endpoint("metrics", request)
        if guard.policy.server.metrics != "public":
            await _operator(guard, request)
        return Response(guard.metrics.render(), media_type=CONTENT_TYPE)

    _add_schemas(app)
    inner = app.build_middleware_stack

    async def direct_infer(
        scope: Scope, receive: Receive, send: Send, name: str, version: str | None
    ) -> None:
        request = Request(scope, receive)
        endpoint("infer", request)
        try:
            response = await _infer(guard, request, name, version)
        except GuardError as err:
            response = await on_guard_error(request, err)
        except Exception as err:
            response = await on_unexpected(request, err)
        await response(scope, receive, send)

    def build() -> Any:
        return _Edge(inner(), guard, access_log, on_unexpected, direct_infer)

    app.build_middleware_stack = build  # type: ignore[method-assign]
    return app


_REF = "#/components/schemas/{model}"


class _ModelReady(BaseModel):
    name: str
    ready: bool


def _add_schemas(app: FastAPI) -> None:
    """Put the request models' nested schemas into the OpenAPI components."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        doc = original()
        defs = InferenceRequest.model_json_schema(ref_template=_REF).get("$defs", {})
        doc.setdefault("components", {}).setdefault("schemas", {}).update(defs)
        for path in doc.get("paths", {}).values():
            for op in path.values():
                schema = (
                    op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
                )
                if isinstance(schema, dict):
                    schema.pop("$defs", None)
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]


async def _authorized(guard: Guard, request: Request, name: str, version: str | None) -> _Active:
    from anyio import to_thread

    ctx: _Ctx = request.scope["mlsecops.ctx"]
    authorization = request.headers.get("authorization")
    active = guard.active
    assert active is not None

    def check() -> None:
        try:
            principal = guard.auth.authenticate(authorization)
            ctx.principal = principal.name
            if name != active.served.name:
                raise ModelNotFound(f"no model named {name[:64]!r} is served here")
            if version is not None and version != active.served.version:
                raise ModelNotFound(f"{name[:64]} version {version[:32]!r} is not served")
            guard.auth.authorize(principal, name)
        except (WorkspaceError, SQLAlchemyError) as err:
            raise _db_down(err) from None

    await to_thread.run_sync(check)
    return active


FEEDBACK_PERMISSION = Permission.ATTACH
"""Who may send labels: they steer the drift alerts and so the playbooks (rollback, retraining), so
the roles that attach evidence to model versions (deployer, admin), never a client."""


async def _feedback(guard: Guard, request: Request, name: str) -> Response:
    """``POST /v2/models/{name}/feedback``: true classes of served rows, for the drift detector."""
    from anyio import to_thread

    ctx: _Ctx = request.scope["mlsecops.ctx"]
    ctx.model = name[:100]
    server = guard.policy.server
    if not _is_json(request.headers.get("content-type")):
        raise UnsupportedMediaType("send the request as Content-Type: application/json")
    try:
        async with asyncio.timeout(server.request_timeout_s):
            body = await _read_body(request, server.max_body_bytes)
    except TimeoutError:
        raise RequestTimeout(f"the request was not received within {server.request_timeout_s:g} s") from None
    authorization = request.headers.get("authorization")

    def run() -> dict[str, Any]:
        active = guard.active
        assert active is not None
        served = active.served
        ctx.version = served.version
        try:
            principal = guard.auth.authenticate(authorization)
            ctx.principal = principal.name
            if name != served.name:
                raise ModelNotFound(f"no model named {name[:64]!r} is served here")
            if principal.kind == "anonymous" or not Actor(principal.name, principal.role).can(
                FEEDBACK_PERMISSION
            ):
                raise Forbidden("sending labels needs a role that may attach evidence (deployer, admin)")
            logs_labels = guard.policy.logging.group is not None  # decision auditing logs them
            if not guard.hook.takes_feedback and not logs_labels:
                raise NotMonitored(
                    "this guard's policy runs no detector that takes labels (monitor: drift or fairness) "
                    "and logs no groups (logging.group)"
                )
            req = _parse(body, FeedbackRequest)
            array = decode_tensor(req.inputs[0], "inputs[0]")
            active.validator.validate(array, field="inputs[0]")
        except (WorkspaceError, SQLAlchemyError) as err:
            raise _db_down(err) from None
        x = _model_input(array, served)
        labels = np.asarray(req.labels, dtype=np.int64)
        ctx.rows = int(x.shape[0])
        if labels.shape[0] != x.shape[0]:
            raise InvalidInput(f"{labels.shape[0]} labels for {x.shape[0]} rows", field="labels")
        if int(labels.min()) < 0 or int(labels.max()) >= served.n_classes:
            raise InvalidInput(f"labels are class indices 0..{served.n_classes - 1}", field="labels")
        proba = _predict(active, x)  # the served version's own answers, never the sender's
        rows = x.reshape(x.shape[0], -1)
        item = Feedback(time.time(), principal.name, served.name, served.version, labels, proba, rows)
        if not guard.hook.feedback(item):
            raise Unavailable("the detectors' queue is full; send the labels again later")
        record_feedback = getattr(guard.decisions, "record_feedback", None)  # in the sidecar: done there
        if callable(record_feedback):
            record_feedback(
                principal=principal.name,
                model=served.name,
                version=served.version,
                labels=labels,
                outputs=proba,
                inputs=rows,
            )
        guard.metrics.feedback_rows.inc(ctx.rows)
        out: dict[str, Any] = {"model_name": served.name, "model_version": served.version, "rows": ctx.rows}
        if req.id is not None:
            out["id"] = req.id
        return out

    return _json(await to_thread.run_sync(run))


async def _operator(guard: Guard, request: Request) -> None:
    """Admit an authenticated principal whose role is not ``client`` (who may read ``/metrics``)."""
    from anyio import to_thread

    ctx: _Ctx = request.scope["mlsecops.ctx"]
    authorization = request.headers.get("authorization")

    def check() -> None:
        try:
            principal = guard.auth.authenticate(authorization)
        except (WorkspaceError, SQLAlchemyError) as err:
            raise _db_down(err) from None
        ctx.principal = principal.name
        if principal.kind == "anonymous" or principal.role == Role.CLIENT:
            raise Forbidden("reading the metrics needs an operator role (viewer, deployer, approver, admin)")

    await to_thread.run_sync(check)


def _record_refusal(guard: Guard, ctx: _Ctx, err: GuardError) -> None:
    """Refused inference requests go to the decision log too (no inputs: they were not accepted)."""
    if ctx.endpoint != "infer" or guard.active is None:
        return
    latency_ms = (time.perf_counter() - ctx.started) * 1000
    _record(
        guard, ctx.principal, guard.active.served, f"rejected:{ctx.code or err.code}", err.status, latency_ms
    )


def close_guard(guard: Guard) -> None:
    """Stop the guard's threads and release its connections (the app's shutdown; ``--dry-run``)."""
    for part, stop in (
        (guard.follower, "stop"),
        (guard.hook, "stop"),
        (guard.decisions, "close"),
        (guard.limiter, "close"),
        (guard.auth, "close"),
        (guard.ws, "close"),
    ):
        if part is not None:
            getattr(part, stop)()


def app_from_env() -> FastAPI:
    """The app factory uvicorn's workers call (``mlsecops.runtime.app:app_from_env``, ``factory=True``)."""
    raw = os.environ.get(CONFIG_ENV)
    if not raw:
        sys.stderr.write(f"{CONFIG_ENV} is not set; start the guard with `mlsecops serve`\n")
        raise SystemExit(2)
    try:
        config = ServeConfig.model_validate_json(raw)
        app = create_app(config)
    except MlsecopsError as err:
        sys.stderr.write(err.diagnostics() + "\n")
        raise SystemExit(2) from None
    freeze_startup()
    return app


def freeze_startup() -> None:
    """Move what start-up built out of the cyclic collector's generations (server processes only).

    The modules, the model and the policy live as long as the server: frozen, a full collection walks
    only what requests allocate, and its pauses (a share of the tail latency) shrink. ``mlsecops
    serve`` calls it once the app is built; an app built in a test or a notebook leaves the collector
    alone.
    """
    gc.collect()
    gc.freeze()
