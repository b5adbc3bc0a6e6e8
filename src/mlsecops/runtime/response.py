"""Automated response: the guard policy's playbooks, run on alerts, recorded as incidents.

``ResponseEngine(ws, policy)`` stores every alert it is handed (``mlsecops.monitor.alerts``: dedup,
escalation, audit, webhooks) and, when an alert is new or has just escalated to a playbook's
``min_severity``, runs that playbook's actions in order:

==============  ==========================================================================================
``throttle``    slow the principal down (``requests_per_second``, ``burst``, optional ``for_s``)
``block``       refuse every request of the principal with 403 (optional ``for_s``)
``label_only``  answer the principal with class labels only
``revoke_key``  revoke every API key of the principal (a workspace user; JWT principals have none)
``rollback``    put the previous production version of the model back (``model`` overrides the alert's);
                the registry's rollback holds it to the production bar (trusted signature re-verified,
                safe scan, gate run over its files, approval), so a version that no longer meets it
                does not come back and the action fails
``quarantine``  keep the principal's (or ``scope: source`` with ``source``) logged inputs out of
                retraining exports and write them apart (``mlsecops.runtime.quarantine``;
                ``lookback_s``, ``for_s``, ``all_models``)
``retrain``     start ``mlsecops run PIPELINE`` (``pipeline``, ``timeout_s``) in a subprocess; it runs
                in the background, is killed at its deadline, and its run id and gate verdict are
                recorded. The pipeline's own gate decides; nothing is promoted by this action. One
                run per pipeline file at a time (an alert storm starts one), at most ``MAX_RETRAINS``;
                a run that outlives the guard is not followed (its action stays ``running``).
==============  ==========================================================================================

Each playbook run is an *incident*: the alert, each action with its start, end, status and detail,
and the outcome (``completed``, ``partial`` or ``failed``; ``running`` while a retrain runs). Each
action writes its own effect's audit event (``runtime.principal.block``, ``registry.rollback``...) and
a ``response.action`` event naming the alert and the incident. A failed action raises an alert of
kind ``response.failed`` (stored, audited and announced like any other, never answered by a playbook,
so a failing playbook cannot loop); the remaining actions still run.

Who acts: principal controls and quarantines are recorded as the engine's ``actor`` (default
``RESPONSE_USER``). Registry actions (``rollback``, ``revoke_key``) run as the registry user of that
name, with that user's role: create it (``deployer`` for rollback, ``admin`` for revoking keys). Without
it, or with too small a role, those actions fail and say so; they never act with unchecked authority.

``dry_run=True`` writes nothing (no alert, incident, control or audit event): ``handle`` returns the
incidents that would run, each action described with what it would do.

``handle(alerts)`` is the guard's ``on_alerts`` callback (``alert_sink``): it runs in the detector
hook's thread and never raises; errors are logged.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any, Literal

from sqlalchemy import select

from mlsecops.core.errors import InputError, MlsecopsError
from mlsecops.core.redaction import redact
from mlsecops.core.severity import Severity, utcnow
from mlsecops.monitor._alert_tables import IncidentAction, IncidentRow
from mlsecops.monitor.alerts import AlertStore, Notifier, Recorded, StoredAlert, json_safe
from mlsecops.monitor.interface import Alert
from mlsecops.runtime._playbook_params import (
    FAILED_KIND,
    MAX_RETRAIN_S,
    BlockParams,
    LabelOnlyParams,
    Params,
    QuarantineParams,
    RetrainParams,
    RevokeKeyParams,
    RollbackParams,
    ThrottleParams,
    check_kind,
    parse_params,
)
from mlsecops.runtime.incidents import ActionRecord, Incident, get_incident, list_incidents, outcome
from mlsecops.runtime.policy import GuardPolicy, Playbook, PlaybookAction
from mlsecops.store import PipelineRun, Workspace, audit

__all__ = [
    "FAILED_KIND",
    "MAX_RETRAINS",
    "MAX_RETRAIN_S",
    "RESPONSE_USER",
    "ActionRecord",
    "Announcer",
    "Incident",
    "ResponseEngine",
    "alert_sink",
    "get_incident",
    "list_incidents",
    "webhook_notifier",
]

_log = logging.getLogger("mlsecops.runtime.response")

RESPONSE_USER = "mlsecops-response"
"""Default actor of automated responses, and the registry user whose role registry actions use."""
MAX_RETRAINS = 2
"""Retraining pipelines one engine runs at once (each is a full ``mlsecops run``); more is refused."""
MAX_DETAIL_CHARS = 4000
"""Longest error text kept per action (a subprocess or library message, bounded)."""
MAX_PENDING_ANNOUNCEMENTS = 1000
"""Alert webhooks waiting to be sent; more are dropped (and counted) rather than held in memory."""
_RETRAIN_OUTPUT_BYTES = 64 * 1024
"""Tail of a retrain's stderr kept for its action detail."""


