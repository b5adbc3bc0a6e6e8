"""The HTTP adapter speaking the Open Inference Protocol v2 to a real local server.

The server below follows the protocol as KServe and MLServer answer it; the guard's own endpoint is
exercised in tests/integration/runtime/test_audit_through_guard.py.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import numpy as np
import pytest

from mlsecops.models import EndpointError, HttpModel, load_model

_W = np.random.default_rng(3).normal(size=(4, 5))
TOKEN = "oip-test-token-123"


def _proba(rows: np.ndarray) -> np.ndarray:
    z = np.exp(rows @ _W)
    return z / z.sum(axis=1, keepdims=True)


class _Oip(BaseHTTPRequestHandler):
    seen: ClassVar[list[dict[str, Any]]] = []
    auth: ClassVar[list[str | None]] = []

    def _send(self, status: int, doc: Any) -> None:
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.auth.append(self.headers.get("Authorization"))
        mode = self.path.split("/")[3]
        if mode == "locked" and self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._send(401, {"error": "no credentials"})
            return
        params = {} if mode == "bare" else {"parameters": {"n_classes": 5}}
        outputs = [{"name": "probabilities", "datatype": "FP64", "shape": [-1, 5]}] if mode == "bare" else []
        self._send(
            200,
            {
                "name": mode,
                "platform": "test",
                "inputs": [{"name": "features", "datatype": "FP64", "shape": [-1, 4]}],
                "outputs": outputs,
                **params,
            },
        )

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append(body)
        mode = self.path.split("/")[3]
        tensor = body["inputs"][0]
        rows = np.asarray(tensor["data"], dtype=float).reshape(tensor["shape"])
        p = _proba(rows)
        n = len(rows)
        if mode in ("full", "bare", "locked"):
            outs = [
                {"name": "probabilities", "shape": [n, 5], "datatype": "FP64", "data": p.ravel().tolist()}
            ]
        elif mode == "topk":
            order = np.argsort(-p, axis=1)[:, :2]
            top = np.take_along_axis(p, order, axis=1)
            outs = [
                {
                    "name": "top_k_classes",
                    "shape": [n, 2],
                    "datatype": "INT64",
                    "data": order.ravel().tolist(),
                },
                {
                    "name": "top_k_probabilities",
                    "shape": [n, 2],
                    "datatype": "FP64",
                    "data": top.ravel().tolist(),
                },
            ]
        elif mode == "labels":
            outs = [{"name": "label", "shape": [n], "datatype": "INT64", "data": p.argmax(1).tolist()}]
        elif mode == "badlabels":
            outs = [{"name": "label", "shape": [n], "datatype": "INT64", "data": [7] * n}]
        else:  # "odd": an output the adapter cannot read
            outs = [{"name": "embedding", "shape": [n, 2], "datatype": "FP64", "data": [0.0] * (2 * n)}]
        self._send(200, {"model_name": mode, "outputs": outs})

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture(scope="module")
def oip() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Oip)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


X = np.random.default_rng(0).normal(size=(9, 4))


def test_full_probabilities_with_the_metadata_input_name(oip: str) -> None:
    m = load_model(f"{oip}/v2/models/full/infer", input_shape=(4,))
    assert isinstance(m, HttpModel) and m.protocol == "oip" and m.n_classes == 5
    np.testing.assert_allclose(m.predict_proba(X), _proba(X), rtol=1e-6)
    sent = _Oip.seen[-1]["inputs"][0]
    assert sent["name"] == "features" and sent["datatype"] == "FP64" and sent["shape"] == [9, 4]
    assert m.queries == 9  # the class count came from the metadata: no probe row


def test_class_count_from_the_probability_output_shape(oip: str) -> None:
    m = HttpModel(f"{oip}/v2/models/bare/versions/2/infer", input_shape=(4,))
    assert m.n_classes == 5 and m.queries == 0


def test_top_k_answers_become_what_an_outside_caller_sees(oip: str) -> None:
    m = HttpModel(f"{oip}/v2/models/topk/infer", input_shape=(4,))
    p = m.predict_proba(X)
    truth = _proba(X)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert np.array_equal(p.argmax(1), truth.argmax(1))
    top2 = np.sort(truth, axis=1)[:, ::-1][:, :2]
    np.testing.assert_allclose(np.sort(p, axis=1)[:, ::-1][:, :2], top2, rtol=1e-6)
    rest = (1 - top2.sum(axis=1)) / 3  # the unshown mass, spread evenly over the three others
    np.testing.assert_allclose(np.sort(p, axis=1)[:, 0], rest, rtol=1e-6)


def test_labels_only_become_one_hot_rows(oip: str) -> None:
    m = HttpModel(f"{oip}/v2/models/labels/infer", input_shape=(4,))
    p = m.predict_proba(X)
    assert set(np.unique(p)) <= {0.0, 1.0} and np.array_equal(p.argmax(1), _proba(X).argmax(1))


def test_malformed_answers_are_clear_errors(oip: str) -> None:
    with pytest.raises(EndpointError, match=r"labels outside 0\.\.4"):
        HttpModel(f"{oip}/v2/models/badlabels/infer", input_shape=(4,)).predict_proba(X)
    with pytest.raises(
        EndpointError, match=r"no probabilities, top-k or label output \(outputs: embedding\)"
    ):
        HttpModel(f"{oip}/v2/models/odd/infer", input_shape=(4,)).predict_proba(X)


def test_the_token_comes_from_the_environment_and_never_shows(oip: str, monkeypatch) -> None:
    monkeypatch.delenv("MLSECOPS_MODEL_TOKEN", raising=False)
    with pytest.raises(
        EndpointError, match=r"refused the credentials: HTTP 401.*MLSECOPS_MODEL_TOKEN"
    ) as err:
        HttpModel(f"{oip}/v2/models/locked/infer", input_shape=(4,))
    monkeypatch.setenv("MLSECOPS_MODEL_TOKEN", TOKEN)
    m = HttpModel(f"{oip}/v2/models/locked/infer", input_shape=(4,))
    assert m.predict_proba(X[:2]).shape == (2, 5)
    assert _Oip.auth[-1] == f"Bearer {TOKEN}"
    assert TOKEN not in str(err.value) and TOKEN not in repr(m.__dict__.get("url"))


def test_a_plain_path_still_speaks_plain_json(oip: str) -> None:
    """Only /v2/models/<name>/infer paths switch to the protocol (the old adapter's contract)."""
    with pytest.raises(EndpointError):
        HttpModel(f"{oip}/predict", input_shape=(4,), n_classes=5).predict_proba(X[:1])
    assert HttpModel(f"{oip}/predict", input_shape=(4,), n_classes=5).protocol == "json"
