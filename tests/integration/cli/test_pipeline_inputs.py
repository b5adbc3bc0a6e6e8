"""A pipeline whose inputs are missing is bad input: exit 2 naming them, nothing run or written.

The README's first pipeline command once ran the example pipeline where its assets did not exist:
every stage "did not run", the exit code was 1 (a failed gate), and the sign and register stages had
already written keys beside the file and made a registry admin.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from mlsecops.store import PipelineRun, Workspace

Cli = Callable[..., Any]
EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "pipeline.yaml"


def test_example_pipeline_without_its_assets_is_exit_2_and_leaves_nothing(cli: Cli, tmp_path: Path) -> None:
    folder = tmp_path / "examples"
    folder.mkdir()
    shutil.copy2(EXAMPLE, folder / "pipeline.yaml")
    assert cli("init").code == 0
    r = cli("run", "examples/pipeline.yaml")
    assert r.code == 2, r.out + r.err
    assert "missing" in r.err and "assets" in r.err and "Traceback" not in r.err
    assert len(r.err.strip().splitlines()) == 1
    assert sorted(p.name for p in folder.iterdir()) == ["pipeline.yaml"]  # no keys/, no quarantine/
    with Workspace.open(tmp_path / ".mlsecops") as ws, ws.session() as s:
        assert s.scalar(select(func.count()).select_from(PipelineRun)) == 0


def test_pipeline_with_its_inputs_present_runs(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "model.pkl").write_bytes(b"\x80\x04K\x01.")  # pickle of the int 1
    (tmp_path / "p.yaml").write_text(
        "name: tiny\nstages:\n  - {name: scan, check: artifact.scan, paths: [model.pkl]}\n"
        "policy:\n  - {stage: scan, max_severity: low}\n",
        encoding="utf-8",
    )
    assert cli("init").code == 0
    r = cli("run", "p.yaml")
    assert r.code == 0, r.out + r.err
