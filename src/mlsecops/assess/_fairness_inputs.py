"""Inputs of the fairness audit: a model's predictions on a table, with the sensitive columns.

The data is a CSV or Parquet table read whole by the data package's reader (``load_table``, after
``count_rows`` bounds it). The model loads only through ``mlsecops.models.load_model`` (the artifact
scanner's ``safe_load`` for files). The model's input columns are, in order: ``features`` when given,
else the names a scikit-learn model was fitted with (``feature_names_in_``) or a mitigated model's
``base_features``, else every column but the label and the sensitive ones. A group-threshold model
(``mlsecops.models.fair``) gets its group code appended by its own ``encode_inputs``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlsecops.assess._data import DEFAULT_LABELS
from mlsecops.assess._options import DEFAULT_TIMEOUT, MIN_TIMEOUT
from mlsecops.core.checks import Target
from mlsecops.core.errors import InputError
from mlsecops.core.redaction import redact
from mlsecops.models.fair import sensitive_strings
from mlsecops.models.interface import ModelAdapter

__all__ = [
    "MAX_AUDIT_ROWS",
    "FairnessInputs",
    "Prepared",
    "has_probabilities",
    "load_fairness_inputs",
    "model_matrix",
    "predict",
    "prepare",
    "read_table",
]

MAX_AUDIT_ROWS = 10_000_000
"""Most rows read from a data file (the file is read whole)."""


@dataclass(frozen=True)
class FairnessInputs:
    """What the check audits: the model's outputs on a data set, with the sensitive columns."""

    y_true: np.ndarray
    y_pred: np.ndarray
    proba: np.ndarray | None
    """P(positive), when the model gives probabilities."""
    sensitive: dict[str, np.ndarray]
    features: list[str]
    positive: str
    """The positive class, as its label value."""
    subject: str


def has_probabilities(model: ModelAdapter) -> bool:
    """Whether the model's outputs are probabilities (not one-hot votes or post-processed decisions)."""
    if getattr(model, "probabilities", True) is False:
        return False
    estimator = getattr(model, "estimator", None)
    return estimator is None or callable(getattr(estimator, "predict_proba", None))


def read_table(path: Path) -> dict[str, np.ndarray]:
    from mlsecops.data import count_rows, load_table

    if not path.is_file():
        raise InputError(f"data file {path} does not exist")
    if path.suffix.lower() in (".npz", ".npy"):
        raise InputError(f"{path}: the fairness audit reads a table with named columns (CSV or Parquet)")
    if count_rows(path, stop_after=MAX_AUDIT_ROWS + 1) > MAX_AUDIT_ROWS:
        raise InputError(f"{path}: more than {MAX_AUDIT_ROWS:,} rows; audit a sample")
    return load_table(path)


def _model_features(model: ModelAdapter, given: Sequence[str], default: list[str]) -> list[str]:
    if given:
        return list(given)
    for owner in (model, getattr(model, "estimator", None)):
        names = getattr(owner, "feature_names", None)
        if names is None:
            names = getattr(owner, "feature_names_in_", None)
        if names is not None:
            return [str(n) for n in names]
    return default


def model_matrix(table: Mapping[str, np.ndarray], features: Sequence[str], path: Path | str) -> np.ndarray:
    """The numeric feature matrix of ``features`` (in that order).

    Raises:
        InputError: a missing or non-numeric column, or NaN/inf values.
    """
    missing = [f for f in features if f not in table]
    if missing:
        raise InputError(f"{path}: the model's input column(s) {missing[:5]} are not in the data")
    cols = []
    for f in features:
        col = table[f]
        if col.dtype == object or col.dtype.kind not in "biuf":
            raise InputError(
                f"{path}: model input column {f!r} is not numeric; encode it, or name the model's inputs with --features"
            )
        cols.append(col.astype(np.float32))
    x = np.column_stack(cols) if cols else np.zeros((len(next(iter(table.values()))), 0), np.float32)
    if not np.all(np.isfinite(x)):
        raise InputError(f"{path}: the model's input columns contain NaN or infinite values")
    return x


def _positive_class(model: ModelAdapter, y_raw: np.ndarray) -> tuple[np.ndarray, str, list[str]]:
    """0/1 labels and the positive class name (the model's second class, else the label 1)."""
    if model.n_classes != 2:
        raise InputError(
            f"group fairness metrics need a binary classifier; the model has {model.n_classes} classes"
        )
    labels = sensitive_strings(y_raw)
    classes = getattr(model, "classes", None)
    names = (
        [str(c) for c in sensitive_strings(np.asarray(classes, dtype=object))]
        if classes is not None
        else ["0", "1"]
    )
    seen = sorted(set(labels.tolist()))
    if len(seen) > 2:
        raise InputError(
            f"group fairness metrics need a binary label; the label column has {len(seen)} values ({seen[:6]})"
        )
    unknown = [v for v in seen if v not in names]
    if unknown:
        raise InputError(f"label value(s) {unknown[:5]} are not classes of the model {names}")
    return (labels == names[1]).astype(np.int64), names[1], names


