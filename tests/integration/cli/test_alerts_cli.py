"""``mlsecops alerts list|show|ack|resolve|respond`` and ``mlsecops incidents list|show`` end to end,
in-process: formats, the acting user from MLSECOPS_API_KEY, clear errors, dry runs that write nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlsecops.core.severity import Severity
from mlsecops.monitor.alerts import AlertStore
from mlsecops.monitor.interface import Alert
from mlsecops.registry import Role, authenticate, create_api_key, create_user
from mlsecops.runtime import controls
from mlsecops.store import Workspace, audit

POLICY = """\
version: 1
playbooks:
  - name: contain-thieves
    kind: extraction
    min_severity: high
    actions:
      - action: block
        params: {for_s: 3600}
      - action: label_only
"""


def _alert(principal: str, severity: Severity = Severity.HIGH, model: str = "fraud") -> Alert:
    return Alert(
        kind="extraction",
        principal=principal,
        model=model,
        severity=severity,
        query_index=140,
        time=time.time(),
        evidence={"score": 0.93, "note": "\x1b[31mred\x1b[0m"},
    )


@pytest.fixture
def setup(tmp_path: Path) -> dict[str, Any]:
    ws = Workspace.init(tmp_path / ".mlsecops", actor="test")
    create_user(ws, "root", Role.ADMIN, actor=None)
    admin_key = create_api_key(ws, "root", actor=None)
    admin = authenticate(ws, admin_key)
    create_user(ws, "vera", Role.VIEWER, actor=admin)
    viewer_key = create_api_key(ws, "vera", actor=admin)
    store = AlertStore(ws)
    ids = [
        store.record(_alert("mallory")).alert.id,
        store.record(_alert("eve", Severity.MEDIUM, "churn")).alert.id,
    ]
    (tmp_path / "guard.yaml").write_text(POLICY)
    return {"ws": ws, "admin": admin_key, "viewer": viewer_key, "ids": ids, "tmp": tmp_path}


def _json(result: Any) -> Any:
    assert result.code == 0, result.err
    return json.loads(result.out)


def test_list_and_show_in_every_format(cli: Callable[..., Any], setup: dict[str, Any]) -> None:
    mallory, eve = setup["ids"]
    listed = _json(cli("alerts", "list", "--format", "json"))
    assert [a["id"] for a in listed] == [eve, mallory]
    assert [
        a["id"] for a in _json(cli("alerts", "list", "--status", "open", "--model", "fraud", "-f", "json"))
    ] == [mallory]
    assert _json(cli("alerts", "list", "--kind", "drift", "-f", "json")) == []
    shown = _json(cli("alerts", "show", str(mallory), "-f", "json"))
    assert (shown["principal"], shown["severity"], shown["status"], shown["count"]) == (
        "mallory",
        "high",
        "open",
        1,
    )
    text = cli("alerts", "list")
    assert text.code == 0 and "mallory" in text.out and "\x1b[31m" not in text.out
    from mlsecops.cli import _common

    with pytest.MonkeyPatch.context() as mp:  # a standard terminal: every column readable, no wrapping
        mp.setenv("COLUMNS", "80")
        mp.setattr(_common, "_consoles", {})  # consoles read the width when made
        narrow = cli("alerts", "list").out
    assert max(len(line) for line in narrow.splitlines()) <= 80, narrow
    assert all(w in narrow for w in ("mallory", "extraction", "medium", "open")), narrow
    shown_text = cli("alerts", "show", str(mallory))
    assert shown_text.code == 0 and "\x1b" not in shown_text.out and "u001b" in shown_text.out
    out = setup["tmp"] / "alerts.html"
    assert cli("alerts", "list", "-o", str(out)).code == 0 and "mallory" in out.read_text()
    sarif = cli("alerts", "list", "-f", "sarif")
    assert sarif.code == 0 and json.loads(sarif.out)["version"] == "2.1.0"


def test_bad_input_is_one_line_exit_2(cli: Callable[..., Any], setup: dict[str, Any]) -> None:
    for args in (
        ("alerts", "show", "999"),
        ("alerts", "list", "--status", "closed"),
        ("incidents", "show", "5"),
    ):
        result = cli(*args)
        assert result.code == 2 and "Traceback" not in result.err, args
        assert len(result.err.strip().splitlines()) == 1, result.err
    assert "no alert with id 999" in cli("alerts", "show", "999").err


def test_ack_records_the_key_owner_needs_a_key_and_an_acting_role(
    cli: Callable[..., Any], setup: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    mallory = setup["ids"][0]
    monkeypatch.delenv("MLSECOPS_API_KEY", raising=False)
    refused = cli("alerts", "ack", str(mallory))
    assert refused.code == 2 and "MLSECOPS_API_KEY" in refused.err
    denied = cli("alerts", "ack", str(mallory), env={"MLSECOPS_API_KEY": setup["viewer"]})
    assert denied.code == 1 and "Traceback" not in denied.err
    assert len(denied.err.strip().splitlines()) == 1 and "vera (viewer) may not acknowledge" in denied.err
    denied_resolve = cli("alerts", "resolve", str(mallory), env={"MLSECOPS_API_KEY": setup["viewer"]})
    assert denied_resolve.code == 1 and "may not resolve" in denied_resolve.err
    assert _json(cli("alerts", "show", str(mallory), "-f", "json"))["status"] == "open"
    with setup["ws"].session(readonly=True) as s:
        denials = [(e.actor, e.subject, e.details) for e in audit.iter_events(s, action="monitor.denied")]
    assert [(a, sub) for a, sub, _ in denials] == [("vera", f"alert:{mallory}")] * 2
    assert '"role":"viewer"' in denials[0][2] and '"permission":"alert.acknowledge"' in denials[0][2]
    acked = _json(
        cli(
            "alerts",
            "ack",
            str(mallory),
            "--note",
            "on it",
            "-f",
            "json",
            env={"MLSECOPS_API_KEY": setup["admin"]},
        )
    )
    assert (acked["status"], acked["acknowledged_by"], acked["ack_note"]) == ("acknowledged", "root", "on it")
    again = cli("alerts", "ack", str(mallory))
    assert again.code == 2 and "acknowledged already" in again.err
    resolved = _json(cli("alerts", "resolve", str(mallory), "-f", "json"))
    assert (resolved["status"], resolved["resolved_by"]) == ("resolved", "root")
    with setup["ws"].session(readonly=True) as s:
        acks = [(e.actor, e.subject) for e in audit.iter_events(s, action="monitor.alert_ack")]
    assert acks == [("root", f"alert:{mallory}")]


def test_respond_dry_run_writes_nothing_and_respond_acts(
    cli: Callable[..., Any], setup: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    ws: Workspace = setup["ws"]
    mallory, eve = setup["ids"]
    policy = str(setup["tmp"] / "guard.yaml")
    monkeypatch.delenv("MLSECOPS_API_KEY", raising=False)
    with ws.session(readonly=True) as s:
        before = audit.verify(s).events
    planned = _json(cli("alerts", "respond", str(mallory), "--policy", policy, "--dry-run", "-f", "json"))
    assert [(i["playbook"], i["status"], [a["status"] for a in i["actions"]]) for i in planned] == [
        ("contain-thieves", "dry_run", ["would", "would"])
    ]
    with ws.session(readonly=True) as s:
        assert audit.verify(s).events == before
    assert not controls.controls_for(ws, "mallory").blocked
    shown = cli("alerts", "respond", str(mallory), "--policy", policy, "--dry-run")
    assert shown.code == 0 and "would" in shown.out and "block mallory" in shown.out
    # acting needs an admin's key
    refused = cli(
        "alerts", "respond", str(mallory), "--policy", policy, env={"MLSECOPS_API_KEY": setup["viewer"]}
    )
    assert refused.code == 1 and "needs the role admin" in refused.err
    ran = _json(
        cli(
            "alerts",
            "respond",
            str(mallory),
            "--policy",
            policy,
            "-f",
            "json",
            env={"MLSECOPS_API_KEY": setup["admin"]},
        )
    )
    assert [i["status"] for i in ran] == ["completed"]
    assert (
        controls.controls_for(ws, "mallory").is_blocked() and controls.controls_for(ws, "mallory").label_only
    )
    # eve's alert is medium: below the playbook's bar, nothing runs
    assert _json(cli("alerts", "respond", str(eve), "--policy", policy, "-f", "json")) == []
    incidents = _json(cli("incidents", "list", "-f", "json"))
    assert [(i["id"], i["alert"]["id"]) for i in incidents] == [(ran[0]["id"], mallory)]
    shown = _json(cli("incidents", "show", str(ran[0]["id"]), "-f", "json"))
    assert [e["event"] for e in shown["timeline"]][-1] == "incident.completed"
    assert [a["action"] for a in shown["actions"]] == ["block", "label_only"]
    text = cli("incidents", "show", str(ran[0]["id"]))
    assert text.code == 0 and "timeline" in text.out and "action.block.done" in text.out
    bad = setup["tmp"] / "bad.yaml"
    bad.write_text(
        "playbooks:\n  - name: x\n    kind: extraction\n    actions: [{action: block, params: {forever: 1}}]\n"
    )
    wrong = cli("alerts", "respond", str(mallory), "--policy", str(bad), "--dry-run")
    assert wrong.code == 2 and "playbook 'x', action block: forever" in wrong.err


def test_quarantine_list_export_and_release(
    cli: Callable[..., Any], setup: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlsecops.runtime._decision_tables import DecisionRecord
    from mlsecops.runtime.quarantine import quarantine

    ws: Workspace = setup["ws"]
    now = time.time()
    with ws.session() as s:
        for i, who in enumerate(("mallory", "alice", "mallory")):
            s.add(
                DecisionRecord(
                    ts_us=round((now - 10 + i) * 1e6),
                    principal=who,
                    model="fraud",
                    version="1",
                    decision="accepted",
                    status=200,
                    latency_ms=1.0,
                    input_digest="0" * 64,
                    rows=1,
                    source="",
                    inputs="[[1.0, 2.0]]",
                )
            )
    q = quarantine(ws, scope="principal", value="mallory", model="fraud", reason="test", actor="root")
    assert q.copied == 2
    [listed] = _json(cli("incidents", "quarantine", "list", "-f", "json"))
    assert (listed["id"], listed["value"], listed["released"]) == (q.id, "mallory", None)
    assert listed["copy"] is not None and Path(listed["copy"]).exists()
    out = setup["tmp"] / "train.jsonl"
    exported = cli("incidents", "quarantine", "export", "fraud", "-o", str(out))
    assert exported.code == 0 and "2 quarantined request(s) left out" in exported.err
    assert [json.loads(x)["principal"] for x in out.read_text().splitlines()] == ["alice"]
    monkeypatch.delenv("MLSECOPS_API_KEY", raising=False)
    refused = cli(
        "incidents",
        "quarantine",
        "release",
        str(q.id),
        "--reason",
        "x",
        env={"MLSECOPS_API_KEY": setup["viewer"]},
    )
    assert refused.code == 1 and "needs the role admin" in refused.err
    released = cli(
        "incidents",
        "quarantine",
        "release",
        str(q.id),
        "--reason",
        "false alarm",
        env={"MLSECOPS_API_KEY": setup["admin"]},
    )
    assert released.code == 0, released.err
    assert _json(cli("incidents", "quarantine", "list", "--active", "-f", "json")) == []
    again = cli("incidents", "quarantine", "export", "fraud", "-o", str(out))
    assert again.code == 0 and "0 quarantined" in again.err and len(out.read_text().splitlines()) == 3
    with ws.session(readonly=True) as s:
        assert [e.actor for e in audit.iter_events(s, action="runtime.quarantine_release")] == ["root"]


@pytest.mark.timeout(180)
def test_respond_waits_for_a_retrain_to_finish(
    cli: Callable[..., Any], setup: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    tmp: Path = setup["tmp"]
    (tmp / "data.csv").write_text("a,b\n1,2\n")
    (tmp / "retrain.yaml").write_text(
        "name: retrain\nstages:\n  - name: scan\n    check: artifact.scan\n    paths: [data.csv]\n"
        "policy:\n  - stage: scan\n    max_severity: low\n"
    )
    (tmp / "retrain-guard.yaml").write_text(
        "playbooks:\n  - name: retrain\n    kind: extraction\n    actions:\n"
        "      - {action: retrain, params: {pipeline: retrain.yaml, timeout_s: 120}}\n"
    )
    monkeypatch.setenv("MLSECOPS_API_KEY", setup["admin"])
    ran = _json(
        cli(
            "alerts",
            "respond",
            str(setup["ids"][0]),
            "--policy",
            str(tmp / "retrain-guard.yaml"),
            "-f",
            "json",
        )
    )
    [action] = ran[0]["actions"]
    assert (ran[0]["status"], action["status"], action["detail"]["gate_passed"]) == (
        "completed",
        "done",
        True,
    )
    runs = _json(cli("runs", "list", "-f", "json"))
    [run] = [r for r in runs if r["run"] == action["detail"]["run_id"]]
    assert run["actor"] == f"mlsecops-response:incident-{ran[0]['id']}"
