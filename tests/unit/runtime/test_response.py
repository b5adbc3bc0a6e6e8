"""Response playbooks: each action's effect and audit events naming the alert, failed actions raising
``response.failed``, dry runs changing nothing, incidents with timelines, signed alert webhooks."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from tests._http_fakes import serve_slowly
from tests.integration.registry import conftest as registry_fixtures
from tests.integration.registry.conftest import World

from mlsecops.core.errors import ConfigError, InputError, PermissionDenied
from mlsecops.core.severity import Severity
from mlsecops.monitor.alerts import AlertStore
from mlsecops.monitor.interface import Alert
from mlsecops.registry import Role, authenticate, create_api_key, create_user, verify_signature
from mlsecops.runtime import controls
from mlsecops.runtime._decision_tables import DecisionRecord
from mlsecops.runtime.decisions import export_jsonl
from mlsecops.runtime.policy import GuardPolicy, Playbook, PlaybookAction
from mlsecops.runtime.quarantine import QuarantineFilter, export_for_training, is_quarantined
from mlsecops.runtime.response import FAILED_KIND, RESPONSE_USER, ResponseEngine, get_incident, list_incidents
from mlsecops.store import Base, Workspace, audit

SECRET = "alert-webhook-secret-1"
world = registry_fixtures.world  # a workspace with users of every role and a trusted signing key


def _policy(
    *actions: tuple[str, dict[str, Any]], kind: str = "extraction", min_severity: str = "high"
) -> GuardPolicy:
    return GuardPolicy(
        playbooks=(
            Playbook(
                name="contain",
                kind=kind,
                min_severity=min_severity,  # type: ignore[arg-type]
                actions=tuple(PlaybookAction(action=a, params=p) for a, p in actions),  # type: ignore[arg-type]
            ),
        )
    )


def _alert(
    principal: str = "mallory", severity: Severity = Severity.HIGH, model: str = "fraud", q: int = 150
) -> Alert:
    return Alert(
        kind="extraction",
        principal=principal,
        model=model,
        severity=severity,
        query_index=q,
        time=time.time(),
        evidence={"score": 0.97},
    )


def _events(ws: Workspace, action: str) -> list[dict[str, Any]]:
    with ws.session(readonly=True) as s:
        return [
            {"subject": e.subject, "actor": e.actor, **json.loads(e.details)}
            for e in audit.iter_events(s, action=action)
        ]


def _responder(world: World, role: Role = Role.DEPLOYER) -> None:
    admin = authenticate(world.ws, world.keys["admin"])
    create_user(world.ws, RESPONSE_USER, role, actor=admin)


def _mallory(world: World) -> str:
    admin = authenticate(world.ws, world.keys["admin"])
    create_user(world.ws, "mallory", Role.VIEWER, actor=admin)
    return create_api_key(world.ws, "mallory", actor=admin)


def _snapshot(ws: Workspace) -> dict[str, Any]:
    """Every table's rows, for asserting that nothing changed."""
    out: dict[str, Any] = {}
    with ws.session(readonly=True) as s:
        for table in Base.metadata.sorted_tables:
            try:
                out[table.name] = sorted(map(repr, s.execute(select(table)).all()))
            except Exception:  # a table of a migration not applied in this tree
                continue
    return out


# ---------------------------------------------------------------------------------------------- actions


def test_block_throttle_and_label_only_take_effect_and_name_the_alert(world: World) -> None:
    engine = ResponseEngine(
        world.ws,
        _policy(
            ("throttle", {"requests_per_second": 0.5, "burst": 2}),
            ("label_only", {}),
            ("block", {"for_s": 600}),
        ),
        notify=None,
    )
    [incident] = engine.handle([_alert()])
    now = controls.controls_for(world.ws, "mallory")
    assert now.is_blocked() and now.label_only and now.throttle() == (0.5, 2)
    assert controls.controls_for(world.ws, "alice") == controls.Controls("alice")  # nobody else
    assert incident.status == "completed" and [a.status for a in incident.actions] == ["done"] * 3
    alert_id = incident.alert.id
    for action in ("runtime.principal.block", "runtime.principal.throttle", "runtime.principal.label_only"):
        [event] = _events(world.ws, action)
        assert (event["alert_id"], event["actor"], event["subject"]) == (
            str(alert_id),
            RESPONSE_USER,
            "principal:mallory",
        )
    acted = _events(world.ws, "response.action")
    assert [(e["action"], e["alert_id"], e["incident_id"], e["status"]) for e in acted] == [
        (a, alert_id, incident.id, "done") for a in ("throttle", "label_only", "block")
    ]


