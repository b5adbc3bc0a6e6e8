"""KServe Open Inference Protocol v2 (REST): request and response models, tensor decoding and encoding.

A request carries ``inputs`` (tensors with ``name``, ``shape``, ``datatype`` and ``data``, flat in
row-major order or nested), optional ``parameters`` and the ``outputs`` the caller wants back. Decoding
is strict: the datatype must be one of the protocol's, the values must be of that type (no string
parsed as a number, no float truncated into an integer tensor, no integer out of the type's range), and
the product of the shape must equal the number of values. Every refusal is an :class:`InvalidInput`
naming the field (``inputs[0].shape``), never a numpy error text.

>>> req = InferenceRequest.model_validate({"inputs": [
...     {"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [0.5, 1.0]}]})
>>> decode_tensor(req.inputs[0], "inputs[0]").shape
(1, 2)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from mlsecops.runtime.errors import InvalidInput

__all__ = [
    "DATATYPES",
    "MAX_DIMS",
    "MAX_INPUTS",
    "MAX_NAME",
    "Datatype",
    "FeedbackRequest",
    "FeedbackResponse",
    "InferenceRequest",
    "InferenceResponse",
    "MetadataTensor",
    "ModelMetadata",
    "RequestInput",
    "RequestOutput",
    "ResponseOutput",
    "ServerMetadata",
    "decode_tensor",
    "encode_tensor",
]

Datatype = Literal[
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
    "BYTES",
]
DATATYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(object),
}
"""Protocol datatype -> numpy dtype of the decoded array (BYTES decodes to an array of ``str``)."""

MAX_DIMS = 8
"""Most dimensions a tensor may declare: no served model takes more, and a long shape list is only work."""
MAX_INPUTS = 16
"""Most tensors in ``inputs`` or ``outputs``: the body size limit bounds the data, this the bookkeeping."""
MAX_NAME = 128
"""Longest tensor, model or parameter name echoed back in errors and responses."""

_Name = Field(min_length=1, max_length=MAX_NAME)


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RequestInput(_Wire):
    """One input tensor of an inference request."""

    name: str = _Name
    shape: list[int] = Field(max_length=MAX_DIMS)
    datatype: Datatype
    parameters: dict[str, Any] | None = None
    data: list[Any]


class RequestOutput(_Wire):
    """An output the caller asks for by name."""

    name: str = _Name
    parameters: dict[str, Any] | None = None


class InferenceRequest(_Wire):
    """``POST /v2/models/{name}[/versions/{v}]/infer`` body."""

    id: str | None = Field(default=None, max_length=MAX_NAME)
    parameters: dict[str, Any] | None = None
    inputs: list[RequestInput] = Field(min_length=1, max_length=MAX_INPUTS)
    outputs: list[RequestOutput] | None = Field(default=None, max_length=MAX_INPUTS)


class FeedbackRequest(_Wire):
    """``POST /v2/models/{name}/feedback`` body: served rows and their true classes, once known."""

    id: str | None = Field(default=None, max_length=MAX_NAME)
    inputs: list[RequestInput] = Field(min_length=1, max_length=1)
    labels: list[int] = Field(min_length=1)
    """The true class index (``0 .. n_classes - 1``, the model's output order) of each row."""


class FeedbackResponse(BaseModel):
    """What the guard took from a feedback request."""

    model_name: str
    model_version: str
    rows: int
    id: str | None = None


class ResponseOutput(BaseModel):
    """One output tensor of an inference response."""

    name: str
    shape: list[int]
    datatype: Datatype
    parameters: dict[str, Any] | None = None
    data: list[Any]


class InferenceResponse(BaseModel):
    """The inference response."""

    model_name: str
    model_version: str | None = None
    id: str | None = None
    parameters: dict[str, Any] | None = None
    outputs: list[ResponseOutput]


class MetadataTensor(BaseModel):
    """A tensor in model metadata; ``-1`` marks a variable dimension (the batch)."""

    name: str
    datatype: Datatype
    shape: list[int]


class ModelMetadata(BaseModel):
    """``GET /v2/models/{name}[/versions/{v}]``."""

    name: str
    versions: list[str] = Field(default_factory=list)
    platform: str
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]
    parameters: dict[str, Any] | None = None
    """Extra facts (``n_classes``: a client reading only top-k or labels still knows the width)."""


