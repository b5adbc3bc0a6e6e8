"""PyTorch adapter: a TorchScript file, or an ``nn.Module`` named as ``python:module:attr``.

The adapter is white-box and torch-native: attacks call ``logits`` on torch tensors and differentiate
through it, with no numpy round trips. ``predict_proba`` is the numpy face every analysis shares.
The wrapped module is put in eval mode; nothing here changes its weights.
"""

from __future__ import annotations

import importlib
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from mlsecops.core.errors import InputError
from mlsecops.models.interface import ModelError, check_inputs, check_labels, check_probabilities

if TYPE_CHECKING:
    import torch

__all__ = ["TorchModel", "import_object"]

Output = Literal["logits", "proba", "log_proba"]


class TorchModel:
    """A PyTorch classifier behind the adapter protocol.

    Args:
        module: the classifier; called on a float32 batch of shape ``(n, *input_shape)``.
        input_shape: shape of one input, without the batch axis.
        n_classes: number of classes; found by one forward pass when ``None``.
        output: what the module returns: ``logits`` (default), ``proba`` or ``log_proba``.
        batch_size: rows per forward pass in ``predict_proba``.
        device: torch device name.
    """

    def __init__(
        self,
        module: torch.nn.Module,
        *,
        input_shape: tuple[int, ...],
        n_classes: int | None = None,
        output: Output = "logits",
        batch_size: int = 512,
        device: str = "cpu",
    ) -> None:
        import torch

        if output not in ("logits", "proba", "log_proba"):
            raise InputError(f"output must be 'logits', 'proba' or 'log_proba'; got {output!r}")
        self.module = module.to(device).eval()
        self.output: Output = output
        self.batch_size = batch_size
        self._device = torch.device(device)
        self._input_shape = tuple(int(s) for s in input_shape)
        if n_classes is None:
            with torch.no_grad():
                probe = self._forward(torch.zeros((1, *self._input_shape), device=self._device))
            if probe.ndim != 2:
                raise ModelError(
                    f"model output has shape {tuple(probe.shape)} for one input of shape {self._input_shape}; "
                    "expected (1, n_classes)"
                )
            n_classes = int(probe.shape[1])
        self._n_classes = int(n_classes)

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return self._n_classes

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input, without the batch axis."""
        return self._input_shape

    @property
    def device(self) -> torch.device:
        """Device the module runs on."""
        return self._device

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        try:
            out = self.module(x)
        except RuntimeError as err:
            raise ModelError(f"the model failed on inputs of shape {tuple(x.shape)}: {err}") from err
        if isinstance(out, (tuple, list)):
            out = out[0]
        result: torch.Tensor = out
        return result

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (or log-probabilities, which serve the same purpose) of a batch, differentiable."""
        out = self._forward(x)
        if self.output == "proba":
            return out.clamp_min(1e-12).log()
        return out

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities of a batch.

        Raises:
            InputError: wrong shape or NaN inputs.
            ModelError: the module's output is not what ``output`` says (e.g. not probabilities).
        """
        import torch

        arr = check_inputs(x, self._input_shape)
        chunks = []
        with torch.no_grad():
            for start in range(0, len(arr), self.batch_size):
                xb = torch.from_numpy(arr[start : start + self.batch_size]).to(self._device)
                out = self._forward(xb)
                if self.output == "logits":
                    out = torch.softmax(out.double(), dim=1)
                elif self.output == "log_proba":
                    out = out.double().exp()
                chunks.append(out.detach().cpu().numpy())
        raw = np.concatenate(chunks) if chunks else np.zeros((0, self._n_classes))
        return check_probabilities(raw, len(arr), self._n_classes, source="the PyTorch model")

    def loss_gradient(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Gradient of the summed cross-entropy loss with respect to ``x``."""
        import torch

        arr = check_inputs(x, self._input_shape)
        labels = torch.from_numpy(check_labels(y, len(arr), self._n_classes)).to(self._device)
        xt = torch.from_numpy(arr).to(self._device).requires_grad_(True)
        loss = torch.nn.functional.cross_entropy(self.logits(xt), labels, reduction="sum")
        (grad,) = torch.autograd.grad(loss, xt)
        return grad.detach().cpu().numpy()

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the module as a TorchScript file (scripted if possible, else traced) and return the path."""
        out = Path(path)
        module = self.module
        with warnings.catch_warnings():
            # TorchScript is deprecated in recent torch but remains the one self-contained format that
            # carries code and weights without pickle; torch.export archives can replace it later.
            warnings.simplefilter("ignore", DeprecationWarning)
            return self._save(module, out)

    def _save(self, module: Any, out: Path) -> Path:
        import torch

        if not isinstance(module, torch.jit.ScriptModule):
            try:
                module = torch.jit.script(module)
            except Exception:  # scripting fails on many dynamic modules; tracing covers feed-forward nets
                example = torch.zeros((1, *self._input_shape), device=self._device)
                module = torch.jit.trace(module, example)  # type: ignore[no-untyped-call]  # torch stub gap
        module.save(str(out))
        os.chmod(out, 0o644)
        return out

    @classmethod
    def from_torchscript(
        cls, path: str | os.PathLike[str], *, input_shape: tuple[int, ...], **kw: Any
    ) -> TorchModel:
        """Load a TorchScript file (``torch.jit.save``); it holds no arbitrary pickled Python code.

        Raises:
            ModelError: the file is not a loadable TorchScript archive.
        """
        import torch

        p = Path(path)
        if not p.is_file():
            raise InputError(f"model file {p} does not exist")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # see save()
                module = torch.jit.load(str(p), map_location="cpu")  # type: ignore[no-untyped-call]  # torch stub gap
        except (RuntimeError, ValueError, OSError) as err:
            raise ModelError(f"{p} is not a loadable TorchScript model: {str(err).splitlines()[0]}") from err
        return cls(module, input_shape=input_shape, **kw)

    @classmethod
    def from_python(
        cls,
        spec: str,
        *,
        input_shape: tuple[int, ...],
        weights: str | os.PathLike[str] | None = None,
        **kw: Any,
    ) -> TorchModel:
        """Build from ``python:package.module:attr`` (a module instance, or a class or factory with no args).

        ``weights`` is an optional state-dict file, loaded with ``weights_only=True`` so it cannot run code.
        """
        import torch

        obj = import_object(spec)
        if not isinstance(obj, torch.nn.Module) and callable(obj):
            obj = obj()
        if not isinstance(obj, torch.nn.Module):
            raise ModelError(f"{spec} is not a torch.nn.Module (got {type(obj).__name__})")
        if weights is not None:
            try:
                state = torch.load(str(weights), map_location="cpu", weights_only=True)
                obj.load_state_dict(state)
            except (RuntimeError, OSError, ValueError, KeyError) as err:
                raise ModelError(f"could not load weights {weights} into {spec}: {err}") from err
        return cls(obj, input_shape=input_shape, **kw)


def import_object(spec: str) -> Any:
    """Import ``python:package.module:attr`` (the ``python:`` prefix is optional) and return the attribute.

    This imports code the user named on purpose; it is never used on files under analysis.

    Raises:
        InputError: malformed spec, or module or attribute not found.
    """
    body = spec.removeprefix("python:")
    mod_name, sep, attr = body.partition(":")
    if not sep or not mod_name or not attr:
        raise InputError(f"expected 'python:package.module:attr'; got {spec!r}")
    try:
        obj: Any = importlib.import_module(mod_name)
    except ImportError as err:
        raise InputError(f"cannot import module {mod_name!r} from {spec!r}: {err}") from err
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise InputError(f"module {mod_name!r} has no attribute {attr!r}") from None
    return obj
