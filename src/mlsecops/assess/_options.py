"""Reading check options (JSON values from the CLI or a pipeline file) into typed values."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mlsecops.core.errors import InputError
from mlsecops.models.interface import ModelAdapter
from mlsecops.models.loading import load_model

__all__ = ["load_target_model", "opt_float", "opt_float_list", "opt_int", "opt_list", "tiny_contract_model"]


def opt_list(value: Any) -> list[str]:
    """``"a,b"``, ``["a", "b"]`` or ``None`` as a list of stripped, lower-case names."""
    if value is None or value == "":
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    return [str(v).strip().lower() for v in items if str(v).strip()]


def opt_float_list(value: Any) -> list[float]:
    """``"0.1,0.2"``, ``0.1`` or ``[0.1, 0.2]`` as floats.

    Raises:
        InputError: a value that is not a finite non-negative number.
    """
    if value is None or value == "":
        return []
    items = (
        value.split(",") if isinstance(value, str) else value if isinstance(value, list | tuple) else [value]
    )
    out = []
    for v in items:
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise InputError(f"expected numbers like 0.1,0.2; got {v!r}") from None
        if not np.isfinite(f) or f < 0:
            raise InputError(f"budgets and radii must be finite and >= 0; got {v!r}")
        out.append(f)
    return out


def opt_int(opts: Mapping[str, Any], key: str, default: int) -> int:
    """An integer option, or ``default`` when absent.

    Raises:
        InputError: the value is not an integer.
    """
    value = opts.get(key)
    if value is None or value == "":
        return default
    try:
        return int(str(value))
    except ValueError:
        raise InputError(f"option {key!r} must be an integer; got {value!r}") from None


def opt_float(opts: Mapping[str, Any], key: str, default: float) -> float:
    """A number option, or ``default`` when absent.

    Raises:
        InputError: the value is not a finite number.
    """
    value = opts.get(key)
    if value is None or value == "":
        return default
    try:
        out = float(str(value))
    except ValueError:
        raise InputError(f"option {key!r} must be a number; got {value!r}") from None
    if not np.isfinite(out):
        raise InputError(f"option {key!r} must be finite; got {value!r}")
    return out


def load_target_model(ref: str, opts: Mapping[str, Any], x: np.ndarray) -> ModelAdapter:
    """Load the model a check names, with the data's input shape unless ``input_shape`` is given."""
    shape_opt = opts.get("input_shape")
    if shape_opt:
        shape = tuple(int(s) for s in (shape_opt.split(",") if isinstance(shape_opt, str) else shape_opt))
    else:
        shape = tuple(int(s) for s in x.shape[1:])
    return load_model(
        ref,
        input_shape=shape,
        output=str(opts["output"]) if opts.get("output") else None,
        timeout=float(opts.get("timeout", 10.0)),
        weights=str(opts["weights"]) if opts.get("weights") else None,
    )


def tiny_contract_model(tmp_dir: Path, *, seed: int = 0) -> tuple[Path, Path]:
    """A small random PyTorch classifier saved as a ``torch.export`` program (.pt2) and matching data."""
    import torch

    from mlsecops.models.pytorch import TorchModel

    gen = torch.Generator().manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    model_path = Path(tmp_dir) / "tiny.pt2"
    TorchModel(net, input_shape=(8,)).save(model_path)
    rng = np.random.default_rng(seed)
    x = rng.random((40, 8)).astype(np.float32)
    with torch.no_grad():
        y = net(torch.from_numpy(x)).argmax(dim=1).numpy()
    data_path = Path(tmp_dir) / "tiny.npz"
    np.savez(data_path, X=x, y=y)
    return model_path, data_path
