"""Coverage-guided fuzzing of the scanner, bounded for CI, and the replay of every crash ever found.

Each parser family's atheris harness (``tests/fuzz/fuzz_<family>.py``) runs a fixed number of inputs
(a few seconds) in a subprocess, so a crash, a hang or an out-of-memory input is reported here instead
of killing pytest.
Longer runs: ``benchmarks/fuzz/run.py --seconds N``. A crash found there or here is fixed in the scanner
and its input is kept in ``tests/fuzz/regressions/<family>/``, which ``test_regression_files`` replays.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests._deps import require
from tests.fuzz._contract import check_path
from tests.fuzz._harness import REGRESSIONS, SUMMARY
from tests.fuzz._seeds import FAMILIES, seeds

from mlsecops.supplychain.scanner import Verdict

FUZZ_DIR = Path(__file__).resolve().parents[2] / "fuzz"
SECONDS = int(os.environ.get("MLSECOPS_FUZZ_SECONDS", "90"))  # a backstop: the runs below end first
SEED = int(os.environ.get("MLSECOPS_FUZZ_SEED", "1"))
"""libFuzzer's seed: fixed, so a CI run replays a known exploration (0 draws one from the clock; the
long runs of benchmarks/fuzz explore afresh and feed what they find into tests/fuzz/regressions/)."""
RUNS = {
    "hdf5": 25_000,
    "onnx": 30_000,
    "pickle": 10_000,
    "protobuf": 25_000,
    "safetensors": 30_000,
    "tar": 2_000,
    "zip": 15_000,
}
"""Inputs per family: a few seconds' worth on a two-core machine (tar about 19 s, whole archives). A
count, not a time: a time bound explores further on a faster machine, and CI once found a crash that the
same seed had not reached here (``tests/fuzz/regressions/safetensors/dtype-is-a-list.safetensors``).
With the seed, the count and a fixed hash seed (``PYTHONHASHSEED``: set order reaches the coverage
feedback) every machine replays the same inputs."""


def _regression_files() -> list[Path]:
    return sorted(p for p in REGRESSIONS.rglob("*") if p.is_file())


def test_regression_corpus_is_not_empty() -> None:
    assert _regression_files(), "the regression corpus lost its files"


@pytest.mark.parametrize("path", _regression_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_regression_files(path: Path) -> None:
    """Every input that once crashed the scanner now gets a verdict, in time (``check_path`` raises)."""
    assert check_path(path) in set(Verdict)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_seed_corpus_keeps_the_contract_and_is_judged(family: str, tmp_path: Path) -> None:
    """The seeds are valid files: they keep the contract, planted payloads are found, clean ones pass."""
    verdicts = {}
    for name, data in seeds(family).items():
        (tmp_path / name).write_bytes(data)
        verdicts[name] = check_path(tmp_path / name)
    assert Verdict.ERROR not in verdicts.values(), verdicts
    flagged = {n for n, v in verdicts.items() if v is Verdict.MALICIOUS}
    planted = {n for n in verdicts if n.startswith(("payload", "lambda")) or "writefile" in n}
    assert planted <= flagged, verdicts
    clean = [
        n for n in verdicts if n.startswith(("p0_", "p4_", "torch_", "plain", "one", "add", "sb0", "frozen"))
    ]
    assert clean and all(verdicts[n] is Verdict.SAFE for n in clean), verdicts


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_fuzz_family_finds_no_crash(family: str, tmp_path: Path) -> None:
    require("atheris", "fuzz")  # skipped locally without it, a failure under CI
    crashes = tmp_path / "crashes"
    runs = int(os.environ.get("MLSECOPS_FUZZ_RUNS", str(RUNS[family])))
    proc = subprocess.run(
        [
            sys.executable,
            str(FUZZ_DIR / f"fuzz_{family}.py"),
            "--seconds",
            str(SECONDS),
            "--crashes",
            str(crashes),
            "--seed",
            str(SEED),
            "--runs",
            str(runs),
        ],
        capture_output=True,
        text=True,
        timeout=SECONDS + 90,
        check=False,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    found = sorted(p.name for p in crashes.iterdir()) if crashes.is_dir() else []
    lines = (proc.stderr or "").splitlines()
    tail = "\n".join([ln for ln in lines if ln.startswith("CRASH")] + lines[-8:])
    assert proc.returncode == 0 and not found, (
        f"{family} fuzzer: exit {proc.returncode}, crashing inputs {found} in {crashes}; fix the scanner "
        f"and keep each input in tests/fuzz/regressions/{family}/\n{tail}"
    )
    match = SUMMARY.search(proc.stdout)
    assert match, f"no summary from the {family} fuzzer\n{tail}"
    summary = json.loads(match.group(1))
    assert summary["executions"] >= runs and summary["crashes"] == 0, summary  # not cut short by time