def test_repeats_do_not_rerun_and_escalation_runs_once(world: World) -> None:
    engine = ResponseEngine(world.ws, _policy(("label_only", {})), notify=None)
    assert engine.handle([_alert(severity=Severity.MEDIUM)]) == []  # below the playbook's bar
    assert len(engine.handle([_alert(severity=Severity.HIGH)])) == 1  # escalated to it: runs
    assert engine.handle([_alert(severity=Severity.HIGH)]) == []  # a repeat
    assert engine.handle([_alert(severity=Severity.CRITICAL)]) == []  # ran already at high
    assert len(list_incidents(world.ws)) == 1


def test_revoke_key_revokes_the_principals_keys(world: World) -> None:
    _responder(world, Role.ADMIN)
    key = _mallory(world)
    [incident] = ResponseEngine(world.ws, _policy(("revoke_key", {})), notify=None).handle([_alert()])
    assert incident.status == "completed", incident.actions
    with pytest.raises(PermissionDenied):
        authenticate(world.ws, key)
    authenticate(world.ws, world.keys["viewer"])  # other users' keys still work
    assert len(_events(world.ws, "registry.key.revoke")) == 1
    assert _events(world.ws, "registry.key.revoke")[0]["actor"] == RESPONSE_USER


def test_registry_actions_fail_without_the_response_user_and_raise_an_alert(world: World) -> None:
    _mallory(world)
    engine = ResponseEngine(world.ws, _policy(("revoke_key", {}), ("block", {})), notify=None)
    [incident] = engine.handle([_alert()])
    assert [a.status for a in incident.actions] == ["failed", "done"]  # the rest still runs
    assert incident.status == "partial"
    assert "mlsecops-response" in incident.actions[0].detail["error"]
    [failed] = AlertStore(world.ws).list(kind=FAILED_KIND)
    assert (failed.principal, failed.model, failed.severity) == ("mallory", "fraud", Severity.HIGH)
    assert (failed.evidence["action"], failed.evidence["incident_id"]) == ("revoke_key", incident.id)
    assert len(list_incidents(world.ws)) == 1  # a response.failed alert is never answered (no loops)


def test_a_deployer_cannot_revoke_keys(world: World) -> None:
    _responder(world, Role.DEPLOYER)
    _mallory(world)
    [incident] = ResponseEngine(world.ws, _policy(("revoke_key", {})), notify=None).handle([_alert()])
    assert incident.status == "failed" and "may not admin" in incident.actions[0].detail["error"]


def test_rollback_restores_the_previous_signed_production_version(world: World) -> None:
    _responder(world)
    deployer = world.regs["deployer"]
    v1 = world.ready_for_production("fraud", b"one")
    deployer.promote("fraud", v1, to="production")
    v2 = world.ready_for_production("fraud", b"two")
    deployer.promote("fraud", v2, to="production")
    [incident] = ResponseEngine(world.ws, _policy(("rollback", {})), notify=None).handle([_alert()])
    assert incident.status == "completed", incident.actions
    assert incident.actions[0].detail == {"model": "fraud", "from": v2, "to": v1}
    assert deployer.show("fraud@production").version == v1
    [event] = _events(world.ws, "registry.rollback")
    assert event["actor"] == RESPONSE_USER


def test_alerts_from_many_accounts_roll_back_once_within_the_cooldown(world: World) -> None:
    _responder(world)
    deployer = world.regs["deployer"]
    versions = []
    for content in (b"one", b"two", b"three"):
        versions.append(world.ready_for_production("fraud", content))
        deployer.promote("fraud", versions[-1], to="production")
    engine = ResponseEngine(world.ws, _policy(("rollback", {})), notify=None)
    first, second = engine.handle([_alert("sybil-1"), _alert("sybil-2")])
    assert first.actions[0].detail["to"] == versions[1]
    assert second.status == "completed" and second.actions[0].detail["rolled_back_by"] == first.id
    assert deployer.show("fraud@production").version == versions[1]
    [planned] = ResponseEngine(world.ws, _policy(("rollback", {})), dry_run=True, notify=None).handle(
        [_alert("sybil-3")]
    )
    assert "skip" in planned.actions[0].detail["would"]
    # without the cooldown, the next alert puts back the version the first rollback took out
    eager = ResponseEngine(world.ws, _policy(("rollback", {"cooldown_s": 0})), notify=None)
    [third] = eager.handle([_alert("sybil-4")])
    assert third.actions[0].detail["to"] == versions[2]


