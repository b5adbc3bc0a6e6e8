"""Pipeline loading, the policy gate, and recording of runs (on SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mlsecops.core import ConfigError, Finding, InputError, Report, Target
from mlsecops.core.checks import CheckKind, register, unregister
from mlsecops.pipeline import load_pipeline, run_pipeline
from mlsecops.store import PipelineRun, StoredReport, Workspace, audit


@pytest.fixture(autouse=True)
def fake_checks() -> Iterator[None]:
    @register("test.scoring", kind=CheckKind.AUDIT, summary="reports a score", metrics=("score", "acc@*"))
    class Scoring:
        def run(self, target: Target) -> Report:
            value = float(target.options.get("score", 0.5))  # type: ignore[arg-type]
            return Report(subject="s", kind="test.scoring", metrics={"score": value, "acc@pgd_0.1": value})

    @register("test.finder", kind=CheckKind.AUDIT, summary="finds what it is told")
    class Finder:
        def run(self, target: Target) -> Report:
            sev = str(target.options.get("severity", "low"))
            return Report(
                subject="s",
                kind="test.finder",
                findings=(Finding(check="test.finder", severity=sev, title="t"),),
            )

    @register("test.broken", kind=CheckKind.AUDIT, summary="cannot read its input")
    class Broken:
        def run(self, target: Target) -> Report:
            raise InputError("the data file is truncated")

    yield
    for name in ("test.scoring", "test.finder", "test.broken"):
        unregister(name)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text(textwrap.dedent(text))
    return path


GOOD = """
name: t
stages:
  - {name: score, check: test.scoring, options: {score: 0.8}}
  - {name: find, check: test.finder, options: {severity: low}}
policy:
  - {stage: find, max_severity: medium}
  - {metric: "score >= 0.7"}
  - {stage: score, metric: "acc@pgd_0.1 > 0.5"}
"""


def test_passing_run_is_recorded_with_audit_event(tmp_path: Path, workspace: Workspace) -> None:
    result = run_pipeline(load_pipeline(_write(tmp_path, GOOD)), workspace=workspace, actor="alice")
    assert result.passed
    assert [r.passed for r in result.gate.results] == [True, True, True]
    assert result.report.metrics["score/score"] == 0.8
    assert (result.report_dir / "report.html").is_file()  # type: ignore[operator]
    with workspace.session(readonly=True) as s:
        run = s.get(PipelineRun, result.run_id)
        assert run is not None and run.passed and run.actor == "alice"
        assert (
            s.scalar(select(func.count()).select_from(StoredReport).where(StoredReport.run_id == run.id)) == 3
        )
        [event] = list(audit.iter_events(s, action="pipeline.run"))
        assert json.loads(event.details)["passed"] is True


def test_failing_rules_fail_the_gate(tmp_path: Path) -> None:
    text = GOOD.replace("score: 0.8", "score: 0.6").replace("severity: low", "severity: high")
    result = run_pipeline(load_pipeline(_write(tmp_path, text)))
    assert not result.passed
    assert [r.passed for r in result.gate.results] == [False, False, True]
    assert result.gate.results[0].observed == "worst finding high"


def test_stage_that_cannot_run_fails_closed(tmp_path: Path) -> None:
    text = """
    stages:
      - {name: ok, check: test.finder}
      - {name: bad, check: test.broken}
    """
    result = run_pipeline(load_pipeline(_write(tmp_path, text)))
    assert not result.passed
    assert result.stages[1].error == "the data file is truncated"
    assert result.stages[1].report.findings[0].check == "pipeline.stage_error"
    assert any(r.rule == "bad: stage ran" and not r.passed for r in result.gate.results)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("stages: [{name: a, check: test.nope}]", "unknown check 'test.nope'"),
        (
            "stages: [{name: a, check: test.finder}]\npolicy: [{stage: b, max_severity: low}]",
            "unknown stage 'b'",
        ),
        (
            "stages: [{name: a, check: test.scoring}]\npolicy: [{metric: 'recall >= 1'}]",
            "reports a metric 'recall'",
        ),
        (
            "stages: [{name: a, check: test.scoring}]\npolicy: [{stage: a, metric: 'recall >= 1'}]",
            "declares: score",
        ),
        ("stages: [{name: a, check: test.scoring}]\npolicy: [{metric: 'score => 1'}]", "must read"),
        ("stages: [{name: a, check: test.finder}]\npolicy: [{max_severity: severe}]", "severity must be"),
        ("stages: [{name: a, check: test.finder}, {name: a, check: test.finder}]", "used twice"),
        ("stages: []", "non-empty `stages`"),
        ("stages: [{name: a, check: test.finder, bogus: 1}]", "unknown key"),
        ("stages: [{name: a\n", "not valid YAML at line"),
        ("- just a list", "must hold a mapping"),
        ("stages: [{name: a, check: test.finder}]\nseed: x", "`seed` must be an integer"),
    ],
)
def test_bad_pipeline_files_are_config_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        load_pipeline(_write(tmp_path, text))


def test_yaml_tags_never_build_objects(tmp_path: Path) -> None:
    text = "stages: !!python/object/apply:os.system ['echo pwned > /tmp/mlsecops-pwned']"
    with pytest.raises(ConfigError):
        load_pipeline(_write(tmp_path, text))
    assert not Path("/tmp/mlsecops-pwned").exists()


def test_missing_pipeline_file_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_pipeline(tmp_path / "absent.yaml")


def test_separate_policy_file_replaces_inline_policy(tmp_path: Path) -> None:
    pipeline = _write(tmp_path, GOOD)
    policy = tmp_path / "strict.yaml"
    policy.write_text("policy:\n  - {stage: find, max_severity: info}\n")
    result = run_pipeline(load_pipeline(pipeline, policy_path=policy))
    assert not result.passed and len(result.gate.results) == 1


def test_paths_resolve_against_the_pipeline_folder(tmp_path: Path) -> None:
    text = "stages: [{name: a, check: test.finder, paths: [data/x.csv]}]"
    p = load_pipeline(_write(tmp_path, text))
    assert p.stages[0].paths == (tmp_path.resolve() / "data" / "x.csv",)


def test_example_pipeline_matches_the_bundled_demo() -> None:
    from importlib import resources

    repo = Path(__file__).resolve().parents[3]
    bundled = (resources.files("mlsecops.pipeline") / "demo_pipeline.yaml").read_text(encoding="utf-8")
    assert (repo / "examples" / "pipeline.yaml").read_text(encoding="utf-8") == bundled
