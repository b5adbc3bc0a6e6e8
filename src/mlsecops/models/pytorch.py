"""PyTorch adapter: a ``torch.export`` program (``.pt2``), a TorchScript file, or ``python:module:attr``.

Files load only through the artifact scanner's ``safe_load`` (scan a private snapshot of the file,
refuse anything not judged ``safe``, load the same bytes), so a model whose code or pickles the scanner
flags never runs. ``.pt2`` programs (``torch.export``) are the recommended format: TorchScript is
deprecated in torch 2.13 and kept for existing models. ``save`` writes ``.pt2`` for a ``.pt2`` path
(or ``fmt="torch-export"``), TorchScript otherwise. A ``python:module:attr`` reference imports and runs
the named code: it is a trust decision the caller makes by writing that prefix.

The adapter is white-box and torch-native: attacks call ``logits`` on torch tensors and differentiate
through it, with no numpy round trips. ``predict_proba`` is the numpy face every analysis shares.
The wrapped module is put in eval mode; nothing here changes its weights. A ``.pt2`` program keeps the
mode it was exported in (dropout and batch-norm statistics are part of its graph).
"""

from __future__ import annotations

import functools
import importlib
import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from mlsecops.core.errors import InputError
from mlsecops.models._shape import FixedShape
from mlsecops.models.interface import ModelError, check_inputs, check_labels, check_probabilities

if TYPE_CHECKING:
    import torch

__all__ = ["SaveFormat", "TorchModel", "import_object"]

Output = Literal["logits", "proba", "log_proba"]
SaveFormat = Literal["torch-export", "torchscript"]

_EXPORT_SUFFIX = ".pt2"
"""File suffix that selects ``torch.export`` when saving."""

_TORCHSCRIPT_DEPRECATION = r"`torch\.jit\.(script|trace|save)` is deprecated"
"""torch >= 2.13 warns when TorchScript is written; ``save`` writes it only to keep an existing
TorchScript model in its format, so this one message is silenced there and nowhere else."""

_ERROR_CHARS = 240
"""Longest framework error text quoted in a one-line model error."""

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]|[\x00-\x1f\x7f]")


