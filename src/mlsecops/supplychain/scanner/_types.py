"""Values the scanner passes around: limits, raw hits, verdicts and the per-artifact result.

A format scanner reports what it saw as ``Hit`` values (cheap, internal, picklable across the process
pool). ``_api.py`` turns them into ``core.Finding`` values and the per-artifact verdict. Limits travel
down as one frozen ``ScanLimits``; the running ``Budget`` enforces them and raises ``LimitReached``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from mlsecops.core.severity import Severity

if TYPE_CHECKING:
    from mlsecops.supplychain.scanner._policy import ScanPolicy

__all__ = [
    "ATLAS_ARTIFACT",
    "ATLAS_SUPPLY_CHAIN",
    "ArtifactScan",
    "Budget",
    "Hit",
    "LimitReached",
    "ScanLimits",
    "Verdict",
    "verdict_of",
]

ATLAS_SUPPLY_CHAIN = "AML.T0010"
"""MITRE ATLAS: ML supply chain compromise (a model file that carries code)."""
ATLAS_ARTIFACT = "AML.T0011.000"
"""MITRE ATLAS: user execution of an unsafe ML artifact."""


class Verdict(StrEnum):
    """The conclusion for one artifact, worst over everything inside it."""

    SAFE = "safe"
    SUSPICIOUS = "suspicious"
    MALICIOUS = "malicious"
    ERROR = "error"

    def __str__(self) -> str:
        return self.value


_VERDICT_RANK = {Verdict.SAFE: 0, Verdict.SUSPICIOUS: 1, Verdict.ERROR: 2, Verdict.MALICIOUS: 3}


@dataclass(frozen=True)
class ScanLimits:
    """Bounds of one artifact scan; reaching one yields a finding, never a hang."""

    max_seconds: float = 120.0
    """Wall-clock time per artifact."""
    max_read_bytes: int = 4 << 30
    """Bytes read or decompressed per artifact (tensor payloads that are skipped do not count)."""
    max_file_bytes: int | None = None
    """Refuse (with a finding) files larger than this; ``None`` for no limit."""
    max_depth: int = 5
    """Nesting depth of containers (zip in tar in zip...)."""
    max_entries: int = 100_000
    """Entries per container."""
    max_ratio: float = 250.0
    """Largest plausible compression ratio of one entry before we call it a bomb."""
    max_opcodes: int = 50_000_000
    """Pickle opcodes per artifact."""
    max_memo: int = 1_000_000
    """Pickle memo entries kept per pickle."""
    max_stack: int = 1_000_000
    """Symbolic stack depth per pickle."""
    max_blob_search: int = 256 << 20
    """Bytes of an unrecognised blob searched for embedded pickles."""
    max_spool: int = 1 << 30
    """Largest zip found inside a compressed stream that is copied to a private temporary file to be opened."""
    policy: ScanPolicy | None = None
    """The user's extensions of the pickle allow-list and deny-list (``_policy.load_policy``)."""


class LimitReached(Exception):
    """Raised inside a scan when a ``ScanLimits`` bound is reached."""

    def __init__(self, what: str, detail: str) -> None:
        super().__init__(f"{what}: {detail}")
        self.what = what
        self.detail = detail


@dataclass
class Budget:
    """The running counters of one artifact scan."""

    limits: ScanLimits
    started: float = field(default_factory=time.monotonic)
    read_bytes: int = 0
    opcodes: int = 0

    def charge(self, nbytes: int) -> None:
        """Count ``nbytes`` read; raise ``LimitReached`` past the byte or time limit."""
        self.read_bytes += nbytes
        if self.read_bytes > self.limits.max_read_bytes:
            raise LimitReached("size", f"read more than {self.limits.max_read_bytes} bytes")
        self.check_time()

    def check_time(self) -> None:
        """Raise ``LimitReached`` when the per-artifact time limit has passed."""
        if time.monotonic() - self.started > self.limits.max_seconds:
            raise LimitReached("time", f"scan took longer than {self.limits.max_seconds:g} s")


@dataclass(frozen=True)
class Hit:
    """One raw observation of a format scanner, before it becomes a ``Finding``."""

    severity: Severity
    title: str
    detail: str = ""
    kind: str = "pickle"
    """Which check reports it: pickle, container, keras, onnx, safetensors, gguf, numpy, torch, limit..."""
    entry: str = ""
    """Entry path inside the artifact (``archive/data.pkl``, ``outer.zip!inner.pt!data.pkl``)."""
    offset: int | None = None
    """Byte offset inside the entry where it was seen."""
    callable: str | None = None
    """Resolved ``module.qualname`` of a called or referenced global."""
    atlas: str | None = ATLAS_SUPPLY_CHAIN
    remediation: str = ""
    error: bool = False
    """True when the hit means the scan could not finish (verdict ``error`` unless worse)."""


@dataclass
class ArtifactScan:
    """What one artifact scan produced."""

    path: str
    sha256: str | None
    size: int
    format: str
    hits: list[Hit]
    seconds: float
    entries_scanned: int = 0

    @property
    def verdict(self) -> Verdict:
        """The worst verdict over every hit."""
        return verdict_of(self.hits)


def verdict_of(hits: list[Hit]) -> Verdict:
    """Derive a verdict: critical -> malicious, high/medium -> suspicious, error hits -> error."""
    out = Verdict.SAFE
    for h in hits:
        if h.severity >= Severity.CRITICAL:
            v = Verdict.MALICIOUS
        elif h.error:
            v = Verdict.ERROR
        elif h.severity >= Severity.MEDIUM:
            v = Verdict.SUSPICIOUS
        else:
            v = Verdict.SAFE
        if _VERDICT_RANK[v] > _VERDICT_RANK[out]:
            out = v
    return out
