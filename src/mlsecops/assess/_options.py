"""Loading the model a check names, with the options every model-loading check shares.

Option values are read through ``Target``'s typed readers (``mlsecops.core.checks``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlsecops.core.checks import Target
from mlsecops.core.errors import InputError
from mlsecops.models.interface import ModelAdapter
from mlsecops.models.loading import load_model

__all__ = ["MODEL_OPTIONS", "load_target_model", "model_and_data", "tiny_contract_model"]

MODEL_OPTIONS = ("model", "data", "label", "input_shape", "output", "timeout", "weights")
"""Options of every check that loads a model and a data set (``load_target_model``)."""
DEFAULT_TIMEOUT = 10.0
"""Seconds an HTTP model has to answer one batch (option ``timeout``)."""
MIN_TIMEOUT = 0.01
"""Smallest ``timeout`` accepted: zero or less would fail every request."""


def model_and_data(target: Target, what: str, *, data: str = "a data set") -> tuple[str, str]:
    """The model and data references: the options ``model`` and ``data``, else ``paths`` = (model, data).

    ``what`` starts the error message (``"certification needs"``); ``data`` names the data in it.

    Raises:
        InputError: one of the two is missing.
    """
    model = target.opt_str("model") or (str(target.paths[0]) if target.paths else None)
    dataset = target.opt_str("data") or (str(target.paths[1]) if len(target.paths) > 1 else None)
    if not model or not dataset:
        raise InputError(f"{what} a model and {data} (paths=(model, data))")
    return model, dataset


def load_target_model(target: Target, ref: str, x: np.ndarray) -> ModelAdapter:
    """Load the model a check names, with the data's input shape unless ``input_shape`` is given.

    Options read: ``input_shape`` (``"1,28,28"`` or a list), ``output``, ``timeout`` (seconds, for
    HTTP models), ``weights``.

    Raises:
        ConfigError: a malformed option.
    """
    shape = tuple(target.opt_int_list("input_shape", lo=1)) or tuple(int(s) for s in x.shape[1:])
    return load_model(
        ref,
        input_shape=shape,
        output=target.opt_str("output"),
        timeout=target.opt_float("timeout", DEFAULT_TIMEOUT, lo=MIN_TIMEOUT),
        weights=target.opt_str("weights"),
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
