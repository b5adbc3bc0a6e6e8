"""Decision auditing: the group, the predicted class and a local explanation of logged decisions.

The guard policy's ``logging.group`` names the input columns that hold the sensitive group, and
``logging.explain`` asks for local explanations of a sample of the logged decisions. Both are computed
by the decision log's background writer (``runtime/decisions.py``, in the guard's sidecar process),
never on the request path: a request costs what it cost before.

- **Group**: one label per row, ``name=value`` per group column joined by ``,`` (``sex=1``).
- **Explanation** of the first ``max_rows`` rows of a sampled request, for class 1 of a binary model
  (so contributions of every row point the same way and can be averaged per group) and for the
  predicted class otherwise:

  - ``linear`` (exact, no model call): ``coef_c * (x - mean)`` for a scikit-learn linear classifier,
    the contributions to the class's decision score;
  - ``occlusion`` (any model, one batched ``predict_proba`` of ``features + 1`` points per row): the
    drop of the class's probability when a feature is set to its mean.

  ``mean`` is the training data's, read from the data profile the guard validates against; without a
  profile, the running mean of the rows the writer has seen.

What is stored: the group labels and predicted classes (``logging.group``), and per explained row the
``top_k`` largest contributions with their feature names. No raw input is stored unless
``logging.raw_inputs`` is on; note that a linear contribution divided by its coefficient gives the
feature's distance to the mean, so an explanation reveals the top features' values to whoever can read
the log (keep ``top_k`` small, or explanations off, where that matters).

``labelled_decisions`` reads back what ``mlsecops monitor fairness --log`` audits: the rows logged
from feedback (labels, predictions, groups) and the explained decisions (groups, contributions).
"""

from __future__ import annotations

import json
import logging
import math
import random
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlsecops.core.errors import ConfigError
from mlsecops.runtime.policy import LoggingPolicy

__all__ = [
    "DecisionAuditor",
    "LoggedDecisions",
    "build_auditor",
    "group_labels",
    "labelled_decisions",
    "recent_decisions",
]

_log = logging.getLogger("mlsecops.runtime.decision_audit")

LINEAR_MODELS = frozenset({"LogisticRegression", "LogisticRegressionCV", "SGDClassifier", "RidgeClassifier"})
"""scikit-learn classifiers whose decision score is ``coef . x + intercept`` (exact contributions)."""


def group_labels(rows: np.ndarray, columns: Sequence[int], names: Sequence[str]) -> list[str]:
    """One label per row: ``name=value`` per group column, joined by ``,`` (``"sex=1,band=2"``).

    A row without the column (too narrow) gets ``"?"``.
    """
    flat = np.asarray(rows).reshape(np.shape(rows)[0], -1) if np.ndim(rows) else np.zeros((0, 0))
    out = []
    for r in flat:
        parts = []
        for c, n in zip(columns, names, strict=True):
            if c >= r.shape[0]:
                parts = ["?"]
                break
            v = float(r[c])
            parts.append(f"{n}={v:g}" if math.isfinite(v) else f"{n}=nan")
        out.append(",".join(parts))
    return out


