"""A supplied model as the poisoning detectors' feature extractor and as a second opinion on labels.

``model_signals(spec, X, classes)`` loads ``spec`` through ``mlsecops.models.load_model`` (every model
file through the artifact scanner's ``safe_load``: one it does not judge ``safe`` is refused before any
of its code runs; ``python:module:attr`` imports the named code by the caller's choice) and returns,
for every row of ``X``:

* ``features``: what the backdoor detector clusters. For a PyTorch model these are the penultimate-layer
  activations, the input of the last ``Linear`` layer, captured with a forward hook (for a TorchScript
  module, which accepts no hooks, by running its ``Sequential`` children up to that layer): activation
  clustering is defined on them. A model without accessible internals (scikit-learn, ONNX, an endpoint,
  a TorchScript module that is not a plain ``Sequential``) gives its predicted probabilities instead, as
  centred log-probabilities (clipped at 1e-12), which are the logits up to a constant per row: raw
  probabilities of confident predictions all look alike (measured on digits with a 2x2 trigger: recall 0
  on raw or 1e-6-clipped probabilities, 0.76-1.0 on centred log-probabilities).
* ``proba``: the model's class probabilities in the data's class order, used to flag rows whose given label
  the model finds very unlikely.

A model that cannot read the data (wrong input shape), whose classes do not cover the data's labels, or
that returns something other than probabilities raises a one-line ``InputError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mlsecops.core.errors import InputError

if TYPE_CHECKING:
    import torch

    from mlsecops.models import ModelAdapter

__all__ = ["ModelSignals", "model_signals"]

_LOG_FLOOR = 1e-12


@dataclass(frozen=True)
class ModelSignals:
    """Per-row outputs of a supplied model (see the module docstring)."""

    features: np.ndarray
    """Feature matrix, one row per sample."""
    proba: np.ndarray
    """Class probabilities, columns in the data's class-code order (may sum to < 1 over those codes)."""
    source: str
    """``penultimate`` (activations before the last Linear layer) or ``proba`` (centred log-probabilities)."""
    model: str
    """The model reference, for reports."""


def _one_line(err: BaseException) -> str:
    """The message of ``err`` on one line; for a TorchScript failure, its first line plus the cause."""
    lines = [ln.strip() for ln in str(err).strip().splitlines() if ln.strip()]
    if not lines:
        return type(err).__name__
    if len(lines) > 1 and "TorchScript interpreter" in lines[0]:
        return f"{lines[0]} {lines[-1]}"
    return lines[0]


def model_signals(spec: str, X: np.ndarray, classes: list[str], *, batch_size: int = 512) -> ModelSignals:
    """Run the model named by ``spec`` on ``X`` and return its features and class probabilities.

    Args:
        spec: model file, URL or ``python:module:attr`` (see ``mlsecops.models.load_model``).
        X: the data, first axis = rows; its per-row shape is the model's input shape.
        classes: display names of the data's class codes (``load_xy``'s ``classes``).
        batch_size: rows per forward pass.

    Raises:
        InputError: the model cannot be loaded, does not fit the data's shape, does not know the data's
            classes, or returns non-probabilities (one line).
    """
    from mlsecops.models import load_model

    shape = tuple(int(s) for s in X.shape[1:])
    try:
        adapter = load_model(spec, input_shape=shape)
        proba_model = adapter.predict_proba(X)
    except InputError as err:
        raise InputError(f"model {spec}: {_one_line(err)}") from err
    except (RuntimeError, ValueError, TypeError) as err:  # a framework error the adapter did not wrap
        raise InputError(
            f"model {spec} failed on the data (rows of shape {shape}): {_one_line(err)}"
        ) from err
    columns = _class_columns(adapter, classes, spec)
    proba = proba_model[:, columns]
    features, source = None, "proba"
    from mlsecops.models import TorchModel

    if isinstance(adapter, TorchModel):
        try:
            features = _penultimate(adapter, X, batch_size=batch_size)
        except (RuntimeError, ValueError, TypeError) as err:
            raise InputError(f"model {spec}: could not capture its activations: {_one_line(err)}") from err
        if features is not None:
            source = "penultimate"
    if features is None:
        logp = np.log(np.clip(proba_model, _LOG_FLOOR, 1.0))
        features = logp - logp.mean(axis=1, keepdims=True)
    features = np.asarray(features, dtype=np.float64).reshape(X.shape[0], -1)
    if not np.all(np.isfinite(features)):
        raise InputError(f"model {spec}: its {source} features contain NaN or infinite values")
    return ModelSignals(features=features, proba=proba, source=source, model=spec)