def _now() -> str:
    return utcnow().isoformat(timespec="microseconds")


# ---------------------------------------------------------------------------------------------- wiring


def webhook_notifier(ws: Workspace, *, actor: str = RESPONSE_USER) -> Notifier:
    """Announce alert changes through the registry's HMAC-signed webhooks (events ``alert.raised``,
    ``alert.acknowledged``; a webhook subscribed to ``*`` gets them too), in the caller's thread.
    """
    from mlsecops.registry._webhooks import deliver

    def notify(event: str, payload: Mapping[str, Any]) -> None:
        deliver(ws, event, payload, actor=actor)

    return notify


class Announcer:
    """Webhook deliveries off the detector thread: a bounded queue and one sender thread.

    Each delivery may take the registry's whole deadline per webhook; an alert storm (many accounts
    raising alerts) must not stall the detectors behind a slow receiver, so ``__call__`` only queues
    (dropping, and counting in ``dropped``, beyond ``MAX_PENDING_ANNOUNCEMENTS``).
    """

    def __init__(self, notify: Notifier) -> None:
        self._notify = notify
        self._queue: queue.Queue[tuple[str, Mapping[str, Any]] | None] = queue.Queue(
            MAX_PENDING_ANNOUNCEMENTS
        )
        self.dropped = 0
        """Announcements refused because the queue was full."""
        self._thread = threading.Thread(target=self._run, name="alert-webhooks", daemon=True)
        self._thread.start()

    def __call__(self, event: str, payload: Mapping[str, Any]) -> None:
        """Queue one announcement; never blocks."""
        try:
            self._queue.put_nowait((event, payload))
        except queue.Full:
            self.dropped += 1
            _log.warning("alert webhook queue full: %s dropped (%d so far)", event, self.dropped)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every queued announcement was sent (or failed); True when the queue is empty."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self._queue.unfinished_tasks

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                self._notify(*item)
            except Exception as err:  # a sender thread: log, never die
                _log.warning("alert webhook delivery failed: %s: %s", type(err).__name__, err)
            finally:
                self._queue.task_done()


def alert_sink(ws: Workspace, policy: GuardPolicy) -> Callable[[list[Alert]], None]:
    """The guard's ``on_alerts`` callback: store the alerts and run the playbooks (never raises)."""
    engine = ResponseEngine(ws, policy)

    def sink(alerts: list[Alert]) -> None:
        engine.handle(alerts)

    return sink


class _Failed(Exception):
    """An action could not be done; the message goes into its detail and the response.failed alert."""


# ---------------------------------------------------------------------------------------------- engine


