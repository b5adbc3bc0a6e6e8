"""``mlsecops serve`` from the command line: --dry-run with the hardening's utility cost, refusals in one
line with exit 2, and several workers serving one model."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from tests.integration.runtime.conftest import GUARD_POLICY, Guard, _env, start_guard, stop_guard

pytestmark = pytest.mark.timeout(300)


def _serve(guard: Guard, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlsecops.cli", "serve", *args],
        env=_env(guard.home),
        cwd=guard.tmp,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_dry_run_prints_what_would_be_served_and_the_utility_cost(guard: Guard) -> None:
    data = guard.tmp / "test.npz"
    np.savez(data, X=guard.X, y=guard.y)
    policy = guard.tmp / "dry.yaml"
    policy.write_text(GUARD_POLICY)
    r = _serve(guard, "digits@production", "--policy", str(policy), "--dry-run", "--test-data", str(data))
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["model"] == "digits" and doc["source"].startswith("registry:digits@")
    assert doc["follows"] == "digits@production"
    assert doc["outputs"] == {"mode": "top_k", "top_k": 3, "decimals": 4, "noise": None}
    cost = doc["utility_cost"]
    assert cost["rows"] == len(guard.y)
    assert cost["top1_agreement"] == 1.0 and cost["accuracy_after"] == cost["accuracy_before"] > 0.8
    assert cost["answer_bits_after"] < cost["answer_bits_before"]
    assert cost["information_removed_bits"] >= 0


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["digits@9"], "no version 9"),
        (["nosuch@production"], "no registered model"),
        (["digits@production", "--test-data", "x.npz"], "--dry-run"),
        (["missing.joblib"], "does not exist"),
        (["digits@production", "--host", "bad host"], "--host"),
    ],
)
def test_refusals_are_one_line_with_exit_2(guard: Guard, args: list[str], words: str) -> None:
    r = _serve(guard, *args, "--dry-run") if "--test-data" not in args else _serve(guard, *args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert words in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_two_workers_serve_the_model(guard: Guard) -> None:
    import httpx

    policy = guard.tmp / "workers.yaml"
    policy.write_text(GUARD_POLICY)
    log = guard.tmp / "workers.log"
    proc, url = start_guard(guard.home, ["digits@production", "--policy", str(policy), "--workers", "2"], log)
    try:
        with httpx.Client(base_url=url, timeout=10) as c:
            codes = [
                c.post("/v2/models/digits/infer", json=guard.body(), headers=guard.headers()).status_code
                for _ in range(20)
            ]
            assert codes == [200] * 20
            assert c.post("/v2/models/digits/infer", json=guard.body()).status_code == 401
    finally:
        stop_guard(proc)
    text = log.read_text()
    assert text.count("Started server process") >= 2
    for secret in guard.keys.values():
        assert secret not in text