class DecisionAuditor:
    """Computes what decision auditing stores for one logged request (used by the writer thread).

    Args:
        policy: the guard policy's ``logging`` section.
        model: the served model adapter (``predict_proba``, ``n_classes``); ``None`` when the guard
            serves an upstream model (then no explanation, only groups).
        mean: the training mean per feature, or ``None`` (then the running mean of seen rows).
        feature_names: one name per feature (``None``: ``f<index>``).
        rng: random source of the explanation sampling.

    Raises:
        ConfigError: ``method: linear`` for a model that is not linear, or explanations asked of an
            upstream model.
    """

    def __init__(
        self,
        policy: LoggingPolicy,
        model: Any | None,
        *,
        mean: np.ndarray | None = None,
        feature_names: Sequence[str] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.group = policy.group
        self.explain = policy.explain
        self.model = model
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._mean = None if mean is None else np.asarray(mean, dtype=np.float64)
        self._sum: np.ndarray | None = None
        self._seen = 0
        self.feature_names = list(feature_names) if feature_names else None
        self.explained = 0
        """Requests explained."""
        self.method = ""
        self._coef: np.ndarray | None = None
        if self.explain is not None:
            if model is None:
                raise ConfigError(
                    "logging.explain needs the model served by the guard itself (not an upstream server)"
                )
            self._coef = _linear_coef(model)
            if self.explain.method == "linear" and self._coef is None:
                raise ConfigError(
                    "logging.explain.method linear needs a scikit-learn linear classifier "
                    f"({', '.join(sorted(LINEAR_MODELS))}); use occlusion or auto"
                )
            self.method = (
                "linear" if self._coef is not None and self.explain.method != "occlusion" else "occlusion"
            )
        if self.group is not None and self.group.names and len(self.group.names) != len(self.group.columns):
            raise ConfigError("logging.group.names must give one name per column")

    @property
    def wants_outputs(self) -> bool:
        """Whether the writer needs the model's outputs (the predicted classes) of logged requests."""
        return self.group is not None

    def groups(self, inputs: np.ndarray | None) -> list[str] | None:
        """The group label of each row, or ``None`` without ``logging.group`` or inputs."""
        if self.group is None or inputs is None or not np.ndim(inputs):
            return None
        names = self.group.names or tuple(f"f{c}" for c in self.group.columns)
        return group_labels(inputs, self.group.columns, names)

    def predictions(self, outputs: np.ndarray | None) -> list[int] | None:
        """The predicted class of each row, or ``None``."""
        if self.group is None or outputs is None:
            return None
        arr = np.asarray(outputs)
        if arr.ndim != 2 or arr.shape[0] == 0:
            return None
        return [int(v) for v in np.argmax(arr, axis=1)]

    def explanation(self, inputs: np.ndarray | None) -> dict[str, Any] | None:
        """A sampled explanation of the request's first rows (``None`` when not sampled or not possible)."""
        if self.explain is None or inputs is None or self.model is None:
            return None
        if self.explain.sample_rate < 1.0 and not self._rng.random() < self.explain.sample_rate:
            return None
        x = np.asarray(inputs, dtype=np.float64)
        x = x.reshape(x.shape[0], -1) if x.ndim >= 2 else x.reshape(1, -1)
        if x.size == 0 or not np.isfinite(x).all():
            return None
        x = x[: self.explain.max_rows]
        mean = self._baseline(x)
        n_classes = int(getattr(self.model, "n_classes", 2) or 2)
        if self.method == "linear" and self._coef is not None:
            contrib, classes = self._linear(x, mean, n_classes)
        else:
            contrib, classes = self._occlusion(x, mean, n_classes)
        names = self.feature_names or [f"f{j}" for j in range(x.shape[1])]
        if len(names) != x.shape[1]:
            names = [f"f{j}" for j in range(x.shape[1])]
        k = min(self.explain.top_k, x.shape[1])
        rows = []
        for i in range(x.shape[0]):
            top = np.argsort(-np.abs(contrib[i]), kind="stable")[:k]
            rows.append(
                {"class": int(classes[i]), "top": [[names[j], round(float(contrib[i, j]), 6)] for j in top]}
            )
        with self._lock:
            self.explained += 1
        return {"method": self.method, "rows": rows}

    # -- methods --------------------------------------------------------------------------------

    def _baseline(self, x: np.ndarray) -> np.ndarray:
        if self._mean is not None and self._mean.shape[0] == x.shape[1]:
            return self._mean
        with self._lock:  # the running mean of the rows seen so far, this request's included
            if self._sum is None or self._sum.shape[0] != x.shape[1]:
                self._sum, self._seen = np.zeros(x.shape[1]), 0
            self._sum += x.sum(axis=0)
            self._seen += x.shape[0]
            return self._sum / self._seen

    def _linear(self, x: np.ndarray, mean: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
        coef = self._coef
        assert coef is not None
        if coef.shape[0] == 1:  # binary: the score of class 1
            return (x - mean) * coef[0], np.ones(x.shape[0], dtype=np.int64)
        model = self.model
        assert model is not None  # explanations are only built with a model
        proba = model.predict_proba(x) if n_classes > 2 else None
        classes = np.argmax(proba, axis=1) if proba is not None else np.zeros(x.shape[0], dtype=np.int64)
        return (x - mean) * coef[classes], classes

    def _occlusion(self, x: np.ndarray, mean: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
        n, m = x.shape
        batch = np.repeat(x, m + 1, axis=0).reshape(n, m + 1, m)
        for j in range(m):
            batch[:, j + 1, j] = mean[j]
        model = self.model
        assert model is not None  # explanations are only built with a model
        proba = np.asarray(model.predict_proba(batch.reshape(-1, m)), dtype=np.float64).reshape(n, m + 1, -1)
        classes = np.ones(n, dtype=np.int64) if n_classes == 2 else np.argmax(proba[:, 0], axis=1)
        own = proba[np.arange(n), :, classes]  # (n, m + 1): the explained class's probability
        return own[:, :1] - own[:, 1:], classes


def _linear_coef(model: Any) -> np.ndarray | None:
    """``coef_`` of a bare scikit-learn linear classifier behind the adapter, else ``None``."""
    est = getattr(model, "estimator", None)
    if (
        est is None
        or type(est).__name__ not in LINEAR_MODELS
        or not type(est).__module__.startswith("sklearn.")
    ):
        return None
    coef = getattr(est, "coef_", None)
    return None if coef is None else np.atleast_2d(np.asarray(coef, dtype=np.float64))


def build_auditor(
    policy: LoggingPolicy, model: Any | None, profile: dict[str, Any] | None
) -> DecisionAuditor | None:
    """The auditor the policy asks for (``None`` when neither ``group`` nor ``explain`` is set).

    The baseline mean and the feature names come from the data profile when its numeric columns match
    the model's width; ``logging.feature_names`` overrides the names.

    Raises:
        ConfigError: see :class:`DecisionAuditor`.
    """
    if policy.group is None and policy.explain is None:
        return None
    mean, names = _from_profile(profile, model)
    if policy.feature_names:
        names = list(policy.feature_names)
    return DecisionAuditor(policy, model, mean=mean, feature_names=names)


def _from_profile(
    profile: dict[str, Any] | None, model: Any | None
) -> tuple[np.ndarray | None, list[str] | None]:
    if not isinstance(profile, dict) or model is None:
        return None, None
    raw = profile.get("columns", [])
    label = profile.get("label")
    cols = [c for c in (raw.values() if isinstance(raw, dict) else raw) if isinstance(c, dict)]
    cols = [c for c in cols if label is None or c.get("name") != label]  # the label is no model input
    width = int(np.prod(getattr(model, "input_shape", ()) or (0,)))
    if not cols or len(cols) != width or any(c.get("mean") is None for c in cols):
        return None, None
    return np.array([float(c["mean"]) for c in cols]), [
        str(c.get("name", f"f{j}")) for j, c in enumerate(cols)
    ]


# ----------------------------------------------------------------------------- reading back


@dataclass(frozen=True)
class LoggedDecisions:
    """What the decision log holds for auditing one model.

    Attributes:
        labels: true classes of the rows logged from feedback.
        predictions: the served version's predicted classes of those rows.
        groups: their group labels.
        times: their arrival times (Unix seconds), one per row.
        explained_groups: the group of each explained row.
        explained: per explained row, feature -> contribution (its top features only).
        explained_times: arrival time of each explained row.
    """

    labels: np.ndarray
    predictions: np.ndarray
    groups: np.ndarray
    times: np.ndarray
    explained_groups: list[str]
    explained: list[dict[str, float]]
    explained_times: list[float]


def labelled_decisions(ws: Any, model: str, *, version: str | None = None) -> LoggedDecisions:
    """Read a model's feedback rows (labels, predictions, groups) and explained decisions, oldest first.

    Rows whose stored JSON does not read back, or whose lists disagree in length, are skipped.

    Raises:
        WorkspaceError: the database cannot be read.
    """
    labels: list[int] = []
    preds: list[int] = []
    groups: list[str] = []
    times: list[float] = []
    ex_groups: list[str] = []
    explained: list[dict[str, float]] = []
    ex_times: list[float] = []
    for row in _audit_rows(ws, model, version):
        try:
            g = json.loads(row.groups) if row.groups else None
            if row.labels is not None and row.predictions is not None and g is not None:
                y, p = json.loads(row.labels), json.loads(row.predictions)
                if len(y) == len(p) == len(g):
                    labels += [int(v) for v in y]
                    preds += [int(v) for v in p]
                    groups += [str(v) for v in g]
                    times += [row.ts_us / 1e6] * len(y)
            if row.explanation is not None and g is not None:
                doc = json.loads(row.explanation)
                for i, r in enumerate(doc.get("rows", [])):
                    if i < len(g):
                        ex_groups.append(str(g[i]))
                        explained.append({str(k): float(v) for k, v in r.get("top", [])})
                        ex_times.append(row.ts_us / 1e6)
        except (ValueError, TypeError, AttributeError):
            continue
    return LoggedDecisions(
        np.asarray(labels, dtype=np.int64),
        np.asarray(preds, dtype=np.int64),
        np.asarray(groups, dtype=object),
        np.asarray(times, dtype=np.float64),
        ex_groups,
        explained,
        ex_times,
    )


def recent_decisions(
    ws: Any, model: str, *, limit: int = 20, explained_only: bool = False
) -> list[dict[str, Any]]:
    """The newest logged decisions of a model (newest first), with their audit fields, JSON-ready.

    Never the raw inputs or outputs: ``mlsecops monitor export-log`` writes those where they were kept.

    Raises:
        WorkspaceError: the database cannot be read.
    """
    from sqlalchemy import select

    from mlsecops.runtime._decision_tables import DecisionRecord as D

    q = select(
        D.ts_us,
        D.principal,
        D.version,
        D.decision,
        D.status,
        D.rows,
        D.input_digest,
        D.groups,
        D.predictions,
        D.labels,
        D.explanation,
    ).where(D.model == model)
    if explained_only:
        q = q.where(D.explanation.is_not(None))
    q = q.order_by(D.ts_us.desc(), D.id.desc()).limit(max(1, int(limit)))
    with ws.session(readonly=True) as s:
        page = s.execute(q).all()
    out = []
    for r in page:
        item: dict[str, Any] = {
            "time": r.ts_us / 1e6,
            "principal": r.principal,
            "version": r.version,
            "decision": r.decision,
            "status": r.status,
            "rows": r.rows,
            "input_digest": r.input_digest,
        }
        for key in ("groups", "predictions", "labels", "explanation"):
            raw = getattr(r, key)
            if raw is None:
                continue
            try:
                item[key] = json.loads(raw)
            except ValueError:
                item[key] = None
        out.append(item)
    return out


_PAGE = 1_000


def _audit_rows(ws: Any, model: str, version: str | None) -> Iterator[Any]:
    from sqlalchemy import select

    from mlsecops.runtime._decision_tables import DecisionRecord as D

    last: tuple[int, int] | None = None
    while True:
        q = select(D.id, D.ts_us, D.groups, D.predictions, D.labels, D.explanation).where(
            D.model == model, D.groups.is_not(None)
        )
        if version is not None:
            q = q.where(D.version == version)
        if last is not None:
            q = q.where((D.ts_us > last[0]) | ((D.ts_us == last[0]) & (D.id > last[1])))
        q = q.order_by(D.ts_us, D.id).limit(_PAGE)
        with ws.session(readonly=True) as s:
            page = s.execute(q).all()
        if not page:
            return
        yield from page
        last = (page[-1].ts_us, page[-1].id)
