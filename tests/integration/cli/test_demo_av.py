"""The autonomous-driving case end to end, for real: ``run_av_case`` trains, gates, hardens, promotes and
serves the sign classifier behind ``mlsecops serve`` (a subprocess), and the guard's query-attack
detector flags the black-box attacker and not the benign fleet client.

We check the case's own verdict and numbers, and then the workspace through the CLI as an operator would:
``alerts list`` (the attacker's alert, none on the fleet), ``registry show signs@production`` (the
hardened version), ``runs list`` (one failed and one passed gate) and ``audit verify``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from tests._deps import require

pytestmark = pytest.mark.timeout(900)


def _cli(home: Path, *args: str, key: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLSECOPS_")}
    env.update({"MLSECOPS_HOME": str(home), "COLUMNS": "200"})
    if key is not None:
        env["MLSECOPS_API_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "mlsecops.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=home.parent,
    )


@pytest.fixture(scope="module")
def case() -> dict[str, Any]:
    require("torch", "torch")
    require("fastapi", "serve")
    from mlsecops.pipeline.case_av import run_av_case

    folder = Path(tempfile.mkdtemp(prefix="mlsecops-av-"))
    home = folder / ".mlsecops"
    lines: list[str] = []
    code = run_av_case(folder, home=home, actor="test", say=lines.append)
    numbers = json.loads((folder / "reports" / "av-case.json").read_text())
    return {"code": code, "folder": folder, "home": home, "lines": lines, "numbers": numbers}


def test_the_case_shows_what_it_should(case: dict[str, Any]) -> None:
    assert case["code"] == 0, "\n".join(case["lines"])
    n = case["numbers"]
    before, after = n["undefended"], n["hardened"]
    assert before["gate_passed"] is False and after["gate_passed"] is True
    assert before["pgd_0.1"] < 0.6 <= after["pgd_0.1"]
    assert after["certified_0.25"] >= 0.7
    assert before["sticker_2x2"] > 0.3 and before["sticker_3x3"] >= before["sticker_2x2"]  # stickers work
    assert after["clean_accuracy"] > 0.9
    assert Path(before["report"]).is_file() and Path(after["report"]).is_file()
    assert "Sticker attack examples" in Path(before["report"]).read_text()
    live = n["live"]
    assert live["fleet_statuses"] == {"200": 400} and live["fleet_accuracy"] > 0.9
    assert live["alert"]["kind"] == "query_attack" and live["alert"]["principal"] == "av-prober"
    assert live["alert"]["first_query_index"] <= 100, "the attacker should be flagged within 100 queries"
    assert live["fleet_alerts"] == 0
    assert live["guard_exit_code"] == 0  # stopped cleanly
    steps = [line.split(" ", 1)[0] for line in case["lines"] if line[:1].isdigit()]
    assert steps == ["1/6", "2/6", "3/6", "4/6", "5/6", "6/6"]
    admin_key = (case["home"] / "keys" / "demo-admin.key").read_text().strip()
    shown = "\n".join(case["lines"]) + (case["folder"] / "guard.log").read_text(errors="replace")
    assert admin_key not in shown and "Bearer" not in shown  # no secret in the output or the guard's log


def test_the_workspace_tells_the_same_story(case: dict[str, Any]) -> None:
    home = case["home"]
    alerts = json.loads(_cli(home, "alerts", "list", "-f", "json").stdout)
    assert [(a["kind"], a["principal"]) for a in alerts if a["principal"]] == [("query_attack", "av-prober")]
    key = (home / "keys" / "demo-admin.key").read_text().strip()
    assert oct((home / "keys" / "demo-admin.key").stat().st_mode & 0o777) == "0o600"
    shown = _cli(home, "registry", "show", "signs@production", "-f", "json", key=key)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["version"] == case["numbers"]["promoted_version"]
    runs = json.loads(_cli(home, "runs", "list", "-f", "json").stdout)
    assert sorted((r["pipeline"], r["passed"]) for r in runs) == [
        ("av-signs", True),
        ("av-signs-blocked", False),
    ]
    verified = _cli(home, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_workspace_with_other_users_is_refused_clearly(tmp_path: Path) -> None:
    from mlsecops.core.errors import InputError
    from mlsecops.pipeline.case_av import demo_admin
    from mlsecops.registry import Role, create_user
    from mlsecops.store import Workspace

    with Workspace.init(tmp_path / ".mlsecops", actor="test") as ws:
        create_user(ws, "someone", Role.ADMIN, actor=None)
        with pytest.raises(InputError, match="no demo admin key"):
            demo_admin(ws)


def test_example_pipelines_match_the_packaged_ones() -> None:
    from importlib import resources

    from mlsecops.pipeline.case_av import AV_PIPELINES

    examples = Path(__file__).resolve().parents[3] / "examples" / "av"
    for name, resource in AV_PIPELINES.items():
        packaged = (resources.files("mlsecops.pipeline") / resource).read_text()
        assert (examples / name).read_text() == packaged, name
