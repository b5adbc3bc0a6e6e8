"""Poisoning detection on more rows than one process should hold: sample, fit, then score in chunks.

``scan_rows`` (``_poison``) holds the whole feature matrix and cross-validates models on it, which bounds
it to a few hundred thousand rows. ``scan_file`` streams a CSV/Parquet/NumPy file twice:

1. pass one reads every chunk, checks it (numeric, finite, a label per row; an error names the file row),
   collects the class names and keeps a seeded uniform reservoir sample of ``sample_rows`` rows
   (Algorithm R, vectorised per chunk, so the same seed gives the same sample);
2. the detectors are fitted on the sample exactly as ``scan_rows`` fits them on a whole file; the label
   and backdoor detectors, whose cross-validated and per-class models cost far more per row than the
   neighbour searches, on a seeded uniform subset of the sample of at most ``fit_rows`` rows (the
   label detector's folds, and the refit of its models, go through the executor when one is given);
3. pass two scores every row, chunk by chunk, with what the fit learned: rows a detector was fitted on
   keep that detector's verdict; the other rows get
   * labels: the probabilities of the label ensemble refit on the sample rows the detector kept, the
     same margin rule, and the detector's cap turned into a threshold on the calibrated margin (the
     lowest calibrated margin the cap let through in the sample);
   * outliers: the mean distance to their nearest sample rows, as a robust z-score against the sample's
     own scores (both are distances to the same sample, so the scales agree);
   * duplicates: a row within the sample's near-duplicate radius of a sample row is a copy of it (copies
     of points with no copy in the sample are missed: the sample bounds what can be compared);
   * backdoor: for each class the fit found poisoned, rows of that class that a model of the other
     classes is as sure of as of its own data and that carry the trigger the flagged rows share (the
     detector's own extension step, applied chunk by chunk).

Memory is the sample, one chunk and one flag byte per row; flagged rows are written to a JSON-lines file
as they are found (``suspects_path``) and only the first ``keep_suspects`` are kept for the report.
Chunk scoring goes through ``mlsecops.core.executor`` when an executor is given.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import JsonValue

from mlsecops.core.errors import InputError
from mlsecops.core.findings import Severity
from mlsecops.data._backdoor import (
    _CARRY_SHARE,
    _CARRY_TOLERANCE,
    _MAX_TRIGGER_FEATURES,
    _REFERENCE_DIMS,
    BackdoorClusterDetector,
    _class_means,
    _shift,
)
from mlsecops.data._labels import ConfidentLabelDetector, _default_models, _margin_scores
from mlsecops.data._outliers import NearDuplicateDetector, OutlierDetector
from mlsecops.data._poison import ROW_DETECTORS, PoisonResult, _finding, _label_severity
from mlsecops.data._readers import LABEL_NAMES, iter_chunks

__all__ = ["DEFAULT_FIT_ROWS", "DEFAULT_SAMPLE_ROWS", "STREAM_ABOVE_ROWS", "reservoir_sample", "scan_file"]

STREAM_ABOVE_ROWS = 200_000
"""``data poison`` holds files up to this many rows in memory and streams larger ones."""
DEFAULT_SAMPLE_ROWS = 50_000
"""Rows of the reservoir sample the detectors are fitted on."""
DEFAULT_FIT_ROWS = 20_000
"""Rows of the sample the label and backdoor detectors are fitted on: the label detector fits 30 folds
(3 rounds x 2 repeats x 5) of logistic regression and gradient boosting on 16,000 rows each; one
gradient-boosting fit took 19 s on one thread here, the whole fit of a 1M-row scan 289 s on two workers
(benchmarks/results/scale-poison.md)."""
STREAM_CHUNK_ROWS = 100_000
"""Rows scored per chunk."""
KEEP_SUSPECTS = 10_000
"""Suspect rows kept in the report (all of them go to ``suspects_path``)."""


@dataclass
class Sample:
    """A uniform sample of a file's rows and what pass one learned about the file."""

    X: np.ndarray
    y_raw: np.ndarray
    rows: np.ndarray
    """File row (0-based data row) of each sample row, ascending."""
    n_rows: int
    classes: list[str]
    features: list[str]
    label: str