def test_rollback_without_a_previous_version_fails_and_is_an_alert(world: World) -> None:
    _responder(world)
    v1 = world.ready_for_production("fraud", b"one")
    world.regs["deployer"].promote("fraud", v1, to="production")
    [incident] = ResponseEngine(world.ws, _policy(("rollback", {})), notify=None).handle([_alert()])
    assert incident.status == "failed"
    assert "no previous production version" in incident.actions[0].detail["error"]
    assert [a.kind for a in AlertStore(world.ws).list()] == [FAILED_KIND, "extraction"]
    assert world.regs["deployer"].show("fraud@production").version == v1


def _log_requests(ws: Workspace, rows: list[tuple[str, str, float]]) -> None:
    with ws.session() as s:
        for principal, source, t in rows:
            s.add(
                DecisionRecord(
                    ts_us=round(t * 1e6),
                    principal=principal,
                    model="fraud",
                    version="1",
                    decision="accepted",
                    status=200,
                    latency_ms=1.0,
                    input_digest="0" * 64,
                    rows=1,
                    source=source,
                    inputs="[[0.5, 0.25]]",
                    outputs="[[0.9, 0.1]]",
                )
            )


def test_quarantine_writes_inputs_apart_and_filters_exports(world: World) -> None:
    t = time.time()
    _log_requests(world.ws, [("mallory", "", t - 30), ("mallory", "", t - 20), ("alice", "", t - 10)])
    [incident] = ResponseEngine(world.ws, _policy(("quarantine", {"lookback_s": 3600})), notify=None).handle(
        [_alert()]
    )
    assert incident.status == "completed", incident.actions
    detail = incident.actions[0].detail
    assert detail["copied"] == 2 and detail["scope"] == "principal" and detail["value"] == "mallory"
    lines = [json.loads(x) for x in Path(detail["path"]).read_text().splitlines()]
    assert {x["principal"] for x in lines} == {"mallory"} and lines[0]["inputs"] == [[0.5, 0.25]]
    assert Path(detail["path"]).stat().st_mode & 0o077 == 0
    quarantined = QuarantineFilter.load(world.ws)
    assert quarantined("mallory", "", "fraud", t - 20) and quarantined("mallory", "", "fraud", t + 999)
    assert not quarantined("alice", "", "fraud", t - 10)
    assert not quarantined("mallory", "", "churn", t)  # another model's inputs
    assert not is_quarantined(
        world.ws, principal="mallory", model="fraud", time_s=t - 7200
    )  # before the range
    [event] = _events(world.ws, "runtime.quarantine")
    assert (event["alert_id"], event["incident_id"], event["copied"]) == (incident.alert.id, incident.id, 2)
    # the retraining export leaves mallory's requests out; the plain export (for replays) keeps them
    kept = io.StringIO()
    result, left_out = export_for_training(world.ws, "fraud", kept)
    assert (result.written, left_out) == (3, 2)
    assert [json.loads(x)["principal"] for x in kept.getvalue().splitlines()] == ["alice"]
    plain = io.StringIO()
    export_jsonl(world.ws, "fraud", plain)
    assert len(plain.getvalue().splitlines()) == 3


def test_quarantine_of_a_source(world: World) -> None:
    t = time.time()
    _log_requests(world.ws, [("bob", "partner-feed", t - 5), ("carol", "web", t - 4)])
    engine = ResponseEngine(
        world.ws, _policy(("quarantine", {"scope": "source", "source": "partner-feed"})), notify=None
    )
    [incident] = engine.handle([_alert(principal="")])
    assert incident.actions[0].detail["copied"] == 1
    quarantined = QuarantineFilter.load(world.ws)
    assert quarantined("anyone", "partner-feed", "fraud", t) and not quarantined("carol", "web", "fraud", t)


def _scan_pipeline(tmp_path: Path) -> Path:
    (tmp_path / "data.csv").write_text("a,b\n1,2\n3,4\n")
    pipeline = tmp_path / "retrain.yaml"
    pipeline.write_text(
        "name: retrain\nstages:\n  - name: scan\n    check: artifact.scan\n    paths: [data.csv]\n"
        "policy:\n  - stage: scan\n    max_severity: low\n"
    )
    return pipeline


