"""The ``assess.fairness`` check: group fairness of a binary classifier, with bootstrap intervals.

``audit_fairness`` is the library call: labels, predictions (and probabilities) and one or more
sensitive columns in, a ``FairnessAudit`` out: per group and per intersectional group (every
combination of the sensitive columns' values) the size, selection rate, TPR, FPR, precision,
accuracy and, with probabilities, the expected calibration error; between the groups the
differences and ratios of demographic parity, equalised odds, equal opportunity and predictive
parity, each with a percentile bootstrap interval. Values equal fairlearn's on the same predictions
(see ``_fairness_stats``), intervals included when the seed is the one given to ``MetricFrame``.

``fairness_report`` turns the audit into a ``Report``. Its policy metrics are the between-group
aggregates over the intersectional groups (what fairlearn computes when given all the columns),
``accuracy`` (overall), and per column ``<metric>@<column>`` when there are several columns. Each
aggregate with an interval also reports ``<metric>_ci_low`` and ``<metric>_ci_high``; the pipeline's
policy gate reads them and fails a rule only when the whole interval lies beyond its threshold (see
``mlsecops.pipeline.policy``). Groups with fewer than ``min_group_size`` rows are listed as too small
and left out of every aggregate: a disparity measured on a handful of rows is noise, and an
interval computed from them would be wide anyway. When fewer than two groups are left, the
aggregates are NaN, which fails any rule on them (fail closed).

The registered check reads ``model`` and ``data`` (or ``paths`` = (model, data)); options
``label``, ``sensitive`` (one or more columns), ``features`` (the model's input columns; default:
the names a scikit-learn model was fitted with, else every column but the label and the sensitive
ones), ``min_group_size`` (30), ``bootstrap`` (1000 replicates; 0 for none), ``confidence`` (0.95),
``calibration`` (``auto``: when the model gives probabilities; ``true`` refuses a model without),
``max_difference`` (0.1) and ``min_ratio`` (0.8), the limits above which a finding is raised (with
the same interval semantics as the gate), and the usual model options. A model file loads only
through the artifact scanner (``safe_load``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlsecops.assess import _fairness_stats as fs
from mlsecops.assess._fairness_inputs import FairnessInputs, has_probabilities, load_fairness_inputs
from mlsecops.core.checks import CheckKind, ContractCases, Target, register
from mlsecops.core.errors import ConfigError, InputError
from mlsecops.core.findings import Figure, Finding, Report, Severity, utcnow
from mlsecops.models.fair import sensitive_strings

__all__ = [
    "CI_HIGH",
    "CI_LOW",
    "DEFAULT_MIN_GROUP_SIZE",
    "FairnessAudit",
    "FairnessCheck",
    "FairnessInputs",
    "GroupStats",
    "audit_fairness",
    "fairness_report",
    "has_probabilities",
    "load_fairness_inputs",
    "sensitive_strings",
]

CI_LOW, CI_HIGH = "_ci_low", "_ci_high"
"""Suffixes of a metric's interval bounds in ``Report.metrics`` (read by the policy gate)."""
DEFAULT_MIN_GROUP_SIZE = 30
"""Groups with fewer rows are reported as too small, not judged: rates on fewer rows are noise."""
DEFAULT_BOOTSTRAP = 1000
"""Bootstrap replicates by default (intervals to about +-0.01 of their bound at 95 %)."""
MAX_BOOTSTRAP = 100_000
"""Most replicates accepted."""
MAX_BOOTSTRAP_DRAWS = 2_000_000_000
"""Most rows drawn in all replicates together (rows x replicates): bounds the audit's time."""
MAX_GROUPS = 500
"""Most intersectional groups: more means a sensitive column is an identifier, not a group."""
DEFAULT_MAX_DIFFERENCE = 0.1
"""A difference whose interval lies above this raises a finding (option ``max_difference``)."""
DEFAULT_MIN_RATIO = 0.8
"""A ratio whose interval lies below this raises a finding: the four-fifths rule (``min_ratio``)."""
_POLICY = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "equal_opportunity_difference",
)
_METRICS = (
    "demographic_parity_*",
    "equalized_odds_*",
    "equal_opportunity_*",
    "predictive_parity_*",
    "accuracy*",
    "calibration_error*",
    "groups_*",
)