class ServerMetadata(BaseModel):
    """``GET /v2``."""

    name: str
    version: str
    extensions: list[str] = Field(default_factory=list)


def _kind_ok(kind: str, datatype: str) -> bool:
    """Whether numpy's inferred kind of the JSON values fits the declared datatype."""
    if datatype == "BOOL":
        return kind == "b"
    if datatype.startswith(("INT", "UINT")):
        return kind in "iu"
    if datatype.startswith("FP"):
        return kind in "iuf"  # JSON writes 1.0 as 1: integers are valid floating-point values
    return kind == "U"  # BYTES: strings


def decode_tensor(tensor: RequestInput, field: str) -> np.ndarray:
    """The tensor's data as a numpy array of its declared shape and datatype.

    Args:
        tensor: a validated request input.
        field: where it sits in the request (``inputs[0]``), for error messages.

    Raises:
        InvalidInput: a negative dimension, values that are not of the datatype (strings in a numeric
            tensor, fractions or out-of-range values in an integer one, NaN written as a string...),
            ragged nesting, or a shape whose product is not the number of values.
    """
    for i, dim in enumerate(tensor.shape):
        if dim < 0:
            raise InvalidInput(
                f"dimension {i} is {dim}; a request's shape must be concrete", field=f"{field}.shape"
            )
    want = math.prod(tensor.shape)
    try:
        raw = np.array(tensor.data)
    except (ValueError, TypeError, OverflowError):
        raise InvalidInput(
            "data is ragged or mixes types; give a flat row-major list or evenly nested lists",
            field=f"{field}.data",
        ) from None
    if raw.size != want:
        raise InvalidInput(
            f"shape {tensor.shape} holds {want} values but data has {raw.size}", field=f"{field}.shape"
        )
    datatype = tensor.datatype
    if raw.size and not _kind_ok(raw.dtype.kind, datatype):
        what = {"b": "booleans", "i": "integers", "u": "integers", "f": "fractional numbers", "U": "strings"}
        raise InvalidInput(
            f"datatype {datatype} does not take {what.get(raw.dtype.kind, 'mixed values')}",
            field=f"{field}.data",
        )
    target = DATATYPES[datatype]
    if datatype == "BYTES":
        return raw.astype(object).reshape(tensor.shape)
    if raw.dtype.kind in "iu" and target.kind in "iu":
        info = np.iinfo(target)
        if raw.size and (int(raw.min()) < info.min or int(raw.max()) > info.max):
            raise InvalidInput(
                f"values outside the range of {datatype} [{info.min}, {info.max}]", field=f"{field}.data"
            )
    if raw.dtype == target:
        out = raw
    else:
        with np.errstate(over="ignore", invalid="ignore"):
            out = raw.astype(target)
        # narrowing floats (FP64 -> FP32/FP16) overflows to infinity; a value that was finite must stay so
        overflowed = target.kind == "f" and raw.dtype.kind == "f" and raw.size and not np.isfinite(out).all()
        if overflowed and np.isfinite(raw[~np.isfinite(out)]).any():
            raise InvalidInput(f"values overflow {datatype}", field=f"{field}.data")
    return out.reshape(tensor.shape)


_DATATYPE_OF_KIND = {"b": "BOOL", "f": "FP64", "i": "INT64", "u": "UINT64"}


def encode_tensor(
    name: str, array: np.ndarray, *, datatype: str | None = None, parameters: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """An output tensor as a JSON-ready dict (``data`` flat, row-major).

    Args:
        name: the tensor's name.
        array: its values.
        datatype: the protocol datatype; by default FP64, INT64, UINT64 or BOOL from the array's kind.
        parameters: optional tensor parameters.
    """
    kind = array.dtype.kind
    dt = datatype or _DATATYPE_OF_KIND.get(kind, "BYTES")
    target = DATATYPES[dt]
    flat = array.reshape(-1)
    if dt != "BYTES" and flat.dtype != target:
        flat = flat.astype(target)
    out: dict[str, Any] = {
        "name": name,
        "shape": [int(s) for s in array.shape],
        "datatype": dt,
        "data": flat.tolist() if dt != "BYTES" else [str(v) for v in flat],
    }
    if parameters:
        out["parameters"] = dict(parameters)
    return out