@pytest.mark.timeout(120)
def test_retrain_runs_the_pipeline_and_records_its_run(world: World, tmp_path: Path) -> None:
    pipeline = _scan_pipeline(tmp_path)
    engine = ResponseEngine(
        world.ws, _policy(("retrain", {"pipeline": str(pipeline), "timeout_s": 100})), notify=None
    )
    [incident] = engine.handle([_alert()])
    assert incident.status == "running" and incident.actions[0].status == "running"
    assert engine.wait(110)
    done = get_incident(world.ws, incident.id)  # type: ignore[arg-type]
    action = done.actions[0]
    assert (done.status, action.status) == ("completed", "done"), action.detail
    assert action.detail["gate_passed"] is True and action.detail["exit_code"] == 0
    with world.ws.session(readonly=True) as s:
        from mlsecops.store import PipelineRun

        run = s.get(PipelineRun, action.detail["run_id"])
        assert run is not None and run.actor == f"{RESPONSE_USER}:incident-{incident.id}"


@pytest.mark.timeout(120)
def test_retrain_runs_once_per_pipeline_and_is_killed_at_its_deadline(world: World, tmp_path: Path) -> None:
    pipeline = _scan_pipeline(tmp_path)
    storm = ResponseEngine(
        world.ws, _policy(("retrain", {"pipeline": str(pipeline), "timeout_s": 100})), notify=None
    )
    first, second = storm.handle([_alert("mallory"), _alert("eve")])  # an alert storm starts one run
    assert first.status == "running"
    assert second.status == "completed" and second.actions[0].detail["already_running"] == first.id
    assert storm.wait(100)
    assert get_incident(world.ws, first.id).status == "completed"  # type: ignore[arg-type]
    short = ResponseEngine(
        world.ws, _policy(("retrain", {"pipeline": str(pipeline), "timeout_s": 0.2})), notify=None
    )
    [killed] = short.handle([_alert("trudy")])
    assert short.wait(60)
    done = get_incident(world.ws, killed.id)  # type: ignore[arg-type]
    assert done.status == "failed" and "killed after 0.2 s" in done.actions[0].detail["error"]
    [failed] = AlertStore(world.ws).list(kind=FAILED_KIND)
    assert failed.evidence["action"] == "retrain" and failed.evidence["incident_id"] == killed.id


