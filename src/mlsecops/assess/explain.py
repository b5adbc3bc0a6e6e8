"""The ``assess.explain`` check: which features drive a model's decisions, globally, per row, per group.

``explain`` is the library call. It always computes permutation importance (scikit-learn's
``permutation_importance``: the accuracy lost when one feature is shuffled) and, with ``method="shap"``
(or ``"auto"`` where the ``shap`` extra is installed), SHAP values: exact ``TreeExplainer`` values for
scikit-learn tree models, the model-agnostic permutation explainer over a background sample otherwise.
Local explanations for chosen rows are SHAP values, or without SHAP a marginal ablation (the change in
the predicted class's probability when one feature takes background values). With a sensitive column
the features are ranked again within each group, so a reviewer sees whether the model decides on
different grounds for different people; groups too small to rank are reported as such.

``explanation_report`` turns an ``Explanation`` into a ``Report``: metrics ``importance@<feature>``
(the global ranking's values) and ``sensitive_rank`` (1 = the sensitive column is the most important
feature), the rankings and local explanations in ``data``, bar charts in the HTML report, and a medium
finding when a sensitive column is among the ``SENSITIVE_TOP_K`` most important features. Models load
only through ``mlsecops.models`` (``safe_load``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mlsecops.assess._data import DEFAULT_LABELS, encode_labels, subsample
from mlsecops.assess._explain_backends import (
    ablation_values,
    feature_name_warnings_off,
    permutation_scores,
    shap_values,
)
from mlsecops.assess._explain_report import (
    MIN_GROUP_ROWS,
    SENSITIVE_MIN_SHARE,
    SENSITIVE_TOP_K,
    Explanation,
    FeatureRanking,
    GroupRanking,
    LocalExplanation,
    explanation_report,
)
from mlsecops.assess._options import MODEL_OPTIONS, load_target_model, model_and_data
from mlsecops.core.checks import CheckKind, ContractCases, Target, register
from mlsecops.core.errors import ConfigError, InputError
from mlsecops.core.findings import Report, utcnow
from mlsecops.core.redaction import redact
from mlsecops.models.interface import ModelAdapter, check_inputs
from mlsecops.models.sklearn import SklearnModel

__all__ = [
    "METHODS",
    "MIN_GROUP_ROWS",
    "SENSITIVE_MIN_SHARE",
    "SENSITIVE_TOP_K",
    "ExplainCheck",
    "Explanation",
    "FeatureRanking",
    "GroupRanking",
    "LocalExplanation",
    "explain",
    "explanation_report",
    "load_explain_inputs",
]

METHODS = ("auto", "permutation", "shap")
"""``auto``: SHAP where the ``shap`` package is installed, permutation importance otherwise."""
DEFAULT_MAX_ROWS = 1000
"""Rows the global explanation uses (a seeded sample of the data): bounds SHAP's cost."""
BACKGROUND_ROWS = 100
"""Background sample that features are drawn from when they are masked (SHAP, ablation)."""
PERMUTATION_REPEATS = 5
"""Shuffles per feature for permutation importance; the report gives their standard deviation."""
MAX_GROUPS = 50
"""Most groups a sensitive column may have: a continuous column is refused, not ranked 7,000 times."""
MAX_LOCAL_ROWS = 50
"""Most rows explained locally in one run."""


def explain(
    model: ModelAdapter,
    x: np.ndarray,
    y: np.ndarray,
    *,
    feature_names: Sequence[str] | None = None,
    rows: Sequence[int] = (),
    sensitive: np.ndarray | None = None,
    sensitive_name: str | None = None,
    method: str = "auto",
    max_rows: int = DEFAULT_MAX_ROWS,
    background_rows: int = BACKGROUND_ROWS,
    n_repeats: int = PERMUTATION_REPEATS,
    classes: Sequence[str] | None = None,
    seed: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
) -> Explanation:
    """Explain a model's decisions on ``x``.

    Args:
        model: the model (any adapter).
        x: inputs, one row per example (tabular).
        y: integer class labels (for permutation importance).
        feature_names: one name per column (default ``f0``, ``f1``...).
        rows: indices of rows of ``x`` to explain locally.
        sensitive: one group value per row of ``x``; features are then ranked within each group.
        sensitive_name: the sensitive column's name (the report checks its global rank).
        method: ``auto``, ``permutation`` or ``shap``.
        max_rows: rows the global and group rankings use (a seeded sample).
        background_rows: background sample for SHAP and ablation.
        n_repeats: permutation repeats.
        classes: class names for the report (default: the model's, else indices).
        seed: random seed; the same seed gives the same explanation.
        progress: called as ``(step, done, total)``.

    Raises:
        InputError: wrong shapes, a row out of range, one class only, an unknown method, or
            ``method="shap"`` without the shap package.
    """
    if method not in METHODS:
        raise InputError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    with feature_name_warnings_off():
        return _explain(
            model,
            x,
            y,
            feature_names,
            rows,
            sensitive,
            sensitive_name,
            method,
            max_rows,
            background_rows,
            n_repeats,
            classes,
            seed,
            progress,
        )


