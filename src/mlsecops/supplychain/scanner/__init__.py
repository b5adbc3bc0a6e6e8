"""Static scanner for model artifacts: finds code-execution payloads without loading anything.

    >>> from mlsecops.supplychain.scanner import scan_file
    >>> result = scan_file("model.pt")            # doctest: +SKIP
    >>> result.verdict, [h.title for h in result.hits]   # doctest: +SKIP

Formats are detected by content. Pickles are walked symbolically (``_pickle``), containers are opened
by our own readers (``_zip``, tar via the standard library's header parser), and every other format has
a header checker. ``scan_paths`` scans many files in a process pool; ``scan_report`` builds the report
of the registered ``artifact.scan`` check.
"""

from __future__ import annotations

from mlsecops.supplychain.scanner._api import (
    CHECK_NAME,
    iter_files,
    scan_document,
    scan_fd,
    scan_file,
    scan_paths,
    scan_report,
    to_findings,
)
from mlsecops.supplychain.scanner._guard import LOADABLE_FORMATS, UnsafeArtifactError, safe_load
from mlsecops.supplychain.scanner._policy import Judgement, Rule, ScanPolicy, judge, load_policy
from mlsecops.supplychain.scanner._types import ArtifactScan, Hit, ScanLimits, Verdict

__all__ = [
    "CHECK_NAME",
    "LOADABLE_FORMATS",
    "ArtifactScan",
    "Hit",
    "Judgement",
    "Rule",
    "ScanLimits",
    "ScanPolicy",
    "UnsafeArtifactError",
    "Verdict",
    "iter_files",
    "judge",
    "load_policy",
    "safe_load",
    "scan_document",
    "scan_fd",
    "scan_file",
    "scan_paths",
    "scan_report",
    "to_findings",
]
