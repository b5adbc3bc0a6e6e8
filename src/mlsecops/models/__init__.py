"""Model adapters: one protocol that every analysis uses, whatever framework the model comes from.

>>> from sklearn.linear_model import LogisticRegression
>>> import numpy as np
>>> from mlsecops.models import SklearnModel
>>> m = SklearnModel(LogisticRegression().fit(np.eye(3), [0, 1, 2]))
>>> m.predict_proba(np.eye(3)).shape
(3, 3)

``load_model(spec)`` turns a file, URL or ``python:module:attr`` into an adapter. Model files are read
only through the artifact scanner's ``safe_load`` (nothing the scanner does not judge ``safe`` is
loaded); ``python:module:attr`` imports and runs the named code, by the caller's explicit choice.
``.pt2`` (``torch.export``) is the recommended PyTorch format. Heavy frameworks (torch, onnxruntime) are
imported only by the adapter that needs them.
"""

from __future__ import annotations

from mlsecops.models.endpoint import HttpModel
from mlsecops.models.interface import (
    EndpointError,
    GradientModel,
    ModelAdapter,
    ModelError,
    TorchNative,
    check_inputs,
    check_labels,
    check_probabilities,
)
from mlsecops.models.loading import load_model
from mlsecops.models.onnx import OnnxModel
from mlsecops.models.pytorch import SaveFormat, TorchModel, import_object
from mlsecops.models.sklearn import SklearnModel, load_estimator

__all__ = [
    "EndpointError",
    "GradientModel",
    "HttpModel",
    "ModelAdapter",
    "ModelError",
    "OnnxModel",
    "SaveFormat",
    "SklearnModel",
    "TorchModel",
    "TorchNative",
    "check_inputs",
    "check_labels",
    "check_probabilities",
    "import_object",
    "load_estimator",
    "load_model",
]
