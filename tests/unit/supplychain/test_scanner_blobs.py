"""Unrecognised bytes (raw weight dumps, random data) are searched for embedded pickles without false
alarms: only a guessed pickle that names a real callable counts."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from mlsecops.supplychain.scanner import Verdict, scan_file


def test_raw_weight_dump_and_random_bytes_are_safe(tmp_path: Path) -> None:
    weights = np.random.default_rng(0).standard_normal(4 << 20).astype(np.float32).tobytes()
    noise = random.Random(0).randbytes(24 << 20)
    for name, data in (("weights.bin", weights), ("noise.bin", noise)):
        (tmp_path / name).write_bytes(data)
        result = scan_file(tmp_path / name, sha256=False)
        assert result.verdict is Verdict.SAFE, (name, [h.title for h in result.hits])


def test_extension_code_after_junk_is_not_evidence_but_a_named_call_is(tmp_path: Path) -> None:
    junk = random.Random(1).randbytes(4096)
    # PROTO 2, EXT2 code 1, EMPTY_TUPLE, REDUCE, STOP: a default loader has no extension registry.
    ext = junk + b"\x80\x02\x83\x01\x00)R." + junk
    (tmp_path / "ext.bin").write_bytes(ext)
    assert scan_file(tmp_path / "ext.bin", sha256=False).verdict is Verdict.SAFE
    # the same place with a named dangerous callable is found, at a byte boundary or after a newline
    for prefix in (b"", b"\n"):
        call = junk + prefix + b"cos\nsystem\n(S'id'\ntR." + junk
        (tmp_path / "call.bin").write_bytes(call)
        assert scan_file(tmp_path / "call.bin", sha256=False).verdict is Verdict.MALICIOUS, prefix