class ResponseEngine:
    """Stores alerts and runs the matching playbooks (see the module docstring).

    Args:
        ws: The workspace.
        policy: The guard policy (its ``playbooks``).
        actor: Who the responses are recorded as; registry actions use the registry user of this name.
        dry_run: Change nothing; return what would happen.
        notify: How alert changes are announced (default: the registry's webhooks, sent from a
            background thread by ``announcer``; None: not at all).

    Raises:
        ConfigError: a playbook names an alert kind no detector raises, or an action's parameters are
            invalid (named with the playbook).
    """

    def __init__(
        self,
        ws: Workspace,
        policy: GuardPolicy,
        *,
        actor: str = RESPONSE_USER,
        dry_run: bool = False,
        notify: Notifier | Literal["webhooks"] | None = "webhooks",
    ) -> None:
        self.ws = ws
        self.policy = policy
        self.actor = actor
        self.dry_run = dry_run
        for pb in policy.playbooks:
            check_kind(pb)
        self._plans = [(pb, [(a, parse_params(pb, a)) for a in pb.actions]) for pb in policy.playbooks]
        self.announcer = Announcer(webhook_notifier(ws, actor=actor)) if notify == "webhooks" else None
        self.store = AlertStore(ws, actor=actor, notify=self.announcer if notify == "webhooks" else notify)
        self._lock = threading.Lock()
        self._retrains: list[threading.Thread] = []
        self._retrain_lock = threading.Lock()
        self._running: dict[str, int] = {}
        """Pipeline file -> the incident whose retrain of it is running."""

    # -- entry points ----------------------------------------------------------------------------

    def handle(self, alerts: Sequence[Alert]) -> list[Incident]:
        """Store each alert and run the playbooks it triggers; never raises (errors are logged)."""
        incidents: list[Incident] = []
        with self._lock:
            for alert in alerts:
                try:
                    incidents += self._handle_one(alert)
                except Exception as err:  # the detector thread must go on
                    _log.error(
                        "response to %s alert for %r failed: %s: %s",
                        getattr(alert, "kind", "?"),
                        getattr(alert, "principal", "?"),
                        type(err).__name__,
                        redact(str(err))[:500],
                    )
        return incidents

    def respond(self, alert_id: int) -> list[Incident]:
        """Run the playbooks matching a stored alert now, as for a new one (``mlsecops alerts respond``).

        Raises:
            InputError: no such alert, or it is resolved.
        """
        stored = self.store.get(alert_id)
        if str(stored.status) == "resolved":
            raise InputError(f"alert {alert_id} is resolved; nothing to respond to")
        with self._lock:
            return self._run_playbooks(stored, None, stored.last_seen)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for running retrains; True when none is left."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for t in list(self._retrains):
            t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        self._retrains = [t for t in self._retrains if t.is_alive()]
        return not self._retrains

    # -- matching --------------------------------------------------------------------------------

    def _handle_one(self, alert: Alert) -> list[Incident]:
        recorded = self._preview(alert) if self.dry_run else self.store.record(alert)
        if recorded.change == "repeat" or alert.kind == FAILED_KIND:
            return []
        return self._run_playbooks(recorded.alert, recorded.previous, recorded.alert.last_seen)

    def _preview(self, alert: Alert) -> Recorded:
        """What recording ``alert`` would do, read only."""
        from mlsecops.monitor.alerts import AlertStatus

        severity = Severity.parse(alert.severity)
        found = [
            a
            for a in self.store.list(kind=alert.kind, principal=alert.principal, model=alert.model, limit=10)
            if a.status is not AlertStatus.RESOLVED
        ]
        seen = _iso_unix(alert.time)
        if found:
            old = found[0]
            new = dataclasses.replace(old, severity=max(old.severity, severity), last_seen=seen)
            return Recorded(new, "escalated" if severity > old.severity else "repeat", old.severity)
        evidence = json_safe(dict(alert.evidence))
        preview = StoredAlert(
            id=0,
            kind=alert.kind,
            principal=alert.principal,
            model=alert.model,
            severity=severity,
            status=AlertStatus.OPEN,
            count=1,
            first_seen=seen,
            last_seen=seen,
            first_query_index=alert.query_index,
            last_query_index=alert.query_index,
            evidence=evidence if isinstance(evidence, dict) else {},
            created=_now(),
        )
        return Recorded(preview, "new", None)

    def _run_playbooks(self, alert: StoredAlert, previous: Severity | None, triggered: str) -> list[Incident]:
        out = []
        for playbook, actions in self._plans:
            bar = Severity.parse(playbook.min_severity)
            if playbook.kind != alert.kind or alert.severity < bar:
                continue
            if previous is not None and previous >= bar:
                continue  # this playbook already ran when the alert reached its bar
            try:
                out.append(self._run(playbook, actions, alert, triggered))
            except Exception as err:  # e.g. the database went away mid-run: the other playbooks still try
                _log.error(
                    "playbook %s on alert %s failed: %s: %s",
                    playbook.name,
                    alert.id,
                    type(err).__name__,
                    redact(str(err))[:500],
                )
        return out

    # -- running ---------------------------------------------------------------------------------

    def _run(
        self,
        playbook: Playbook,
        actions: list[tuple[PlaybookAction, Params]],
        alert: StoredAlert,
        triggered: str,
    ) -> Incident:
        started = _now()
        incident_id: int | None = None
        if not self.dry_run:
            with self.ws.session() as s:
                row = IncidentRow(
                    alert_id=alert.id,
                    playbook=playbook.name[:200],
                    severity=str(alert.severity),
                    triggered=triggered,
                    started=started,
                    status="running",
                    actor=self.actor,
                )
                s.add(row)
                s.flush()
                incident_id = row.id
                audit.append(
                    s,
                    actor=self.actor,
                    action="response.incident",
                    subject=f"incident:{row.id}",
                    details={
                        "alert_id": alert.id,
                        "playbook": playbook.name,
                        "kind": alert.kind,
                        "principal": alert.principal,
                        "model": alert.model,
                        "severity": str(alert.severity),
                    },
                )
        records: list[ActionRecord] = []
        for position, (action, params) in enumerate(actions, start=1):
            records.append(self._act(position, action, params, alert, incident_id, playbook.name))
        finished = None if any(r.status == "running" for r in records) else _now()
        status = "dry_run" if self.dry_run else "running" if finished is None else outcome(records)
        if not self.dry_run and finished is not None:
            self._close(incident_id, status, finished)
        return Incident(
            id=incident_id,
            playbook=playbook.name,
            alert=alert,
            severity=alert.severity,
            triggered=triggered,
            started=started,
            finished=finished,
            status=status,
            actions=tuple(records),
            actor=self.actor,
            dry_run=self.dry_run,
        )

    def _close(self, incident_id: int | None, status: str, finished: str) -> None:
        with self.ws.session() as s:
            row = s.get(IncidentRow, incident_id, with_for_update=True)
            if row is not None:
                row.status, row.finished = status, finished
                audit.append(
                    s,
                    actor=self.actor,
                    action="response.outcome",
                    subject=f"incident:{row.id}",
                    details={"alert_id": row.alert_id, "status": status},
                )

    def _act(
        self,
        position: int,
        action: PlaybookAction,
        params: Params,
        alert: StoredAlert,
        incident_id: int | None,
        playbook: str,
    ) -> ActionRecord:
        started = _now()
        name = action.action
        shown = json_safe(dict(action.params))
        if self.dry_run:
            try:
                detail, status = self._plan(name, params, alert), "would"
            except (_Failed, MlsecopsError) as err:
                detail, status = {"error": redact(str(err))[:MAX_DETAIL_CHARS]}, "would_fail"
            return ActionRecord(position, name, shown, status, started, _now(), detail)
        assert incident_id is not None
        with self.ws.session() as s:
            row = IncidentAction(
                incident_id=incident_id,
                position=position,
                action=name,
                params=json.dumps(shown),
                status="running",
                started=started,
                detail="{}",
            )
            s.add(row)
            s.flush()
            action_id = row.id
        try:
            detail = self._do(name, params, alert, incident_id, action_id, playbook)
            status = "running" if detail.get("running") else "done"
        except (_Failed, MlsecopsError) as err:
            detail, status = {"error": redact(str(err))[:MAX_DETAIL_CHARS]}, "failed"
        except Exception as err:  # a bug or an unexpected library error: still an incident record
            detail = {"error": f"{type(err).__name__}: {redact(str(err))[:MAX_DETAIL_CHARS]}"}
            status = "failed"
        finished = None if status == "running" else _now()
        self._finish_action(action_id, incident_id, alert, playbook, name, status, finished, detail)
        if status == "failed":
            self._raise_failed(alert, incident_id, playbook, name, detail["error"])
        return ActionRecord(position, name, shown, status, started, finished, detail)

    def _finish_action(
        self,
        action_id: int,
        incident_id: int,
        alert: StoredAlert,
        playbook: str,
        name: str,
        status: str,
        finished: str | None,
        detail: dict[str, Any],
    ) -> None:
        with self.ws.session() as s:
            row = s.get(IncidentAction, action_id, with_for_update=True)
            assert row is not None
            row.status, row.finished, row.detail = status, finished, json.dumps(json_safe(detail))
            audit.append(
                s,
                actor=self.actor,
                action="response.action",
                subject=f"incident:{incident_id}",
                details={
                    "alert_id": alert.id,
                    "incident_id": incident_id,
                    "playbook": playbook,
                    "action": name,
                    "status": status,
                    "principal": alert.principal,
                    "model": alert.model,
                    "detail": json_safe(detail),
                },
            )

    def _raise_failed(
        self, alert: StoredAlert, incident_id: int, playbook: str, name: str, error: str
    ) -> None:
        failed = Alert(
            kind=FAILED_KIND,
            principal=alert.principal,
            model=alert.model,
            severity=Severity.HIGH,
            query_index=alert.last_query_index,
            time=time.time(),
            evidence={
                "alert_id": alert.id,
                "incident_id": incident_id,
                "playbook": playbook,
                "action": name,
                "error": error[:500],
            },
        )
        try:
            self.store.record(failed)
        except Exception as err:  # the action's failure is in the incident and the audit trail already
            _log.error("recording the response.failed alert failed: %s", err)

    # -- the actions -----------------------------------------------------------------------------

    def _until(self, for_s: float | None) -> dt.datetime | None:
        return None if for_s is None else utcnow() + dt.timedelta(seconds=for_s)

    def _reason(self, params: Params, alert: StoredAlert) -> str:
        given = getattr(params, "reason", "")
        return given or f"{alert.kind} alert {alert.id} ({alert.severity}) on {alert.model}"

    def _do(
        self, name: str, params: Params, alert: StoredAlert, incident_id: int, action_id: int, playbook: str
    ) -> dict[str, Any]:
        from mlsecops.runtime import controls

        principal = alert.principal
        reason, alert_ref = self._reason(params, alert), str(alert.id)
        if name in ("block", "throttle", "label_only", "revoke_key") and not principal:
            raise _Failed(f"{name} needs a principal; the {alert.kind} alert names none")
        if isinstance(params, ThrottleParams):
            until = self._until(params.for_s)
            controls.throttle_principal(
                self.ws,
                principal,
                requests_per_second=params.requests_per_second,
                burst=params.burst,
                until=until,
                reason=reason,
                actor=self.actor,
                alert_id=alert_ref,
            )
            return {
                "principal": principal,
                "requests_per_second": params.requests_per_second,
                "burst": params.burst,
                "until": _iso(until),
            }
        if isinstance(params, BlockParams):
            until = self._until(params.for_s)
            controls.block_principal(
                self.ws, principal, until=until, reason=reason, actor=self.actor, alert_id=alert_ref
            )
            return {"principal": principal, "until": _iso(until)}
        if isinstance(params, LabelOnlyParams):
            controls.set_label_only(self.ws, principal, reason=reason, actor=self.actor, alert_id=alert_ref)
            return {"principal": principal}
        if isinstance(params, RevokeKeyParams):
            return self._revoke_keys(principal)
        if isinstance(params, RollbackParams):
            return self._rollback(params.model or alert.model, params.cooldown_s)
        if isinstance(params, QuarantineParams):
            return self._quarantine(params, alert, incident_id)
        if isinstance(params, RetrainParams):
            return self._retrain(params, alert, incident_id, action_id, playbook)
        raise _Failed(f"unknown action {name}")  # pragma: no cover - the policy schema lists them

    def _registry_actor(self) -> Any:
        from mlsecops.registry import Actor, Role
        from mlsecops.registry._tables import User

        with self.ws.session(readonly=True) as s:
            user = s.execute(select(User).where(User.name == self.actor)).scalar_one_or_none()
        if user is None or user.disabled:
            raise _Failed(
                f"registry actions run as the registry user {self.actor!r}, which "
                + ("is disabled" if user is not None else "does not exist")
                + "; create it with `mlsecops registry users add` (deployer for rollback, admin for revoke_key)"
            )
        return Actor(name=user.name, role=Role(user.role))

    def _may(self, permission: str, what: str) -> Any:
        """The registry actor, if its role allows ``permission`` (dry runs: refused as the action would be)."""
        from mlsecops.registry import Permission

        actor = self._registry_actor()
        if not actor.can(Permission(permission)):
            raise _Failed(f"{actor.name} ({actor.role}) may not {what}")
        return actor

    def _principal_keys(self, principal: str) -> list[str]:
        from mlsecops.registry._tables import ApiKey, User

        with self.ws.session(readonly=True) as s:
            return list(
                s.execute(
                    select(ApiKey.key_id)
                    .join(User, User.id == ApiKey.user_id)
                    .where(User.name == principal, ApiKey.revoked.is_(None))
                    .order_by(ApiKey.id)
                ).scalars()
            )

    def _revoke_keys(self, principal: str) -> dict[str, Any]:
        from mlsecops.registry import revoke_api_key

        if principal.startswith("jwt:"):
            raise _Failed(
                f"{principal} authenticates with tokens of an identity provider; revoke them there (block it here)"
            )
        keys = self._principal_keys(principal)
        if not keys:
            raise _Failed(f"principal {principal!r} has no active API keys")
        actor = self._registry_actor()
        for key_id in keys:
            revoke_api_key(self.ws, key_id, actor=actor)
        return {"principal": principal, "revoked": keys}

    def _recent_rollback(self, model: str, cooldown_s: float) -> dict[str, Any] | None:
        """The last rollback of ``model`` a playbook did within ``cooldown_s``, if any."""
        if cooldown_s <= 0:
            return None
        since = (utcnow() - dt.timedelta(seconds=cooldown_s)).isoformat(timespec="microseconds")
        with self.ws.session(readonly=True) as s:
            rows = s.execute(
                select(IncidentAction.incident_id, IncidentAction.finished, IncidentAction.detail)
                .where(
                    IncidentAction.action == "rollback",
                    IncidentAction.status == "done",
                    IncidentAction.finished >= since,
                )
                .order_by(IncidentAction.id.desc())
            ).all()
        for incident_id, finished, detail in rows:
            done = json.loads(detail)
            if done.get("model") == model and "from" in done:
                return {"model": model, "rolled_back_by": incident_id, "at": finished}
        return None

    def _rollback(self, model: str, cooldown_s: float) -> dict[str, Any]:
        from mlsecops.registry import Registry

        recent = self._recent_rollback(model, cooldown_s)
        if recent is not None:  # done already: not another step back through the history
            return {
                **recent,
                "skipped": f"rolled back by incident {recent['rolled_back_by']} within {cooldown_s:g} s",
            }
        frm, to = Registry(self.ws, self._registry_actor()).rollback(model)
        return {"model": model, "from": frm, "to": to}

    def _quarantine_target(self, params: QuarantineParams, alert: StoredAlert) -> tuple[str, str]:
        if params.scope == "principal":
            if not alert.principal:
                raise _Failed(f"the {alert.kind} alert names no principal to quarantine")
            return "principal", alert.principal
        source = params.source or alert.evidence.get("source")
        if not isinstance(source, str) or not source:
            raise _Failed("scope: source needs params.source or a source in the alert's evidence")
        return "source", source

    def _quarantine_range(
        self, params: QuarantineParams, alert: StoredAlert
    ) -> tuple[float | None, float | None]:
        first = dt.datetime.fromisoformat(alert.first_seen).timestamp()
        start = None if params.lookback_s is None else first - params.lookback_s
        end = (
            None
            if params.for_s is None
            else dt.datetime.fromisoformat(alert.last_seen).timestamp() + params.for_s
        )
        return start, end

    def _quarantine(self, params: QuarantineParams, alert: StoredAlert, incident_id: int) -> dict[str, Any]:
        from mlsecops.runtime.quarantine import quarantine

        scope, value = self._quarantine_target(params, alert)
        start, end = self._quarantine_range(params, alert)
        info = quarantine(
            self.ws,
            scope=scope,
            value=value,
            model="" if params.all_models else alert.model,
            start=start,
            end=end,
            reason=f"{alert.kind} alert {alert.id}",
            actor=self.actor,
            alert_id=alert.id,
            incident_id=incident_id,
        )
        return info.to_json()

    def _retrain_command(self, params: RetrainParams) -> list[str]:
        from mlsecops.pipeline import load_pipeline

        pipeline = params.pipeline.resolve()
        load_pipeline(pipeline)  # refused now (ConfigError, InputError) rather than in the subprocess
        return [sys.executable, "-m", "mlsecops.cli", "run", str(pipeline), "--format", "json", "--quiet"]

    def _retrain(
        self, params: RetrainParams, alert: StoredAlert, incident_id: int, action_id: int, playbook: str
    ) -> dict[str, Any]:
        command = self._retrain_command(params)
        key = str(params.pipeline.resolve())
        with self._retrain_lock:
            if key in self._running:  # one run per pipeline file at a time: an alert storm starts one
                return {"pipeline": str(params.pipeline), "already_running": self._running[key]}
            if len(self._running) >= MAX_RETRAINS:
                raise _Failed(f"{MAX_RETRAINS} retraining pipelines are running already")
            self._running[key] = incident_id
        try:
            return self._start_retrain(command, key, params, alert, incident_id, action_id, playbook)
        except BaseException:
            with self._retrain_lock:
                self._running.pop(key, None)
            raise

    def _start_retrain(
        self,
        command: list[str],
        key: str,
        params: RetrainParams,
        alert: StoredAlert,
        incident_id: int,
        action_id: int,
        playbook: str,
    ) -> dict[str, Any]:
        run_actor = f"{self.actor}:incident-{incident_id}"
        env = {
            **os.environ,
            "MLSECOPS_HOME": str(self.ws.home),
            "MLSECOPS_DATABASE_URL": self.ws.url,
            "MLSECOPS_ACTOR": run_actor,
        }
        errors = tempfile.TemporaryFile()  # noqa: SIM115 - closed by the watcher; bounded on disk, not in memory
        try:
            proc = subprocess.Popen(
                command,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=errors,
                cwd=str(params.pipeline.resolve().parent),
                start_new_session=True,
            )
        except OSError as err:
            errors.close()
            raise _Failed(f"cannot start the retraining pipeline: {err.strerror or err}") from err
        thread = threading.Thread(
            target=self._watch_retrain,
            args=(proc, errors, key, params, alert, incident_id, action_id, run_actor, playbook),
            name=f"retrain-incident-{incident_id}",
            daemon=True,
        )
        thread.start()
        self._retrains = [*(r for r in self._retrains if r.is_alive()), thread]
        return {
            "running": True,
            "pid": proc.pid,
            "pipeline": str(params.pipeline),
            "timeout_s": params.timeout_s,
        }

    def _watch_retrain(
        self,
        proc: subprocess.Popen[bytes],
        errors: IO[bytes],
        key: str,
        params: RetrainParams,
        alert: StoredAlert,
        incident_id: int,
        action_id: int,
        run_actor: str,
        playbook: str,
    ) -> None:
        try:
            try:
                proc.wait(timeout=params.timeout_s)
                timed_out = False
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # the run and anything it started (own session)
                proc.wait()
                timed_out = True
            errors.seek(max(0, errors.seek(0, os.SEEK_END) - _RETRAIN_OUTPUT_BYTES))
            err_bytes = errors.read()
            detail: dict[str, Any] = {"pipeline": str(params.pipeline), "exit_code": proc.returncode}
            with self.ws.session(readonly=True) as s:
                run = (
                    s.execute(
                        select(PipelineRun)
                        .where(PipelineRun.actor == run_actor)
                        .order_by(PipelineRun.id.desc())
                    )
                    .scalars()
                    .first()
                )
                if run is not None:
                    detail.update(run_id=run.id, gate_passed=bool(run.passed))
            if timed_out:
                status, detail["error"] = "failed", f"killed after {params.timeout_s:g} s"
            elif run is None:
                tail = err_bytes[-_RETRAIN_OUTPUT_BYTES:].decode("utf-8", "replace").strip().splitlines()
                status, detail["error"] = (
                    "failed",
                    redact(tail[-1] if tail else f"exit code {proc.returncode}")[:MAX_DETAIL_CHARS],
                )
            else:
                status = "done"  # the run happened; its gate verdict is in the detail (nothing is promoted)
            self._finish_action(action_id, incident_id, alert, playbook, "retrain", status, _now(), detail)
            if status == "failed":
                self._raise_failed(alert, incident_id, playbook, "retrain", detail["error"])
            self._close_after_retrain(incident_id)
        except Exception as err:  # a background thread: log, never raise
            _log.error("watching the retrain of incident %s failed: %s", incident_id, err)
        finally:
            errors.close()
            with self._retrain_lock:
                self._running.pop(key, None)

    def _close_after_retrain(self, incident_id: int) -> None:
        with self.ws.session(readonly=True) as s:
            statuses = list(
                s.execute(
                    select(IncidentAction.status).where(IncidentAction.incident_id == incident_id)
                ).scalars()
            )
        if "running" not in statuses:
            records = [ActionRecord(0, "", {}, st, "", None, {}) for st in statuses]
            self._close(incident_id, outcome(records), _now())

    # -- dry run ---------------------------------------------------------------------------------

    def _plan(self, name: str, params: Params, alert: StoredAlert) -> dict[str, Any]:
        """What an action would do, read only (checks what can be checked without acting)."""
        principal = alert.principal
        if name in ("block", "throttle", "label_only", "revoke_key") and not principal:
            raise _Failed(f"{name} needs a principal; the {alert.kind} alert names none")
        if isinstance(params, ThrottleParams):
            return {
                "would": f"throttle {principal} to {params.requests_per_second:g}/s (burst {params.burst})",
                "for_s": params.for_s,
            }
        if isinstance(params, BlockParams):
            return {"would": f"block {principal}", "for_s": params.for_s}
        if isinstance(params, LabelOnlyParams):
            return {"would": f"answer {principal} with labels only"}
        if isinstance(params, RevokeKeyParams):
            keys = self._principal_keys(principal)
            if not keys:
                raise _Failed(f"principal {principal!r} has no active API keys")
            self._may("admin", "revoke API keys")
            return {"would": f"revoke {len(keys)} API key(s) of {principal}", "keys": keys}
        if isinstance(params, RollbackParams):
            return self._plan_rollback(params.model or alert.model, params.cooldown_s)
        if isinstance(params, QuarantineParams):
            from mlsecops.runtime.quarantine import count_covered

            scope, value = self._quarantine_target(params, alert)
            start, end = self._quarantine_range(params, alert)
            model = "" if params.all_models else alert.model
            n = count_covered(self.ws, scope=scope, value=value, model=model, start=start, end=end)
            return {
                "would": f"quarantine the logged inputs of {scope} {value}",
                "logged_rows_now": n,
                "start_time": start,
                "end_time": end,
            }
        if isinstance(params, RetrainParams):
            command = self._retrain_command(params)
            return {"would": "start " + " ".join(command[2:]), "timeout_s": params.timeout_s}
        raise _Failed(f"unknown action {name}")  # pragma: no cover

    def _plan_rollback(self, model: str, cooldown_s: float) -> dict[str, Any]:
        from mlsecops.registry import Registry

        recent = self._recent_rollback(model, cooldown_s)
        if recent is not None:
            return {**recent, "would": f"skip: rolled back by incident {recent['rolled_back_by']} already"}
        reg = Registry(self.ws, self._may("rollback", "roll models back"))
        current = reg.show(f"{model}@production")
        return {
            "would": f"roll {model} back from production version {current.version} to the previous "
            "production version that meets the production bar now",
            "from": current.version,
        }


def _iso_unix(t: float) -> str:
    try:
        return dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="microseconds")
    except (ValueError, OverflowError, OSError):  # NaN or absurd: the time it is handled
        return _now()


def _iso(t: dt.datetime | None) -> str | None:
    return None if t is None else t.isoformat(timespec="microseconds")