def _explain(
    model: ModelAdapter,
    x: np.ndarray,
    y: np.ndarray,
    feature_names: Sequence[str] | None,
    rows: Sequence[int],
    sensitive: np.ndarray | None,
    sensitive_name: str | None,
    method: str,
    max_rows: int,
    background_rows: int,
    n_repeats: int,
    classes: Sequence[str] | None,
    seed: int,
    progress: Callable[[str, int, int], None] | None,
) -> Explanation:
    arr = check_inputs(x, model.input_shape, what="data")
    if arr.ndim != 2:
        raise InputError(
            f"explanations need tabular data (rows x features); got rows of shape {arr.shape[1:]}"
        )
    n, m = arr.shape
    labels = np.asarray(y)
    if len(labels) != n:
        raise InputError(f"{n} rows but {len(labels)} labels")
    names = tuple(feature_names) if feature_names is not None else tuple(f"f{i}" for i in range(m))
    if len(names) != m:
        raise InputError(f"{m} features but {len(names)} feature names")
    bad = [r for r in rows if not 0 <= r < n]
    if bad:
        raise InputError(f"row {bad[0]} is not in the data (rows 0..{n - 1})")
    if len(rows) > MAX_LOCAL_ROWS:
        raise InputError(f"at most {MAX_LOCAL_ROWS} rows can be explained at once; got {len(rows)}")
    if sensitive is not None and len(sensitive) != n:
        raise InputError(f"{n} rows but {len(sensitive)} sensitive values")
    use_shap = method == "shap" or (method == "auto" and _has_shap())
    steps = 2 + bool(rows) + (sensitive is not None)
    tick = _ticker(progress, steps)
    idx = subsample(n, max_rows, seed)
    xs, ys = arr[idx], labels[idx]
    rng = np.random.default_rng(seed)
    background = arr[np.sort(rng.choice(n, size=min(background_rows, n), replace=False))]
    tick("permutation importance")
    mean, std = permutation_scores(model, xs, ys, n_repeats=n_repeats, seed=seed)
    perm = FeatureRanking("permutation", names, mean, std)
    ranking, label = perm, "permutation"
    shap_rows: np.ndarray | None = None
    algorithm = ""
    if use_shap:
        tick("shap values")
        values, _, algorithm = shap_values(model, xs, background, seed=seed)
        shap_rows = np.abs(values).mean(axis=2)  # (rows, features): |SHAP| averaged over classes
        ranking, label = FeatureRanking("shap", names, shap_rows.mean(axis=0)), f"shap-{algorithm}"
    local: tuple[LocalExplanation, ...] = ()
    if rows:
        tick("local explanations")
        local = _local(model, arr, list(rows), background, use_shap, seed, classes, names)
    groups: tuple[GroupRanking, ...] = ()
    if sensitive is not None:
        tick("per-group rankings")
        groups = _groups(model, xs, ys, np.asarray(sensitive)[idx], names, shap_rows, n_repeats, seed)
    tick("done")
    acc = float(np.mean(model.predict_proba(xs).argmax(axis=1) == ys)) if len(xs) else 0.0
    return Explanation(
        method=label,
        ranking=ranking,
        permutation=perm,
        local=local,
        groups=groups,
        sensitive=sensitive_name,
        n_rows=len(xs),
        accuracy=acc,
    )


def _has_shap() -> bool:
    import importlib.util

    return importlib.util.find_spec("shap") is not None


def _ticker(progress: Callable[[str, int, int], None] | None, total: int) -> Callable[[str], None]:
    state = [0]

    def tick(step: str) -> None:
        if progress is not None:
            progress(step, min(state[0], total), total)
        state[0] += 1

    return tick


