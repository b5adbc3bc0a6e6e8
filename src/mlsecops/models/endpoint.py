"""Black-box adapter for a model behind an HTTP endpoint: JSON in, probabilities out.

Two protocols, chosen by the URL:

- **Open Inference Protocol v2** (KServe, MLServer, ``mlsecops serve``) when the path is
  ``/v2/models/<name>[/versions/<v>]/infer``. The model's metadata (``GET /v2/models/<name>``) gives
  the input tensor's name and datatype and the number of classes; the request is one tensor of shape
  ``[rows, *input_shape]``. The answer's ``probabilities`` (or ``predict_proba``) output is read as
  it is. A hardened server shows less, and the adapter reports what an outside caller sees:
  ``top_k_classes`` with ``top_k_probabilities`` become a vector with the unshown mass spread evenly
  over the unshown classes; ``label`` alone becomes one-hot rows (a label-only model, which the
  privacy audit recognises).
- **Plain JSON** otherwise: ``POST url`` with ``{"inputs": [[...], ...]}``; the answer is
  ``{"probabilities": [[...], ...]}`` (``predictions``, ``outputs`` or a bare list of rows too).

``timeout`` is a deadline for the whole request (connect, send, headers, body), not per socket read,
so a server trickling bytes cannot hold a caller; answers over 64 MiB are refused
(``mlsecops.core.http_post``). A request refused as too large (HTTP 413) is sent again in halves.
Redirects are not followed. An unreachable host, a time-out, an HTTP
error or a malformed answer raise ``EndpointError`` with one clear line. A bearer token for the
endpoint is read from the environment variable ``MLSECOPS_MODEL_TOKEN`` (an API key of
``mlsecops serve``, for example) when no ``Authorization`` header is given. Header values (API
tokens) are sent but never put in messages or logs. Only the standard library is used, so this
adapter has no extra dependency.
"""

from __future__ import annotations

import json
import math
import os
import re
import urllib.parse
from collections.abc import Mapping
from typing import Any

import numpy as np

from mlsecops.core import HttpAnswer, HttpFailure, http_get, http_post, url_origin
from mlsecops.core.errors import InputError
from mlsecops.models._shape import FixedShape
from mlsecops.models.interface import EndpointError, check_inputs, check_probabilities

__all__ = ["TOKEN_ENV", "HttpModel"]

TOKEN_ENV = "MLSECOPS_MODEL_TOKEN"
"""Environment variable holding a bearer token for model endpoints (never logged)."""
_OIP_PATH = re.compile(r"^(?P<model>/v2/models/[^/]+(?:/versions/[^/]+)?)/infer/?$")
"""An Open Inference Protocol v2 inference path; the group is the model's metadata path."""
_PROBABILITY_OUTPUTS = ("probabilities", "predict_proba")

_MAX_ANSWER_BYTES = 64 * 1024 * 1024
"""Largest answer body read from an endpoint; a bigger one is refused (memory bound)."""


