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

import contextlib
import signal
import time
from pathlib import Path
from types import FrameType

import pytest

from mlsecops.core import InputError, Report, Target
from mlsecops.core.checks import CheckSpec, all_checks, unavailable_checks

CALL_LIMIT_S = 120
"""Time limit for one call of a check on a contract case (a hang fails the test)."""


def _specs() -> list[CheckSpec]:
    return all_checks()


def _call(spec: CheckSpec, target: Target) -> Report:
    # A thread cannot be stopped, and a pool's exit waits for a hung call, so the limit is an alarm
    # signal in this (the main) thread: the hung call is interrupted where it stands.
    def _expired(signum: int, frame: FrameType | None) -> None:
        raise _CallTimeout(f"{spec.name} did not finish within {CALL_LIMIT_S}s")

    # pytest-timeout may hold the same timer: keep what it had left and give it back afterwards.
    outer_left, _ = signal.getitimer(signal.ITIMER_REAL)
    started = time.monotonic()
    previous = signal.signal(signal.SIGALRM, _expired)
    signal.setitimer(signal.ITIMER_REAL, CALL_LIMIT_S)
    try:
        return spec.create().run(target)
    except _CallTimeout as err:
        pytest.fail(str(err), pytrace=False)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_left:
            signal.setitimer(signal.ITIMER_REAL, max(outer_left - (time.monotonic() - started), 0.001))


class _CallTimeout(BaseException):
    """Raised by the alarm; a BaseException, so a check's own ``except Exception`` cannot swallow it."""


def _comparable(report: Report) -> tuple[object, ...]:
    return (report.findings, report.metrics, report.verdict, report.data, report.subject)


def test_catalogue_is_not_empty() -> None:
    assert len(_specs()) >= 2


def test_every_check_module_loads() -> None:
    assert unavailable_checks() == {}


_LIGHT = """
import importlib.abc, json, sys
OPTIONAL = {"torch", "onnxruntime", "onnx", "opacus", "ray", "psycopg", "pyarrow", "blake3", "lz4",
            "cyclonedx", "model_signing"}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in OPTIONAL:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Block())
from mlsecops.core.checks import all_checks, unavailable_checks
print(json.dumps([[s.name for s in all_checks()], unavailable_checks()]))
"""


def test_catalogue_is_whole_without_optional_extras() -> None:
    # The light install has no torch, onnxruntime, ...: every check must still register (their
    # heavy imports happen inside run), so `mlsecops checks` and pipelines see the same catalogue.
    import json
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _LIGHT], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    names, unavailable = json.loads(done.stdout.splitlines()[-1])
    assert unavailable == {}
    assert names == [s.name for s in _specs()]


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


def test_call_limit_interrupts_a_hung_check(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    class _Hangs:
        def run(self, target: Target) -> Report:
            with contextlib.suppress(Exception):  # a check that swallows errors must still stop
                time.sleep(30)
            raise AssertionError("not interrupted")

    monkeypatch.setitem(globals(), "CALL_LIMIT_S", 1)
    spec = SimpleNamespace(name="test.hangs", create=_Hangs)
    started = time.monotonic()
    with pytest.raises(pytest.fail.Exception, match="did not finish within 1s"):
        _call(spec, Target())  # type: ignore[arg-type]  # a stand-in spec with create() only
    assert time.monotonic() - started < 10
