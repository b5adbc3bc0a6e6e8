"""The policy gate: small rules over stage reports, composed into one decision.

Rules, as written in YAML (in the pipeline's ``policy:`` list or a separate file)::

    - stage: scan
      max_severity: medium              # no finding worse than medium in stage "scan"
    - stage: robustness
      metric: robust_accuracy@pgd_linf_0.1 >= 0.6
    - max_severity: high                # over every stage
    - metric: clean_accuracy >= 0.9     # the one stage whose check declares this metric

Each rule is a one-method object (``evaluate(reports) -> RuleResult``). Rules are validated against the
pipeline before anything runs: an unknown stage, severity, operator, or a metric that the stage's check
does not declare is a ``ConfigError``. A metric missing from a report at evaluation time fails the rule
(fail closed), as does a stage that could not run.

A metric measured with uncertainty carries its interval as two more metrics of the same report,
``<metric>_ci_low`` and ``<metric>_ci_high`` (the fairness audit's bootstrap intervals). A rule on such
a metric fails only when the whole interval lies beyond the threshold: ``x <= 0.1`` passes while
``x_ci_low <= 0.1``, ``x >= 0.8`` while ``x_ci_high >= 0.8``. The verdict is "not shown to violate",
so a small evaluation set (a wide interval) passes more easily: size the evaluation set, or gate on
the bound itself (``x_ci_high <= 0.1`` is an ordinary rule and demands the interval lie within).
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from mlsecops.core.checks import CheckSpec
from mlsecops.core.errors import ConfigError
from mlsecops.core.findings import Report, Severity

__all__ = ["GateResult", "MaxSeverityRule", "MetricRule", "Rule", "RuleResult", "evaluate", "parse_rules"]

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
}
CI_LOW_SUFFIX, CI_HIGH_SUFFIX = "_ci_low", "_ci_high"
"""Suffixes of the metrics that carry another metric's interval (``x`` -> ``x_ci_low``, ``x_ci_high``)."""
_METRIC_RE = re.compile(r"^\s*(?P<name>[^\s<>=!]+)\s*(?P<op>>=|<=|==|!=|>|<)\s*(?P<value>\S+)\s*$")


@dataclass(frozen=True)
class RuleResult:
    """The outcome of one rule."""

    rule: str
    """The rule as written, e.g. ``scan: max_severity medium``."""
    passed: bool
    observed: str
    """What was seen (the worst severity, the metric's value, or why it could not be read)."""


class Rule(Protocol):
    """One pass condition."""

    def describe(self) -> str:
        """The rule in one line."""
        ...

    def evaluate(self, reports: Mapping[str, Report], errors: Mapping[str, str]) -> RuleResult:
        """Judge the stage reports (by stage name); ``errors`` names stages that could not run."""
        ...


@dataclass(frozen=True)
class MaxSeverityRule:
    """No finding worse than ``limit`` in ``stage`` (or in any stage when ``stage`` is None)."""

    limit: Severity
    stage: str | None = None

    def describe(self) -> str:
        """The rule in one line."""
        return f"{self.stage or 'all stages'}: max_severity {self.limit}"

    def evaluate(self, reports: Mapping[str, Report], errors: Mapping[str, str]) -> RuleResult:
        """Pass when every finding in scope is at or below the limit and every stage in scope ran."""
        names = [self.stage] if self.stage else list(reports)
        failed = [n for n in names if n in errors]
        if failed:
            return RuleResult(self.describe(), False, f"stage {failed[0]!r} did not run: {errors[failed[0]]}")
        worst = max((f.severity for n in names for f in reports[n].findings), default=None)
        passed = worst is None or worst <= self.limit
        return RuleResult(
            self.describe(), passed, f"worst finding {worst}" if worst is not None else "no findings"
        )


@dataclass(frozen=True)
class MetricRule:
    """``metric op value`` on the report of ``stage``."""

    metric: str
    op: str
    value: float
    stage: str

    def describe(self) -> str:
        """The rule in one line."""
        return f"{self.stage}: {self.metric} {self.op} {self.value:g}"

    def evaluate(self, reports: Mapping[str, Report], errors: Mapping[str, str]) -> RuleResult:
        """Pass when the metric exists, is a number, and satisfies the comparison."""
        if self.stage in errors:
            return RuleResult(self.describe(), False, f"stage did not run: {errors[self.stage]}")
        observed = reports[self.stage].metrics.get(self.metric)
        if observed is None:
            return RuleResult(self.describe(), False, "metric not reported")
        if math.isnan(observed):
            return RuleResult(self.describe(), False, "metric is NaN")
        metrics = reports[self.stage].metrics
        low, high = metrics.get(self.metric + CI_LOW_SUFFIX), metrics.get(self.metric + CI_HIGH_SUFFIX)
        if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)) or low > high:
            return RuleResult(self.describe(), _OPS[self.op](observed, self.value), f"{observed:.6g}")
        return RuleResult(
            self.describe(),
            _interval_passes(self.op, low, high, self.value),
            f"{observed:.6g} [{low:.6g}, {high:.6g}]",
        )


