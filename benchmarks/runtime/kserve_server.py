"""KServe's Python ModelServer for the runtime benchmark (runs in ``benchmarks/.venv-runtime-kserve``).

    benchmarks/.venv-runtime-kserve/bin/python benchmarks/runtime/kserve_server.py MODEL.joblib PORT

What KServe's scikit-learn runtime does: ``predict_proba`` behind ``kserve.Model.predict``, the answer
as the ``output-0`` tensor; KServe's defaults otherwise (one uvicorn worker, access and latency logs on),
gRPC off. KServe binds ``0.0.0.0`` itself; this launcher pins its uvicorn to ``127.0.0.1``. The peer's
venv has no mlsecops, so the model is read with joblib: ``run_bench.py`` trains it and judges it
``safe`` with mlsecops' scanner before any peer starts.
"""

from __future__ import annotations

import sys
from typing import Any

import joblib
import numpy as np
import uvicorn
from kserve import Model, ModelServer
from kserve.utils.utils import get_predict_input, get_predict_response

N_FEATURES = 64


class _Loopback(uvicorn.Config):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["host"] = "127.0.0.1"
        super().__init__(*args, **kwargs)


class SklearnModel(Model):  # type: ignore[misc]
    """predict_proba on the decoded input tensor."""

    def __init__(self, name: str, path: str) -> None:
        super().__init__(name)
        self.path = path
        self.estimator: Any = None

    def load(self) -> bool:
        self.estimator = joblib.load(self.path)
        self.ready = True
        return True

    def get_input_types(self) -> list[dict[str, Any]]:
        return [{"name": "input-0", "datatype": "FP64", "shape": [-1, N_FEATURES]}]

    def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        x = np.asarray(get_predict_input(payload), dtype=np.float64)
        return get_predict_response(payload, self.estimator.predict_proba(x), self.name)


if __name__ == "__main__":
    uvicorn.Config = _Loopback  # type: ignore[misc]
    model = SklearnModel("digits", sys.argv[1])
    model.load()
    ModelServer(http_port=int(sys.argv[2]), enable_grpc=False, workers=1).start([model])
