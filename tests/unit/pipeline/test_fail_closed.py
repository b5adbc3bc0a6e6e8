"""A pipeline never hands a later stage an artifact that an earlier scan stage did not judge safe."""

from __future__ import annotations

import pickle
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlsecops.core import Report, Severity, Target
from mlsecops.core.checks import CheckKind, register, unregister
from mlsecops.pipeline import load_pipeline, run_pipeline

# GLOBAL os.system('true'), REDUCE: what the scanner calls malicious (assembled, never run)
HOSTILE = b"\x80\x02cos\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03."

_ran: list[tuple[str, ...]] = []


@pytest.fixture(autouse=True)
def loader_check() -> Iterator[None]:
    @register("test.loader", kind=CheckKind.AUDIT, summary="records what it was asked to load")
    class Loader:
        def run(self, target: Target) -> Report:
            _ran.append(tuple(str(p) for p in target.paths) + tuple(str(v) for v in target.options.values()))
            return Report(subject="s", kind="test.loader")

    _ran.clear()
    yield
    unregister("test.loader")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    models = tmp_path / "models"
    models.mkdir()
    (models / "evil.pkl").write_bytes(HOSTILE)
    (models / "good.pkl").write_bytes(pickle.dumps({"w": [1.0, 2.0]}))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "good.pkl").write_bytes(pickle.dumps([1, 2]))
    return tmp_path


def _run(folder: Path, stages: str) -> dict[str, object]:
    path = folder / "pipeline.yaml"
    path.write_text("name: t\nstages:\n" + textwrap.dedent(stages))
    run = run_pipeline(load_pipeline(path))
    return {"run": run, "by": {r.stage.name: r for r in run.stages}}


SCAN = "  - {name: scan, check: artifact.scan, paths: [models/], options: {workers: 1}}\n"


@pytest.mark.parametrize(
    "load",
    [
        "paths: [models/evil.pkl]",  # the flagged file itself
        "paths: [models]",  # a folder holding it
        "options: {model: models/evil.pkl}",  # named in an option, relative to the pipeline file
        "options: {models: [other/good.pkl, models/../models/evil.pkl]}",  # in a list, spelled oddly
    ],
)
def test_stage_touching_a_flagged_artifact_does_not_run(folder: Path, load: str) -> None:
    out = _run(folder, SCAN + f"  - {{name: load, check: test.loader, {load}}}\n")
    run, by = out["run"], out["by"]
    assert _ran == []
    refused = by["load"]  # type: ignore[index]
    (finding,) = refused.report.findings
    assert finding.check == "pipeline.unsafe_artifact" and finding.severity == Severity.CRITICAL
    assert finding.artifact == str((folder / "models" / "evil.pkl").resolve())
    assert "malicious" in finding.title and finding.location["judged_by"] == "scan"
    assert not run.passed  # type: ignore[attr-defined]
    assert any("load: stage ran" in r.rule and not r.passed for r in run.gate.results)  # type: ignore[attr-defined]


def test_stage_touching_only_safe_artifacts_runs(folder: Path) -> None:
    out = _run(
        folder,
        SCAN
        + "  - {name: load, check: test.loader, paths: [models/good.pkl], options: {w: other/good.pkl}}\n",
    )
    assert len(_ran) == 1
    assert out["by"]["load"].error is None  # type: ignore[index]


def test_a_scan_stage_that_could_not_run_blocks_what_it_was_given(folder: Path) -> None:
    out = _run(
        folder,
        "  - {name: scan, check: artifact.scan, paths: [models/], options: {max_seconds: -1}}\n"
        "  - {name: load, check: test.loader, paths: [models/good.pkl]}\n"
        "  - {name: elsewhere, check: test.loader, paths: [other/good.pkl]}\n",
    )
    by = out["by"]
    assert by["scan"].error is not None  # type: ignore[index]
    (finding,) = by["load"].report.findings  # type: ignore[index]
    assert finding.check == "pipeline.unsafe_artifact" and "not scanned" in finding.title
    assert _ran == [(str(folder / "other" / "good.pkl"),)]  # the unscanned folder's neighbour still runs


def test_later_scanner_stages_still_run_on_flagged_artifacts(folder: Path) -> None:
    out = _run(
        folder,
        SCAN + "  - {name: rescan, check: artifact.scan, paths: [models/evil.pkl], options: {workers: 1}}\n",
    )
    rescan = out["by"]["rescan"]  # type: ignore[index]
    assert rescan.error is None and rescan.report.verdict == "malicious"


def test_order_matters_a_stage_before_the_scan_is_not_judged_by_it(folder: Path) -> None:
    out = _run(folder, "  - {name: load, check: test.loader, paths: [models/good.pkl]}\n" + SCAN)
    assert len(_ran) == 1 and out["by"]["load"].error is None  # type: ignore[index]
