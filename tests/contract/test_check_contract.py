"""The shared contract every registered check passes (as scikit-learn's estimators pass check_estimator).

For each check in the catalogue:
- it offers ``contract_cases(tmp_dir)`` with a valid and a corrupt target;
- on the valid target it returns a Report whose ``kind`` is its name and whose findings carry its name
  (or a dotted child of it);
- on the corrupt target it returns a Report with at least one finding, or raises ``InputError``: never
  another exception, never a hang (each call has a time limit);
- the same seed gives the same Report twice (findings, metrics, verdict, data).
"""

from __future__ import annotations

import concurrent.futures as cf
from pathlib import Path

import pytest

from mlsecops.core import InputError, Report, Target
from mlsecops.core.checks import CheckSpec, all_checks

CALL_LIMIT_S = 120


def _specs() -> list[CheckSpec]:
    return all_checks()


def _call(spec: CheckSpec, target: Target) -> Report:
    with cf.ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(lambda: spec.create().run(target))
        try:
            return future.result(timeout=CALL_LIMIT_S)
        except cf.TimeoutError:
            pytest.fail(f"{spec.name} did not finish within {CALL_LIMIT_S}s")


def _comparable(report: Report) -> tuple[object, ...]:
    return (report.findings, report.metrics, report.verdict, report.data, report.subject)


def test_catalogue_is_not_empty() -> None:
    assert len(_specs()) >= 2


@pytest.mark.parametrize("spec", _specs(), ids=lambda s: s.name)
def test_check_contract(spec: CheckSpec, tmp_path: Path) -> None:
    cases_fn = getattr(spec.factory, "contract_cases", None)
    assert callable(cases_fn), f"{spec.name} must offer contract_cases(tmp_dir) for the contract test"
    cases = cases_fn(tmp_path)

    first = _call(spec, cases.valid.model_copy(update={"seed": 0}))
    assert isinstance(first, Report)
    assert first.kind == spec.name
    for f in first.findings:
        assert f.check == spec.name or f.check.startswith(spec.name + "."), (
            f"{spec.name} produced a finding named {f.check!r}"
        )

    second = _call(spec, cases.valid.model_copy(update={"seed": 0}))
    assert _comparable(first) == _comparable(second), f"{spec.name} is not deterministic under a fixed seed"

    try:
        bad = _call(spec, cases.corrupt.model_copy(update={"seed": 0}))
    except InputError as err:
        assert err.diagnostics(), "an InputError needs a message"
    else:
        assert isinstance(bad, Report)
        assert bad.findings, f"{spec.name} returned a clean report for corrupt input (must fail closed)"
