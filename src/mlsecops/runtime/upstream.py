"""``mlsecops serve NAME --upstream URL``: the guard in front of an existing Open Inference Protocol server.

Requests pass the same controls as a locally served model (authentication, grants, rate limits and
budgets, input validation against the upstream's declared input schema), are forwarded to
``URL/v2/models/NAME/infer`` asking for the class probabilities, and the answer is hardened like a
local model's. Only the configured URL is ever contacted: the path is built from the served model's
name (validated), redirects are not followed, proxy settings from the environment are ignored.
Timeouts are bounded, and an answer over :data:`MAX_RESPONSE_BYTES` is refused while it streams.

At start the upstream's model metadata (``GET /v2/models/NAME``) gives the input tensor's name, shape
and datatype; one probe request with a row of zeros tells the number of classes and which output holds
the probabilities (``predict_proba`` as MLServer and KServe's scikit-learn runtimes name it, else the
first floating-point ``[n, k]`` output). An upstream that answers with no probabilities is refused.

Errors: the upstream unreachable or timing out is 503; its 4xx on inputs the guard accepted is 422
with a clipped reason; its 5xx or an answer that is not probabilities is 500 ``model_failed``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np

from mlsecops.core.errors import InputError
from mlsecops.models.interface import ModelError, check_probabilities
from mlsecops.runtime.errors import InvalidInput, ModelFailed, Unavailable
from mlsecops.runtime.protocol import DATATYPES, InferenceRequest
from mlsecops.runtime.serving import ServedModel

__all__ = ["CONNECT_TIMEOUT_S", "MAX_RESPONSE_BYTES", "UpstreamModel"]

MAX_RESPONSE_BYTES = 16 << 20
"""Largest upstream answer read; a class-probability answer is kilobytes, more is a fault or an attack."""
CONNECT_TIMEOUT_S = 5.0
"""Connecting to the upstream (loopback or a pod beside the guard) takes milliseconds."""
MAX_CONNECTIONS = 128
"""Connections to the upstream kept open at most (bounds sockets, not throughput)."""
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_PROBA_NAMES = ("predict_proba", "probabilities", "probability", "proba", "output_probability")


@dataclass(frozen=True)
class _Shape:
    """The adapter-shaped description of an upstream model (it is never called directly)."""

    input_shape: tuple[int, ...]
    n_classes: int

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        raise ModelError("an upstream model answers through UpstreamModel.predict_proba")


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"--upstream must be an http(s)://host:port URL; got {url[:100]!r}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise InputError("--upstream must not carry credentials, a query or a fragment")
    return url.rstrip("/")


def _clip(text: str, n: int = 200) -> str:
    return " ".join(text.split())[:n]


class UpstreamModel:
    """Forwards validated rows to an Open Inference Protocol server and returns its probabilities."""

    def __init__(
        self,
        base: str,
        served: ServedModel,
        *,
        input_name: str,
        input_datatype: str,
        proba_output: str | None,
        timeout: float,
    ) -> None:
        self.base = base
        self.served = served
        self.input_name = input_name
        self.input_datatype = input_datatype
        self.proba_output = proba_output
        self.url = f"{base}/v2/models/{served.name}/infer"
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=CONNECT_TIMEOUT_S),
            limits=httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS),
            follow_redirects=False,
            trust_env=False,
        )

    @classmethod
    def connect(cls, url: str, name: str, *, timeout: float) -> UpstreamModel:
        """Read the upstream model's metadata, probe it once, and return the forwarder.

        Raises:
            InputError: a bad URL or model name, an unreachable upstream, metadata without an input
                tensor, or an upstream that answers with no class probabilities.
        """
        base = _check_url(url)
        if not _NAME.match(name):
            raise InputError(
                f"upstream model name {name[:100]!r} must be 1-100 letters, digits, '.', '_' or '-'"
            )
        with httpx.Client(
            timeout=httpx.Timeout(timeout, connect=CONNECT_TIMEOUT_S), follow_redirects=False, trust_env=False
        ) as client:
            meta = _get_json(
                client, "GET", f"{base}/v2/models/{name}", None, f"the upstream's metadata of {name}"
            )
            inputs = meta.get("inputs") if isinstance(meta, dict) else None
            if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
                raise InputError(
                    f"the upstream's metadata of {name} must declare exactly one input tensor (name, datatype, shape)"
                )
            tensor = inputs[0]
            shape = tensor.get("shape")
            datatype = str(tensor.get("datatype", "FP32"))
            if (
                not isinstance(shape, list)
                or len(shape) < 2
                or not all(isinstance(d, int) and d > 0 for d in shape[1:])
                or datatype not in DATATYPES
                or datatype in ("BYTES", "BOOL")
            ):
                raise InputError(
                    f"the upstream's input tensor of {name} must be numeric with shape [-1, d1, ...]; "
                    f"got {str(shape)[:60]} {datatype[:10]}"
                )
            row_shape = tuple(int(d) for d in shape[1:])
            input_name = str(tensor.get("name", "input-0"))[:128]
            proba_output, n_classes = _probe(client, base, name, input_name, datatype, row_shape)
        versions = meta.get("versions") if isinstance(meta, dict) else None
        version = str(versions[0])[:32] if isinstance(versions, list) and versions else "upstream"
        served = ServedModel(
            name=name,
            version=version,
            adapter=_Shape(row_shape, n_classes),
            digest="",
            source=f"upstream:{base}",
            platform=str(meta.get("platform") or "upstream")[:40],
        )
        return cls(
            base,
            served,
            input_name=input_name,
            input_datatype=datatype,
            proba_output=proba_output,
            timeout=timeout,
        )

    def _body(self, x: np.ndarray, req: InferenceRequest | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "inputs": [
                {
                    "name": self.input_name,
                    "shape": [int(x.shape[0]), *self.served.input_shape],
                    "datatype": self.input_datatype,
                    "data": x.astype(DATATYPES[self.input_datatype]).reshape(-1).tolist(),
                }
            ]
        }
        if self.proba_output is not None:
            body["outputs"] = [{"name": self.proba_output}]
        if req is not None and req.id is not None:
            body["id"] = req.id
        return body

    async def predict_proba(self, x: np.ndarray, req: InferenceRequest | None = None) -> np.ndarray:
        """Forward ``x`` (``(n, *input_shape)``, validated) and return the class probabilities.

        Raises:
            Unavailable: the upstream is unreachable or timed out.
            InvalidInput: it refused the inputs (4xx).
            ModelFailed: it failed (5xx), or answered with something that is not probabilities.
        """
        payload = json.dumps(self._body(x, req), separators=(",", ":")).encode()
        try:
            async with self._client.stream(
                "POST", self.url, content=payload, headers={"content-type": "application/json"}
            ) as r:
                declared = r.headers.get("content-length")
                if declared is not None and declared.isdigit() and int(declared) > MAX_RESPONSE_BYTES:
                    raise ModelFailed("the upstream's answer is over the size limit")
                chunks, total = [], 0
                async for chunk in r.aiter_bytes():
                    total += len(chunk)
                    if total > MAX_RESPONSE_BYTES:
                        raise ModelFailed("the upstream's answer is over the size limit")
                    chunks.append(chunk)
                status = r.status_code
        except httpx.TimeoutException:
            raise Unavailable("the upstream server did not answer in time") from None
        except httpx.HTTPError as err:
            raise Unavailable(f"the upstream server is unreachable ({type(err).__name__})") from None
        raw = b"".join(chunks)
        if 400 <= status < 500:
            raise InvalidInput(
                f"the upstream server refused the inputs ({status}): {_clip(_reason(raw))}", field="inputs[0]"
            )
        if status != 200:
            raise ModelFailed(f"the upstream server failed ({status})")
        try:
            doc = json.loads(raw)
            return _probabilities(doc, self.proba_output, int(x.shape[0]), self.served.n_classes)
        except (ValueError, ModelError) as err:
            raise ModelFailed(
                f"the upstream's answer is not class probabilities: {_clip(str(err), 120)}"
            ) from None

    async def aclose(self) -> None:
        """Close the connections to the upstream."""
        await self._client.aclose()


def _reason(raw: bytes) -> str:
    try:
        doc = json.loads(raw)
    except ValueError:
        return raw[:200].decode("utf-8", "replace")
    if isinstance(doc, dict):
        for key in ("error", "detail", "message"):
            if key in doc:
                return str(doc[key])
    return str(doc)


def _get_json(client: httpx.Client, method: str, url: str, body: Any, what: str) -> Any:
    try:
        with client.stream(method, url, json=body) as r:
            chunks, total = [], 0
            for chunk in r.iter_bytes():
                total += len(chunk)
                if total > MAX_RESPONSE_BYTES:
                    raise InputError(f"{what}: the answer is over {MAX_RESPONSE_BYTES} bytes")
                chunks.append(chunk)
            status = r.status_code
    except httpx.HTTPError as err:
        raise InputError(f"cannot read {what}: {type(err).__name__}: {_clip(str(err), 120)}") from None
    raw = b"".join(chunks)
    if status != 200:
        raise InputError(f"cannot read {what}: HTTP {status}: {_clip(_reason(raw))}")
    try:
        return json.loads(raw)
    except ValueError:
        raise InputError(f"{what} is not JSON") from None


def _probe(
    client: httpx.Client, base: str, name: str, input_name: str, datatype: str, row_shape: tuple[int, ...]
) -> tuple[str | None, int]:
    """Which output holds the probabilities, and how many classes (one request with a row of zeros)."""
    body: dict[str, Any] = {
        "inputs": [
            {
                "name": input_name,
                "shape": [1, *row_shape],
                "datatype": datatype,
                "data": [0] * math.prod(row_shape),
            }
        ]
    }
    url = f"{base}/v2/models/{name}/infer"
    for output in (*_PROBA_NAMES[:1], None):
        attempt = dict(body, outputs=[{"name": output}]) if output is not None else body
        try:
            doc = _get_json(client, "POST", url, attempt, f"a probe of {name}")
            proba = _probabilities(doc, output, 1, None)
        except (InputError, ModelError):
            continue
        chosen = output if output is not None else _proba_name(doc)
        return chosen, int(proba.shape[1])
    raise InputError(
        f"the upstream model {name} does not answer with class probabilities (asked for predict_proba and "
        "its default outputs); the guard needs them to harden outputs"
    )


def _proba_name(doc: Any) -> str | None:
    for out in doc.get("outputs", []) if isinstance(doc, dict) else []:
        if (
            isinstance(out, dict)
            and str(out.get("datatype", "")).startswith("FP")
            and len(out.get("shape", [])) == 2
        ):
            return str(out.get("name"))[:128]
    return None


def _probabilities(doc: Any, name: str | None, n: int, n_classes: int | None) -> np.ndarray:
    """The ``(n, k)`` probabilities in an inference response (by name, else the first FP ``[n, k]``)."""
    outputs = doc.get("outputs") if isinstance(doc, dict) else None
    if not isinstance(outputs, list):
        raise ModelError("the answer has no outputs")
    for out in outputs:
        if not isinstance(out, dict):
            continue
        if name is not None and out.get("name") != name:
            continue
        shape = out.get("shape")
        if (
            not str(out.get("datatype", "")).startswith("FP")
            or not isinstance(shape, list)
            or len(shape) != 2
        ):
            continue
        data = np.asarray(out.get("data"), dtype=np.float64).reshape(-1)
        if not all(isinstance(d, int) for d in shape) or data.size != shape[0] * shape[1] or shape[1] < 2:
            continue
        return check_probabilities(data.reshape(shape), n, n_classes, source="the upstream model")
    raise ModelError(f"the answer has no floating-point [n, k] output{f' named {name!r}' if name else ''}")
