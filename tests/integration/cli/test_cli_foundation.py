"""The CLI end to end (in-process): init, audit, run, demo, exit codes and one-line errors."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

Cli = Callable[..., Any]  # the `cli` fixture of tests/conftest.py, returning a CliResult


def test_version(cli: Cli) -> None:
    r = cli("--version")
    assert r.code == 0 and r.out.startswith("mlsecops ")


def test_init_then_verify_then_tamper(cli: Cli, tmp_path: Path) -> None:
    assert cli("init").code == 0
    ok = cli("audit", "verify")
    assert ok.code == 0 and "intact" in ok.out
    with sqlite3.connect(tmp_path / ".mlsecops" / "mlsecops.db") as db:
        db.execute("UPDATE audit_events SET subject = 'elsewhere' WHERE seq = 1")
    bad = cli("audit", "verify")
    assert bad.code == 1
    assert "event 1" in bad.err
    report = json.loads(cli("audit", "verify", "--format", "json").out)
    assert report["verdict"] == "tampered" and report["max_severity"] == "critical"
    assert report["findings"][0]["location"] == {"event": 1}
    assert "edited" in report["findings"][0]["detail"]


def test_audit_log_json_and_filters(cli: Cli) -> None:
    cli("init")
    r = cli("audit", "log", "--format", "json", "--action", "workspace.*")
    events = json.loads(r.out)
    assert r.code == 0 and [e["action"] for e in events] == ["workspace.init"]
    assert json.loads(cli("audit", "log", "--format", "json", "--since", "2999-01-01").out) == []
    bad = cli("audit", "log", "--since", "yesterday")
    assert bad.code == 2 and "ISO date" in bad.err


def test_missing_workspace_is_one_line_exit_2(cli: Cli) -> None:
    r = cli("audit", "verify")
    assert r.code == 2
    assert "mlsecops init" in r.err and "Traceback" not in r.err + r.out


def test_corrupt_workspace_is_exit_2_and_untouched(cli: Cli, tmp_path: Path) -> None:
    home = tmp_path / ".mlsecops"
    home.mkdir()
    (home / "mlsecops.db").write_bytes(b"\x00garbage" * 64)
    r = cli("audit", "log")
    assert r.code == 2 and "Traceback" not in r.err
    assert (home / "mlsecops.db").read_bytes() == b"\x00garbage" * 64


def test_newer_schema_is_exit_2(cli: Cli, tmp_path: Path) -> None:
    cli("init")
    with sqlite3.connect(tmp_path / ".mlsecops" / "mlsecops.db") as db:
        db.execute("UPDATE alembic_version SET version_num = 'ffff'")
    r = cli("audit", "log")
    assert r.code == 2 and "newer" in r.err


def _pipeline(tmp_path: Path, policy: str) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(f"name: cli-test\nstages:\n  - {{name: audit, check: audit.verify}}\npolicy:\n{policy}")
    return path


def test_run_passes_and_records(cli: Cli, tmp_path: Path) -> None:
    cli("init")
    p = _pipeline(tmp_path, "  - {stage: audit, max_severity: info}\n  - {metric: 'audit_events >= 1'}\n")
    r = cli("run", str(p))
    assert r.code == 0, r.err
    assert "PASS" in r.out and "HTML report:" in r.err
    log = json.loads(cli("audit", "log", "--format", "json", "--action", "pipeline.run").out)
    assert log[0]["details"]["passed"] is True


def test_run_fails_gate_with_exit_1(cli: Cli, tmp_path: Path) -> None:
    cli("init")
    p = _pipeline(tmp_path, "  - {metric: 'audit_events >= 100'}\n")
    r = cli("run", str(p), "--format", "json")
    assert r.code == 1
    report = json.loads(r.out)
    assert report["verdict"] == "fail" and report["gate"][0]["passed"] is False


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ("  - {metric: 'recall >= 0.9'}\n", "no stage of this pipeline reports a metric 'recall'"),
        ("  - {stage: nope, max_severity: low}\n", "unknown stage"),
    ],
)
def test_bad_policy_is_exit_2_and_stores_nothing(cli: Cli, tmp_path: Path, policy: str, message: str) -> None:
    cli("init")
    before = cli("audit", "log", "--format", "json").out
    r = cli("run", str(_pipeline(tmp_path, policy)))
    assert r.code == 2 and message in r.err and "Traceback" not in r.err
    assert cli("audit", "log", "--format", "json").out == before


def test_unreadable_pipeline_is_exit_2(cli: Cli, tmp_path: Path) -> None:
    cli("init")
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00\x01")
    assert cli("run", "absent.yaml").code == 2
    r = cli("run", "bin.yaml")
    assert r.code == 2 and "UTF-8" in r.err


@pytest.mark.parametrize("fmt", ["json", "sarif", "html", "text"])
def test_run_writes_every_format_to_output(cli: Cli, tmp_path: Path, fmt: str) -> None:
    cli("init")
    out = tmp_path / f"report.{fmt}"
    r = cli(
        "run",
        str(_pipeline(tmp_path, "  - {stage: audit, max_severity: info}\n")),
        "--format",
        fmt,
        "--output",
        str(out),
    )
    assert r.code == 0 and out.stat().st_size > 0
    assert out.stat().st_mode & 0o077 == 0


def test_usage_error_is_exit_2(cli: Cli) -> None:
    assert cli("no-such-command").code == 2
    assert cli("run").code == 2


def test_demo_runs_end_to_end(cli: Cli, tmp_path: Path) -> None:
    r = cli("demo", "--dir", str(tmp_path / "demo"))
    assert r.code == 0, r.out + r.err
    html = tmp_path / "demo" / ".mlsecops" / "reports" / "run-1" / "report.html"
    assert html.is_file() and str(html) in r.err.replace("\n", "")


def test_console_script_debug_shows_traceback(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "mlsecops.cli", "audit", "verify"]
    plain = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    debug = subprocess.run(
        [*cmd[:3], "--debug", *cmd[3:]], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert debug.returncode == 2 and "Traceback" in debug.stderr


@pytest.mark.postgres
def test_cli_on_postgresql_through_the_same_code(cli: Cli, tmp_path: Path, postgres_server: Any) -> None:
    env = {"MLSECOPS_DATABASE_URL": postgres_server.create_database()}
    assert cli("init", env=env).code == 0
    p = _pipeline(tmp_path, "  - {stage: audit, max_severity: info}\n")
    assert cli("run", str(p), env=env).code == 0
    verify = cli("audit", "verify", env=env)
    assert verify.code == 0 and "2 event(s)" in verify.out
    assert not (tmp_path / ".mlsecops" / "mlsecops.db").exists()  # nothing went to SQLite
    log = json.loads(cli("audit", "log", "--format", "json", env=env).out)
    assert [e["action"] for e in log] == ["workspace.init", "pipeline.run"]


def test_recorded_runs_can_be_listed_and_rendered(cli: Cli, tmp_path: Path) -> None:
    cli("init")
    p = _pipeline(tmp_path, "  - {metric: 'audit_events >= 100'}\n")
    assert cli("run", str(p)).code == 1
    listed = cli("runs", "list")
    assert listed.code == 0 and "FAIL" in listed.out and "audit_events >= 100" in listed.out
    combined = json.loads(cli("runs", "show", "1", "--format", "json").out)
    assert combined["kind"] == "pipeline" and combined["verdict"] == "fail"
    stage = json.loads(cli("runs", "show", "1", "--stage", "audit", "--format", "json").out)
    assert stage["kind"] == "audit.verify" and stage["metrics"]["audit_events"] == 1.0
    missing = cli("runs", "show", "7")
    assert missing.code == 2 and "no pipeline run 7" in missing.err
