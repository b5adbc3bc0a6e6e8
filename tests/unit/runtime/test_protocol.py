"""Open Inference Protocol decoding: strict shapes and datatypes, errors that name the field."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from mlsecops.runtime.errors import InvalidInput
from mlsecops.runtime.protocol import InferenceRequest, decode_tensor, encode_tensor


def _tensor(data: Any, shape: list[int], datatype: str = "FP32") -> Any:
    req = InferenceRequest.model_validate(
        {"inputs": [{"name": "x", "shape": shape, "datatype": datatype, "data": data}]}
    )
    return req.inputs[0]


@pytest.mark.parametrize(
    ("data", "shape", "datatype", "dtype"),
    [
        ([0.5, 1.0, 2.0, 3.0], [2, 2], "FP32", np.float32),
        ([[0.5, 1.0], [2.0, 3.0]], [2, 2], "FP64", np.float64),
        ([1, 2, 3], [1, 3], "FP16", np.float16),  # JSON writes 1.0 as 1
        ([1, -2, 3], [3], "INT8", np.int8),
        ([255, 0], [2], "UINT8", np.uint8),
        ([2**63], [1], "UINT64", np.uint64),
        ([True, False], [1, 2], "BOOL", np.bool_),
        (["a", "b"], [2], "BYTES", object),
    ],
)
def test_decodes_every_datatype_to_its_shape(data: Any, shape: list[int], datatype: str, dtype: Any) -> None:
    arr = decode_tensor(_tensor(data, shape, datatype), "inputs[0]")
    assert arr.shape == tuple(shape)
    assert arr.dtype == np.dtype(dtype)


@pytest.mark.parametrize(
    ("data", "shape", "datatype", "field", "words"),
    [
        ([1.0, 2.0, 3.0], [2, 2], "FP32", "inputs[0].shape", "holds 4 values but data has 3"),
        ([1.0] * 4, [2, -2], "FP32", "inputs[0].shape", "concrete"),
        (["1.5"], [1], "FP32", "inputs[0].data", "strings"),
        ([1.5], [1], "INT64", "inputs[0].data", "fractional"),
        ([300], [1], "INT8", "inputs[0].data", "range"),
        ([-1], [1], "UINT32", "inputs[0].data", "range"),
        ([1, 0], [2], "BOOL", "inputs[0].data", "integers"),
        ([[1.0, 2.0], [3.0]], [2, 2], "FP32", "inputs[0].data", "ragged"),
        ([{"a": 1}], [1], "FP32", "inputs[0].data", "mixed"),
        ([None], [1], "FP64", "inputs[0].data", "mixed"),
        ([2**70], [1], "INT64", "inputs[0].data", "mixed"),
        ([1e300], [1], "FP16", "inputs[0].data", "overflow"),
    ],
)
def test_refusals_name_the_field(data: Any, shape: list[int], datatype: str, field: str, words: str) -> None:
    with pytest.raises(InvalidInput) as err:
        decode_tensor(_tensor(data, shape, datatype), "inputs[0]")
    assert err.value.field == field
    assert words in err.value.message
    assert err.value.status == 422


@pytest.mark.parametrize(
    "body",
    [
        {"inputs": []},
        {"inputs": [{"name": "x", "shape": [1], "datatype": "FP128", "data": [1]}]},
        {"inputs": [{"name": "x", "shape": [1] * 9, "datatype": "FP32", "data": [1]}]},
        {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1], "extra": 1}]},
        {"inputs": [{"name": "", "shape": [1], "datatype": "FP32", "data": [1]}]},
        {"nope": 1},
    ],
)
def test_protocol_shape_is_enforced(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        InferenceRequest.model_validate(body)


def test_encode_is_flat_row_major_with_datatype() -> None:
    out = encode_tensor("probabilities", np.array([[0.25, 0.75], [1.0, 0.0]]))
    assert out == {
        "name": "probabilities",
        "shape": [2, 2],
        "datatype": "FP64",
        "data": [0.25, 0.75, 1.0, 0.0],
    }
    label = encode_tensor("label", np.array([1, 0], dtype=np.int32), datatype="INT64")
    assert label["datatype"] == "INT64" and label["data"] == [1, 0]


def test_zero_rows_decode() -> None:
    assert decode_tensor(_tensor([], [0, 4]), "inputs[0]").shape == (0, 4)
