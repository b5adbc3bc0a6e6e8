"""One entry point that turns a model reference into an adapter, so callers never pick a framework.

``load_model`` understands:

- ``http://...`` / ``https://...``: a remote endpoint (``HttpModel``);
- ``python:package.module:attr``: an object in importable code: a ``torch.nn.Module`` (or a class or
  factory building one) becomes a ``TorchModel``, anything with ``predict_proba`` a ``SklearnModel``;
- ``*.pt``, ``*.pth``, ``*.ts``, ``*.torchscript``: a TorchScript file;
- ``*.onnx``: an ONNX graph (needs onnxruntime);
- ``*.pkl``, ``*.pickle``, ``*.joblib``, ``*.skops``: a scikit-learn model, through the scanner's
  ``safe_load`` (pickles) or skops.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mlsecops.core.errors import InputError
from mlsecops.models.interface import ModelAdapter, ModelError

__all__ = ["load_model"]

_TORCH_SUFFIXES = (".pt", ".pth", ".ts", ".torchscript")
_SKLEARN_SUFFIXES = (".pkl", ".pickle", ".joblib", ".skops")


def load_model(
    spec: str | os.PathLike[str],
    *,
    input_shape: tuple[int, ...] | None = None,
    n_classes: int | None = None,
    output: str | None = None,
    weights: str | os.PathLike[str] | None = None,
    timeout: float = 10.0,
    allow_unscanned: bool = False,
) -> ModelAdapter:
    """Load a model reference into an adapter.

    Args:
        spec: path, URL or ``python:module:attr`` (see the module docstring).
        input_shape: shape of one input; required for TorchScript files and endpoints (callers usually
            pass the data's shape).
        n_classes: number of classes, when the model cannot say.
        output: what a PyTorch/ONNX model returns: ``logits`` (PyTorch default) or ``proba``.
        weights: state-dict file for a ``python:`` PyTorch module.
        timeout: seconds per request for endpoints.
        allow_unscanned: unpickle without the scanner (only for files you produced yourself).

    Raises:
        InputError: unknown kind of reference, missing file, or missing input shape.
        ModelError: the model could not be loaded.
    """
    text = os.fspath(spec)
    if text.startswith(("http://", "https://")):
        if input_shape is None:
            raise InputError("a model endpoint needs the input shape (the data's shape is used by default)")
        from mlsecops.models.endpoint import HttpModel

        return HttpModel(text, input_shape=input_shape, n_classes=n_classes, timeout=timeout)
    if text.startswith("python:"):
        return _from_python(
            text, input_shape=input_shape, n_classes=n_classes, output=output, weights=weights
        )
    path = Path(text)
    suffix = path.suffix.lower()
    if suffix in _TORCH_SUFFIXES:
        if input_shape is None:
            raise InputError(f"{path}: a TorchScript model needs the input shape")
        from mlsecops.models.pytorch import TorchModel

        return TorchModel.from_torchscript(
            path, input_shape=input_shape, n_classes=n_classes, output=_torch_output(output)
        )
    if suffix == ".onnx":
        from mlsecops.models.onnx import OnnxModel

        return OnnxModel(path, input_shape=input_shape, output="logits" if output == "logits" else "proba")
    if suffix in _SKLEARN_SUFFIXES:
        from mlsecops.models.sklearn import SklearnModel, load_estimator

        est = load_estimator(path, allow_unscanned=allow_unscanned)
        return SklearnModel(est, input_shape=input_shape, n_classes=n_classes)
    raise InputError(
        f"cannot tell what kind of model {text!r} is; use a .pt/.onnx/.pkl/.joblib/.skops file, "
        "an http(s):// URL or python:module:attr"
    )


def _torch_output(output: str | None) -> Any:
    value = output or "logits"
    if value not in ("logits", "proba", "log_proba"):
        raise InputError(f"output must be 'logits', 'proba' or 'log_proba'; got {value!r}")
    return value


def _from_python(
    spec: str,
    *,
    input_shape: tuple[int, ...] | None,
    n_classes: int | None,
    output: str | None,
    weights: str | os.PathLike[str] | None,
) -> ModelAdapter:
    from mlsecops.models.pytorch import TorchModel, import_object

    obj = import_object(spec)
    if callable(getattr(obj, "predict_proba", None)) or callable(getattr(obj, "predict", None)):
        from mlsecops.models.sklearn import SklearnModel

        return SklearnModel(obj, input_shape=input_shape, n_classes=n_classes)
    if input_shape is None:
        raise InputError(f"{spec}: a PyTorch module needs the input shape")
    try:
        import torch  # noqa: F401  - only to give a clear message when torch is missing
    except ImportError as err:
        raise ModelError("PyTorch models need torch: pip install 'mlsecops[torch]'") from err
    return TorchModel.from_python(
        spec, input_shape=input_shape, weights=weights, n_classes=n_classes, output=_torch_output(output)
    )