def _local(
    model: ModelAdapter,
    x: np.ndarray,
    rows: list[int],
    background: np.ndarray,
    use_shap: bool,
    seed: int,
    classes: Sequence[str] | None,
    feats: tuple[str, ...],
) -> tuple[LocalExplanation, ...]:
    pts = x[rows]
    proba = model.predict_proba(pts)
    pred = proba.argmax(axis=1)
    names = _class_names(model, classes)
    if use_shap:
        values, base, _ = shap_values(model, pts, background, seed=seed)
        contrib = values[np.arange(len(rows)), :, pred]
        bases = base[pred] if len(base) == model.n_classes else np.full(len(rows), float(base[0]))
    else:
        contrib = ablation_values(model, pts, background, pred)
        bases = model.predict_proba(background).mean(axis=0)[pred]
    return tuple(
        LocalExplanation(
            row=r,
            predicted=names[pred[k]],
            probability=float(proba[k, pred[k]]),
            base=float(bases[k]),
            contributions={feats[j]: float(contrib[k, j]) for j in range(x.shape[1])},
        )
        for k, r in enumerate(rows)
    )


def _class_names(model: ModelAdapter, classes: Sequence[str] | None) -> list[str]:
    if classes is not None:
        return [str(c) for c in classes]
    own = getattr(model, "classes", None)
    return [str(c) for c in own] if own is not None else [str(i) for i in range(model.n_classes)]


def _groups(
    model: ModelAdapter,
    x: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    names: tuple[str, ...],
    shap_rows: np.ndarray | None,
    n_repeats: int,
    seed: int,
) -> tuple[GroupRanking, ...]:
    values = sorted({_group_name(v) for v in groups.tolist()})
    if len(values) > MAX_GROUPS:
        raise InputError(
            f"the sensitive column has {len(values)} distinct values; at most {MAX_GROUPS} groups "
            "(bin a continuous attribute first)"
        )
    keys = np.array([_group_name(v) for v in groups.tolist()])
    out = []
    for g in values:
        mask = keys == g
        count = int(mask.sum())
        if count < MIN_GROUP_ROWS:
            out.append(GroupRanking(g, count, None))
            continue
        if shap_rows is not None:
            ranking = FeatureRanking("shap", names, shap_rows[mask].mean(axis=0))
        else:
            mean, std = permutation_scores(model, x[mask], y[mask], n_repeats=n_repeats, seed=seed)
            ranking = FeatureRanking("permutation", names, mean, std)
        out.append(GroupRanking(g, count, ranking))
    return tuple(out)


