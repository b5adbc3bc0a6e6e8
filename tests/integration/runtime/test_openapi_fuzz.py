"""Property-based fuzzing of the guard's OpenAPI document with schemathesis: every operation, random
and schema-shaped inputs, with and without credentials: never a 5xx, never an answer its own document
does not describe (status code, content type, body schema)."""

from __future__ import annotations

import zlib
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from tests._deps import require
from tests.integration.runtime.conftest import Guard

schemathesis = require("schemathesis", "test")
from schemathesis import checks as st_checks  # noqa: E402

pytestmark = pytest.mark.timeout(600)

MAX_EXAMPLES = 60
"""Examples per operation: enough to reach every refusal of the request path in a few seconds each."""


@pytest.fixture(scope="session")
def guard_schema(guard: Guard) -> Any:
    return schemathesis.openapi.from_url(f"{guard.url}/openapi.json")


CHECKS = [
    st_checks.not_a_server_error,
    st_checks.status_code_conformance,
    st_checks.content_type_conformance,
    st_checks.response_schema_conformance,
]


def _operations(schema: Any) -> list[Any]:
    ops = []
    for result in schema.get_all_operations():
        ops.append(result.ok())
    return ops


def test_every_operation_is_covered(guard_schema: Any) -> None:
    paths = {op.path for op in _operations(guard_schema)}
    assert {"/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer", "/metrics"} <= paths


def test_no_server_error_and_no_schema_violation(guard_schema: Any, guard: Guard) -> None:
    from hypothesis import given

    calls = 0
    seen: set[tuple[str, int]] = set()
    for op in _operations(guard_schema):

        @given(case=op.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            nonlocal calls
            # steer most cases to the served model and a real key, so the fuzzer gets past 404 and 401
            seed = zlib.crc32(repr((case.path_parameters, case.body)).encode())
            if case.path_parameters and seed % 3:
                case.path_parameters = {**case.path_parameters, "name": "digits"}
                if "version" in case.path_parameters and seed % 2:
                    case.path_parameters["version"] = "1"
            headers = guard.headers("fuzz") if seed % 5 else {}
            response = case.call_and_validate(base_url=guard.url, headers=headers, checks=CHECKS)
            seen.add((case.operation.path, response.status_code))
            calls += 1

        run()
    assert calls >= MAX_EXAMPLES
    # the fuzzer got through the controls, not only to the first refusal
    infer = {code for path, code in seen if path == "/v2/models/{name}/infer"}
    assert {401, 404, 422} <= infer, seen