class TorchModel(FixedShape):
    """A PyTorch classifier behind the adapter protocol.

    Args:
        module: the classifier; called on a float32 batch of shape ``(n, *input_shape)``.
        input_shape: shape of one input, without the batch axis.
        n_classes: number of classes; found by one forward pass when ``None``.
        output: what the module returns: ``logits`` (default), ``proba`` or ``log_proba``.
        batch_size: rows per forward pass in ``predict_proba``.
        device: torch device name.
        source: what to call the model in error messages (its file name).

    Raises:
        ModelError: the module does not accept inputs of ``input_shape`` (one line, naming the shape the
            model expects where it can be read from the model).
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
        source: str = "the PyTorch model",
    ) -> None:
        import torch

        if output not in ("logits", "proba", "log_proba"):
            raise InputError(f"output must be 'logits', 'proba' or 'log_proba'; got {output!r}")
        self.module = module.to(device).eval()
        self.source = source
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
    def device(self) -> torch.device:
        """Device the module runs on."""
        return self._device

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        try:
            out = self.module(x)
        except (RuntimeError, AssertionError, TypeError, ValueError, IndexError) as err:
            # TorchScript raises RuntimeError with the whole interpreter traceback, an exported program
            # AssertionError("Guard failed: ..."): both become one line naming expected and given shapes.
            shape = _fmt_shape(tuple(x.shape[1:]))
            want = _expected_input(self.module)
            expects = f"; it expects {want}" if want else ""
            raise ModelError(
                f"{self.source} does not accept inputs of shape {shape}{expects} ({_cause(err)})"
            ) from err
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

    def save(self, path: str | os.PathLike[str], *, fmt: SaveFormat | None = None) -> Path:
        """Write the model and return the path.

        Args:
            path: the file to write.
            fmt: ``torch-export`` (a ``.pt2`` program, the recommended format) or ``torchscript``.
                By default a ``.pt2`` path, or a model loaded from a ``.pt2`` program, gets
                ``torch-export``; other models get TorchScript, which keeps an existing TorchScript model
                in its format (loading follows the content, not the suffix).

        Raises:
            ModelError: the module cannot be written in that format (a TorchScript module cannot be
                exported to ``.pt2``; an exported program cannot be written as TorchScript).
        """
        out = Path(path)
        exported = isinstance(self.module, _exported_wrapper())  # can only be written as a program again
        chosen: SaveFormat = fmt or (
            "torch-export" if exported or out.suffix.lower() == _EXPORT_SUFFIX else "torchscript"
        )
        if chosen == "torch-export":
            self._save_export(out)
        elif chosen == "torchscript":
            self._save_torchscript(out)
        else:
            raise InputError(f"fmt must be 'torch-export' or 'torchscript'; got {fmt!r}")
        os.chmod(out, 0o644)
        return out

    def _save_export(self, out: Path) -> None:
        import torch

        if isinstance(self.module, torch.jit.ScriptModule):
            raise ModelError(
                f"{self.source} is a TorchScript module, which torch.export cannot read; save it as TorchScript "
                "(a .pt path) or export the original nn.Module"
            )
        example = torch.zeros((2, *self._input_shape), device=self._device)  # 2: batch stays dynamic
        try:
            program = torch.export.export(
                self.module, (example,), dynamic_shapes=({0: torch.export.Dim.AUTO},), strict=False
            )
            torch.export.save(program, out)
        except Exception as err:  # torch.export raises many untyped errors on untraceable code
            raise ModelError(f"{self.source} could not be exported to {out.name}: {_cause(err)}") from err

    def _save_torchscript(self, out: Path) -> None:
        import torch

        module: Any = self.module
        if isinstance(module, _exported_wrapper()):
            raise ModelError(f"{self.source} is a torch.export program; it cannot be written as TorchScript")
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_TORCHSCRIPT_DEPRECATION, category=DeprecationWarning)
            if not isinstance(module, torch.jit.ScriptModule):
                try:
                    module = torch.jit.script(module)
                except Exception:  # scripting fails on many dynamic modules; tracing covers feed-forward nets
                    example = torch.zeros((1, *self._input_shape), device=self._device)
                    module = torch.jit.trace(module, example)  # type: ignore[no-untyped-call]  # torch stub gap
            module.save(str(out))

    @classmethod
    def from_file(
        cls, path: str | os.PathLike[str], *, input_shape: tuple[int, ...] | None = None, **kw: Any
    ) -> TorchModel:
        """Load a ``.pt2`` program or a TorchScript file through the artifact scanner.

        Args:
            path: the file; its format is read from its content.
            input_shape: shape of one input; read from a ``.pt2`` program when it is static there,
                required for TorchScript.
            **kw: the constructor's other arguments.

        Raises:
            UnsafeArtifactError: the scanner did not judge the file ``safe`` (nothing was loaded).
            ModelError: the file holds no PyTorch model (a state dict says what to give instead).
            InputError: missing file or missing input shape.
        """
        from mlsecops.supplychain import safe_load

        p = Path(path)
        if not p.is_file():
            raise InputError(f"model file {p} does not exist")
        return cls.from_loaded(safe_load(p), source=str(p), input_shape=input_shape, **kw)

    from_torchscript = from_file
    """Former name of ``from_file`` (it also loads ``.pt2`` programs now)."""

    @classmethod
    def from_loaded(
        cls, obj: Any, *, source: str, input_shape: tuple[int, ...] | None = None, **kw: Any
    ) -> TorchModel:
        """Wrap what ``safe_load`` returned for a PyTorch file.

        Raises:
            ModelError: ``obj`` is a state dict or another object that is not a model.
            InputError: a TorchScript module without ``input_shape``.
        """
        import torch

        if isinstance(obj, torch.export.ExportedProgram):
            module: torch.nn.Module = _exported_wrapper()(obj)
            shape = _program_input_shape(obj)
            if shape is not None:
                input_shape = shape
        elif isinstance(obj, torch.nn.Module):  # a TorchScript module
            module = obj
        elif is_state_dict(obj):
            raise ModelError(state_dict_message(source, obj))
        else:
            raise ModelError(
                f"{source} holds a {type(obj).__name__}, not a PyTorch model; give a torch.export program "
                "(.pt2) or a TorchScript file"
            )
        if input_shape is None:
            raise InputError(
                f"{source}: a TorchScript model needs the input shape (the data's shape is used by default)"
            )
        return cls(module, input_shape=input_shape, source=source, **kw)

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

        This imports and runs the named code (see ``import_object``). ``weights`` is an optional
        state-dict file; it loads through the artifact scanner (``safe_load``, ``weights_only=True``).

        Raises:
            ModelError: the object is not a module, or the weights do not fit it.
            UnsafeArtifactError: the scanner did not judge the weights file ``safe``.
        """
        import torch

        obj = import_object(spec)
        if not isinstance(obj, torch.nn.Module) and callable(obj):
            obj = obj()
        if not isinstance(obj, torch.nn.Module):
            raise ModelError(f"{spec} is not a torch.nn.Module (got {type(obj).__name__})")
        if weights is not None:
            from mlsecops.supplychain import safe_load

            wpath = Path(weights)
            if not wpath.is_file():
                raise InputError(f"weights file {wpath} does not exist")
            state = safe_load(wpath)
            if not is_state_dict(state):
                raise ModelError(
                    f"weights file {wpath} holds a {type(state).__name__}, not a state dict "
                    "(save one with torch.save(model.state_dict(), path))"
                )
            try:
                obj.load_state_dict(state)
            except (RuntimeError, ValueError, KeyError, TypeError) as err:
                raise ModelError(f"could not load weights {wpath} into {spec}: {_cause(err)}") from err
        return cls(obj, input_shape=input_shape, source=spec, **kw)


