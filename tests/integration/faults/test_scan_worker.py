"""SIGKILL of a scanning worker mid-scan: the scan completes and reports every file, none dropped."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest
from tests.integration.faults import _faulty

from mlsecops.core.executor import ExecutorError, get_executor
from mlsecops.supplychain.scanner import _api, scan_paths

pytestmark = pytest.mark.timeout(180)


class _Evil:
    def __reduce__(self) -> tuple[Any, ...]:
        return (eval, ("1+1",))


def _corpus(root: Path) -> dict[str, str]:
    """Real model files and one malicious pickle; the verdict each must get."""
    import warnings

    import joblib
    from sklearn.datasets import load_wine
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    X, y = load_wine(return_X_y=True)
    root.mkdir()
    expected: dict[str, str] = {}
    warnings.simplefilter("ignore")  # the short fit does not converge; the model is only scanned
    for i, depth in enumerate((2, 3, 4, 5)):
        path = root / f"tree{i}.joblib"
        joblib.dump(DecisionTreeClassifier(max_depth=depth, random_state=0).fit(X, y), path)
        expected[path.name] = "safe"
    lr = root / f"{_faulty.TRIGGER}-lr.joblib"  # the worker scanning this one is killed (once)
    joblib.dump(LogisticRegression(max_iter=50).fit(X[:, :4], y), lr)
    expected[lr.name] = "safe"
    evil = root / "evil.pkl"
    evil.write_bytes(pickle.dumps(_Evil()))
    expected[evil.name] = "malicious"
    return expected


def _check(results: list[Any], root: Path, expected: dict[str, str]) -> None:
    assert sorted(Path(r.path).name for r in results) == sorted(expected)  # every file, once
    for r in results:
        assert r.verdict == expected[Path(r.path).name], (r.path, r.verdict, r.hits)
    assert (root.parent / f".died-{root.name}").exists()  # a worker was killed


def test_a_killed_pool_worker_costs_a_retry_not_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = _corpus(tmp_path / "models")
    monkeypatch.setattr(_api, "_scan_one", _faulty.die_once_scan_one)
    seen: list[str] = []
    results = scan_paths([tmp_path / "models"], workers=2, progress=lambda r: seen.append(r.path))
    _check(results, tmp_path / "models", expected)
    assert sorted(seen) == sorted(r.path for r in results)  # progress once per file, none twice


def test_a_killed_executor_worker_costs_a_retry_not_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = _corpus(tmp_path / "models")
    monkeypatch.setattr(_api, "_scan_chunk", _faulty.die_once_scan_chunk)
    results = scan_paths([tmp_path / "models"], executor=get_executor("process", workers=2))
    _check(results, tmp_path / "models", expected)


def test_a_worker_killed_every_time_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _corpus(tmp_path / "models")
    monkeypatch.setattr(_api, "_scan_one", _faulty.die_always_scan_one)
    with pytest.raises(ExecutorError, match="a worker process died twice"):
        scan_paths([tmp_path / "models"], workers=2)
