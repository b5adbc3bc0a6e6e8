"""Core data model shared by every layer: severities, findings, reports, errors, settings, the check
catalogue, and ``redact`` (credentials out of URLs and messages). Imports nothing of ours and nothing heavy.

>>> from mlsecops.core import Finding, Report, Severity
>>> r = Report(subject="m.pkl", kind="artifact.pickle",
...            findings=(Finding(check="artifact.pickle", severity="high", title="os.system called"),))
>>> str(r.max_severity)
'high'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlsecops.core._lazy import lazy_attributes as _lazy_attributes
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
from mlsecops.core.redaction import redact
from mlsecops.core.severity import Severity, utcnow

if TYPE_CHECKING:
    from mlsecops.core._http import HttpAnswer, HttpFailure, http_get, http_post, url_origin
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
    from mlsecops.core.findings import REPORT_SCHEMA, Figure, Finding, Report, merge_reports
    from mlsecops.core.inputs import load_json, load_yaml, parse_json, parse_yaml, read_regular_file
    from mlsecops.core.settings import Settings

# The pydantic-based names load on first use (PEP 562), so that importing ``mlsecops.core.severity`` or
# ``mlsecops.core.errors`` (the scanner's hot path, ``mlsecops scan``) does not pay for pydantic.
_LAZY = {
    **dict.fromkeys(
        (
            "Check",
            "CheckKind",
            "CheckSpec",
            "ContractCases",
            "Target",
            "all_checks",
            "get_check",
            "load_builtin_checks",
            "register",
        ),
        "mlsecops.core.checks",
    ),
    **dict.fromkeys(
        ("REPORT_SCHEMA", "Figure", "Finding", "Report", "merge_reports"), "mlsecops.core.findings"
    ),
    "Settings": "mlsecops.core.settings",
    **dict.fromkeys(
        ("HttpAnswer", "HttpFailure", "http_get", "http_post", "url_origin"), "mlsecops.core._http"
    ),
    **dict.fromkeys(
        ("load_json", "load_yaml", "parse_json", "parse_yaml", "read_regular_file"), "mlsecops.core.inputs"
    ),
}


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
    "HttpAnswer",
    "HttpFailure",
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
    "http_get",
    "http_post",
    "load_builtin_checks",
    "load_json",
    "load_yaml",
    "merge_reports",
    "parse_json",
    "parse_yaml",
    "read_regular_file",
    "redact",
    "register",
    "url_origin",
    "utcnow",
]

__getattr__, __dir__ = _lazy_attributes(__name__, _LAZY, __all__)
