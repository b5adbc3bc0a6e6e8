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
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlsecops.core.errors import ConfigError, InputError
from mlsecops.core.severity import Severity
from mlsecops.monitor.interface import Alert, Observation

__all__ = ["DIFFERENCE_METRICS", "FairnessMonitor"]

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
