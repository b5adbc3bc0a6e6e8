"""Real Open Inference Protocol servers for the tests: KServe's Python ModelServer on loopback.

``mlsecops serve NAME --upstream URL`` is tested in front of a real peer, not a fake: KServe 0.21's
``kserve.ModelServer`` (in the ``test`` extra; it installs beside our pins, MLServer does not) serving a
logistic regression trained on scikit-learn's digits, the way KServe's own scikit-learn runtime does
(``predict_proba`` behind ``Model.predict``, the answer as KServe's ``output-0`` tensor).

``start_kserve(model_path, log_path)`` starts one as a subprocess on a free loopback port (gRPC off,
HTTP only; KServe binds ``0.0.0.0`` itself, so the launcher pins its uvicorn to ``127.0.0.1``), waits
for ``/v2/models/NAME/ready`` and returns a :class:`Peer`. The ``kserve_peer`` fixture is one such
server for the session.

Run as a script, this file is the peer's process::

    python tests/integration/runtime/_peers.py MODEL.joblib PORT NAME

The model is loaded through ``mlsecops.supplychain.scanner.safe_load`` (scanned first), like every
model the project loads.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PEER_MODEL = "digits"
"""The model's name on the peer, and so the guard's (grants in the test workspace name it)."""
N_FEATURES = 64
"""Digits are 8x8 images, flattened."""
READY_TIMEOUT_S = 120.0
"""KServe imports pandas, grpc and the Kubernetes client before it listens: seconds, more on a busy CI."""
_INFER_LINE = re.compile(rb'"POST /v2/models/[^/ ]+/infer HTTP/1\.1" \d{3}')


def free_port() -> int:
    """A loopback TCP port free at the time of asking."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def train_digits_model(path: Path) -> tuple[Any, Any]:
    """Fit a logistic regression on all of digits, save it as joblib at ``path``; (model, X)."""
    import warnings

    import joblib
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    x, y = load_digits(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a convergence warning at max_iter is fine for a test model
        model = LogisticRegression(max_iter=200).fit(x, y)
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, path)
    return model, x


@dataclass
class Peer:
    """A running KServe ModelServer."""

    url: str
    port: int
    name: str
    model_path: Path
    proc: subprocess.Popen[bytes]
    log_path: Path

    def infer_count(self) -> int:
        """Inference requests the peer has answered so far (its uvicorn access log lines)."""
        return len(_INFER_LINE.findall(self.log_path.read_bytes()))

    def stop(self) -> None:
        """Stop the peer (SIGTERM, then SIGKILL) and wait for it."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def start_kserve(
    model_path: Path, log_path: Path, *, port: int | None = None, name: str = PEER_MODEL
) -> Peer:
    """Start KServe's ModelServer serving ``model_path`` as ``name``; return once the model is ready."""
    import httpx

    port = port or free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLSECOPS_")}
    env["PYTHONUNBUFFERED"] = "1"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, __file__, str(model_path), str(port), name],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=model_path.parent,
        )
    url = f"http://127.0.0.1:{port}"
    peer = Peer(url, port, name, model_path, proc, log_path)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"KServe exited {proc.returncode}: {log_path.read_text(errors='replace')[-3000:]}"
            )
        try:
            if httpx.get(f"{url}/v2/models/{name}/ready", timeout=1).status_code == 200:
                return peer
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    peer.stop()
    raise RuntimeError(f"KServe did not become ready: {log_path.read_text(errors='replace')[-3000:]}")


@pytest.fixture(scope="session")
def kserve_peer() -> Iterator[Peer]:
    """KServe's ModelServer with a logistic regression on digits, for the session."""
    from tests._deps import require

    require("kserve", "test")
    require("httpx", "test")
    tmp = Path(tempfile.mkdtemp(prefix="mlsecops-peer-"))
    model_path = tmp / "model" / "model.joblib"
    train_digits_model(model_path)
    peer = start_kserve(model_path, tmp / "kserve.log")
    try:
        yield peer
    finally:
        peer.stop()


# ----------------------------------------------------------------------------- the peer's process


def _serve(model_path: str, port: int, name: str) -> None:  # pragma: no cover - runs in the subprocess
    import numpy as np
    import uvicorn
    from kserve import Model, ModelServer
    from kserve.utils.utils import get_predict_input, get_predict_response

    from mlsecops.supplychain.scanner import safe_load

    class _Loopback(uvicorn.Config):
        """KServe hard-codes host 0.0.0.0; a test server listens on loopback only."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["host"] = "127.0.0.1"
            super().__init__(*args, **kwargs)

    uvicorn.Config = _Loopback  # type: ignore[misc]

    class SklearnModel(Model):  # type: ignore[misc]
        """What KServe's scikit-learn runtime does: predict_proba on the decoded input tensor."""

        def __init__(self, name: str, path: str) -> None:
            super().__init__(name)
            self.path = path
            self.estimator: Any = None

        def load(self) -> bool:
            self.estimator = safe_load(self.path)
            self.ready = True
            return True

        def get_input_types(self) -> list[dict[str, Any]]:
            return [{"name": "input-0", "datatype": "FP64", "shape": [-1, N_FEATURES]}]

        def get_output_types(self) -> list[dict[str, Any]]:
            k = len(self.estimator.classes_)
            return [{"name": "output-0", "datatype": "FP64", "shape": [-1, k]}]

        def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
            x = np.asarray(get_predict_input(payload), dtype=np.float64)
            return get_predict_response(payload, self.estimator.predict_proba(x), self.name)

    model = SklearnModel(name, model_path)
    model.load()
    ModelServer(http_port=port, enable_grpc=False, workers=1).start([model])


if __name__ == "__main__":  # pragma: no cover - the peer's process
    _serve(sys.argv[1], int(sys.argv[2]), sys.argv[3])