def test_retrain_of_an_invalid_pipeline_fails_before_starting(world: World, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("stages: 3\n")
    [incident] = ResponseEngine(world.ws, _policy(("retrain", {"pipeline": str(bad)})), notify=None).handle(
        [_alert()]
    )
    assert incident.status == "failed" and "bad.yaml" in incident.actions[0].detail["error"]


def test_a_playbook_for_an_alert_kind_no_detector_raises_is_refused(world: World) -> None:
    with pytest.raises(ConfigError, match="no detector raises alerts of kind 'extration'"):
        ResponseEngine(world.ws, _policy(("block", {}), kind="extration"))
    with pytest.raises(ConfigError, match="never answered by playbooks"):
        ResponseEngine(world.ws, _policy(("block", {}), kind=FAILED_KIND))
    for kind in ("extraction", "query_attack", "adversarial_input", "drift", "performance"):
        ResponseEngine(world.ws, _policy(("block", {}), kind=kind), notify=None)


def test_bad_playbook_params_are_refused_at_start(world: World) -> None:
    with pytest.raises(ConfigError, match="playbook 'contain', action block: for"):
        ResponseEngine(world.ws, _policy(("block", {"for": 60})))
    with pytest.raises(ConfigError, match="pipeline"):
        ResponseEngine(world.ws, _policy(("retrain", {})))


# ---------------------------------------------------------------------------------------------- dry run, incidents


def test_dry_run_changes_nothing(world: World) -> None:
    _responder(world)
    _mallory(world)
    v1 = world.ready_for_production("fraud", b"one")
    world.regs["deployer"].promote("fraud", v1, to="production")
    _log_requests(world.ws, [("mallory", "", time.time() - 5)])
    before = _snapshot(world.ws)
    policy = _policy(
        ("block", {}), ("label_only", {}), ("revoke_key", {}), ("rollback", {}), ("quarantine", {})
    )
    [incident] = ResponseEngine(world.ws, policy, dry_run=True, notify=None).handle([_alert()])
    assert _snapshot(world.ws) == before
    assert incident.id is None and incident.dry_run and incident.status == "dry_run"
    statuses = {a.action: (a.status, a.detail) for a in incident.actions}
    assert statuses["block"][0] == "would" and "block mallory" in statuses["block"][1]["would"]
    assert statuses["revoke_key"][0] == "would_fail"  # a deployer may not revoke keys: shown, not hidden
    assert statuses["rollback"][1]["from"] == v1
    assert statuses["quarantine"][1]["logged_rows_now"] == 1


def test_incident_timeline(world: World) -> None:
    engine = ResponseEngine(world.ws, _policy(("block", {}), ("label_only", {})), notify=None)
    [incident] = engine.handle([_alert()])
    shown = get_incident(world.ws, incident.id).to_json()  # type: ignore[arg-type]
    events = [e["event"] for e in shown["timeline"]]
    assert events == [
        "alert.raised",
        "playbook.started",
        "action.block.started",
        "action.block.done",
        "action.label_only.started",
        "action.label_only.done",
        "incident.completed",
    ]
    times = [e["t_s"] for e in shown["timeline"]]
    assert times == sorted(times) and times[0] == 0
    assert shown["time_to_outcome_s"] >= 0 and all(a["duration_s"] >= 0 for a in shown["actions"])
    assert shown["alert"]["principal"] == "mallory" and shown["status"] == "completed"
    assert [i.id for i in list_incidents(world.ws, status="completed", model="fraud")] == [incident.id]
    assert list_incidents(world.ws, status="failed") == [] and list_incidents(world.ws, model="churn") == []
    with pytest.raises(InputError, match="status must be one of"):
        list_incidents(world.ws, status="closed")
    [event] = _events(world.ws, "response.outcome")
    assert (event["alert_id"], event["status"]) == (incident.alert.id, "completed")
    with world.ws.session(readonly=True) as s:
        assert audit.verify(s).ok


def test_handle_never_raises(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = ResponseEngine(world.ws, _policy(("block", {})), notify=None)

    def broken(alert: Alert) -> Any:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(engine.store, "record", broken)
    assert engine.handle([_alert()]) == []


# ---------------------------------------------------------------------------------------------- webhooks


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    received: list[tuple[dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((dict(self.headers), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return None

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/alerts", received
    finally:
        server.shutdown()
        server.server_close()


def test_alerts_are_announced_by_signed_webhook(
    world: World, receiver: tuple[str, list[tuple[dict[str, str], bytes]]]
) -> None:
    url, received = receiver
    world.regs["admin"].add_webhook(url, SECRET, ["alert.raised", "alert.acknowledged"])
    engine = ResponseEngine(world.ws, GuardPolicy())
    engine.handle([_alert(severity=Severity.MEDIUM)])
    engine.handle([_alert(severity=Severity.MEDIUM)])  # a repeat: not announced again
    engine.handle([_alert(severity=Severity.HIGH)])  # escalated: announced
    alert_id = engine.store.list()[0].id
    engine.store.acknowledge(alert_id, actor="alice")
    assert engine.announcer is not None and engine.announcer.flush(30)
    assert [h["X-Mlsecops-Event"] for h, _ in received] == [
        "alert.raised",
        "alert.raised",
        "alert.acknowledged",
    ]
    for headers, body in received:
        assert verify_signature(SECRET, body, headers["X-Mlsecops-Signature"])
        assert not verify_signature("another-secret-of-16", body, headers["X-Mlsecops-Signature"])
    payloads = [json.loads(b) for _, b in received]
    assert [p.get("change") for p in payloads] == ["new", "escalated", None]
    assert payloads[1]["alert"]["severity"] == "high" and payloads[1]["alert"]["count"] == 3
    with world.ws.session(readonly=True) as s:
        n = s.execute(select(func.count()).select_from(DecisionRecord)).scalar_one()
    assert n == 0


def test_a_relative_retrain_pipeline_resolves_against_the_policy_file(tmp_path: Path) -> None:
    from mlsecops.runtime.policy import load_policy

    (tmp_path / "conf").mkdir()
    path = tmp_path / "conf" / "guard.yaml"
    path.write_text(
        "playbooks:\n  - name: drifted\n    kind: drift\n    actions:\n"
        "      - {action: retrain, params: {pipeline: pipelines/retrain.yaml}}\n      - {action: block}\n"
    )
    actions = load_policy(path).playbooks[0].actions
    assert actions[0].params["pipeline"] == str(tmp_path / "conf" / "pipelines" / "retrain.yaml")
    assert actions[1].params == {}


@pytest.fixture
def trickling_receiver() -> Iterator[str]:
    status = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"
    yield from serve_slowly([bytes([b]) for b in status], gap_s=0.2, path="/alerts")


def test_a_slow_webhook_receiver_does_not_hold_the_detectors(world: World, trickling_receiver: str) -> None:
    world.regs["admin"].add_webhook(trickling_receiver, SECRET, ["alert.raised"])
    engine = ResponseEngine(world.ws, _policy(("label_only", {})))
    started = time.monotonic()
    incidents = engine.handle([_alert(f"sybil-{i}") for i in range(3)])
    took = time.monotonic() - started
    assert len(incidents) == 3 and took < 5.0  # three deliveries would take 3 x the 5 s deadline
    assert controls.controls_for(world.ws, "sybil-2").label_only
