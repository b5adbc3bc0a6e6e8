"""Core data model shared by every layer: severities, findings, reports, errors, settings, the check
catalogue. Imports nothing of ours and nothing heavy.

>>> from mlsecops.core import Finding, Report, Severity
>>> r = Report(subject="m.pkl", kind="artifact.pickle",
...            findings=(Finding(check="artifact.pickle", severity="high", title="os.system called"),))
>>> str(r.max_severity)
'high'
"""

from __future__ import annotations

from mlsecops.core.checks import (
    Check,
    CheckKind,
    CheckSpec,
    ContractCases,
    Target,
    all_checks,
    get_check,
    load_builtin_checks,
    register,
)
from mlsecops.core.errors import (
    ConfigError,
    ConflictError,
    InputError,
    MlsecopsError,
    NotFittedError,
    PermissionDenied,
    SchemaTooNewError,
    VerificationError,
    WorkspaceError,
)
from mlsecops.core.findings import REPORT_SCHEMA, Figure, Finding, Report, Severity, merge_reports, utcnow
from mlsecops.core.settings import Settings

__all__ = [
    "REPORT_SCHEMA",
    "Check",
    "CheckKind",
    "CheckSpec",
    "ConfigError",
    "ConflictError",
    "ContractCases",
    "Figure",
    "Finding",
    "InputError",
    "MlsecopsError",
    "NotFittedError",
    "PermissionDenied",
    "Report",
    "SchemaTooNewError",
    "Settings",
    "Severity",
    "Target",
    "VerificationError",
    "WorkspaceError",
    "all_checks",
    "get_check",
    "load_builtin_checks",
    "merge_reports",
    "register",
    "utcnow",
]