@dataclass(frozen=True)
class GroupStats:
    """The rates of one group (or intersectional group)."""

    name: str
    size: int
    judged: bool
    """False when the group is smaller than the minimum size (reported, not judged)."""
    rates: dict[str, float]
    """``selection_rate``, ``true_positive_rate``, ``false_positive_rate``, ``precision``, ``accuracy``
    and, with probabilities, ``calibration_error``."""
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class Grouping:
    """The audit over one partition of the rows: the intersection of all columns, or one column."""

    columns: tuple[str, ...]
    groups: tuple[GroupStats, ...]
    aggregates: dict[str, float]
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def judged(self) -> list[GroupStats]:
        """The groups large enough to judge."""
        return [g for g in self.groups if g.judged]


@dataclass(frozen=True)
class FairnessAudit:
    """Everything ``audit_fairness`` measured."""

    n_rows: int
    positive_rate: float
    accuracy: float
    intersection: Grouping
    per_column: tuple[Grouping, ...]
    min_group_size: int
    n_boot: int
    confidence: float
    seed: int
    calibration: bool


def _check_binary(y: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(y)
    values = np.unique(arr)
    if not set(values.tolist()) <= {0, 1}:
        raise InputError(
            f"{what} must be binary (0/1) for group fairness metrics; got values {values[:10].tolist()}"
        )
    return arr.astype(np.int64)


def _grouping(
    columns: tuple[str, ...],
    codes: np.ndarray,
    names: list[str],
    y_true: np.ndarray,
    y_pred: np.ndarray,
    proba: np.ndarray | None,
    *,
    min_group_size: int,
    n_boot: int,
    confidence: float,
    seed: int,
    progress: Callable[[int, int], None] | None,
) -> Grouping:
    n_groups = len(names)
    cells = fs.cell_ids(codes, y_true, y_pred)
    counts = np.bincount(cells, minlength=n_groups * 4).reshape(1, n_groups, 4)
    sizes = counts[0].sum(axis=1)
    judged = sizes >= min_group_size
    rates = fs.group_rates(counts[0])
    calib = fs.calibration_error(codes, n_groups, y_true, proba) if proba is not None else None
    point = {k: float(v[0]) for k, v in fs.aggregate(counts, judged).items()}
    if calib is not None:
        point.update({k: float(v[0]) for k, v in _calibration_aggregates(calib[None, :], judged).items()})
    intervals: dict[str, tuple[float, float]] = {}
    group_iv: list[dict[str, tuple[float, float]]] = [{} for _ in range(n_groups)]
    if n_boot > 0:
        extra = None
        if proba is not None:
            p = proba

            def extra(idx: np.ndarray) -> np.ndarray:
                return fs.calibration_error(codes[idx], n_groups, y_true[idx], p[idx])

        boot, boot_cal = fs.replicate_counts(
            cells, n_groups * 4, n_boot=n_boot, seed=seed, extra=extra, progress=progress
        )
        boot3 = boot.reshape(n_boot, n_groups, 4)
        samples = fs.aggregate(boot3, judged)
        if boot_cal is not None:
            samples.update(_calibration_aggregates(boot_cal, judged))
        for name, values in samples.items():
            iv = fs.percentile_interval(values, confidence)
            intervals[name] = (iv.low, iv.high)
        boot_rates = fs.group_rates(boot3)
        if boot_cal is not None:
            boot_rates["calibration_error"] = boot_cal
        for gi in range(n_groups):
            for rate in (*fs.RATES, "calibration_error"):
                if rate in boot_rates:
                    iv = fs.percentile_interval(boot_rates[rate][:, gi], confidence)
                    group_iv[gi][rate] = (iv.low, iv.high)
    groups = []
    for gi, name in enumerate(names):
        r = {k: float(rates[k][gi]) for k in fs.RATES}
        if calib is not None:
            r["calibration_error"] = float(calib[gi])
        groups.append(
            GroupStats(
                name=name, size=int(sizes[gi]), judged=bool(judged[gi]), rates=r, intervals=group_iv[gi]
            )
        )
    if judged.sum() < 2:  # nothing to compare: fail closed
        point = {k: (v if k == "accuracy" else float("nan")) for k, v in point.items()}
        intervals = {k: v for k, v in intervals.items() if k == "accuracy"}
    return Grouping(columns=columns, groups=tuple(groups), aggregates=point, intervals=intervals)


def _calibration_aggregates(calib: np.ndarray, judged: np.ndarray) -> dict[str, np.ndarray]:
    sub = np.where(np.isnan(calib[:, judged]), np.nan, calib[:, judged])
    with np.errstate(invalid="ignore"):
        hi = np.nanmax(np.where(np.isnan(sub), -np.inf, sub), axis=1)
        lo = np.nanmin(np.where(np.isnan(sub), np.inf, sub), axis=1)
    return {"calibration_error_max": hi, "calibration_error_difference": hi - lo}


def audit_fairness(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    sensitive: Mapping[str, np.ndarray],
    *,
    proba: np.ndarray | None = None,
    min_group_size: int = DEFAULT_MIN_GROUP_SIZE,
    n_boot: int = DEFAULT_BOOTSTRAP,
    confidence: float = 0.95,
    seed: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
) -> FairnessAudit:
    """Audit the predictions of a binary classifier by group.

    Args:
        y_true: true labels, 0/1.
        y_pred: predicted labels, 0/1.
        sensitive: column name -> one value per row (any type; turned into group names).
        proba: predicted probability of the positive class, for calibration (``None``: no calibration).
        min_group_size: groups with fewer rows are reported, not judged.
        n_boot: bootstrap replicates (0: no intervals).
        confidence: level of the percentile intervals.
        seed: the bootstrap's seed (fairlearn's ``MetricFrame(random_state=seed)`` draws the same rows).
        progress: called as ``(step, done, total)`` while bootstrapping.

    Raises:
        InputError: non-binary labels or predictions, mismatched lengths, no sensitive column, a
            sensitive column with one group only, too many groups, or probabilities out of [0, 1].
        ConfigError: bad ``n_boot``, ``confidence`` or ``min_group_size``.
    """
    yt, yp = _check_binary(y_true, "labels"), _check_binary(y_pred, "predictions")
    n = len(yt)
    if n == 0 or len(yp) != n:
        raise InputError(f"labels and predictions must have the same, non-zero length; got {n} and {len(yp)}")
    if not sensitive:
        raise InputError("name at least one sensitive column")
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must be in (0, 1); got {confidence}")
    if n_boot < 0 or n_boot > MAX_BOOTSTRAP or n_boot * n > MAX_BOOTSTRAP_DRAWS:
        raise ConfigError(
            f"bootstrap must be in [0, {MAX_BOOTSTRAP}] with rows x replicates <= {MAX_BOOTSTRAP_DRAWS:,}; "
            f"got {n_boot} replicates of {n} rows"
        )
    if min_group_size < 1:
        raise ConfigError(f"min_group_size must be >= 1; got {min_group_size}")
    p = None
    if proba is not None:
        p = np.asarray(proba, dtype=np.float64)
        if p.shape != (n,) or not np.all((p >= 0) & (p <= 1)):
            raise InputError("probabilities must be one number in [0, 1] per row")
    columns: dict[str, np.ndarray] = {}
    for name, values in sensitive.items():
        arr = sensitive_strings(np.asarray(values, dtype=object))
        if len(arr) != n:
            raise InputError(f"sensitive column {name!r} has {len(arr)} values for {n} rows")
        if len(np.unique(arr)) < 2:
            raise InputError(
                f"sensitive column {name!r} has one group only ({arr[0]!r}); fairness compares groups"
            )
        columns[name] = arr
    keys = tuple(columns)
    codes, names = fs.group_names([columns[k] for k in keys])
    if len(names) > MAX_GROUPS:
        raise InputError(
            f"{len(names)} groups across {', '.join(keys)} (at most {MAX_GROUPS}); is a sensitive column an identifier?"
        )
    jobs: list[tuple[tuple[str, ...], np.ndarray, list[str]]] = [(keys, codes, names)]
    if len(keys) > 1:
        for k in keys:
            c, nm = fs.group_names([columns[k]])
            jobs.append(((k,), c, nm))
    total = n_boot * len(jobs)
    results = []
    for j, (cols, c, nm) in enumerate(jobs):
        step = f"bootstrap {', '.join(cols)}"

        def tick(done: int, _total: int, *, _j: int = j, _step: str = step) -> None:
            if progress is not None:
                progress(_step, _j * n_boot + done, total)

        results.append(
            _grouping(
                cols,
                c,
                nm,
                yt,
                yp,
                p,
                min_group_size=min_group_size,
                n_boot=n_boot,
                confidence=confidence,
                seed=seed,
                progress=tick,
            )
        )
    if progress is not None:
        progress("done", total, total)
    return FairnessAudit(
        n_rows=n,
        positive_rate=float(yt.mean()),
        accuracy=float((yt == yp).mean()),
        intersection=results[0],
        per_column=tuple(results[1:]),
        min_group_size=min_group_size,
        n_boot=n_boot,
        confidence=confidence,
        seed=seed,
        calibration=p is not None,
    )


def _r(v: float) -> float:
    return round(v, 6) if math.isfinite(v) else v


_FINDING_RATES = {
    "demographic_parity": "selection_rate",
    "equal_opportunity": "true_positive_rate",
    "equalized_odds": "true_positive_rate",
    "predictive_parity": "precision",
    "accuracy": "accuracy",
    "calibration_error": "calibration_error",
}
"""Aggregate families that raise findings, and the per-group rate each compares."""


def _rate_spread(grouping: Grouping, rate: str) -> float:
    values = [g.rates[rate] for g in grouping.judged if math.isfinite(g.rates.get(rate, math.nan))]
    return max(values) - min(values) if values else 0.0


def _beyond(
    name: str, value: float, iv: tuple[float, float] | None, max_diff: float, min_ratio: float
) -> bool:
    """Whether the metric is beyond its limit, for the whole interval when there is one."""
    if name.rsplit("_", 1)[0] not in _FINDING_RATES:
        return False
    if name.endswith("_difference"):
        lo = iv[0] if iv else value
        return math.isfinite(lo) and lo > max_diff
    if name.endswith("_ratio"):
        hi = iv[1] if iv else value
        return math.isfinite(hi) and hi < min_ratio
    return False


def fairness_report(
    audit: FairnessAudit,
    *,
    subject: str,
    kind: str = "assess.fairness",
    started: Any = None,
    max_difference: float = DEFAULT_MAX_DIFFERENCE,
    min_ratio: float = DEFAULT_MIN_RATIO,
    details: Mapping[str, Any] | None = None,
) -> Report:
    """Turn an audit into a report: policy metrics with intervals, per-group tables, findings, charts."""
    metrics: dict[str, float] = {
        "accuracy": _r(audit.accuracy),
        "groups_total": float(len(audit.intersection.groups)),
        "groups_too_small": float(sum(not g.judged for g in audit.intersection.groups)),
    }
    findings: list[Finding] = []
    for grouping in (audit.intersection, *audit.per_column):
        suffix = "" if grouping is audit.intersection else f"@{grouping.columns[0]}"
        for name, value in grouping.aggregates.items():
            if name == "accuracy" and suffix:
                continue
            metrics[name + suffix] = _r(value)
            iv = grouping.intervals.get(name)
            if iv is not None and name != "accuracy":
                metrics[name + suffix + CI_LOW] = _r(iv[0])
                metrics[name + suffix + CI_HIGH] = _r(iv[1])
            if _beyond(name, value, iv, max_difference, min_ratio):
                findings.append(
                    _disparity_finding(
                        kind, subject, grouping, name, value, iv, audit, max_difference, min_ratio
                    )
                )
        small = [g for g in grouping.groups if not g.judged]
        if small and grouping is audit.intersection:
            findings.append(
                Finding(
                    check=kind,
                    severity=Severity.LOW,
                    title=f"{len(small)} group(s) too small to judge (< {audit.min_group_size} rows)",
                    detail="left out of every between-group metric: "
                    + "; ".join(f"{g.name} ({g.size} rows)" for g in small[:10]),
                    artifact=subject,
                    location={"columns": ", ".join(grouping.columns)},
                    evidence={"groups": {g.name: g.size for g in small[:50]}},
                    remediation="collect more data for these groups, or audit them on a larger evaluation set",
                )
            )
    if len(audit.intersection.judged) < 2:
        findings.append(
            Finding(
                check=kind,
                severity=Severity.HIGH,
                title="fewer than two groups large enough to compare: fairness could not be judged",
                detail=f"groups with at least {audit.min_group_size} rows: "
                f"{[g.name for g in audit.intersection.judged]}",
                artifact=subject,
                remediation="audit on a larger evaluation set or lower --min-group-size",
            )
        )
    verdict = "biased" if any(f.severity >= Severity.MEDIUM for f in findings) else "fair"
    return Report(
        subject=subject,
        kind=kind,
        started=started or utcnow(),
        finished=utcnow(),
        findings=tuple(findings),
        metrics=metrics,
        verdict=verdict,
        data={"fairness": {**_audit_json(audit), **(details or {})}},
        figures=tuple(_figures(audit)),
    )


def _disparity_finding(
    kind: str,
    subject: str,
    grouping: Grouping,
    name: str,
    value: float,
    iv: tuple[float, float] | None,
    audit: FairnessAudit,
    max_difference: float,
    min_ratio: float,
) -> Finding:
    family = name.rsplit("_", 1)[0]
    rate = _FINDING_RATES[family]
    if family == "equalized_odds":  # the worse of the two rates the metric takes the max over
        spread = {r: _rate_spread(grouping, r) for r in ("true_positive_rate", "false_positive_rate")}
        rate = max(spread, key=lambda r: spread[r])
    judged = sorted(grouping.judged, key=lambda g: g.rates[rate])
    lo_g, hi_g = judged[0], judged[-1]
    is_diff = name.endswith("_difference")
    worse = (value > 2 * max_difference) if is_diff else (value < min_ratio * 0.75)
    sev = (
        Severity.HIGH
        if worse or name.startswith(("demographic_parity", "equalized_odds"))
        else Severity.MEDIUM
    )
    ci = f" ({audit.confidence:.0%} CI {iv[0]:.3f} to {iv[1]:.3f})" if iv else ""
    limit = f"> {max_difference:g}" if is_diff else f"< {min_ratio:g}"
    return Finding(
        check=kind,
        severity=sev,
        title=f"{name.replace('_', ' ')} {value:.3f}{ci} across {', '.join(grouping.columns)}",
        detail=f"{rate.replace('_', ' ')} ranges from {lo_g.rates[rate]:.3f} ({lo_g.name}, {lo_g.size} rows) to "
        f"{hi_g.rates[rate]:.3f} ({hi_g.name}, {hi_g.size} rows); the whole interval is {limit}",
        artifact=subject,
        location={"columns": ", ".join(grouping.columns), "metric": name},
        evidence={
            "value": _r(value),
            "interval": list(iv) if iv else None,
            "lowest": lo_g.name,
            "highest": hi_g.name,
        },
        remediation="check the training data for under-representation and label bias (mlsecops data check "
        "--sensitive), then mitigate (mlsecops harden fairness) and audit again",
    )


def _audit_json(audit: FairnessAudit) -> dict[str, Any]:
    def grouping(g: Grouping) -> dict[str, Any]:
        return {
            "columns": list(g.columns),
            "aggregates": {k: _json_num(v) for k, v in g.aggregates.items()},
            "intervals": {k: [_json_num(a), _json_num(b)] for k, (a, b) in g.intervals.items()},
            "groups": [
                {
                    "group": s.name,
                    "size": s.size,
                    "judged": s.judged,
                    **{k: _json_num(v) for k, v in s.rates.items()},
                    "intervals": {k: [_json_num(a), _json_num(b)] for k, (a, b) in s.intervals.items()},
                }
                for s in g.groups
            ],
        }

    return {
        "rows": audit.n_rows,
        "positive_rate": _json_num(audit.positive_rate),
        "min_group_size": audit.min_group_size,
        "bootstrap": audit.n_boot,
        "confidence": audit.confidence,
        "seed": audit.seed,
        "calibration": audit.calibration,
        "intersection": grouping(audit.intersection),
        "per_column": [grouping(g) for g in audit.per_column],
    }


def _json_num(v: float) -> float | None:
    return round(v, 6) if math.isfinite(v) else None


def _figures(audit: FairnessAudit) -> list[Figure]:
    from mlsecops.report.plots import bar_chart

    groups = audit.intersection.groups[:40]
    out = []
    for rate, title in (
        ("selection_rate", "Selection rate by group"),
        ("true_positive_rate", "True positive rate by group"),
        ("false_positive_rate", "False positive rate by group"),
    ):
        values = {
            f"{g.name}{'' if g.judged else ' (too small)'}": g.rates[rate]
            for g in groups
            if math.isfinite(g.rates[rate])
        }
        out.append(bar_chart(title, values, ylabel=rate.replace("_", " ")))
    return out


_OPTIONS = (
    "model",
    "data",
    "label",
    "sensitive",
    "features",
    "min_group_size",
    "bootstrap",
    "confidence",
    "calibration",
    "max_difference",
    "min_ratio",
    "output",
    "timeout",
    "weights",
)


@register(
    "assess.fairness",
    kind=CheckKind.AUDIT,
    summary="Group fairness of a binary classifier (fairlearn's metrics) with bootstrap intervals",
    metrics=_METRICS,
    options=_OPTIONS,
)
class FairnessCheck:
    """Group fairness audit as a check (see the module docstring for the options).

    Args:
        progress: called as ``(step, done, total)`` while bootstrapping.
    """

    def __init__(self, *, progress: Callable[[str, int, int], None] | None = None) -> None:
        self.progress = progress

    def run(self, target: Target) -> Report:
        """Load the model and data, predict, audit and report.

        Raises:
            InputError: see ``load_fairness_inputs`` and ``audit_fairness``.
        """
        started = utcnow()
        calibration = target.opt_choice("calibration", ("auto", "true", "false"), "auto")
        inputs = load_fairness_inputs(target, calibration=calibration)
        audit = audit_fairness(
            inputs.y_true,
            inputs.y_pred,
            inputs.sensitive,
            proba=inputs.proba,
            min_group_size=target.opt_int("min_group_size", DEFAULT_MIN_GROUP_SIZE, lo=1),
            n_boot=target.opt_int("bootstrap", DEFAULT_BOOTSTRAP, lo=0, hi=MAX_BOOTSTRAP),
            confidence=target.opt_float("confidence", 0.95, lo=0.5, hi=0.999),
            seed=int(target.seed or 0),
            progress=self.progress,
        )
        return fairness_report(
            audit,
            subject=inputs.subject,
            details={"positive_class": inputs.positive, "features": inputs.features},
            started=started,
            max_difference=target.opt_float("max_difference", DEFAULT_MAX_DIFFERENCE, lo=0.0, hi=1.0),
            min_ratio=target.opt_float("min_ratio", DEFAULT_MIN_RATIO, lo=0.0, hi=1.0),
        )

    @classmethod
    def contract_cases(cls, tmp_dir: Any) -> ContractCases:
        """A small logistic regression on synthetic data with a group column, and a corrupt data file."""
        import pickle

        from sklearn.linear_model import LogisticRegression

        rng = np.random.default_rng(0)
        n = 400
        group = rng.integers(0, 2, n)
        x = rng.normal(size=(n, 3)) + group[:, None] * 0.5
        y = (x[:, 0] + rng.normal(scale=0.5, size=n) > 0.3).astype(int)
        model = LogisticRegression().fit(x, y)
        model_path = Path(tmp_dir) / "fair.pkl"
        model_path.write_bytes(pickle.dumps(model, protocol=4))
        data_path = Path(tmp_dir) / "fair.csv"
        lines = ["a,b,c,group,label"] + [
            f"{r[0]:.5f},{r[1]:.5f},{r[2]:.5f},{'g' + str(g)},{t}"
            for r, g, t in zip(x, group, y, strict=True)
        ]
        data_path.write_text("\n".join(lines) + "\n")
        bad = Path(tmp_dir) / "corrupt.csv"
        bad.write_bytes(b"a,b\n\x00\x01\x02,\xff\n")
        opts: dict[str, Any] = {"sensitive": "group", "label": "label", "bootstrap": 20}
        return ContractCases(
            valid=Target(paths=(model_path, data_path), options=opts, seed=1),
            corrupt=Target(paths=(model_path, bad), options=opts, seed=1),
        )
