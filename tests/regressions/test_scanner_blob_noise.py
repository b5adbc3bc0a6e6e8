"""Bytes values that only start like a pickle (found by the scale benchmark: a float array whose raw
bytes began with PROTO 4 was reported "malformed or truncated pickle", 1 file in 20,000).

Such a value breaks before calling anything; loading the outer pickle never unpickles it, so it is data.
The twin: a nested pickle that calls something dangerous and then breaks is still malicious.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from mlsecops.supplychain.scanner import scan_file


def _array_starting_with(prefix: bytes, n: int = 300) -> np.ndarray:
    raw = bytearray(np.random.default_rng(1).standard_normal(n).tobytes())
    raw[: len(prefix)] = prefix
    return np.frombuffer(bytes(raw), dtype=np.float64)


@pytest.mark.parametrize("prefix", [b"\x80\x04\xc1", b"\x80\x02\xff\x00", b"\x80\x05\x95\xff\xff\xff\xff"])
def test_weights_whose_bytes_start_like_a_pickle_are_safe(tmp_path: Path, prefix: bytes) -> None:
    path = tmp_path / "weights.pkl"
    path.write_bytes(pickle.dumps({"w": _array_starting_with(prefix), "meta": [1, 2, 3]}, protocol=4))
    result = scan_file(path)
    assert result.verdict == "safe", [(h.severity, h.title, h.detail) for h in result.hits]


class _Exec:
    def __reduce__(self) -> tuple[object, ...]:
        return (os.system, ("echo planted",))


def test_twin_a_truncated_nested_pickle_that_calls_os_system_is_malicious(tmp_path: Path) -> None:
    inner = pickle.dumps(_Exec(), protocol=4)
    cut = inner[: inner.rindex(b"R") + 1]  # up to REDUCE: the call happens, then the bytes stop
    path = tmp_path / "outer.pkl"
    path.write_bytes(pickle.dumps({"blob": cut + b"\xc1" * 40}, protocol=4))
    result = scan_file(path)
    assert result.verdict == "malicious", [(h.severity, h.title) for h in result.hits]
