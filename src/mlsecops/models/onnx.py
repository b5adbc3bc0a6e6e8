"""ONNX adapter through onnxruntime (the optional ``onnx`` extra). Black-box: probabilities only.

The graph's first input takes the batch; the output holding probabilities is found by name
(``probabilities``, ``output_probability``) or taken as the last 2-D float output. scikit-learn models
converted by skl2onnx return probabilities as a list of dicts; that form is handled too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import numpy as np

from mlsecops.core.errors import InputError
from mlsecops.models._shape import FixedShape
from mlsecops.models.interface import ModelError, check_inputs, check_probabilities

__all__ = ["OnnxModel"]


class OnnxModel(FixedShape):
    """An ONNX classifier run by onnxruntime on CPU.

    Args:
        path: the ``.onnx`` file.
        input_shape: shape of one input; read from the graph when its dimensions are fixed.
        output: ``proba`` (default) or ``logits`` (softmax is applied).
        batch_size: rows per session run.
        model_bytes: the graph as ``safe_load`` returned it for ``path`` (``load_model`` passes it, having
            loaded the file once); when ``None`` the file is loaded here through ``safe_load``.

    Raises:
        UnsafeArtifactError: the scanner did not judge the file ``safe``.
        ModelError: onnxruntime is missing, or the graph cannot be run.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        input_shape: tuple[int, ...] | None = None,
        output: Literal["proba", "logits"] = "proba",
        batch_size: int = 1024,
        model_bytes: bytes | None = None,
    ) -> None:
        try:
            import onnxruntime as ort
        except ImportError as err:
            raise ModelError("ONNX models need onnxruntime: pip install 'mlsecops[onnx]'") from err
        p = Path(path)
        if model_bytes is None:
            if not p.is_file():
                raise InputError(f"model file {p} does not exist")
            from mlsecops.supplychain import safe_load

            # The scanner judges the file first (external-data paths leaving the model's folder, unknown
            # custom-op domains); onnxruntime then parses exactly the bytes that were judged.
            model_bytes = safe_load(p)
        try:
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 2
            self._session = ort.InferenceSession(
                model_bytes, sess_options=opts, providers=["CPUExecutionProvider"]
            )
        except Exception as err:  # onnxruntime raises its own untyped errors on bad graphs
            raise ModelError(f"{p} is not a loadable ONNX model: {err}") from err
        inp = self._session.get_inputs()[0]
        self._input_name = inp.name
        if input_shape is None:
            dims = list(inp.shape)[1:]
            if not all(isinstance(d, int) for d in dims):
                raise ModelError(f"{p} has a dynamic input shape {inp.shape}; pass input_shape")
            input_shape = tuple(int(d) for d in dims)
        self._input_shape = tuple(input_shape)
        self._output_name = self._pick_output()
        self.output = output
        self.batch_size = batch_size
        probe = self._run(np.zeros((1, *self._input_shape), dtype=np.float32))
        self._n_classes = int(probe.shape[1])

    def _pick_output(self) -> str:
        outs = self._session.get_outputs()
        for o in outs:
            if o.name in ("probabilities", "output_probability", "probs", "proba"):
                return str(o.name)
        return str(outs[-1].name)

    def _run(self, x: np.ndarray) -> np.ndarray:
        try:
            (raw,) = self._session.run([self._output_name], {self._input_name: x})
        except Exception as err:  # onnxruntime's errors carry no stable type
            raise ModelError(f"the ONNX model failed on inputs of shape {x.shape}: {err}") from err
        if isinstance(raw, list) and raw and isinstance(raw[0], dict):
            keys = sorted(raw[0])
            raw = np.array([[row[k] for k in keys] for row in raw], dtype=np.float64)
        return np.asarray(raw, dtype=np.float64)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities of a batch.

        Raises:
            InputError: wrong shape or NaN inputs.
            ModelError: the graph failed or returned non-probabilities.
        """
        arr = check_inputs(x, self._input_shape)
        parts = [self._run(arr[i : i + self.batch_size]) for i in range(0, len(arr), self.batch_size)]
        raw = np.concatenate(parts) if parts else np.zeros((0, self._n_classes))
        if self.output == "logits":
            z = raw - raw.max(axis=1, keepdims=True)
            raw = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        return check_probabilities(raw, len(arr), self._n_classes, source="the ONNX model")
