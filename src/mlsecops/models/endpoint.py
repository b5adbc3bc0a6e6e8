"""Black-box adapter for a model behind an HTTP endpoint: JSON in, probabilities out.

Request: ``POST url`` with ``{"inputs": [[...], ...]}``. Answer: ``{"probabilities": [[...], ...]}``
(``predictions`` or a bare list of rows are accepted too). ``timeout`` is a deadline for the whole
request (connect, send, headers, body), not per socket read, so a server trickling bytes cannot hold a
caller; answers over 64 MiB are refused (``mlsecops.core.http_post``). Redirects are not followed.
An unreachable host, a time-out, an HTTP error or a malformed answer raise ``EndpointError`` with
one clear line.
Header values (API tokens) are sent but never put in messages or logs. Only the standard library is
used, so this adapter has no extra dependency.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping

import numpy as np

from mlsecops.core import HttpFailure, http_post, url_origin
from mlsecops.core.errors import InputError
from mlsecops.models.interface import EndpointError, check_inputs, check_probabilities

__all__ = ["HttpModel"]

_MAX_ANSWER_BYTES = 64 * 1024 * 1024
"""Largest answer body read from an endpoint; a bigger one is refused (memory bound)."""


class HttpModel:
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
        scheme = urllib.parse.urlsplit(url).scheme
        if scheme not in ("http", "https"):
            raise InputError(f"model endpoint must be an http:// or https:// URL; got scheme {scheme!r}")
        self.url = url
        self.timeout = timeout
        self.batch_size = batch_size
        self._headers = dict(headers or {})
        self._input_shape = tuple(int(s) for s in input_shape)
        self.queries = 0
        """Rows sent so far (one query per row), for query-budget accounting."""
        if n_classes is None:
            probe = self._post(np.zeros((1, *self._input_shape), dtype=np.float32))
            n_classes = int(np.asarray(probe).shape[1]) if np.asarray(probe).ndim == 2 else 0
            if n_classes < 2:
                raise EndpointError(f"{self._where()} answered a probe with no probability rows")
        self._n_classes = int(n_classes)

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return self._n_classes

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input, without the batch axis."""
        return self._input_shape

    def _where(self) -> str:
        return f"model endpoint {url_origin(self.url)}"

    def _post(self, rows: np.ndarray) -> object:
        body = json.dumps({"inputs": rows.tolist()}).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json", **self._headers}
        try:
            answer = http_post(
                self.url, body, headers=headers, deadline_s=self.timeout, max_bytes=_MAX_ANSWER_BYTES
            )
        except HttpFailure as err:
            if err.kind == "timeout":
                raise EndpointError(f"{self._where()} timed out after {self.timeout:g} s") from err
            if err.kind == "too_large":
                raise EndpointError(f"{self._where()} answered more than {_MAX_ANSWER_BYTES} bytes") from err
            raise EndpointError(f"cannot reach {self._where()}: {err.detail}") from err
        if not 200 <= answer.status < 300:
            raise EndpointError(f"{self._where()} answered HTTP {answer.status} {answer.reason}")
        raw = answer.body
        self.queries += len(rows)
        try:
            doc = json.loads(raw)
        except ValueError as err:
            raise EndpointError(f"{self._where()} answered with something that is not JSON") from err
        if isinstance(doc, dict):
            for key in ("probabilities", "predictions", "outputs"):
                if key in doc:
                    return doc[key]
            raise EndpointError(f"{self._where()} answered JSON without a 'probabilities' key")
        return doc

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities, one request per ``batch_size`` rows.

        Raises:
            InputError: wrong shape or NaN inputs.
            EndpointError: unreachable, timed out, HTTP error or malformed answer.
            ModelError: the answer is not probabilities.
        """
        arr = check_inputs(x, self._input_shape)
        parts = []
        for start in range(0, len(arr), self.batch_size):
            chunk = arr[start : start + self.batch_size]
            out = self._post(chunk)
            parts.append(check_probabilities(out, len(chunk), self._n_classes, source=self._where()))
        return np.concatenate(parts) if parts else np.zeros((0, self._n_classes))
