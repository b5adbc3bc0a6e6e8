"""scikit-learn adapter (and anything with ``predict_proba``), plus the guarded loaders for its files.

Pickle and joblib files can run arbitrary code when loaded, so we never unpickle them directly: they go
through the artifact scanner's ``mlsecops.supplychain.safe_load``, which refuses files that fail the
scan. ``.skops`` files go through it too (scanned, then loaded by skops with no untrusted types).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from mlsecops.core.errors import InputError, MlsecopsError
from mlsecops.models._shape import FixedShape
from mlsecops.models.interface import ModelError, check_inputs, check_probabilities

__all__ = ["SklearnModel", "load_estimator"]


class SklearnModel(FixedShape):
    """A fitted classifier with ``predict_proba`` (or only ``predict``) behind the adapter protocol.

    Black-box only: attacks reach it through probabilities or labels.

    Args:
        estimator: the fitted classifier.
        input_shape: shape of one input; defaults to ``(n_features_in_,)``. Inputs are flattened to
            rows before the estimator sees them.
        n_classes: number of classes; defaults to ``len(classes_)``.
    """

    def __init__(
        self, estimator: Any, *, input_shape: tuple[int, ...] | None = None, n_classes: int | None = None
    ) -> None:
        if not callable(getattr(estimator, "predict_proba", None)) and not callable(
            getattr(estimator, "predict", None)
        ):
            raise ModelError(f"{type(estimator).__name__} has neither predict_proba nor predict")
        self.estimator = estimator
        if input_shape is None:
            n_features = getattr(estimator, "n_features_in_", None)
            if n_features is None:
                raise ModelError("the estimator does not say its number of features; pass input_shape")
            input_shape = (int(n_features),)
        self._input_shape = tuple(int(s) for s in input_shape)
        classes = getattr(estimator, "classes_", None)
        self.classes: np.ndarray | None = np.asarray(classes) if classes is not None else None
        if n_classes is None:
            if self.classes is None:
                raise ModelError("the estimator does not say its classes; pass n_classes")
            n_classes = len(self.classes)
        self._n_classes = int(n_classes)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities; one-hot votes for estimators that only ``predict``.

        Raises:
            InputError: wrong shape or NaN inputs.
            ModelError: the estimator failed or returned non-probabilities.
        """
        arr = check_inputs(x, self._input_shape)
        rows = arr.reshape(len(arr), -1)
        if len(rows) == 0:
            return np.zeros((0, self._n_classes))
        try:
            if callable(getattr(self.estimator, "predict_proba", None)):
                raw = self.estimator.predict_proba(rows)
            else:
                pred = np.asarray(self.estimator.predict(rows))
                idx = np.searchsorted(self.classes, pred) if self.classes is not None else pred.astype(int)
                raw = np.eye(self._n_classes)[idx]
        except (ValueError, TypeError, AttributeError) as err:
            raise ModelError(f"the estimator failed on inputs of shape {rows.shape}: {err}") from err
        return check_probabilities(raw, len(rows), self._n_classes, source=type(self.estimator).__name__)


def load_estimator(path: str | os.PathLike[str]) -> Any:
    """Load an estimator from a pickle, joblib or skops file, through the artifact scanner.

    Args:
        path: the file.

    Raises:
        InputError: missing file.
        VerificationError: the scanner did not judge the file ``safe`` (``UnsafeArtifactError``).
        ModelError: the file holds no estimator, or could not be read as one.
    """
    from mlsecops.supplychain import safe_load

    p = Path(path)
    if not p.is_file():
        raise InputError(f"model file {p} does not exist")
    try:
        est = safe_load(p)
    except MlsecopsError:
        raise
    except Exception as err:  # a file that passed the scan can still fail to unpickle (version skew)
        raise ModelError(f"{p} is not a loadable scikit-learn model: {err}") from err
    if not callable(getattr(est, "predict_proba", None)) and not callable(getattr(est, "predict", None)):
        raise ModelError(f"{p} holds a {type(est).__name__}, not a fitted estimator")
    return est
