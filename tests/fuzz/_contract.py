"""The scanner's contract, checked on one input: a verdict, or the documented ``InputError``, in time.

``scan_fd`` turns an unexpected internal exception into an ``error`` verdict with a "scanner error" hit
(fail closed). That keeps users safe but hides the bug, so the fuzzers count such a hit as a crash too,
as they do an exception escaping ``scan_fd`` and a scan that outlives its own time budget. Memory beyond
the bound and outright hangs are caught by libFuzzer itself (``-rss_limit_mb``, ``-timeout``).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from mlsecops.core.errors import InputError
from mlsecops.supplychain.scanner import ArtifactScan, ScanLimits, Verdict, scan_fd, scan_file

__all__ = ["LIMITS", "SLACK_SECONDS", "ContractViolation", "check_bytes", "check_fd", "check_path"]

LIMITS = ScanLimits(max_seconds=2.0, max_read_bytes=64 << 20, max_spool=16 << 20, max_blob_search=16 << 20)
"""Bounds of a fuzzed scan: small, so one input costs milliseconds and a bound is reached quickly."""
SLACK_SECONDS = 3.0
"""How far past ``LIMITS.max_seconds`` a scan may run before it counts as a hang."""
_HOME = tempfile.mkdtemp(prefix="mlsecops-fuzz-")  # empty: ONNX external data resolves to nothing here


class ContractViolation(AssertionError):
    """The scanner broke its contract on an input."""


def check_fd(fd: int, path: str, limits: ScanLimits = LIMITS) -> Verdict:
    """Scan the file open as ``fd`` and check the contract; return the verdict.

    Raises:
        ContractViolation: a "scanner error" hit (an internal exception the scanner swallowed) or a scan
            longer than its time budget. Any other exception than ``InputError`` propagates as itself.
    """
    t0 = time.monotonic()
    try:
        result = scan_fd(fd, path, limits=limits, sha256=False)
    except InputError:
        return Verdict.ERROR
    return _judge(result, time.monotonic() - t0, limits)


def check_path(path: str | Path, limits: ScanLimits = LIMITS) -> Verdict:
    """``check_fd`` through the public ``scan_file`` (how the regression files are replayed)."""
    t0 = time.monotonic()
    try:
        result = scan_file(path, limits=limits)
    except InputError:
        return Verdict.ERROR
    return _judge(result, time.monotonic() - t0, limits)


def _judge(result: ArtifactScan, took: float, limits: ScanLimits) -> Verdict:
    errors = [h for h in result.hits if h.title == "scanner error"]
    if errors:
        raise ContractViolation(f"scanner error: {errors[0].detail}")
    if took > limits.max_seconds + SLACK_SECONDS:
        raise ContractViolation(f"scan took {took:.1f} s, budget {limits.max_seconds:g} s")
    if not isinstance(result.verdict, Verdict):
        raise ContractViolation(f"no verdict: {result.verdict!r}")
    return result.verdict


class _Scratch:
    """One in-memory file (``memfd``) rewritten for every input: no disk traffic while fuzzing."""

    def __init__(self) -> None:
        self.fd = os.memfd_create("mlsecops-fuzz", os.MFD_CLOEXEC)
        self.path = os.path.join(_HOME, "input.bin")

    def check(self, data: bytes) -> Verdict:
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, data, 0)
        return check_fd(self.fd, self.path)


_scratch: _Scratch | None = None


def check_bytes(data: bytes) -> Verdict:
    """``check_fd`` over ``data`` (through a reused in-memory file)."""
    global _scratch
    if _scratch is None:
        _scratch = _Scratch()
    return _scratch.check(data)
