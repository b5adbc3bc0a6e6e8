"""Pipelines: run registered checks as named stages and gate the run on a policy.

>>> from pathlib import Path
>>> from mlsecops.pipeline import load_pipeline, run_pipeline
>>> # result = run_pipeline(load_pipeline(Path("examples/pipeline.yaml")), workspace=ws)
>>> # result.passed, result.gate.results
"""

from __future__ import annotations

from mlsecops.pipeline.history import RunSummary, list_runs, run_report
from mlsecops.pipeline.policy import GateResult, MaxSeverityRule, MetricRule, Rule, RuleResult, parse_rules
from mlsecops.pipeline.runner import RunResult, StageResult, run_pipeline
from mlsecops.pipeline.spec import Pipeline, Stage, load_pipeline

__all__ = [
    "GateResult",
    "MaxSeverityRule",
    "MetricRule",
    "Pipeline",
    "Rule",
    "RuleResult",
    "RunResult",
    "RunSummary",
    "Stage",
    "StageResult",
    "list_runs",
    "load_pipeline",
    "parse_rules",
    "run_pipeline",
    "run_report",
]
