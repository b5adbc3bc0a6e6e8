"""The HTTP adapter against a real local server on a free loopback port."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from tests._http_fakes import serve_slowly

from mlsecops.core.errors import InputError
from mlsecops.models import EndpointError, HttpModel, ModelError, load_model


class _Handler(BaseHTTPRequestHandler):
    mode = "ok"

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        rows = np.asarray(body["inputs"], dtype=float)
        if self.path == "/slow":
            time.sleep(1.5)
        if self.path == "/error":
            self.send_response(500)
            self.end_headers()
            return
        if self.path == "/scores":
            out = (rows[:, :3] * 5).tolist()  # not probabilities
        else:
            z = np.exp(rows[:, :3])
            out = (z / z.sum(axis=1, keepdims=True)).tolist()
        data = json.dumps({"probabilities": out}).encode()
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except BrokenPipeError:  # the client gave up (the time-out test)
            pass

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def server() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_endpoint_probabilities_and_query_count(server):
    m = load_model(f"{server}/predict", input_shape=(4,))
    assert isinstance(m, HttpModel) and m.n_classes == 3
    x = np.random.default_rng(0).random((7, 4)).astype(np.float32)
    p = m.predict_proba(x)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)
    assert m.queries == 1 + 7  # the class-count probe plus one per row


def test_unreachable_endpoint_is_a_clear_error():
    with pytest.raises(EndpointError, match="cannot reach model endpoint"):
        HttpModel(f"http://127.0.0.1:{_closed_port()}/predict", input_shape=(4,))


def test_endpoint_timeout_is_a_clear_error(server):
    m = HttpModel(f"{server}/slow", input_shape=(4,), n_classes=3, timeout=0.3)
    with pytest.raises(EndpointError, match=r"timed out after 0\.3 s"):
        m.predict_proba(np.zeros((2, 4), dtype=np.float32))


def test_endpoint_http_error_and_non_probabilities(server):
    with pytest.raises(EndpointError, match="HTTP 500"):
        HttpModel(f"{server}/error", input_shape=(4,), n_classes=3).predict_proba(np.zeros((1, 4)))
    with pytest.raises(ModelError, match=r"not probabilities|outside"):
        HttpModel(f"{server}/scores", input_shape=(4,), n_classes=3).predict_proba(np.ones((2, 4)))


def test_endpoint_rejects_other_schemes():
    with pytest.raises(InputError, match="http"):
        HttpModel("file:///etc/passwd", input_shape=(4,))


@pytest.fixture
def trickling_server() -> Iterator[str]:
    """Reads the request, then sends its status line one byte every 0.2 s (a minute in all)."""
    status = b"HTTP/1.1 200 OK\r\nX-Pad: " + b"a" * 300
    yield from serve_slowly([bytes([b]) for b in status], gap_s=0.2)


def test_endpoint_timeout_bounds_the_whole_request(trickling_server, server):
    """Issue 11 item 14: a server trickling a byte every 0.2 s held the adapter forever (each read
    arrived within the per-read time-out); now the time-out is a deadline for the request."""
    m = HttpModel(trickling_server, input_shape=(4,), n_classes=3, timeout=1.0)
    start = time.monotonic()
    with pytest.raises(EndpointError, match=r"timed out after 1 s"):
        m.predict_proba(np.zeros((2, 4), dtype=np.float32))
    assert time.monotonic() - start < 2.0
    # the benign twin: a normal server under the same deadline answers
    ok = HttpModel(f"{server}/predict", input_shape=(4,), n_classes=3, timeout=1.0)
    assert ok.predict_proba(np.zeros((2, 4), dtype=np.float32)).shape == (2, 3)


def test_report_subject_of_an_endpoint_never_carries_its_credentials(server, tmp_path):
    """An endpoint URL with a token in it names the report's subject redacted (JSON, SARIF, HTML)."""
    from mlsecops.core.checks import Target, get_check

    data = tmp_path / "d.npz"
    rng = np.random.default_rng(0)
    np.savez(data, X=rng.random((6, 4)).astype(np.float32), y=np.array([0, 1, 2, 0, 1, 2]))
    url = f"{server}/predict?token=s3cr3t-value"
    opts = {"model": url, "data": str(data), "attack": "square", "eps": [0.05], "max_examples": 3}
    report = get_check("assess.robustness").create().run(Target(options=opts, seed=0))
    assert "s3cr3t-value" not in report.subject and "s3cr3t-value" not in report.model_dump_json()
    assert report.subject.startswith(server)
