"""The response benchmark (``benchmarks/monitor/response/run.py``) on one thief and seed: it runs end to
end and the thief is alerted, blocked and rolled back within the issue's goal. Never run in CI."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from tests._deps import require

pytestmark = [pytest.mark.benchmark, pytest.mark.timeout(600)]

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "monitor" / "response" / "run.py"


def test_response_benchmark_one_uniform_thief(tmp_path: Path) -> None:
    require("fastapi", "serve")
    require("httpx", "test")
    spec = importlib.util.spec_from_file_location("response_bench", SCRIPT)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "resp"
    assert bench.main(["--seeds", "1", "--kinds", "uniform", "--out", str(out)]) == 0
    data = json.loads(out.with_suffix(".json").read_text())
    [run] = data["runs"]
    assert run["incident_status"] == "completed"
    assert run["rollback_detail"]["to"] < run["rollback_detail"]["from"]
    assert bench._missed(run) == [], run
    assert not data["meta"]["benign_flagged"] and data["meta"]["audit_verified"]
    assert "| uniform | 1 |" in out.with_suffix(".md").read_text()