class HttpModel(FixedShape):
    """A classifier reached over HTTP(S).

    Args:
        url: the endpoint, ``http://`` or ``https://``.
        input_shape: shape of one input, without the batch axis.
        n_classes: number of classes; asked from the endpoint with one probe row when ``None``.
        timeout: seconds each request may take in total (deadline, not per read).
        batch_size: rows per request.
        headers: extra request headers (e.g. ``Authorization``); never logged.
    """

    def __init__(
        self,
        url: str,
        *,
        input_shape: tuple[int, ...],
        n_classes: int | None = None,
        timeout: float = 10.0,
        batch_size: int = 256,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise InputError(
                f"model endpoint must be an http:// or https:// URL; got scheme {parts.scheme!r}"
            )
        self.url = url
        self.timeout = timeout
        self.batch_size = batch_size
        self._headers = dict(headers or {})
        token = os.environ.get(TOKEN_ENV, "").strip()
        if token and not any(k.lower() == "authorization" for k in self._headers):
            self._headers["Authorization"] = f"Bearer {token}"
        self._input_shape = tuple(int(s) for s in input_shape)
        self.queries = 0
        """Rows sent so far (one query per row), for query-budget accounting."""
        oip = _OIP_PATH.match(parts.path)
        self.protocol = "oip" if oip else "json"
        """``oip`` (Open Inference Protocol v2) or ``json`` (plain), from the URL's path."""
        self._input_name = "input-0"
        self._datatype = "FP32"
        if oip:
            meta_url = urllib.parse.urlunsplit((parts.scheme, parts.netloc, oip["model"], "", ""))
            n_classes = self._read_metadata(meta_url, n_classes)
        self._n_classes = int(n_classes or 0)
        if n_classes is None:
            probe = self._post(np.zeros((1, *self._input_shape), dtype=np.float32))
            n_classes = int(np.asarray(probe).shape[1]) if np.asarray(probe).ndim == 2 else 0
            if n_classes < 2:
                raise EndpointError(f"{self._where()} answered a probe with no probability rows")
        self._n_classes = int(n_classes)

    def _where(self) -> str:
        return f"model endpoint {url_origin(self.url)}"

    def _request(self, url: str, body: bytes | None) -> HttpAnswer:
        headers = {"Accept": "application/json", **self._headers}
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            if body is None:
                answer = http_get(url, headers=headers, deadline_s=self.timeout, max_bytes=_MAX_ANSWER_BYTES)
            else:
                answer = http_post(
                    url, body, headers=headers, deadline_s=self.timeout, max_bytes=_MAX_ANSWER_BYTES
                )
        except HttpFailure as err:
            if err.kind == "timeout":
                raise EndpointError(f"{self._where()} timed out after {self.timeout:g} s") from err
            if err.kind == "too_large":
                raise EndpointError(f"{self._where()} answered more than {_MAX_ANSWER_BYTES} bytes") from err
            raise EndpointError(f"cannot reach {self._where()}: {err.detail}") from err
        if answer.status in (401, 403):
            hint = "" if "Authorization" in self._headers else f" (set {TOKEN_ENV} to an API key or token)"
            raise EndpointError(f"{self._where()} refused the credentials: HTTP {answer.status}{hint}")
        if answer.status == 413:
            raise _TooLarge(f"{self._where()} refused a request of {len(body or b'')} bytes as too large")
        if not 200 <= answer.status < 300:
            raise EndpointError(f"{self._where()} answered HTTP {answer.status} {answer.reason}")
        return answer

    def _json(self, answer: HttpAnswer) -> Any:
        try:
            return json.loads(answer.body)
        except ValueError as err:
            raise EndpointError(f"{self._where()} answered with something that is not JSON") from err

    def _read_metadata(self, meta_url: str, n_classes: int | None) -> int | None:
        """Input name and datatype, and the number of classes, from the OIP model metadata."""
        doc = self._json(self._request(meta_url, None))
        if not isinstance(doc, dict):
            raise EndpointError(f"{self._where()} answered model metadata that is not a JSON object")
        inputs = doc.get("inputs")
        if isinstance(inputs, list) and inputs and isinstance(inputs[0], dict):
            name, dtype = inputs[0].get("name"), inputs[0].get("datatype")
            if isinstance(name, str) and name:
                self._input_name = name[:256]
            if dtype in ("FP16", "FP32", "FP64"):
                self._datatype = str(dtype)
        if n_classes is not None:
            return n_classes
        params = doc.get("parameters")
        found = params.get("n_classes") if isinstance(params, dict) else None
        if isinstance(found, int) and not isinstance(found, bool) and found >= 2:
            return found
        for out in doc.get("outputs") or []:
            shape = out.get("shape") if isinstance(out, dict) else None
            if (
                out.get("name") in _PROBABILITY_OUTPUTS
                and isinstance(shape, list)
                and len(shape) == 2
                and isinstance(shape[1], int)
                and shape[1] >= 2
            ):
                return int(shape[1])
        return None  # probed with one row

    def _post(self, rows: np.ndarray) -> object:
        if self.protocol == "oip":
            return self._post_oip(rows)
        answer = self._request(self.url, json.dumps({"inputs": rows.tolist()}).encode())
        self.queries += len(rows)
        doc = self._json(answer)
        if isinstance(doc, dict):
            for key in ("probabilities", "predictions", "outputs"):
                if key in doc:
                    return doc[key]
            raise EndpointError(f"{self._where()} answered JSON without a 'probabilities' key")
        return doc

    def _post_oip(self, rows: np.ndarray) -> object:
        tensor = {
            "name": self._input_name,
            "shape": [len(rows), *self._input_shape],
            "datatype": self._datatype,
            "data": rows.reshape(-1).tolist(),
        }
        answer = self._request(self.url, json.dumps({"inputs": [tensor]}).encode())
        self.queries += len(rows)
        doc = self._json(answer)
        outputs = doc.get("outputs") if isinstance(doc, dict) else None
        if not isinstance(outputs, list):
            raise EndpointError(f"{self._where()} answered without an 'outputs' list")
        named = {o.get("name"): o for o in outputs if isinstance(o, dict)}
        n = len(rows)
        for name in _PROBABILITY_OUTPUTS:
            if name in named:
                return self._tensor(named[name], name, n, None)
        k = self._n_classes
        if k < 2 and ("top_k_classes" in named or "label" in named):
            raise EndpointError(
                f"{self._where()} shows only top-k classes or labels and does not say how many classes "
                "the model has; pass the number of classes"
            )
        if "top_k_classes" in named and "top_k_probabilities" in named:
            classes = self._tensor(named["top_k_classes"], "top_k_classes", n, None)
            shown = self._tensor(named["top_k_probabilities"], "top_k_probabilities", n, classes.shape[1])
            return _spread_top_k(classes, shown, k, self._where())
        if "label" in named:
            labels = self._tensor(named["label"], "label", n, None).reshape(n, -1)[:, 0]
            if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
                raise EndpointError(f"{self._where()} answered labels that are not class indices")
            if labels.size and (labels.min() < 0 or labels.max() >= k):
                raise EndpointError(f"{self._where()} answered labels outside 0..{k - 1}")
            return np.eye(k)[labels.astype(np.int64)]
        names = ", ".join(sorted(str(x) for x in named)[:8]) or "none"
        raise EndpointError(
            f"{self._where()} answered no probabilities, top-k or label output (outputs: {names})"
        )

    def _tensor(self, out: dict[str, Any], name: str, rows: int, width: int | None) -> np.ndarray:
        data, shape = out.get("data"), out.get("shape")
        try:
            arr = np.asarray(data, dtype=np.float64)
            dims = [int(d) for d in shape] if isinstance(shape, list) else list(arr.shape)
            arr = arr.reshape(dims) if math.prod(dims) == arr.size else arr
        except (TypeError, ValueError) as err:
            raise EndpointError(f"{self._where()} answered output {name!r} that is not numeric") from err
        if (
            arr.ndim == 0
            or arr.shape[0] != rows
            or (width is not None and arr.reshape(rows, -1).shape[1] != width)
        ):
            raise EndpointError(
                f"{self._where()} answered output {name!r} of shape {list(arr.shape)} for {rows} rows"
            )
        return arr if arr.ndim > 1 or name == "label" else arr.reshape(rows, 1)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities, one request per ``batch_size`` rows.

        Raises:
            InputError: wrong shape or NaN inputs.
            EndpointError: unreachable, timed out, HTTP error or malformed answer.
            ModelError: the answer is not probabilities.
        """
        arr = check_inputs(x, self._input_shape)
        parts = []
        start = 0
        while start < len(arr):
            chunk = arr[start : start + self.batch_size]
            try:
                out = self._post(chunk)
            except _TooLarge:
                if self.batch_size == 1:
                    raise
                self.batch_size = max(1, self.batch_size // 2)  # the server's body limit: smaller requests
                continue
            parts.append(check_probabilities(out, len(chunk), self._n_classes, source=self._where()))
            start += len(chunk)
        return np.concatenate(parts) if parts else np.zeros((0, self._n_classes))


class _TooLarge(EndpointError):
    """HTTP 413: the server's body limit; the adapter halves its batch and tries again."""


def _spread_top_k(classes: np.ndarray, shown: np.ndarray, k: int, where: str) -> np.ndarray:
    """Full probability rows from top-k answers: the unshown mass spread evenly over unshown classes."""
    idx = classes.astype(np.int64)
    if classes.size and (np.any(idx != classes) or idx.min() < 0 or idx.max() >= k):
        raise EndpointError(f"{where} answered top-k classes outside 0..{k - 1}")
    rows, top = idx.shape
    out = np.zeros((rows, k))
    np.put_along_axis(out, idx, np.clip(shown, 0.0, 1.0), axis=1)
    if top < k:
        mask = np.zeros((rows, k), dtype=bool)
        np.put_along_axis(mask, idx, True, axis=1)
        rest = np.clip(1.0 - out.sum(axis=1, keepdims=True), 0.0, 1.0) / (k - top)
        out = np.where(mask, out, rest)
    total = out.sum(axis=1, keepdims=True)
    return np.asarray(np.divide(out, total, out=np.full_like(out, 1.0 / k), where=total > 0))