def _class_columns(adapter: ModelAdapter, classes: list[str], spec: str) -> np.ndarray:
    """Column of the model's output for every data class code.

    Models that name their classes (scikit-learn ``classes_``) are matched by name; otherwise output ``k``
    is class ``k`` when the data's labels are the integers ``0..K-1`` of the model, or the data's classes
    in sorted order when their count equals the model's.
    """
    names = getattr(adapter, "classes", None)
    n_out = adapter.n_classes
    if names is not None:
        model_names = [_name(v) for v in np.asarray(names).tolist()]
        where = {n: j for j, n in enumerate(model_names)}
        missing = [c for c in classes if c not in where]
        if missing:
            raise InputError(
                f"model {spec} does not know the data's classes {missing[:5]}; its classes are {model_names[:10]}"
            )
        return np.array([where[c] for c in classes], dtype=np.int64)
    if all(c.lstrip("-").isdigit() for c in classes):
        codes = [int(c) for c in classes]
        if min(codes) >= 0 and max(codes) < n_out:
            return np.array(codes, dtype=np.int64)
    if len(classes) == n_out:
        return np.arange(n_out, dtype=np.int64)
    raise InputError(
        f"model {spec} has {n_out} outputs; the data's labels {classes[:10]} do not map onto them"
    )


def _name(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _last_linear(module: torch.nn.Module) -> torch.nn.Module | None:
    import torch

    last = None
    for sub in module.modules():
        if isinstance(sub, torch.nn.Linear) or getattr(sub, "original_name", None) == "Linear":
            last = sub
    return last


def _penultimate(adapter: Any, X: np.ndarray, *, batch_size: int) -> np.ndarray | None:
    """Inputs of the model's last Linear layer, or ``None`` when they cannot be reached."""
    import torch

    from mlsecops.models import check_inputs

    module: torch.nn.Module = adapter.module
    last = _last_linear(module)
    if last is None:
        return None
    arr = check_inputs(X, adapter.input_shape)
    scripted = isinstance(module, torch.jit.ScriptModule)
    if scripted and not _sequential_path(module, last):
        return None
    captured: list[torch.Tensor] = []
    handle = None
    if not scripted:

        def hook(_mod: torch.nn.Module, inputs: tuple[torch.Tensor, ...], _out: torch.Tensor) -> None:
            captured.append(inputs[0].detach().reshape(inputs[0].shape[0], -1).double().cpu())

        handle = last.register_forward_hook(hook)
    try:
        with torch.no_grad():
            for start in range(0, len(arr), batch_size):
                xb = torch.from_numpy(arr[start : start + batch_size]).to(adapter.device)
                if scripted:
                    h = _run_until(module, last, xb)
                    captured.append(h.detach().reshape(h.shape[0], -1).double().cpu())
                else:
                    before = len(captured)
                    module(xb)
                    if len(captured) != before + 1:  # the layer ran zero or several times per batch
                        return None
    finally:
        if handle is not None:
            handle.remove()
    return np.concatenate([c.numpy() for c in captured]) if captured else None


def _is_sequential(module: torch.nn.Module) -> bool:
    import torch

    return isinstance(module, torch.nn.Sequential) or getattr(module, "original_name", None) == "Sequential"


def _sequential_path(module: torch.nn.Module, last: torch.nn.Module) -> bool:
    """Whether ``last`` is reached through nested ``Sequential`` containers only."""
    if not _is_sequential(module):
        return False
    for child in module.children():
        if child is last:
            return True
        if any(m is last for m in child.modules()):
            return _sequential_path(child, last)
    return False


def _run_until(module: torch.nn.Module, last: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Run the ``Sequential`` children of ``module`` in order and return the input of ``last``."""
    for child in module.children():
        if child is last:
            return x
        if any(m is last for m in child.modules()):
            return _run_until(child, last, x)
        x = child(x)
    return x