def is_state_dict(obj: Any) -> bool:
    """Whether ``obj`` is a mapping of parameter names to tensors or arrays (weights without code)."""
    if not isinstance(obj, Mapping) or not obj:
        return False
    return all(isinstance(k, str) for k in obj) and all(
        hasattr(v, "shape") and hasattr(v, "dtype") for v in obj.values()
    )


def state_dict_message(source: str, state: Mapping[str, Any]) -> str:
    """What to say when a state dict is given where a model is expected."""
    names = list(state)
    return (
        f"{source} is a state_dict ({len(names)} tensors, e.g. {names[0]!r}): weights without the "
        "model's code. Give the model itself as a torch.export program (.pt2), or name the architecture "
        f"as python:package.module:Class and pass this file as its weights (--weights {Path(source).name})"
    )


@functools.cache
def _exported_wrapper() -> type[torch.nn.Module]:
    """The ``nn.Module`` that runs a ``torch.export`` program (defined on first use: torch is optional)."""
    import torch

    class ExportedModule(torch.nn.Module):
        """Runs an ``ExportedProgram``'s graph; its parameters are trainable (adversarial training)."""

        def __init__(self, program: torch.export.ExportedProgram) -> None:
            super().__init__()
            self.program_module = program.module()
            self.user_inputs = _program_input_shape(program)

        def forward(self, x: torch.Tensor) -> Any:
            return self.program_module(x)

        def train(self, mode: bool = True) -> ExportedModule:
            # The graph keeps the mode it was exported in: exported graphs refuse train()/eval().
            self.training = mode
            return self

    return ExportedModule


def _program_input_shape(program: Any) -> tuple[int, ...] | None:
    """Shape of one input of a one-input exported program, when all but the batch axis are static."""
    import torch

    user = [
        s.arg.name
        for s in program.graph_signature.input_specs
        if s.kind == torch.export.graph_signature.InputKind.USER_INPUT
    ]
    if len(user) != 1:
        return None
    for node in program.graph.nodes:
        if node.op == "placeholder" and node.name == user[0]:
            val = node.meta.get("val")
            dims = tuple(getattr(val, "shape", ()))[1:]
            if all(isinstance(d, int) for d in dims):
                return tuple(int(d) for d in dims)
    return None


def _expected_input(module: Any) -> str | None:
    """The input a module expects, as far as it can be read: a ``.pt2`` program's own shape, or what its
    first Linear/convolution layer takes.
    """
    shape = getattr(module, "user_inputs", None)
    if shape is not None:
        return _fmt_shape(shape)
    for sub in module.modules():
        kind = getattr(sub, "original_name", None) or type(sub).__name__
        weight = getattr(sub, "weight", None)
        if weight is None or not hasattr(weight, "shape"):
            continue
        if kind == "Linear":
            return f"{int(weight.shape[1])} values on the last axis (first layer Linear)"
        if kind in ("Conv1d", "Conv2d", "Conv3d"):
            return f"{int(weight.shape[1])} channels on axis 1 (first layer {kind})"
        return None
    return None


def _fmt_shape(shape: tuple[int, ...]) -> str:
    return "(n, " + ", ".join(str(int(s)) for s in shape) + ")"


def _cause(err: BaseException) -> str:
    """A framework error as one short line: for a TorchScript error, its last line (the actual cause)."""
    lines = [_ANSI.sub("", ln).strip() for ln in str(err).splitlines()]
    lines = [ln for ln in lines if ln]
    if not lines:
        return type(err).__name__
    text = lines[-1] if "TorchScript" in lines[0] or lines[0].startswith("Traceback") else lines[0]
    return text if len(text) <= _ERROR_CHARS else text[: _ERROR_CHARS - 3] + "..."


def import_object(spec: str) -> Any:
    """Import ``python:package.module:attr`` and return the attribute.

    **This executes code**: importing a module runs it, and ``TorchModel.from_python`` also calls a
    class or factory. Writing ``python:`` is the caller's explicit decision to trust that code; nothing
    under analysis (a model file, an archive) is ever turned into such a reference. The ``python:``
    prefix is required, so a plain path can never be mistaken for code to import.

    Raises:
        InputError: malformed spec, or module or attribute not found.
    """
    if not spec.startswith("python:"):
        raise InputError(f"expected 'python:package.module:attr' (code to import and run); got {spec!r}")
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
