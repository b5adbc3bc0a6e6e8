"""One entry point that turns a model reference into an adapter, so callers never pick a framework.

``load_model`` understands:

- ``http://...`` / ``https://...``: a remote endpoint (``HttpModel``);
- a model file (``.pt2``, ``.pt``, ``.pth``, ``.ts``, ``.torchscript``, ``.onnx``, ``.pkl``,
  ``.pickle``, ``.joblib``, ``.skops``): loaded only through the artifact scanner's ``safe_load``
  (scan a private snapshot, refuse anything not judged ``safe``, load the same bytes). The adapter
  follows the file's content, not its name: a ``torch.export`` program (``.pt2``, recommended) or a
  TorchScript archive becomes a ``TorchModel``, an ONNX graph an ``OnnxModel`` (needs onnxruntime), a
  scikit-learn pickle/joblib or skops file a ``SklearnModel``. A state dict is refused with what to give
  instead;
- ``python:package.module:attr``: **imports and runs that code** (a ``torch.nn.Module``, or a class or
  factory building one, becomes a ``TorchModel``; anything with ``predict_proba`` a ``SklearnModel``).
  The prefix is the explicit trust decision; it is never derived from a file under analysis.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from mlsecops.core.errors import InputError
from mlsecops.models.interface import ModelAdapter, ModelError

__all__ = ["MODEL_SUFFIXES", "adapter_for", "load_model"]

MODEL_SUFFIXES = (
    ".pt2",
    ".pt",
    ".pth",
    ".ts",
    ".torchscript",
    ".onnx",
    ".pkl",
    ".pickle",
    ".joblib",
    ".skops",
)
"""File names ``load_model`` accepts as models (the content then decides the adapter)."""


def load_model(
    spec: str | os.PathLike[str],
    *,
    input_shape: tuple[int, ...] | None = None,
    n_classes: int | None = None,
    output: str | None = None,
    weights: str | os.PathLike[str] | None = None,
    timeout: float = 10.0,
) -> ModelAdapter:
    """Load a model reference into an adapter.

    Args:
        spec: path, URL or ``python:module:attr`` (see the module docstring).
        input_shape: shape of one input; required for TorchScript files and endpoints (callers usually
            pass the data's shape); a ``.pt2`` program's own static shape takes precedence.
        n_classes: number of classes, when the model cannot say.
        output: what a PyTorch/ONNX model returns: ``logits`` (PyTorch default) or ``proba``.
        weights: state-dict file for a ``python:`` PyTorch module (loaded through the scanner too).
        timeout: seconds per request for endpoints.

    Raises:
        UnsafeArtifactError: the scanner did not judge the file ``safe``; nothing of it was loaded
            (a ``VerificationError``).
        InputError: unknown kind of reference, missing file, missing input shape, or ``weights`` for a
            model that is not ``python:module:attr``.
        ModelError: the file holds no usable model (a state dict, an array, a corrupt graph).
    """
    text = os.fspath(spec)
    if weights is not None and not text.startswith("python:"):
        raise InputError(
            "a weights file applies only to a python:module:attr model (the architecture); "
            f"{text} carries its own weights"
        )
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
    if path.name.lower().endswith(".fair.json"):  # a mitigated model: a manifest whose members load here
        from mlsecops.models.fair import load_fair_model

        return load_fair_model(path, timeout=timeout)
    if path.suffix.lower() not in MODEL_SUFFIXES:
        raise InputError(
            f"cannot tell what kind of model {text!r} is; use a .pt2/.pt/.onnx/.pkl/.joblib/.skops file, "
            "an http(s):// URL or python:module:attr"
        )
    if not path.is_file():
        raise InputError(f"model file {path} does not exist")
    from mlsecops.supplychain import safe_load

    obj = safe_load(path)  # the one way a model file is read: scan, refuse unless safe, load the same bytes
    return adapter_for(obj, source=str(path), input_shape=input_shape, n_classes=n_classes, output=output)


def adapter_for(
    obj: Any,
    *,
    source: str,
    input_shape: tuple[int, ...] | None = None,
    n_classes: int | None = None,
    output: str | None = None,
) -> ModelAdapter:
    """The adapter for an object ``safe_load`` returned, chosen by what the object is.

    Raises:
        ModelError: the object is not a model (a state dict, arrays, anything without predictions).
        InputError: a TorchScript module without ``input_shape``.
    """
    if isinstance(obj, bytes):  # safe_load hands ONNX graphs over as their bytes
        from mlsecops.models.onnx import OnnxModel

        return OnnxModel(
            source,
            input_shape=input_shape,
            output="logits" if output == "logits" else "proba",
            model_bytes=obj,
        )
    if _is_torch_object(obj):
        from mlsecops.models.pytorch import TorchModel

        return TorchModel.from_loaded(
            obj, source=source, input_shape=input_shape, n_classes=n_classes, output=_torch_output(output)
        )
    if callable(getattr(obj, "predict_proba", None)) or callable(getattr(obj, "predict", None)):
        from mlsecops.models.sklearn import SklearnModel

        return SklearnModel(obj, input_shape=input_shape, n_classes=n_classes)
    if isinstance(obj, dict) and obj:
        from mlsecops.models.pytorch import is_state_dict, state_dict_message

        if is_state_dict(obj):
            raise ModelError(state_dict_message(source, obj))
    raise ModelError(
        f"{source} holds a {type(obj).__name__}, not a model; give a torch.export program (.pt2), a "
        "TorchScript, ONNX or scikit-learn model file"
    )


def _is_torch_object(obj: Any) -> bool:
    """Whether ``obj`` is a torch module, exported program, or a state dict of torch tensors."""
    torch = sys.modules.get("torch")
    if torch is None:  # safe_load imports torch for every PyTorch format
        return False
    if isinstance(obj, (torch.nn.Module, torch.export.ExportedProgram)):
        return True
    return isinstance(obj, dict) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


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
    """Import (and so run) the code ``spec`` names; see ``import_object``."""
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
