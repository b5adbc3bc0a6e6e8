"""The floor of the runtime benchmark: a bare FastAPI app that decodes one OIP v2 tensor, calls
``predict_proba`` inline and answers the probabilities. No authentication, limits, checks or logs.

    .venv/bin/python benchmarks/runtime/floor_app.py MODEL.joblib PORT

uvicorn, one worker, on 127.0.0.1, with the same event loop and HTTP parser choice as ``mlsecops serve``
(uvicorn's ``auto``: uvloop and httptools when installed). The model is loaded through ``safe_load``.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from mlsecops.supplychain.scanner import safe_load


def create_app(model_path: str, name: str = "digits") -> FastAPI:
    """The floor app serving ``model_path`` as ``name``."""
    model: Any = safe_load(model_path)
    app = FastAPI()

    @app.get("/v2/health/ready")
    async def ready() -> dict[str, bool]:
        return {"ready": True}

    @app.post(f"/v2/models/{name}/infer")
    async def infer(request: Request) -> JSONResponse:
        tensor = (await request.json())["inputs"][0]
        x = np.asarray(tensor["data"], dtype=np.float64).reshape(tensor["shape"])
        proba = model.predict_proba(x)
        out = {"name": "predict_proba", "shape": list(proba.shape), "datatype": "FP64"}
        out["data"] = proba.reshape(-1).tolist()
        return JSONResponse({"model_name": name, "outputs": [out]})

    return app


if __name__ == "__main__":
    uvicorn.run(
        create_app(sys.argv[1]),
        host="127.0.0.1",
        port=int(sys.argv[2]),
        access_log=False,
        log_level="warning",
    )
