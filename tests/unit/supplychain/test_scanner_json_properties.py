"""Every consumer of decoded JSON in the scanner takes any JSON value where it expects a string or a number.

A CI fuzz run found a safetensors header whose ``dtype`` was a list: ``dtype in {...}`` raised
``TypeError: unhashable type``. The class is any JSON value of an unexpected type in any position a
parser reads, so these properties draw JSON documents whose keys are the scanner's own vocabulary (every
short string literal in its source) and whose values are any JSON, and hand them to each JSON consumer.
"""

from __future__ import annotations

import ast
import json
import struct
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.fuzz._contract import check_bytes

from mlsecops.supplychain.scanner import Verdict
from mlsecops.supplychain.scanner._keras import scan_keras_config
from mlsecops.supplychain.scanner._remote_code import scan_config_code
from mlsecops.supplychain.scanner._tf_savedmodel import judge_keras_json
from mlsecops.supplychain.scanner._torch_export import ExportPlan, plan_payloads, scan_export_program

_SCANNER = Path(__file__).resolve().parents[3] / "src" / "mlsecops" / "supplychain" / "scanner"


def _vocabulary() -> list[str]:
    words: set[str] = set()
    for path in _SCANNER.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            value = node.value if isinstance(node, ast.Constant) else None
            if isinstance(value, str) and 0 < len(value) <= 40 and "\n" not in value:
                words.add(value)
    return sorted(words)


_WORDS = _vocabulary()
_KEYS = st.one_of(st.sampled_from(_WORDS), st.text(max_size=8))
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(_WORDS),
    st.text(max_size=12),
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(_KEYS, inner, max_size=6)),
    max_leaves=40,
)
_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _report(hits: list[Any]) -> Any:
    return hits.append


@_SETTINGS
@given(_JSON)
def test_keras_config_walker_takes_any_json(doc: Any) -> None:
    hits: list[Any] = []
    scan_keras_config(doc, entry="config.json", report=_report(hits))


@_SETTINGS
@given(_JSON)
def test_keras_saved_model_metadata_takes_any_json(doc: Any) -> None:
    hits: list[Any] = []
    judge_keras_json(json.dumps(doc), entry="saved_model.pb", report=_report(hits))


@_SETTINGS
@given(_JSON)
def test_remote_code_and_chat_templates_take_any_json(doc: Any) -> None:
    hits: list[Any] = []
    scan_config_code(doc, entry="config.json", report=_report(hits), has_file=lambda _f: False)
    scan_config_code(doc, entry="config.json", report=_report(hits), has_file=None)


@_SETTINGS
@given(_JSON)
def test_torch_export_program_walker_takes_any_json(doc: Any) -> None:
    hits: list[Any] = []
    scan_export_program(doc, entry="archive/models/model.json", report=_report(hits))


@_SETTINGS
@given(_JSON)
def test_torch_export_payload_plan_takes_any_json(doc: Any) -> None:
    plan = ExportPlan()
    plan_payloads(doc, "archive/data/weights_config.json", {"archive/data/weights/w0"}, plan)


_TENSOR = st.fixed_dictionaries(
    {},
    optional={
        "dtype": st.one_of(st.sampled_from(["F32", "F16", "I64", "BOOL", "F4"]), _JSON),
        "shape": st.one_of(st.lists(st.integers(min_value=0, max_value=2**64), max_size=4), _JSON),
        "data_offsets": st.one_of(st.lists(st.integers(min_value=0, max_value=2**64), max_size=3), _JSON),
    },
)
_HEADER = st.dictionaries(
    st.one_of(st.just("__metadata__"), st.text(max_size=6)), st.one_of(_TENSOR, _JSON), max_size=5
)


@_SETTINGS
@given(_HEADER, st.binary(max_size=64))
def test_safetensors_header_of_any_json_gets_a_verdict(header: dict[str, Any], data: bytes) -> None:
    raw = json.dumps(header).encode()
    verdict = check_bytes(struct.pack("<Q", len(raw)) + raw + data)
    assert verdict in set(Verdict)


@_SETTINGS
@given(_JSON)
def test_json_document_of_any_shape_gets_a_verdict(doc: Any) -> None:
    assert check_bytes(json.dumps(doc).encode()) in set(Verdict)


def test_the_ci_fuzz_crash_is_judged() -> None:
    """The input CI's safetensors fuzzer found: a list where the dtype string belongs."""
    raw = json.dumps({"w": {"dtype": ["F32"], "shape": [1], "data_offsets": [0, 4]}}).encode()
    assert check_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * 4) is not (Verdict.SAFE)
