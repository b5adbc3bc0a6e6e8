"""The registered ``artifact.scan`` check: scan every path of the target, report per artifact.

Options (``Target.options``): ``max_seconds`` and ``max_read_bytes`` (per-file limits), ``workers``
(process count; 1 scans in-process), ``sha256`` (default true), ``policy`` (a scan policy file:
extra allow/deny/force_allow entries for pickle globals, ``_policy.load_policy``). The report's ``data["artifacts"]`` lists
every file with its path, digest, format, verdict and findings; its ``verdict`` is the worst of them.
The pipeline stage ``scan`` runs this check.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pydantic import JsonValue

from mlsecops.core.checks import CheckKind, ContractCases, Target, register
from mlsecops.core.errors import InputError
from mlsecops.core.findings import Report, utcnow
from mlsecops.supplychain.scanner._api import CHECK_NAME, scan_paths, scan_report
from mlsecops.supplychain.scanner._policy import load_policy
from mlsecops.supplychain.scanner._types import ScanLimits

__all__ = ["ArtifactScanCheck", "limits_from_options"]


MIN_SCAN_SECONDS = 0.001
"""Smallest per-file time limit accepted (``max_seconds``): a limit must be positive to mean anything."""
_LIMIT_OPTIONS = ("max_seconds", "max_read_bytes", "max_depth", "max_blob_search")


def limits_from_options(options: Mapping[str, JsonValue]) -> ScanLimits:
    """Build ``ScanLimits`` from check options, validating types (through ``Target``'s option reader).

    Raises:
        ConfigError: an option has the wrong type or a non-positive value.
    """
    target = Target(options=dict(options))
    kwargs: dict[str, float | int] = {}
    seconds = target.opt_float("max_seconds", lo=MIN_SCAN_SECONDS)
    if seconds is not None:
        kwargs["max_seconds"] = seconds
    for key in _LIMIT_OPTIONS[1:]:
        value = target.opt_int(key, lo=1)
        if value is not None:
            kwargs[key] = value
    policy_file = target.opt_str("policy")
    policy = load_policy(policy_file) if policy_file else None
    return ScanLimits(**kwargs, policy=policy)  # type: ignore[arg-type]  # keys are ScanLimits fields


@register(
    CHECK_NAME,
    kind=CheckKind.SCANNER,
    summary="Static scan of model artifacts (pickle, PyTorch, TorchScript, torch.export, joblib, NumPy, Keras, ONNX, safetensors, GGUF, archives)",
    metrics=("artifacts*", "bytes_scanned"),
    options=(*_LIMIT_OPTIONS, "workers", "sha256", "policy"),
)
class ArtifactScanCheck:
    """Scan model files, archives and directories for code-execution payloads, without loading them."""

    def run(self, target: Target) -> Report:
        """Scan ``target.paths``.

        Raises:
            InputError: no path given, a path is missing, or an option is invalid.
        """
        if not target.paths:
            raise InputError("artifact.scan needs at least one path (a model file, archive or directory)")
        started = utcnow()
        limits = limits_from_options(target.options)
        workers = target.opt_int("workers", lo=1)
        sha = target.opt_bool("sha256", True)
        results = scan_paths(list(target.paths), limits=limits, workers=workers, sha256=sha)
        subject = ", ".join(str(p) for p in target.paths)
        return scan_report(results, subject=subject, started=started)

    @classmethod
    def contract_cases(cls, tmp_dir: Path) -> ContractCases:
        """A small safe pickle, and a truncated one."""
        good = tmp_dir / "weights.pkl"
        good.write_bytes(b"\x80\x04\x95\x0b\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x01a\x94K\x01s.")
        bad = tmp_dir / "truncated.pkl"
        bad.write_bytes(b"\x80\x04\x95\x0b\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x01a")
        return ContractCases(
            valid=Target(paths=(good,), options={"workers": 1}),
            corrupt=Target(paths=(bad,), options={"workers": 1}),
        )