def _group_name(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def load_explain_inputs(
    target: Target, what: str
) -> tuple[ModelAdapter, np.ndarray, np.ndarray, list[str], np.ndarray | None, str, list[str]]:
    """Model, features, encoded labels, feature names, sensitive values and subject from a target.

    A scikit-learn model fitted on a table gets the columns it was fitted on, in its order. Otherwise the
    sensitive column (option ``sensitive``) stays a model input when the model takes every column of
    the file, and is dropped from the inputs when the model takes one column fewer.

    Raises:
        InputError: missing files, a missing sensitive column, or a model whose width matches neither.
    """
    from mlsecops.data import read_labelled

    model_ref, data_ref = model_and_data(target, what)
    path = Path(data_ref)
    if not path.exists():
        raise InputError(f"data file {path} does not exist")
    x, raw_y, names = read_labelled(
        path, label=target.opt_str("label"), default_labels=DEFAULT_LABELS, dtype=np.float32
    )
    if x.ndim != 2:
        raise InputError(f"explanations need tabular data; {path} holds inputs of shape {x.shape[1:]}")
    sens_name = target.opt_str("sensitive")
    sens: np.ndarray | None = None
    if sens_name is not None:
        if sens_name not in names:
            raise InputError(
                f"sensitive column {sens_name!r} is not in {path} (columns: {', '.join(names[:20])})"
            )
        j = names.index(sens_name)
        sens = x[:, j].copy()
    model = load_target_model(target, model_ref, x)
    est = getattr(model, "estimator", None)
    fitted = getattr(est, "feature_names_in_", None)
    if fitted is not None:  # a scikit-learn model fitted on a table: its columns, in its order
        wanted = [str(n) for n in fitted]
        missing = [n for n in wanted if n not in names]
        if missing:
            raise InputError(f"the model was fitted on column(s) {', '.join(missing[:5])} that {path} lacks")
        x = x[:, [names.index(n) for n in wanted]]
        names = wanted
    else:
        n_in = getattr(est, "n_features_in_", None)
        width = int(n_in) if n_in is not None else int(np.prod(model.input_shape))
        if sens is not None and width == x.shape[1] - 1:
            j = names.index(str(sens_name))
            x = np.delete(x, j, axis=1)
            names = [n for i, n in enumerate(names) if i != j]
        if width != x.shape[1]:
            raise InputError(f"the model takes {width} features; {path} has {x.shape[1]} feature columns")
    if est is not None and model.input_shape != (x.shape[1],):
        model = SklearnModel(est, input_shape=(x.shape[1],), n_classes=model.n_classes)
    y = encode_labels(raw_y, getattr(model, "classes", None))
    if len(np.unique(y)) < 2:
        raise InputError(f"{path}: every row has the same label; explanations need at least two classes")
    return model, x, y, names, sens, redact(model_ref), _class_names(model, None)


_OPTIONS = (*MODEL_OPTIONS, "rows", "sensitive", "method", "max_rows", "background", "repeats")


class ExplainCheck:
    """Global, local and per-group explanations of a tabular model (``assess.explain``).

    Args:
        progress: called as ``(step, done, total)``.
    """

    def __init__(self, *, progress: Callable[[str, int, int], None] | None = None) -> None:
        self.progress = progress

    def run(self, target: Target) -> Report:
        """Load model and data from the target, explain, and report.

        Raises:
            InputError: missing or malformed model, data or options.
            ConfigError: a malformed option.
        """
        started = utcnow()
        method = target.opt_choice("method", METHODS, "auto")
        rows = target.opt_int_list("rows", lo=0)
        if len(rows) > MAX_LOCAL_ROWS:
            raise ConfigError(f"option 'rows' names {len(rows)} rows; at most {MAX_LOCAL_ROWS}")
        model, x, y, names, sens, subject, classes = load_explain_inputs(target, "explanations need")
        expl = explain(
            model,
            x,
            y,
            feature_names=names,
            rows=rows,
            sensitive=sens,
            sensitive_name=target.opt_str("sensitive"),
            method=method,
            max_rows=target.opt_int("max_rows", DEFAULT_MAX_ROWS, lo=10),
            background_rows=target.opt_int("background", BACKGROUND_ROWS, lo=1, hi=10_000),
            n_repeats=target.opt_int("repeats", PERMUTATION_REPEATS, lo=1, hi=100),
            classes=classes,
            seed=int(target.seed or 0),
            progress=self.progress,
        )
        return explanation_report(expl, subject=subject, started=started)

    @classmethod
    def contract_cases(cls, tmp_dir: Any) -> ContractCases:
        """A small logistic regression on a CSV, and a corrupt data file."""
        import pickle

        from sklearn.linear_model import LogisticRegression

        rng = np.random.default_rng(0)
        x = rng.normal(size=(120, 4))
        y = (x[:, 0] + 0.2 * rng.normal(size=120) > 0).astype(int)
        model_path = Path(tmp_dir) / "explain-lr.pkl"
        model_path.write_bytes(pickle.dumps(LogisticRegression().fit(x, y)))
        data_path = Path(tmp_dir) / "explain.csv"
        lines = ["a,b,c,d,label"] + [
            ",".join(f"{v:.4f}" for v in r) + f",{t}" for r, t in zip(x, y, strict=True)
        ]
        data_path.write_text("\n".join(lines) + "\n")
        bad = Path(tmp_dir) / "explain-bad.csv"
        bad.write_text("a,b,c,d,label\n1,2,x,4,0\n")
        opts = {"label": "label", "method": "permutation", "rows": [0], "repeats": 2}
        return ContractCases(
            valid=Target(paths=(model_path, data_path), options=opts, seed=1),
            corrupt=Target(paths=(model_path, bad), options=opts, seed=1),
        )


register(
    "assess.explain",
    kind=CheckKind.AUDIT,
    summary="Global, local and per-group feature explanations (permutation importance, SHAP)",
    metrics=("importance@*", "sensitive_rank", "accuracy"),
    options=_OPTIONS,
)(ExplainCheck)
