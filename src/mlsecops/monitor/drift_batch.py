"""``mlsecops monitor drift`` as a library call: test batch files for drift against a baseline.

``drift_report(baseline, windows, ...)`` reads each window file with the bounded readers, chunk by
chunk (constant memory whatever the file's size), tests it (``mlsecops.monitor.drift.evaluate``) and
returns a ``Report`` of kind ``monitor.drift``: one finding per drifted window, and under ``windows``
in the JSON report one verdict per window ``{window, drift, p_value, columns, severity, evidence}``.

With a model, each window's rows are also scored: the estimated accuracy (mean top-class confidence,
isotonic-calibrated when the baseline is a labelled data file) is reported per window, and with a label
column the actual accuracy is tested against the reference accuracy (or the model's own confidence).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mlsecops.core.errors import InputError
from mlsecops.core.findings import Finding, Report
from mlsecops.core.severity import Severity, utcnow
from mlsecops.data._profile import DataProfile, profile_chunks
from mlsecops.data._readers import DEFAULT_CHUNK_ROWS, Chunk, iter_chunks
from mlsecops.monitor.drift import DEFAULT_ALPHA, DriftBaseline, WindowStats, evaluate
from mlsecops.monitor.performance import FEEDBACK_ALPHA, Calibration, PerformanceStats, fit_calibration

__all__ = ["CHECK_NAME", "MAX_CALIBRATION_ROWS", "drift_report", "feature_count", "load_drift_baseline"]

CHECK_NAME = "monitor.drift"
MAX_CALIBRATION_ROWS = 200_000
"""Reference rows scored by the model to calibrate its confidences (bounds the time a big file costs)."""
_ATLAS_DRIFT = None  # drift is not an attack technique; the findings carry no ATLAS id


def load_drift_baseline(
    path: Path, *, label: str | None = None, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> DataProfile:
    """A baseline: a ``mlsecops data profile`` JSON file, or reference data profiled on the fly.

    Raises:
        InputError: unreadable, or neither a profile nor a data file.
    """
    if path.suffix.lower() == ".json":
        return DataProfile.load(path)
    return profile_chunks(iter_chunks(path, chunk_rows=chunk_rows), label=label)


def feature_count(path: Path, *, label: str | None = None) -> int:
    """Number of model input columns the baseline implies (every column but the label), read cheaply."""
    if path.suffix.lower() == ".json":
        profile = DataProfile.load(path)
        return sum(1 for c in profile.columns if c != profile.label)
    for chunk in iter_chunks(path, chunk_rows=1_000):
        return sum(1 for c in chunk if c != label)
    raise InputError(f"{path}: no data rows")


def _features(baseline: DriftBaseline, chunk: Chunk, where: str) -> np.ndarray:
    cols = []
    for name in baseline.features:
        arr = chunk.get(name)
        if arr is None:
            raise InputError(f"{where}: the model's input column {name!r} is missing")
        if arr.dtype == object:
            raise InputError(f"{where}: column {name!r} is categorical; --model needs numeric input columns")
        cols.append(np.asarray(arr, dtype=np.float64))
    return np.column_stack(cols)


def _calibrate(
    model: Any, baseline: DriftBaseline, path: Path, label: str, chunk_rows: int
) -> Calibration | None:
    probs: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    seen = 0
    for chunk in iter_chunks(path, chunk_rows=chunk_rows):
        if label not in chunk:
            return None
        x = _features(baseline, chunk, str(path))
        take = min(x.shape[0], MAX_CALIBRATION_ROWS - seen)
        probs.append(np.asarray(model.predict_proba(x[:take]), dtype=float))
        labels.append(np.asarray(chunk[label][:take]))
        seen += take
        if seen >= MAX_CALIBRATION_ROWS:
            break
    if not probs:
        return None
    return fit_calibration(np.concatenate(probs), np.concatenate(labels))


def drift_report(
    baseline_path: Path,
    windows: Sequence[Path],
    *,
    alpha: float = DEFAULT_ALPHA,
    model: Any = None,
    labels: str | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> Report:
    """Test each window file for drift against the baseline.

    Args:
        baseline_path: profile JSON, or a reference data file.
        windows: data files, one verdict each.
        alpha: false-alarm rate per clean window.
        model: a model adapter (``mlsecops.models.load_model``) for the performance estimate, or None.
        labels: the label column of the windows (and of a reference data file); needs ``model``.
        chunk_rows: rows read at a time.

    Raises:
        InputError: a window is unreadable, empty, lacks a baseline column, or has text in a numeric
            column; labels without a model.
    """
    if labels is not None and model is None:
        raise InputError("--labels needs --model (the predictions are computed from the model)")
    if not windows:
        raise InputError("no window files given")
    started = utcnow()
    profile = load_drift_baseline(baseline_path, label=labels, chunk_rows=chunk_rows)
    base = DriftBaseline.from_profile(profile)
    calibration = None
    if model is not None and labels is not None and baseline_path.suffix.lower() != ".json":
        calibration = _calibrate(model, base, baseline_path, labels, chunk_rows)
    verdicts: list[dict[str, Any]] = []
    findings: list[Finding] = []
    for path in windows:
        where = str(path)
        stats = WindowStats(base)
        perf = PerformanceStats() if model is not None else None
        for chunk in iter_chunks(path, chunk_rows=chunk_rows):
            stats.update(chunk, where=where)
            if model is not None and perf is not None:
                x = _features(base, chunk, where)
                p = np.asarray(model.predict_proba(x), dtype=float)
                perf.add_outputs(p, calibration)
                if labels is not None:
                    if labels not in chunk:
                        raise InputError(f"{where}: label column {labels!r} not found")
                    perf.add_labels(np.asarray(chunk[labels]), p)
        verdict = evaluate(stats, window=where, alpha=alpha, performance=perf)
        entry = verdict.to_json()
        if perf is not None and perf.labelled:
            ref = calibration.reference_accuracy if calibration is not None else None
            entry["performance"] = perf.accuracy_test(reference=ref, alpha=FEEDBACK_ALPHA)
        verdicts.append(entry)
        findings.extend(_findings(entry, where))
    drifted = sum(1 for v in verdicts if v["drift"])
    metrics = {"windows": float(len(verdicts)), "drifted_windows": float(drifted)}
    return Report(
        subject=str(baseline_path),
        kind=CHECK_NAME,
        started=started,
        findings=tuple(findings),
        metrics=metrics,
        verdict="drift" if drifted else "no drift",
        data={"windows": verdicts, "calibration": calibration.to_json() if calibration else None},
    )


def _findings(entry: dict[str, Any], where: str) -> list[Finding]:
    out: list[Finding] = []
    if entry["drift"]:
        cols = entry["columns"]
        named = ", ".join(cols[:5]) + (f" and {len(cols) - 5} more" if len(cols) > 5 else "")
        out.append(
            Finding(
                check=CHECK_NAME,
                severity=Severity.parse(entry["severity"]),
                title=f"drift in {named or 'the joint distribution'}",
                detail=f"{len(entry['evidence']['rejected'])} of {entry['evidence']['tests']} tests rejected"
                f" (Benjamini-Hochberg at {entry['evidence']['alpha']}); window p-value {entry['p_value']:.3g}.",
                artifact=where,
                location={"window": where},
                evidence=entry["evidence"],
                remediation="Look at what changed upstream of these columns; if the change is real and lasting,"
                " re-profile the new data and retrain or re-validate the model before trusting it.",
            )
        )
    perf = entry.get("performance")
    if isinstance(perf, dict) and perf.get("degraded"):
        out.append(
            Finding(
                check=CHECK_NAME,
                severity=Severity.HIGH,
                title="model accuracy dropped",
                detail=f"accuracy {perf['accuracy']:.3f} on {perf['labelled']} labelled rows, expected"
                f" {perf['expected']:.3f} ({perf['test']}, p={perf['p_value']:.2g}).",
                artifact=where,
                location={"window": where},
                evidence=perf,
                remediation="Retrain on recent labelled data, or roll back to a model that holds up.",
            )
        )
    return out