def _label_column(chunk: dict[str, np.ndarray], label: str | None, path: Path) -> str:
    column = label or next((c for c in ("label", *LABEL_NAMES) if c in chunk), None)
    if not column:
        raise InputError(f"{path}: name the label column with --label")
    if column not in chunk:
        raise InputError(f"{path}: label column {column!r} not found; columns are {sorted(chunk)[:20]}")
    return column


def _chunk_xy(
    chunk: dict[str, np.ndarray], column: str, features: list[str], path: Path, start: int
) -> tuple[np.ndarray, np.ndarray]:
    """Features and raw labels of one chunk; an error names the first bad data row (1-based)."""
    missing = [f for f in features if f not in chunk]
    if missing or len(chunk) != len(features) + 1:
        raise InputError(f"{path}: the chunk from data row {start + 1} has other columns than the first")
    for f in features:
        if chunk[f].dtype == object:
            bad = next(i for i, v in enumerate(chunk[f]) if not isinstance(v, (int, float)))
            raise InputError(f"{path}: data row {start + bad + 1}: column {f!r} is not numeric")
    X = np.column_stack([np.asarray(chunk[f], dtype=np.float64) for f in features])
    finite = np.isfinite(X).all(axis=1)
    if not finite.all():
        bad = int(np.flatnonzero(~finite)[0])
        raise InputError(f"{path}: data row {start + bad + 1}: missing or non-finite feature value")
    y = chunk[column]
    if y.dtype == object:
        if any(v is None for v in y):
            bad = next(i for i, v in enumerate(y) if v is None)
            raise InputError(f"{path}: data row {start + bad + 1}: the label is missing")
        y = y.astype(str)
    elif y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        bad = int(np.flatnonzero(~np.isfinite(y))[0])
        raise InputError(f"{path}: data row {start + bad + 1}: the label is missing or not finite")
    return X, y


def _class_name(v: Any) -> str:
    if isinstance(v, float | np.floating) and float(v).is_integer():
        return str(int(v))
    return str(v)


def _iter_xy(
    path: Path, label: str | None, chunk_rows: int
) -> Iterator[tuple[int, np.ndarray, np.ndarray, str, list[str]]]:
    """``(first row, X, y, label column, features)`` per chunk of at least ``chunk_rows`` rows (the last
    may be shorter): the reader's batches are joined, since a CSV reader yields blocks of a few thousand
    rows, and a chunk is the unit of work an executor gets.
    """
    start = 0
    column: str | None = None
    features: list[str] = []
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    held = 0
    for chunk in iter_chunks(path, chunk_rows=chunk_rows):
        if column is None:
            column = _label_column(chunk, label, path)
            features = [c for c in chunk if c != column]
            if not features:
                raise InputError(f"{path}: no feature columns besides the label {column!r}")
        X, y = _chunk_xy(chunk, column, features, path, start + held)
        parts.append((X, y))
        held += X.shape[0]
        if held >= chunk_rows:
            yield start, *_joined(parts), column, features
            start, parts, held = start + held, [], 0
    if parts and column is not None:
        yield start, *_joined(parts), column, features


