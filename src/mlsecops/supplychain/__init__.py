"""Supply-chain security for model artifacts.

The scanner finds code-execution payloads in model files without loading them, and ``safe_load``
loads an artifact only after the scanner judged it safe::

    from mlsecops.supplychain import safe_load, scan_file

    result = scan_file("model.pt")
    print(result.verdict)            # safe | suspicious | malicious | error
    model = safe_load("model.joblib")  # raises UnsafeArtifactError unless the scan says safe
"""

from __future__ import annotations

from mlsecops.supplychain.scanner import (
    ArtifactScan,
    ScanLimits,
    UnsafeArtifactError,
    Verdict,
    safe_load,
    scan_file,
    scan_paths,
    scan_report,
)

__all__ = [
    "ArtifactScan",
    "ScanLimits",
    "UnsafeArtifactError",
    "Verdict",
    "safe_load",
    "scan_file",
    "scan_paths",
    "scan_report",
]
