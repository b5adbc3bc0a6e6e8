"""A live guard for the case studies: ``mlsecops serve`` as a subprocess on a free loopback port, and a
client that speaks its Open Inference Protocol as a model adapter (so our black-box attacks can be
aimed at the live endpoint).

The guard runs in its own process exactly as an operator starts it (``python -m mlsecops.cli serve
NAME@production --policy guard.yaml``), against the workspace at ``home``; its log goes to a file.
Only loopback addresses are used. The client's API key is sent in the ``Authorization`` header and
never put in messages.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlsecops.core import HttpFailure, http_post
from mlsecops.core.errors import InputError
from mlsecops.models._shape import FixedShape
from mlsecops.models.interface import EndpointError, check_inputs, check_probabilities

__all__ = ["GuardClient", "LiveGuard", "infer_body", "start_guard"]

_MAX_ANSWER = 8 * 1024 * 1024
_LOOPBACK = "127.0.0.1"


@dataclass
class LiveGuard:
    """A running ``mlsecops serve`` process."""

    url: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def stop(self, *, timeout: float = 20.0) -> int | None:
        """Stop it cleanly (SIGINT, as Ctrl-C), killing it only if it does not exit within ``timeout``."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode

    def log_tail(self, chars: int = 1500) -> str:
        """The end of the guard's log (for an error message)."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((_LOOPBACK, 0))
        return int(s.getsockname()[1])


def start_guard(
    home: Path,
    model_ref: str,
    policy: Path,
    log_path: Path,
    *,
    ready_timeout: float = 120.0,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> LiveGuard:
    """Start ``mlsecops serve MODEL_REF --policy POLICY`` on a free loopback port; wait until it is ready.

    Args:
        home: the workspace the guard serves from.
        model_ref: what to serve, e.g. ``NAME@production``.
        policy: the guard policy file.
        log_path: where the guard's output goes.
        ready_timeout: seconds to wait for ``/v2/health/ready``.
        env: the process's environment [default: ours without the database URL and API key, with
            ``MLSECOPS_HOME`` = ``home``].
        cwd: its working directory [default: the policy's folder].

    Raises:
        InputError: the guard exited or did not become ready in time (the end of its log named).
    """
    port = _free_port()
    if env is None:
        drop = ("MLSECOPS_DATABASE_URL", "MLSECOPS_API_KEY")
        env = {k: v for k, v in os.environ.items() if k not in drop}
        env.update({"MLSECOPS_HOME": str(home), "PYTHONUNBUFFERED": "1"})
    log = log_path.open("wb")
    try:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlsecops.cli",
                "serve",
                model_ref,
                "--policy",
                str(policy),
                "--host",
                _LOOPBACK,
                "--port",
                str(port),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=str(cwd if cwd is not None else policy.parent),
        )
    finally:
        log.close()  # the child holds its own descriptor
    guard = LiveGuard(f"http://{_LOOPBACK}:{port}", proc, log_path)
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise InputError(f"mlsecops serve exited with {proc.returncode}: {guard.log_tail()}")
        try:
            with urllib.request.urlopen(f"{guard.url}/v2/health/ready", timeout=1) as answer:
                if answer.status == 200:
                    return guard
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    guard.stop(timeout=5)
    raise InputError(f"mlsecops serve did not become ready in {ready_timeout:g} s: {guard.log_tail()}")


def infer_body(rows: np.ndarray, *, datatype: str = "FP64", decimals: int | None = None) -> dict[str, Any]:
    """An Open Inference Protocol v2 request for ``rows`` (values rounded to ``decimals`` when given)."""
    data = rows.reshape(-1).astype(np.float64)
    if decimals is not None:
        data = data.round(decimals)
    return {
        "inputs": [
            {"name": "input-0", "shape": list(rows.shape), "datatype": datatype, "data": data.tolist()}
        ]
    }


class GuardClient(FixedShape):
    """A model adapter for a model behind the guard: ``predict_proba`` is one Open Inference Protocol
    request per ``batch_size`` rows (``POST /v2/models/NAME/infer`` with the client's API key).

    Args:
        url: the guard's base URL.
        model: the served model's name.
        api_key: the client's API key (sent, never shown).
        input_shape: shape of one input.
        n_classes: number of classes.
        batch_size: rows per request (1: every row is its own request, as a query-by-query attacker).
        timeout: seconds per request.
    """

    def __init__(
        self,
        url: str,
        model: str,
        api_key: str,
        *,
        input_shape: tuple[int, ...],
        n_classes: int,
        batch_size: int = 1,
        timeout: float = 10.0,
    ) -> None:
        self.url = f"{url}/v2/models/{model}/infer"
        self._headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        self._input_shape = tuple(int(s) for s in input_shape)
        self._n_classes = int(n_classes)
        self.batch_size = int(batch_size)
        self.timeout = float(timeout)
        self.requests = 0
        """Requests sent so far."""
        self.statuses: dict[int, int] = {}
        """HTTP status -> how many answers had it."""

    def _post(self, rows: np.ndarray) -> np.ndarray:
        body = infer_body(rows, datatype="FP32", decimals=6)
        try:
            answer = http_post(
                self.url,
                json.dumps(body).encode(),
                headers=self._headers,
                deadline_s=self.timeout,
                max_bytes=_MAX_ANSWER,
            )
        except HttpFailure as err:
            raise EndpointError(f"the guard at {self.url} did not answer: {err.detail}") from err
        self.requests += 1
        self.statuses[answer.status] = self.statuses.get(answer.status, 0) + 1
        if answer.status != 200:
            raise EndpointError(f"the guard answered HTTP {answer.status} {answer.reason}")
        try:
            outputs = json.loads(answer.body)["outputs"]
            probs = next(o for o in outputs if o["name"] == "probabilities")
        except (ValueError, KeyError, TypeError, StopIteration) as err:
            raise EndpointError("the guard's answer holds no 'probabilities' output") from err
        return np.asarray(probs["data"], dtype=np.float64).reshape(len(rows), -1)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities from the guard.

        Raises:
            InputError: wrong shape or NaN inputs.
            EndpointError: no answer, a refusal (4xx/5xx) or an answer without probabilities.
        """
        arr = check_inputs(x, self._input_shape)
        parts = []
        for start in range(0, len(arr), self.batch_size):
            chunk = arr[start : start + self.batch_size]
            parts.append(
                check_probabilities(self._post(chunk), len(chunk), self._n_classes, source="the guard")
            )
        return np.concatenate(parts) if parts else np.zeros((0, self._n_classes))