def _interval_passes(op: str, low: float, high: float, value: float) -> bool:
    """Whether some point of ``[low, high]`` satisfies ``point op value`` (the interval is not wholly beyond)."""
    if op in ("<=", "<"):
        return _OPS[op](low, value)
    if op in (">=", ">"):
        return _OPS[op](high, value)
    if op == "==":
        return low <= value <= high
    return not (low == high == value)  # "!=": fails only when the interval is the single point value


@dataclass(frozen=True)
class GateResult:
    """The gate's decision: passed when every rule passed."""

    results: tuple[RuleResult, ...]

    @property
    def passed(self) -> bool:
        """Whether every rule passed."""
        return all(r.passed for r in self.results)

    def to_json(self) -> list[dict[str, Any]]:
        """The rule results as JSON-able data."""
        return [{"rule": r.rule, "passed": r.passed, "observed": r.observed} for r in self.results]


def _parse_metric(text: str, where: str) -> tuple[str, str, float]:
    match = _METRIC_RE.match(text)
    if match is None:
        raise ConfigError(
            f"{where}: metric rule must read '<name> <op> <number>' with op one of {' '.join(_OPS)}; got {text!r}"
        )
    try:
        value = float(match["value"])
    except ValueError:
        raise ConfigError(f"{where}: {match['value']!r} is not a number") from None
    return match["name"], match["op"], value


def parse_rules(raw: Any, stages: Mapping[str, CheckSpec]) -> list[Rule]:
    """Build and validate rules from their YAML form.

    Args:
        raw: a list of rule mappings (``None`` means no rules).
        stages: stage name -> the check it runs, to validate stage and metric names.

    Raises:
        ConfigError: a malformed rule, an unknown stage or severity, or a metric no stage declares.
    """
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConfigError(f"policy must be a list of rules; got {type(raw).__name__}")
    rules: list[Rule] = []
    for i, item in enumerate(raw, start=1):
        where = f"policy rule {i}"
        if not isinstance(item, dict):
            raise ConfigError(f"{where} must be a mapping such as {{stage: scan, max_severity: medium}}")
        unknown = {str(k) for k in item} - {"stage", "max_severity", "metric"}
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; use stage, max_severity, metric")
        bad = next(
            (k for k in ("stage", "max_severity", "metric") if k in item and not isinstance(item[k], str)),
            None,
        )
        if bad is not None and not (bad == "stage" and item[bad] is None):
            raise ConfigError(f"{where}: {bad} must be a string; got {type(item[bad]).__name__}")
        stage = item.get("stage")
        if stage is not None and stage not in stages:
            raise ConfigError(f"{where}: unknown stage {stage!r}; the pipeline has {sorted(stages)}")
        if ("max_severity" in item) == ("metric" in item):
            raise ConfigError(f"{where}: give exactly one of max_severity or metric")
        if "max_severity" in item:
            try:
                limit = Severity.parse(item["max_severity"])
            except ValueError as err:
                raise ConfigError(f"{where}: {err}") from None
            rules.append(MaxSeverityRule(limit=limit, stage=stage))
            continue
        name, op, value = _parse_metric(str(item["metric"]), where)
        rules.append(
            MetricRule(metric=name, op=op, value=value, stage=_metric_stage(name, stage, stages, where))
        )
    return rules


def _metric_stage(name: str, stage: str | None, stages: Mapping[str, CheckSpec], where: str) -> str:
    if stage is not None:
        if not stages[stage].declares_metric(name):
            declared = ", ".join(stages[stage].metrics) or "none"
            raise ConfigError(
                f"{where}: stage {stage!r} (check {stages[stage].name}) reports no metric {name!r}; "
                f"it declares: {declared}"
            )
        return stage
    owners = [s for s, spec in stages.items() if spec.declares_metric(name)]
    if not owners:
        raise ConfigError(f"{where}: no stage of this pipeline reports a metric {name!r}")
    if len(owners) > 1:
        raise ConfigError(
            f"{where}: metric {name!r} is reported by stages {owners}; add `stage:` to the rule"
        )
    return owners[0]


def evaluate(rules: Sequence[Rule], reports: Mapping[str, Report], errors: Mapping[str, str]) -> GateResult:
    """Judge every rule; stages that could not run fail the gate even when no rule names them."""
    results = [rule.evaluate(reports, errors) for rule in rules]
    results.extend(RuleResult(f"{stage}: stage ran", False, why) for stage, why in errors.items())
    return GateResult(tuple(results))
