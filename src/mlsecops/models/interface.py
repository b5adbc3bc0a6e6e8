"""The one protocol every analysis uses to talk to a model, whatever framework it came from.

A ``ModelAdapter`` answers ``predict_proba(x)`` with class probabilities and says how many classes it
has and what one input looks like (``input_shape``, without the batch axis). A ``GradientModel`` also
gives ``loss_gradient(x, y)``: white-box attacks and hardening need it. A ``TorchNative`` adapter
additionally hands out differentiable logits as torch tensors, so attacks can stay on torch without
numpy round trips; analyses ask for that capability, never for a framework.

Errors::

    InputError
     └── ModelError          the model cannot be loaded or answered badly (non-probabilities, wrong shape)
          └── EndpointError  a remote model is unreachable, timed out or answered with an HTTP error
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from mlsecops.core.errors import InputError

if TYPE_CHECKING:
    import torch

__all__ = [
    "EndpointError",
    "GradientModel",
    "ModelAdapter",
    "ModelError",
    "TorchNative",
    "check_inputs",
    "check_labels",
    "check_probabilities",
]

_PROBA_TOLERANCE = 1e-3


class ModelError(InputError):
    """A model could not be loaded, or it answered with something that is not class probabilities."""


class EndpointError(ModelError):
    """A remote model endpoint was unreachable, timed out, or answered with an error."""


@runtime_checkable
class ModelAdapter(Protocol):
    """What every analysis needs from a model: probabilities, the number of classes, the input shape."""

    @property
    def n_classes(self) -> int:
        """Number of classes the model predicts."""
        ...

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input, without the batch axis."""
        ...

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities, shape ``(len(x), n_classes)``, rows summing to one."""
        ...


@runtime_checkable
class GradientModel(ModelAdapter, Protocol):
    """A model that also exposes the gradient of its cross-entropy loss (white-box access)."""

    def loss_gradient(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Gradient of the summed cross-entropy loss with respect to ``x``, same shape as ``x``."""
        ...


@runtime_checkable
class TorchNative(GradientModel, Protocol):
    """A white-box model whose logits are available as differentiable torch tensors."""

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of a batch, shape ``(len(x), n_classes)``, differentiable with respect to ``x``."""
        ...

    @property
    def device(self) -> torch.device:
        """Device the model runs on."""
        ...


def check_inputs(
    x: Any, input_shape: tuple[int, ...], *, what: str = "inputs", finite: bool = True
) -> np.ndarray:
    """Validate a batch of inputs and return it as a float32 array.

    Args:
        x: array-like batch, shape ``(n, *input_shape)``; a single flat row per example is reshaped when
            the sizes agree.
        input_shape: the model's expected shape of one input.
        what: name used in error messages.
        finite: check for NaN and infinity (a caller that scans the values anyway, e.g. for their
            range, may skip this pass and call again with ``finite=True`` to get the error).

    Returns:
        The batch as a C-contiguous float32 array of shape ``(n, *input_shape)``.

    Raises:
        InputError: not numeric, wrong shape, or containing NaN or infinity.
    """
    try:
        arr = np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError) as err:
        raise InputError(f"{what} must be numeric; could not convert them ({err})") from err
    if arr.ndim == 0:
        raise InputError(f"{what} must be a batch of shape (n, {_fmt(input_shape)}); got a scalar")
    if tuple(arr.shape[1:]) != tuple(input_shape):
        size = int(np.prod(input_shape)) if input_shape else 1
        if arr.ndim >= 2 and int(np.prod(arr.shape[1:])) == size:
            arr = arr.reshape((arr.shape[0], *input_shape))
        else:
            raise InputError(
                f"{what} have shape {tuple(arr.shape)}; the model expects (n, {_fmt(input_shape)}). "
                "Reshape the data or pass the model's input shape explicitly."
            )
    if finite and not np.all(np.isfinite(arr)):
        bad = int(np.count_nonzero(~np.isfinite(arr).reshape(arr.shape[0], -1).all(axis=1)))
        raise InputError(f"{what} contain NaN or infinite values in {bad} row(s); clean or impute them first")
    return np.ascontiguousarray(arr)


def check_labels(y: Any, n: int, n_classes: int) -> np.ndarray:
    """Validate integer class labels for ``n`` examples and return them as int64.

    Raises:
        InputError: wrong length, non-integer or out-of-range labels.
    """
    arr = np.asarray(y)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise InputError(f"labels must be a vector of {n} class indices; got shape {tuple(arr.shape)}")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise InputError("labels must be integer class indices; got non-integer values")
    elif arr.dtype.kind not in "iub":
        raise InputError(f"labels must be integer class indices; got dtype {arr.dtype}")
    out = arr.astype(np.int64)
    if out.size and (out.min() < 0 or out.max() >= n_classes):
        raise InputError(
            f"labels must lie in [0, {n_classes - 1}] for a {n_classes}-class model; "
            f"got values from {out.min()} to {out.max()}"
        )
    return out


def check_probabilities(p: Any, n: int, n_classes: int | None = None, *, source: str = "model") -> np.ndarray:
    """Validate a model's output as class probabilities and return it as float64.

    Raises:
        ModelError: wrong shape, NaN, negative values or rows that do not sum to one.
    """
    try:
        arr = np.asarray(p, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ModelError(f"{source} returned non-numeric output ({err})") from err
    if arr.ndim != 2 or arr.shape[0] != n or (n_classes is not None and arr.shape[1] != n_classes):
        want = f"({n}, {n_classes})" if n_classes is not None else f"({n}, n_classes)"
        raise ModelError(
            f"{source} returned output of shape {tuple(arr.shape)}; expected probabilities {want}"
        )
    if not np.all(np.isfinite(arr)):
        raise ModelError(f"{source} returned NaN or infinite probabilities")
    if arr.size and (arr.min() < -_PROBA_TOLERANCE or arr.max() > 1 + _PROBA_TOLERANCE):
        raise ModelError(
            f"{source} returned values outside [0, 1] (min {arr.min():.3g}, max {arr.max():.3g}); "
            "these are not probabilities. If the model outputs logits, say so (output='logits')."
        )
    sums = arr.sum(axis=1)
    if arr.size and np.max(np.abs(sums - 1.0)) > _PROBA_TOLERANCE * max(1, arr.shape[1]):
        raise ModelError(
            f"{source} returned rows summing to {sums.min():.3g}..{sums.max():.3g}, not 1; these are not "
            "probabilities. If the model outputs logits or scores, say so (output='logits')."
        )
    return np.clip(arr, 0.0, 1.0)


def _fmt(shape: tuple[int, ...]) -> str:
    return ", ".join(str(s) for s in shape)