@dataclass(frozen=True)
class Prepared:
    """A model and a table read for it: input rows, 0/1 labels, the sensitive columns."""

    model: ModelAdapter
    model_ref: str
    path: Path
    table: dict[str, np.ndarray]
    label: str
    sensitive: list[str]
    features: list[str]
    x: np.ndarray
    y: np.ndarray
    """0/1 labels (1 = ``positive``)."""
    positive: str
    classes: list[str]
    """The model's two classes as label strings, negative first."""


def prepare(target: Target, *, data: str | None = None, model: ModelAdapter | None = None) -> Prepared:
    """Read the table a target names (or ``data``) and load its model (unless ``model`` is given).

    Raises:
        InputError: missing model, data, label or sensitive column; a non-binary label or model.
    """
    from mlsecops.assess._options import model_and_data
    from mlsecops.models.loading import load_model

    model_ref, data_ref = model_and_data(target, "the fairness audit needs")
    path = Path(data or data_ref)
    if not path.is_absolute() and target.base_dir is not None:
        path = target.base_dir / path
    table = read_table(path)
    label = target.opt_str("label") or next((c for c in DEFAULT_LABELS if c in table), None)
    if label is None:
        raise InputError(f"{path}: name the label column with --label")
    if label not in table:
        raise InputError(f"{path}: label column {label!r} not found; columns are {sorted(table)[:20]}")
    sens = target.opt_list("sensitive")
    if not sens:
        raise InputError("name the sensitive column(s) with --sensitive COL[,COL]")
    absent = [c for c in sens if c not in table]
    if absent:
        raise InputError(f"{path}: sensitive column(s) {absent} not found; columns are {sorted(table)[:20]}")
    if label in sens:
        raise InputError(f"the label column {label!r} cannot be a sensitive column")
    default = [c for c in table if c != label and c not in sens]
    given = target.opt_list("features")
    if model is None:
        model = load_model(
            model_ref,
            input_shape=(len(given or default),),
            output=target.opt_str("output"),
            timeout=target.opt_float("timeout", DEFAULT_TIMEOUT, lo=MIN_TIMEOUT),
            weights=target.opt_str("weights"),
        )
    features = _model_features(model, given, default)
    x = _inputs_for(model, table, features, sens, path)
    if x.shape[1:] != tuple(model.input_shape):
        model = _reshaped(model, x)
    y, positive, classes = _positive_class(model, table[label])
    return Prepared(
        model=model,
        model_ref=model_ref,
        path=path,
        table=table,
        label=label,
        sensitive=sens,
        features=list(features),
        x=x,
        y=y,
        positive=positive,
        classes=classes,
    )


def predict(model: ModelAdapter, x: np.ndarray) -> np.ndarray:
    """The model's outputs on ``x`` (a model fitted on a DataFrame is fed rows in its column order)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        return np.asarray(model.predict_proba(x))


def load_fairness_inputs(target: Target, *, calibration: str = "auto") -> FairnessInputs:
    """Load the model and data a target names and compute the model's predictions on the data.

    Raises:
        InputError: missing model, data, label or sensitive column; a non-binary label or model; a
            model without probabilities when ``calibration`` is ``"true"``.
    """
    prep = prepare(target)
    probs_ok = has_probabilities(prep.model)
    if calibration == "true" and not probs_ok:
        raise InputError(
            f"calibration needs predicted probabilities; {redact(prep.model_ref)} gives labels only "
            "(no predict_proba, or a post-processed decision)"
        )
    out = predict(prep.model, prep.x)
    return FairnessInputs(
        y_true=prep.y,
        y_pred=out.argmax(axis=1).astype(np.int64),
        proba=out[:, 1].astype(np.float64) if probs_ok and calibration != "false" else None,
        sensitive={c: prep.table[c] for c in prep.sensitive},
        features=prep.features,
        positive=prep.positive,
        subject=redact(prep.model_ref),
    )


def _inputs_for(
    model: ModelAdapter, table: Mapping[str, np.ndarray], features: list[str], sens: list[str], path: Path
) -> np.ndarray:
    """The model's input rows; a group-threshold model takes its group code as an extra last input."""
    encode = getattr(model, "encode_inputs", None)
    if callable(encode):
        base = model_matrix(table, getattr(model, "base_features", features), path)
        result: np.ndarray = encode(base, table)
        return result
    return model_matrix(table, features, path)


def _reshaped(model: ModelAdapter, x: np.ndarray) -> ModelAdapter:
    from mlsecops.models.sklearn import SklearnModel

    estimator = getattr(model, "estimator", None)
    if estimator is not None:
        return SklearnModel(estimator, input_shape=tuple(int(s) for s in x.shape[1:]))
    raise InputError(
        f"the model takes inputs of shape {tuple(model.input_shape)}; the data gives {x.shape[1:]} "
        "(name the model's input columns with --features)"
    )