def _joined(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    if len(parts) == 1:
        return parts[0]
    ys = [y for _, y in parts]
    if any(y.dtype == object for y in ys) and not all(y.dtype == object for y in ys):
        ys = [y.astype(object) for y in ys]
    return np.vstack([X for X, _ in parts]), np.concatenate(ys)


def reservoir_sample(
    path: Path,
    *,
    label: str | None,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
    seed: int = 0,
    chunk_rows: int = STREAM_CHUNK_ROWS,
) -> Sample:
    """Pass one: a seeded uniform sample of ``sample_rows`` rows, the row count and the class names.

    Raises:
        InputError: unreadable data, a missing label column, a non-numeric or non-finite value (the
            message names the data row), or no rows.
    """
    rng = np.random.default_rng(seed)
    X_s: np.ndarray | None = None
    y_s: np.ndarray | None = None
    rows_s = np.empty(0, dtype=np.int64)
    classes: set[str] = set()
    n = 0
    column, features = "", list[str]()
    for start, X, y, col, feats in _iter_xy(path, label, chunk_rows):
        column, features = col, feats
        classes.update(_class_name(v) for v in np.unique(y))
        m = X.shape[0]
        if X_s is None:
            X_s = np.empty((0, X.shape[1]))
            y_s = np.empty(0, dtype=y.dtype)
        assert y_s is not None
        fill = max(0, min(sample_rows - X_s.shape[0], m))
        if fill:
            X_s = np.vstack([X_s, X[:fill]])
            y_s = np.concatenate([y_s.astype(object), y[:fill].astype(object)])
            rows_s = np.concatenate([rows_s, np.arange(start, start + fill)])
        if fill < m:
            idx = np.arange(start + fill, start + m)
            j = np.floor(rng.random(idx.size) * (idx + 1)).astype(np.int64)
            for pos in np.flatnonzero(j < sample_rows):  # later rows replace earlier ones, as in Algorithm R
                slot = int(j[pos])
                X_s[slot] = X[fill + pos]
                y_s[slot] = y[fill + pos]
                rows_s[slot] = idx[pos]
        n = start + m
    if X_s is None or y_s is None or n == 0:
        raise InputError(f"{path}: no data rows")
    order = np.argsort(rows_s, kind="stable")
    y_names = np.array([_class_name(v) for v in y_s[order]], dtype=object)
    names = sorted(classes, key=_sort_key)
    return Sample(X_s[order], y_names, rows_s[order], n, names, features, column)


def _sort_key(name: str) -> tuple[int, float, str]:
    try:
        return (0, float(name), name)
    except ValueError:
        return (1, 0.0, name)


class _Suspects:
    """Collects flagged rows: every one to a JSON-lines file, the first ``keep`` in memory."""

    def __init__(self, path: Path | None, keep: int) -> None:
        self.fh = path.open("w", encoding="utf-8") if path is not None else None
        self.keep = keep
        self.rows: list[dict[str, JsonValue]] = []
        self.count = 0

    def add(self, row: int, score: float, reason: str) -> None:
        item: dict[str, JsonValue] = {
            "row": row,
            "score": round(float(np.clip(score, 0, 1)), 4),
            "reason": reason,
        }
        self.count += 1
        if len(self.rows) < self.keep:
            self.rows.append(item)
        if self.fh is not None:
            self.fh.write(json.dumps(item) + "\n")

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()


@dataclass
class _Fitted:
    """What the sample fit hands to chunk scoring (all picklable, so an executor can take it)."""

    sample_rows: np.ndarray
    sample_flags: dict[str, np.ndarray]
    sample_scores: dict[str, np.ndarray]
    code: dict[str, int]
    label_models: list[Any] | None = None
    margin: float = 0.2
    temperature: float = 1.0
    cap: float = -np.inf
    out_scale: tuple[np.ndarray, np.ndarray] | None = None
    out_nn: Any = None
    out_k: int = 10
    out_stats: tuple[float, float, float] = (0.0, 1.0, 6.0)
    dup_radius: float = 0.0
    bd: list[dict[str, Any]] | None = None
    bd_unit: tuple[np.ndarray, np.ndarray] | None = None
    bd_pca: Any = None
    fit_rows: dict[str, np.ndarray] = field(default_factory=dict)
    """Per detector fitted on a subset of the sample, the file rows of that subset (ascending)."""


def _tempered_margin(proba: np.ndarray, y: np.ndarray, t: float) -> np.ndarray:
    z = np.log(np.clip(proba, 1e-12, 1.0)) / t
    z -= z.max(axis=1, keepdims=True)
    q = np.exp(z)
    q /= q.sum(axis=1, keepdims=True)
    return _margin_scores(q, y)


def _subset(n: int, fit_rows: int, seed: int) -> np.ndarray:
    """Positions of a seeded uniform subset of ``fit_rows`` of ``n`` sample rows, ascending (all when fewer)."""
    if n <= fit_rows:
        return np.arange(n)
    return np.sort(np.random.default_rng([seed, 19]).choice(n, fit_rows, replace=False))


def _fit_model(task: tuple[Any, np.ndarray, np.ndarray]) -> Any:
    """Fit one label model on the kept rows (a top-level function, so an executor can run it)."""
    model, X, y = task
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(X, y)


def _fit(
    sample: Sample,
    detectors: tuple[str, ...],
    seed: int,
    res: PoisonResult,
    fit_rows: int = DEFAULT_FIT_ROWS,
    executor: Any = None,
) -> _Fitted:
    code = {c: k for k, c in enumerate(sample.classes)}
    X_all, y_all = sample.X, np.array([code[c] for c in sample.y_raw], dtype=np.int64)
    fitted = _Fitted(sample.rows, {}, {}, code)
    sub = _subset(X_all.shape[0], fit_rows, seed)
    X, y = X_all[sub], y_all[sub]
    present = np.unique(y).size
    if "labels" in detectors and present >= 2:
        lab = ConfidentLabelDetector(random_state=seed, executor=executor).fit(X, y)
        fitted.sample_flags["labels"] = lab.suspect_
        fitted.sample_scores["labels"] = lab.scores_
        fitted.margin, fitted.temperature = lab.margin, lab.temperature_
        tm = _tempered_margin(lab.proba_, y, lab.temperature_)
        fitted.cap = float(tm[lab.suspect_].min()) if lab.suspect_.any() else np.inf
        keep = ~lab.suspect_
        tasks = [(m, X[keep], y[keep]) for m in _default_models(int(keep.sum()), seed)]
        fitted.label_models = (
            list(executor.map(_fit_model, tasks, desc="label models"))
            if executor
            else list(map(_fit_model, tasks))
        )
        fitted.fit_rows["labels"] = sample.rows[sub]
        res.metrics["estimated_noise_rate"] = round(float(lab.noise_rate_), 6)
        res.metrics["fit_rows"] = float(sub.size)
    X, y = X_all, y_all  # the neighbour detectors use the whole sample
    if "outliers" in detectors:
        from sklearn.neighbors import NearestNeighbors

        med = np.median(X, axis=0)
        iqr = np.subtract(*np.percentile(X, [75, 25], axis=0))
        std = X.std(axis=0)
        scale = np.where(iqr > 0, iqr / 1.349, np.where(std > 0, std, 1.0))
        od = OutlierDetector().fit(X)
        scaled = (X - med) / scale
        k = int(min(od.n_neighbors, X.shape[0] - 1))
        fitted.out_scale, fitted.out_k = (med, scale), k
        fitted.out_nn = NearestNeighbors(n_neighbors=k + 1).fit(scaled)
        d = np.log(fitted.out_nn.kneighbors(scaled)[0][:, 1:].mean(axis=1) + 1e-12)
        dmed = float(np.median(d))
        fitted.out_stats = (dmed, float(np.median(np.abs(d - dmed))) * 1.4826 or 1e-12, od.threshold)
        fitted.sample_flags["outliers"] = od.suspect_
        fitted.sample_scores["outliers"] = od.scores_
    if "duplicates" in detectors:
        nd = NearDuplicateDetector().fit(X)
        med, scale = fitted.out_scale or (np.median(X, axis=0), np.ones(X.shape[1]))
        if fitted.out_nn is None:
            from sklearn.neighbors import NearestNeighbors

            iqr = np.subtract(*np.percentile(X, [75, 25], axis=0))
            std = X.std(axis=0)
            scale = np.where(iqr > 0, iqr / 1.349, np.where(std > 0, std, 1.0))
            fitted.out_scale = (med, scale)
            fitted.out_nn = NearestNeighbors(n_neighbors=2).fit((X - med) / scale)
        scaled = (X - med) / scale
        d1 = fitted.out_nn.kneighbors(scaled, n_neighbors=2)[0][:, 1]
        positive = d1[d1 > 0]
        fitted.dup_radius = max(nd.radius * (float(np.median(positive)) if positive.size else 1.0), 1e-9)
        fitted.sample_flags["duplicates"] = nd.suspect_
        fitted.sample_scores["duplicates"] = nd.scores_
    X, y = X_all[sub], y_all[sub]
    if "backdoor" in detectors and present >= 3:
        bd = BackdoorClusterDetector(random_state=seed).fit(X, y)
        fitted.fit_rows["backdoor"] = sample.rows[sub]
        res.metrics["fit_rows"] = float(sub.size)
        fitted.sample_flags["backdoor"] = bd.suspect_
        fitted.sample_scores["backdoor"] = bd.scores_
        if bd.suspect_.any():
            fitted.bd = _backdoor_rules(bd, X, y, seed, fitted)
        res.metrics["backdoor_classes"] = float(len(fitted.bd or []))
    return fitted


def _backdoor_rules(
    bd: BackdoorClusterDetector, X: np.ndarray, y: np.ndarray, seed: int, fitted: _Fitted
) -> list[dict[str, Any]]:
    """Per poisoned class: the other-class reference model, its typical confidence and the trigger."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    lo, hi = X.min(axis=0), X.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    fitted.bd_unit = (lo, span)
    X_unit = (X - lo) / span
    X_ref = X_unit
    if X_unit.shape[1] > _REFERENCE_DIMS:
        from sklearn.decomposition import PCA

        fitted.bd_pca = PCA(_REFERENCE_DIMS, random_state=seed).fit(X_unit)
        X_ref = fitted.bd_pca.transform(X_unit)
    suspect = bd.suspect_
    rules = []
    for c in np.unique(y[suspect]):
        other = np.flatnonzero((y != c) & ~suspect)
        if np.unique(y[other]).size < 2:
            continue
        tr, te = next(StratifiedKFold(2, shuffle=True, random_state=seed).split(X_ref[other], y[other]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf = LogisticRegression(C=1.0, max_iter=300, tol=1e-3).fit(X_ref[other[tr]], y[other[tr]])
        typical = max(float(np.median(clf.predict_proba(X_ref[other[te]]).max(axis=1))), 1e-9)
        means = _class_means(X_unit, y, ~suspect)
        flagged = np.flatnonzero((y == c) & suspect)
        med, shared = _shift(means, X_unit, flagged, bd.explained_by_[flagged])
        n_trigger = int(np.sum(shared >= bd.min_consistency))
        feats = np.argsort(-shared)[: max(1, min(_MAX_TRIGGER_FEATURES, n_trigger))]
        # The detector flags whole clusters (their median confidence is what it compares), so half of a
        # flagged cluster's rows are less sure than the median: a row outside the fit is held to the
        # confidence of the flagged rows that carry the trigger (their low end), not to the median.
        p = clf.predict_proba(X_ref[flagged])
        conf = p.max(axis=1)
        pred = np.asarray(clf.classes_, dtype=int)[p.argmax(axis=1)]
        change = X_unit[flagged][:, feats] - means[pred][:, feats]
        carries = np.mean(np.abs(change - med[feats]) <= _CARRY_TOLERANCE * np.abs(med[feats]), axis=1)
        carried = conf[carries >= _CARRY_SHARE]
        floor = float(np.quantile(carried, _FLAGGED_CONFIDENCE_QUANTILE)) if carried.size else typical
        rules.append(
            {
                "cls": int(c),
                "clf": clf,
                "typical": min(typical, floor),
                "means": means,
                "med": med,
                "feats": feats,
            }
        )
    return rules


_FLAGGED_CONFIDENCE_QUANTILE = 0.0
"""Quantile of the reference model's confidence on a flagged cluster's trigger-carrying rows that a row
outside the fit must reach (with the trigger) to be flagged."""

_WORKING_MEMORY_MB = 64
"""scikit-learn's working memory for chunked distance computations (its default, 1 GiB, would set the
peak memory of a scan on its own)."""


def _score_chunk(
    fitted: _Fitted, start: int, X: np.ndarray, y_raw: np.ndarray
) -> list[tuple[int, str, float, str]]:
    """Flags of one chunk: ``(file row, detector, score, reason)``. Sample rows keep the sample verdict."""
    import sklearn

    with sklearn.config_context(working_memory=_WORKING_MEMORY_MB):
        return _score_chunk_bounded(fitted, start, X, y_raw)


def _score_chunk_bounded(
    fitted: _Fitted, start: int, X: np.ndarray, y_raw: np.ndarray
) -> list[tuple[int, str, float, str]]:
    n = X.shape[0]
    rows = np.arange(start, start + n)
    pos = np.searchsorted(fitted.sample_rows, rows)
    pos_c = np.minimum(pos, fitted.sample_rows.size - 1)
    in_sample = fitted.sample_rows[pos_c] == rows
    y = np.array([fitted.code[_class_name(v)] for v in y_raw], dtype=np.int64)
    names = list(fitted.code)
    out: list[tuple[int, str, float, str]] = []

    def emit(det: str, mask: np.ndarray, score: np.ndarray, text: Callable[[int], str]) -> None:
        both = mask.copy()
        if det in fitted.sample_flags:
            fit_rows = fitted.fit_rows.get(det)
            if fit_rows is None:
                both[in_sample] = fitted.sample_flags[det][pos_c[in_sample]]
            else:
                at = np.minimum(np.searchsorted(fit_rows, rows), fit_rows.size - 1)
                fit = fit_rows[at] == rows
                both[fit] = fitted.sample_flags[det][at[fit]]
        for i in np.flatnonzero(both):
            out.append((int(rows[i]), det, float(score[i]), text(int(i))))

    if fitted.label_models is not None:
        proba = np.zeros((n, len(names)))
        for m in fitted.label_models:
            p = np.zeros((n, len(names)))
            p[:, np.asarray(m.classes_, dtype=int)] = m.predict_proba(X)
            proba += p / len(fitted.label_models)
        s = _margin_scores(proba, y)
        tm = _tempered_margin(proba, y, fitted.temperature)
        mask = (s > fitted.margin) & (tm >= fitted.cap)
        best = proba.copy()
        best[np.arange(n), y] = -1
        other = best.argmax(axis=1)
        emit(
            "labels",
            mask,
            (s + 1) / 2,
            lambda i: (
                f"label {names[y[i]]} contradicted: p={proba[i, y[i]]:.2f}, class {names[other[i]]}"
                f" p={proba[i, other[i]]:.2f}"
            ),
        )
    if fitted.out_nn is not None and fitted.out_scale is not None:
        med, scale = fitted.out_scale
        scaled = (X - med) / scale
        k = fitted.out_k
        dist = fitted.out_nn.kneighbors(scaled, n_neighbors=k + 1)[0]
        if "outliers" in fitted.sample_flags:
            # A sample row finds itself first; another row's k nearest are the first k.
            d = np.where(in_sample, dist[:, 1:].mean(axis=1), dist[:, :k].mean(axis=1))
            dmed, dmad, thr = fitted.out_stats
            z = (np.log(d + 1e-12) - dmed) / dmad
            emit("outliers", z > thr, z / (2 * thr), lambda i: f"outlier: neighbour distance z={z[i]:.1f}")
        if "duplicates" in fitted.sample_flags:
            near = np.where(in_sample, dist[:, 1], dist[:, 0])
            emit(
                "duplicates",
                near < fitted.dup_radius,
                np.ones(n),
                lambda i: "near-duplicate of a sampled row",
            )
    if fitted.bd is not None and fitted.bd_unit is not None:
        lo, span = fitted.bd_unit
        X_unit = (X - lo) / span
        X_ref = fitted.bd_pca.transform(X_unit) if fitted.bd_pca is not None else X_unit
        mask = np.zeros(n, dtype=bool)
        score = np.zeros(n)
        expl = np.full(n, -1)
        for rule in fitted.bd:
            idx = np.flatnonzero(y == rule["cls"])
            if not idx.size:
                continue
            p = np.zeros((idx.size, len(names)))
            p[:, np.asarray(rule["clf"].classes_, dtype=int)] = rule["clf"].predict_proba(X_ref[idx])
            conf, pred = p.max(axis=1), p.argmax(axis=1)
            feats, medv = rule["feats"], rule["med"]
            change = X_unit[idx][:, feats] - rule["means"][pred][:, feats]
            within = np.abs(change - medv[feats]) <= _CARRY_TOLERANCE * np.abs(medv[feats])
            hit = (conf >= rule["typical"]) & (np.mean(within, axis=1) >= _CARRY_SHARE)
            mask[idx[hit]] = True
            score[idx] = conf / rule["typical"]
            expl[idx] = pred
        emit(
            "backdoor",
            mask,
            np.minimum(score, 1.0),
            lambda i: (
                f"backdoor: class {names[y[i]]} row that looks like class {names[max(expl[i], 0)]}"
                " and carries the trigger"
            ),
        )
    elif "backdoor" in fitted.sample_flags:
        emit("backdoor", np.zeros(n, dtype=bool), np.zeros(n), lambda i: "")
    return out


def scan_file(
    path: Path,
    *,
    label: str | None,
    detectors: tuple[str, ...] = ROW_DETECTORS,
    seed: int = 0,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
    fit_rows: int = DEFAULT_FIT_ROWS,
    chunk_rows: int = STREAM_CHUNK_ROWS,
    suspects_path: Path | None = None,
    keep_suspects: int = KEEP_SUSPECTS,
    executor: Any = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> PoisonResult:
    """Streaming poisoning scan of a labelled data file (see the module docstring).

    Args:
        path: CSV, Parquet or ``.npz`` file with a label column (array ``y``).
        label: the label column.
        detectors: which of ``ROW_DETECTORS`` run.
        seed: seed of the sample and every detector.
        sample_rows: rows the detectors are fitted on.
        fit_rows: rows of the sample the label and backdoor detectors are fitted on.
        chunk_rows: rows read and scored at a time.
        suspects_path: JSON-lines file receiving every flagged row as it is found.
        keep_suspects: flagged rows kept in the result.
        executor: an ``mlsecops.core.executor`` executor fitting the label folds and scoring chunks
            (inline when None).
        progress: called as ``(step, done, total)`` for the steps sample, fit, score.

    Returns:
        A ``PoisonResult`` with ``mask`` None (the per-row mask is not held) and ``metrics["rows"]``.

    Raises:
        InputError: unknown detectors, unreadable or bad data (naming the row), too few rows.
    """
    unknown = set(detectors) - set(ROW_DETECTORS)
    if unknown:
        raise InputError(f"unknown detectors {sorted(unknown)}; choose from {', '.join(ROW_DETECTORS)}")
    if sample_rows < 100 or fit_rows < 100:
        raise InputError(f"sample_rows and fit_rows must be at least 100; got {sample_rows}, {fit_rows}")
    if progress:
        progress("sample", 0, 3)
    sample = reservoir_sample(path, label=label, sample_rows=sample_rows, seed=seed, chunk_rows=chunk_rows)
    res = PoisonResult(metrics={"rows": float(sample.n_rows), "sample_rows": float(sample.X.shape[0])})
    if progress:
        progress("fit", 1, 3)
    fitted = _fit(sample, detectors, seed, res, fit_rows, executor)
    del sample
    if progress:
        progress("score", 2, 3)
    sink = _Suspects(suspects_path, keep_suspects)
    counts = dict.fromkeys(ROW_DETECTORS, 0)
    firsts: dict[str, list[int]] = {d: [] for d in ROW_DETECTORS}
    n_rows = 0
    try:
        for flags in _scored_chunks(fitted, path, label, chunk_rows, executor):
            by_row: dict[int, list[tuple[str, float, str]]] = {}
            for row, det, score, text in flags:
                by_row.setdefault(row, []).append((det, score, text))
                counts[det] += 1
                if len(firsts[det]) < 50:
                    firsts[det].append(row)
            for row in sorted(by_row):
                hits = by_row[row]
                sink.add(row, max(h[1] for h in hits), "; ".join(h[2] for h in hits))
        n_rows = int(res.metrics["rows"])
    finally:
        sink.close()
    res.suspects = sink.rows
    res.metrics.update(
        {
            "label_issues": float(counts["labels"]),
            "backdoor_rows": float(counts["backdoor"]),
            "outliers": float(counts["outliers"]),
            "near_duplicates": float(counts["duplicates"]),
            "suspect_rows": float(sink.count),
            "suspect_share": round(sink.count / max(n_rows, 1), 6),
        }
    )
    art = str(path)
    tail = f" (fitted on a uniform sample of {int(res.metrics['sample_rows']):,} rows, every row scored)"
    fit_tail = (
        f" (fitted on a uniform sample of {int(res.metrics.get('fit_rows', 0)):,} rows, every row scored)"
    )
    if counts["labels"]:
        noise = res.metrics.get("estimated_noise_rate", 0.0)
        res.findings.append(
            _finding(
                "labels",
                _label_severity(noise, int(res.metrics["fit_rows"])),
                f"{counts['labels']} rows with suspected label errors or flips"
                f" ({counts['labels'] / n_rows:.1%})",
                "Models of the data assign another class clearly more probability than the given label"
                f"{fit_tail}.",
                art,
                rows=list(firsts["labels"]),
                estimated_noise_rate=round(noise, 4),
            )
        )
    if counts["backdoor"]:
        res.findings.append(
            _finding(
                "backdoor",
                _finding_severity("critical"),
                f"{counts['backdoor']} rows look like a backdoor",
                "Rows of one class that a model of the other classes explains and that share a trigger"
                f"{fit_tail}.",
                art,
                rows=list(firsts["backdoor"]),
            )
        )
    if counts["outliers"]:
        res.findings.append(
            _finding(
                "outliers",
                _finding_severity("medium" if counts["outliers"] / n_rows >= 0.01 else "low"),
                f"{counts['outliers']} outlying rows",
                f"Rows far from every sampled row{tail}.",
                art,
                rows=list(firsts["outliers"]),
            )
        )
    if counts["duplicates"]:
        res.findings.append(
            _finding(
                "duplicates",
                _finding_severity("medium"),
                f"{counts['duplicates']} near-duplicate rows",
                f"Rows far closer to a sampled row than rows of this data normally are{tail}.",
                art,
                rows=list(firsts["duplicates"]),
            )
        )
    return res


def _finding_severity(name: str) -> Severity:
    return Severity[name.upper()]


def _scored_chunks(
    fitted: _Fitted, path: Path, label: str | None, chunk_rows: int, executor: Any
) -> Iterator[list[tuple[int, str, float, str]]]:
    """Pass two: flags per chunk, in file order; through ``executor.map`` when one is given."""
    chunks = ((start, X, y) for start, X, y, _, _ in _iter_xy(path, label, chunk_rows))
    if executor is None:
        for start, X, y in chunks:
            yield _score_chunk(fitted, start, X, y)
        return
    # A batch of two chunks per worker at a time, so memory stays bounded by the batch, not the file.
    batch: list[tuple[_Fitted, int, np.ndarray, np.ndarray]] = []
    for start, X, y in chunks:
        batch.append((fitted, start, X, y))
        if len(batch) >= 2 * max(int(executor.workers), 1):
            yield from executor.map(_score_task, batch, desc="score chunks")
            batch = []
    if batch:
        yield from executor.map(_score_task, batch, desc="score chunks")


def _score_task(args: tuple[_Fitted, int, np.ndarray, np.ndarray]) -> list[tuple[int, str, float, str]]:
    return _score_chunk(*args)
