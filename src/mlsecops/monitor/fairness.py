"""Decision auditing at runtime: group fairness of live decisions once their labels arrive.

The guard's ``POST /v2/models/{name}/feedback`` delivers served rows with their true classes; the
detector reads each row's group from one input column (``sensitive_index``), gathers ``window``
labelled rows, and audits them with the same code as ``mlsecops assess fairness``
(``assess.fairness.audit_fairness``: fairlearn's definitions, bootstrap intervals, groups too small to
judge left out). A ``fairness`` alert is raised when the interval of the chosen disparity lies wholly
above ``max_difference``: the same rule the pipeline gate applies, so a gap that opens in production is
judged as it would have been before deployment.

Binary classifiers only (the audit's metrics are binary); other feedback is skipped. Memory is bounded
by ``window`` rows of one label, one prediction and one group value each.

Offline, ``fairness_windows`` audits files of labelled decisions, and ``fairness_of_logged`` the
guard's decision log (``mlsecops monitor fairness --log``): the groups the guard recorded
(``logging.group``), the labels sent as feedback, and per group the mean feature contributions of the
explained decisions (``logging.explain``) over time.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlsecops.core.errors import ConfigError, InputError
from mlsecops.core.severity import Severity
from mlsecops.monitor.interface import Alert, Observation

__all__ = ["DIFFERENCE_METRICS", "FairnessMonitor", "fairness_of_logged", "fairness_windows"]

DIFFERENCE_METRICS = (
    "demographic_parity_difference",
    "equalized_odds_difference",
    "equal_opportunity_difference",
)
"""Disparities the detector can watch (fairlearn's definitions, over all groups)."""
MIN_WINDOW = 100
"""Fewest labelled rows per audit: fewer cannot bound a disparity usefully."""
MAX_WINDOW = 1_000_000
"""Most rows kept for one audit (memory bound)."""


class FairnessMonitor:
    """Audits group fairness over tumbling windows of labelled decisions.

    Args:
        model_name: the served model's name (alerts carry it).
        sensitive_index: column of a (flattened) input row holding the group (its values, rounded, are
            the group names).
        metric: one of :data:`DIFFERENCE_METRICS`.
        max_difference: the alert fires when the metric's interval lies wholly above this.
        window: labelled rows per audit.
        min_group_size: groups with fewer rows in a window are reported, not judged.
        bootstrap: bootstrap replicates for the interval.
        seed: the bootstrap's seed.

    Raises:
        ConfigError: an unknown metric or an out-of-range option.
    """

    name = "fairness"

    def __init__(
        self,
        *,
        model_name: str = "",
        sensitive_index: int,
        metric: str = "equal_opportunity_difference",
        max_difference: float = 0.1,
        window: int = 1_000,
        min_group_size: int = 30,
        bootstrap: int = 200,
        seed: int = 0,
    ) -> None:
        if metric not in DIFFERENCE_METRICS:
            raise ConfigError(
                f"monitor.detectors.fairness: metric must be one of {', '.join(DIFFERENCE_METRICS)}"
            )
        if isinstance(sensitive_index, bool) or sensitive_index < 0:
            raise ConfigError("monitor.detectors.fairness: sensitive_index must be a column index >= 0")
        if not MIN_WINDOW <= int(window) <= MAX_WINDOW:
            raise ConfigError(f"monitor.detectors.fairness: window must be in [{MIN_WINDOW}, {MAX_WINDOW}]")
        if not 0.0 < float(max_difference) < 1.0:
            raise ConfigError("monitor.detectors.fairness: max_difference must be in (0, 1)")
        self.model_name = model_name
        self.sensitive_index = sensitive_index
        self.metric = metric
        self.max_difference = float(max_difference)
        self.window = int(window)
        self.min_group_size = int(min_group_size)
        self.bootstrap = int(bootstrap)
        self.seed = int(seed)
        self._labels: list[np.ndarray] = []
        self._preds: list[np.ndarray] = []
        self._groups: list[np.ndarray] = []
        self._rows = 0
        self.audits = 0
        """Windows audited so far."""
        self.skipped = 0
        """Feedback rows not usable (not binary, no inputs, or a missing group column)."""

    def observe(self, observation: Observation) -> list[Alert]:
        """Unlabelled traffic carries nothing to audit; labels come through :meth:`record_feedback`."""
        del observation
        return []

    def record_feedback(
        self, *, labels: np.ndarray, outputs: np.ndarray, time: float, inputs: np.ndarray | None = None
    ) -> list[Alert]:
        """Add labelled rows (with the served version's outputs and the rows themselves).

        Returns:
            A ``fairness`` alert when a completed window's disparity is beyond ``max_difference``.
        """
        y = np.asarray(labels).reshape(-1)
        proba = np.asarray(outputs)
        if inputs is None or proba.ndim != 2 or proba.shape[1] != 2 or proba.shape[0] != y.shape[0]:
            self.skipped += int(y.shape[0])
            return []
        rows = np.asarray(inputs).reshape(y.shape[0], -1)
        if rows.shape[1] <= self.sensitive_index:
            self.skipped += int(y.shape[0])
            return []
        self._labels.append(y.astype(np.int64))
        self._preds.append(np.argmax(proba, axis=1).astype(np.int64))
        self._groups.append(np.round(rows[:, self.sensitive_index].astype(np.float64), 6))
        self._rows += int(y.shape[0])
        alerts: list[Alert] = []
        while self._rows >= self.window:
            alert = self._audit(time)
            if alert is not None:
                alerts.append(alert)
        return alerts

    def _audit(self, time: float) -> Alert | None:
        from mlsecops.assess.fairness import audit_fairness

        y, p, g = (np.concatenate(parts) for parts in (self._labels, self._preds, self._groups))
        head, rest = slice(0, self.window), slice(self.window, None)
        self._labels, self._preds, self._groups = [y[rest]], [p[rest]], [g[rest]]
        self._rows = int(y[rest].shape[0])
        self.audits += 1
        groups = np.array([f"{v:g}" for v in g[head]], dtype=object)
        try:
            audit = audit_fairness(
                y[head],
                p[head],
                {"group": groups},
                min_group_size=self.min_group_size,
                n_boot=self.bootstrap,
                seed=self.seed,
            )
        except InputError:  # one group only in this window, or labels that are not 0/1: nothing to judge
            return None
        grouping = audit.intersection
        value = float(grouping.aggregates.get(self.metric, float("nan")))
        low, high = grouping.intervals.get(self.metric, (value, value))
        if not np.isfinite(low) or low <= self.max_difference:
            return None
        return Alert(
            kind="fairness",
            principal="",
            model=self.model_name,
            severity=Severity.HIGH,
            query_index=0,
            time=time,
            evidence={
                "metric": self.metric,
                "value": round(value, 6),
                "interval": [round(float(low), 6), round(float(high), 6)],
                "max_difference": self.max_difference,
                "window": self.window,
                "groups": {
                    s.name: {"rows": s.size, **{k: round(v, 4) for k, v in s.rates.items()}}
                    for s in grouping.judged
                },
            },
        )

    def state(self) -> dict[str, Any]:
        """The rows gathered toward the next audit, JSON-ready."""
        if not self._rows:
            return {"labels": [], "preds": [], "groups": [], "audits": self.audits}
        y, p, g = (np.concatenate(parts) for parts in (self._labels, self._preds, self._groups))
        return {"labels": y.tolist(), "preds": p.tolist(), "groups": g.tolist(), "audits": self.audits}

    def restore(self, state: dict[str, Any]) -> None:
        """Replace the gathered rows with those of :meth:`state`."""
        y = np.asarray(state.get("labels", []), dtype=np.int64)
        self._labels = [y]
        self._preds = [np.asarray(state.get("preds", []), dtype=np.int64)]
        self._groups = [np.asarray(state.get("groups", []), dtype=np.float64)]
        self._rows = int(y.shape[0])
        self.audits = int(state.get("audits", 0))


BATCH_CHECK = "monitor.fairness"


def fairness_windows(
    model: str,
    windows: list[Any],
    *,
    label: str,
    sensitive: str,
    metric: str = "equal_opportunity_difference",
    max_difference: float = 0.1,
    bootstrap: int = 200,
    min_group_size: int = 30,
    seed: int = 0,
) -> Any:
    """``mlsecops monitor fairness``: one audit per window of labelled decisions, as a trend.

    Each window file (CSV, Parquet, .npz with the label and sensitive columns) is audited with
    ``assess fairness``'s code; a window whose ``metric`` interval lies wholly above
    ``max_difference`` is a high finding, the rule the guard's detector and the pipeline gate apply.

    Raises:
        InputError: a window, model, label or sensitive column ``assess fairness`` refuses.
        ConfigError: an unknown metric.
    """
    from mlsecops.assess._fairness_inputs import load_fairness_inputs
    from mlsecops.assess.fairness import audit_fairness
    from mlsecops.core.checks import Target
    from mlsecops.core.findings import Finding, Report
    from mlsecops.core.redaction import redact

    if metric not in DIFFERENCE_METRICS:
        raise ConfigError(f"metric must be one of {', '.join(DIFFERENCE_METRICS)}; got {metric!r}")
    entries: list[dict[str, Any]] = []
    findings: list[Finding] = []
    for window in windows:
        target = Target(paths=(model, window), options={"label": label, "sensitive": sensitive}, seed=seed)
        inputs = load_fairness_inputs(target, calibration="false")
        audit = audit_fairness(
            inputs.y_true,
            inputs.y_pred,
            inputs.sensitive,
            min_group_size=min_group_size,
            n_boot=bootstrap,
            seed=seed,
        )
        grouping = audit.intersection
        value = float(grouping.aggregates.get(metric, float("nan")))
        low, high = grouping.intervals.get(metric, (value, value))
        beyond = bool(np.isfinite(low) and low > max_difference)
        where = redact(str(window))
        entry: dict[str, Any] = {
            "window": where,
            "rows": audit.n_rows,
            "metric": metric,
            "value": _num(value),
            "interval": [_num(low), _num(high)],
            "beyond": beyond,
            "groups": {g.name: {"rows": g.size, "judged": g.judged} for g in grouping.groups},
        }
        entries.append(entry)
        if beyond:
            findings.append(
                Finding(
                    check=BATCH_CHECK,
                    severity=Severity.HIGH,
                    title=f"{metric} {value:.3f} [{low:.3f}, {high:.3f}] above {max_difference:g}",
                    detail=f"{audit.n_rows} labelled decisions by {sensitive}; the whole interval lies "
                    "beyond the limit.",
                    artifact=where,
                    location={"window": where},
                    evidence={"metric": metric, "value": _num(value), "interval": [_num(low), _num(high)]},
                    remediation="Compare the groups' rates in this window with the pre-deployment audit; "
                    "mitigate (harden fairness) or roll back, and check the labels for the group.",
                )
            )
    flagged = sum(1 for e in entries if e["beyond"])
    return Report(
        subject=redact(model),
        kind=BATCH_CHECK,
        findings=tuple(findings),
        metrics={"windows": float(len(entries)), "disparate_windows": float(flagged)},
        verdict="disparity" if flagged else "no disparity",
        data={"windows": entries, "max_difference": max_difference},
    )


def _num(v: float) -> float | None:
    return round(float(v), 6) if np.isfinite(v) else None


LOG_CHECK = "monitor.fairness.log"
"""Kind of the report of ``mlsecops monitor fairness --log``."""
ATTRIBUTION_TOP = 3
"""Features shown per group and window in the attribution trend."""


def fairness_of_logged(
    model: str,
    *,
    labels: np.ndarray,
    predictions: np.ndarray,
    groups: np.ndarray,
    times: np.ndarray,
    explained_groups: list[str] | None = None,
    explained: list[dict[str, float]] | None = None,
    window: int = 1_000,
    attribution_windows: int = 2,
    metric: str = "equal_opportunity_difference",
    max_difference: float = 0.1,
    bootstrap: int = 200,
    min_group_size: int = 30,
    seed: int = 0,
) -> Any:
    """``mlsecops monitor fairness --log``: group fairness of the guard's logged, labelled decisions.

    The labelled rows (logged from feedback with the group recorded by ``logging.group``) are cut into
    tumbling windows of ``window`` rows, oldest first, and each window is audited with ``assess
    fairness``'s code; a window whose ``metric`` interval lies wholly above ``max_difference`` is a high
    finding (the rule of the guard's ``fairness`` detector and of the pipeline gate). The last window
    may be shorter; one under ``MIN_WINDOW`` rows is left out. The explained decisions
    (``logging.explain``) give, per group and per time slice (``attribution_windows`` equal slices),
    the mean contribution of each feature (a feature outside a row's top features counts 0); a group
    whose most contributing feature changes from one slice to the next is a low finding: what drives
    its decisions has shifted.

    Raises:
        ConfigError: an unknown metric or a window out of range.
        InputError: no labelled decisions with groups.
    """
    from mlsecops.assess.fairness import audit_fairness
    from mlsecops.core.findings import Finding, Report

    if metric not in DIFFERENCE_METRICS:
        raise ConfigError(f"metric must be one of {', '.join(DIFFERENCE_METRICS)}; got {metric!r}")
    if not MIN_WINDOW <= int(window) <= MAX_WINDOW:
        raise ConfigError(f"window must be in [{MIN_WINDOW}, {MAX_WINDOW}]; got {window}")
    if not 1 <= attribution_windows <= 100:
        raise ConfigError("attribution windows must be in [1, 100]")
    n = int(labels.shape[0])
    if n == 0 and not explained:
        raise InputError(
            f"the decision log holds no labelled or explained decisions of {model!r}: set logging.group "
            "(and logging.explain) in the guard policy and send labels to /v2/models/{name}/feedback"
        )
    entries: list[dict[str, Any]] = []
    findings: list[Finding] = []
    for start in range(0, n, window):
        stop = min(start + window, n)
        if stop - start < MIN_WINDOW:
            break
        part = slice(start, stop)
        entry: dict[str, Any] = {
            "window": len(entries) + 1,
            "rows": stop - start,
            "from": float(times[start]),
            "to": float(times[stop - 1]),
            "metric": metric,
        }
        try:
            audit = audit_fairness(
                labels[part],
                predictions[part],
                {"group": groups[part]},
                min_group_size=min_group_size,
                n_boot=bootstrap,
                seed=seed,
            )
        except InputError as err:  # one group only, or labels that are not 0/1: reported, not judged
            entries.append(
                {**entry, "value": None, "interval": [None, None], "beyond": False, "note": str(err)}
            )
            continue
        grouping = audit.intersection
        value = float(grouping.aggregates.get(metric, float("nan")))
        low, high = grouping.intervals.get(metric, (value, value))
        beyond = bool(np.isfinite(low) and low > max_difference)
        entry.update(
            value=_num(value),
            interval=[_num(low), _num(high)],
            beyond=beyond,
            groups={
                g.name: {"rows": g.size, "judged": g.judged, **{k: round(v, 4) for k, v in g.rates.items()}}
                for g in grouping.groups
            },
        )
        entries.append(entry)
        if beyond:
            findings.append(
                Finding(
                    check=LOG_CHECK,
                    severity=Severity.HIGH,
                    title=f"{metric} {value:.3f} [{low:.3f}, {high:.3f}] above {max_difference:g} in live traffic",
                    detail=f"window {entry['window']}: {stop - start} labelled decisions of {model} by logged "
                    "group; the whole interval lies beyond the limit.",
                    artifact=model,
                    location={"window": entry["window"]},
                    evidence={"metric": metric, "value": _num(value), "interval": [_num(low), _num(high)]},
                    remediation="Compare the groups' rates with the pre-deployment audit; mitigate (harden "
                    "fairness) or roll back, and check the labels for the group.",
                )
            )
    trend = _attribution_trend(explained_groups or [], explained or [], attribution_windows)
    for group, slices in trend.items():
        tops = [s["top"][0][0] if s["top"] else None for s in slices]
        for i in range(1, len(tops)):
            if tops[i - 1] is not None and tops[i] is not None and tops[i] != tops[i - 1]:
                findings.append(
                    Finding(
                        check=LOG_CHECK,
                        severity=Severity.LOW,
                        title=f"what drives decisions for {group} shifted: {tops[i - 1]} -> {tops[i]}",
                        detail=f"mean local contributions over the explained decisions of {group}, slice "
                        f"{i} against slice {i + 1}",
                        artifact=model,
                        location={"group": group, "slice": i + 1},
                        evidence={"before": slices[i - 1]["top"], "after": slices[i]["top"]},
                        remediation="Check the inputs of this group for drift and the model's behaviour on "
                        "them (mlsecops monitor drift, assess explain).",
                    )
                )
    flagged = sum(1 for e in entries if e.get("beyond"))
    return Report(
        subject=model,
        kind=LOG_CHECK,
        findings=tuple(findings),
        metrics={
            "windows": float(len(entries)),
            "disparate_windows": float(flagged),
            "labelled_rows": float(n),
            "explained_rows": float(len(explained or [])),
        },
        verdict="disparity" if flagged else "no disparity",
        data={"windows": entries, "max_difference": max_difference, "attributions": trend},
    )


def _attribution_trend(
    groups: list[str], explained: list[dict[str, float]], slices: int
) -> dict[str, list[dict[str, Any]]]:
    """Per group, per time slice of its explained rows: rows and the mean contribution of the top features."""
    by_group: dict[str, list[dict[str, float]]] = {}
    for g, row in zip(groups, explained, strict=True):
        by_group.setdefault(g, []).append(row)
    out: dict[str, list[dict[str, Any]]] = {}
    for g in sorted(by_group):
        rows = by_group[g]
        parts = [p for p in np.array_split(np.arange(len(rows)), min(slices, len(rows))) if p.size]
        out[g] = []
        for part in parts:
            total: dict[str, float] = {}
            for i in part:
                for f, v in rows[int(i)].items():
                    total[f] = total.get(f, 0.0) + v
            mean = {f: v / part.size for f, v in total.items()}
            top = sorted(mean.items(), key=lambda kv: -abs(kv[1]))[:ATTRIBUTION_TOP]
            out[g].append({"rows": int(part.size), "top": [[f, round(v, 6)] for f, v in top]})
    return out
