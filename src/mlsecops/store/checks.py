"""Checks on the workspace itself: the audit chain and the artifact store.

``audit.verify`` walks the hash chain; ``workspace.artifacts`` re-hashes every stored blob against its
name. Both fail closed: a workspace that cannot be read is a critical finding, not a clean report.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select

from mlsecops.core.checks import CheckKind, ContractCases, Target, register
from mlsecops.core.errors import InputError, MlsecopsError
from mlsecops.core.findings import Finding, Report, Severity, utcnow
from mlsecops.store import audit
from mlsecops.store.checkpoints import Checkpoint, verify_checkpoints
from mlsecops.store.models import StoredArtifact
from mlsecops.store.workspace import Workspace

__all__ = ["ArtifactStoreCheck", "AuditChainCheck", "chain_report"]


def _home(target: Target) -> Path:
    """The workspace a check looks at: ``target.home``, else the first path, else ``./.mlsecops``."""
    if target.home is not None:
        return target.home
    return target.paths[0] if target.paths else Path(".mlsecops")


def _open(target: Target) -> Workspace:
    url = target.database_url if target.home is not None else None
    return Workspace.open(_home(target), url, actor=target.actor)


def _unreadable(check: str, subject: str, err: MlsecopsError) -> Finding:
    return Finding(
        check=check,
        severity=Severity.CRITICAL,
        title="workspace could not be read",
        detail=err.diagnostics(),
        artifact=subject,
        remediation="restore the workspace from a backup or run `mlsecops init` in a new location",
    )


def _cases(tmp_dir: Path) -> ContractCases:
    good = tmp_dir / "ws"
    Workspace.init(good).close()
    bad = tmp_dir / "corrupt"
    bad.mkdir()
    (bad / "mlsecops.db").write_bytes(b"this is not a database" * 100)
    return ContractCases(valid=Target(home=good), corrupt=Target(home=bad))


def chain_report(
    ws: Workspace,
    *,
    subject: str | None = None,
    started: dt.datetime | None = None,
    anchors: Sequence[audit.Anchor] = (),
    checkpoints: Sequence[Checkpoint] = (),
    public_key: Ed25519PublicKey | None = None,
) -> Report:
    """The ``audit.verify`` report of an open workspace: a broken chain is a critical finding.

    ``anchors`` (positions and hashes kept elsewhere) are checked as in ``audit.verify``; signed
    ``checkpoints`` (``store.checkpoints``) are checked under ``public_key`` first, then as anchors.

    Raises:
        WorkspaceError: the audit head key is missing, so the chain cannot be checked.
    """
    started = started or utcnow()
    subject = subject or str(ws.home)
    metrics: dict[str, float] = {}
    with ws.session(readonly=True) as s:
        status = audit.verify(s, anchors=anchors)
        if status.ok and checkpoints:
            if public_key is None:
                raise InputError("checkpoints need the public key to check them with")
            signed = verify_checkpoints(s, checkpoints, public_key)
            metrics = {
                "audit_checkpoints": float(signed.checked),
                "audit_checkpoint_newest": float(signed.newest),
            }
            if not signed.ok:
                bad_seq = signed.chain.bad_seq if signed.chain is not None else None
                status = audit.ChainStatus(False, status.events, bad_seq, signed.reason)
    findings: tuple[Finding, ...] = ()
    if not status.ok:
        findings = (
            Finding(
                check="audit.verify",
                severity=Severity.CRITICAL,
                title=(
                    f"audit trail tampered at event {status.bad_seq}"
                    if status.bad_seq is not None
                    else "audit checkpoints do not hold"
                ),
                detail=status.reason,
                artifact=subject,
                location={"event": status.bad_seq or 0},
                remediation="treat the workspace as compromised: investigate who changed the database",
            ),
        )
    return Report(
        subject=subject,
        kind="audit.verify",
        started=started,
        findings=findings,
        metrics={"audit_events": float(status.events), **metrics},
        verdict="intact" if status.ok else "tampered",
    )


@register(
    "audit.verify",
    kind=CheckKind.WORKSPACE,
    summary="Verify the hash chain of the audit trail",
    metrics=("audit_events",),
    options=(),
)
class AuditChainCheck:
    """Walks the audit chain; a broken chain is a critical finding naming the first bad event."""

    def run(self, target: Target) -> Report:
        """Verify the chain of the workspace in ``target.home`` (or ``target.paths[0]``)."""
        started = utcnow()
        subject = str(_home(target))
        try:
            with _open(target) as ws:
                return chain_report(ws, subject=subject, started=started)
        except MlsecopsError as err:
            return Report(
                subject=subject,
                kind="audit.verify",
                started=started,
                findings=(_unreadable("audit.verify", subject, err),),
                verdict="error",
            )

    @classmethod
    def contract_cases(cls, tmp_dir: Path) -> ContractCases:
        """A fresh workspace, and one whose database file is garbage."""
        return _cases(tmp_dir)


@register(
    "workspace.artifacts",
    kind=CheckKind.WORKSPACE,
    summary="Re-hash every stored artifact against its content address",
    metrics=("artifacts_checked",),
    options=(),
)
class ArtifactStoreCheck:
    """Re-hashes each blob of the artifact store; a blob whose content changed is a critical finding."""

    def run(self, target: Target) -> Report:
        """Check every blob listed in the workspace database."""
        started = utcnow()
        subject = str(_home(target))
        findings: list[Finding] = []
        checked = 0
        try:
            with _open(target) as ws:
                with ws.session(readonly=True) as s:
                    digests = list(s.execute(select(StoredArtifact.sha256)).scalars())
                for sha in digests:
                    checked += 1
                    path = ws.artifacts.path_for(sha)
                    if sha not in ws.artifacts:
                        findings.append(
                            Finding(
                                check="workspace.artifacts",
                                severity=Severity.HIGH,
                                title="stored artifact is missing",
                                artifact=str(path),
                                evidence={"sha256": sha},
                            )
                        )
                    elif not ws.artifacts.verify(sha):
                        findings.append(
                            Finding(
                                check="workspace.artifacts",
                                severity=Severity.CRITICAL,
                                title="stored artifact was modified",
                                artifact=str(path),
                                evidence={"sha256": sha},
                                atlas="AML.T0010",
                                remediation="restore it from a trusted copy and re-verify its signature",
                            )
                        )
        except MlsecopsError as err:
            findings.append(_unreadable("workspace.artifacts", subject, err))
        verdict = "intact" if not findings else "tampered"
        return Report(
            subject=subject,
            kind="workspace.artifacts",
            started=started,
            findings=tuple(findings),
            metrics={"artifacts_checked": float(checked)},
            verdict=verdict,
        )

    @classmethod
    def contract_cases(cls, tmp_dir: Path) -> ContractCases:
        """A fresh workspace, and one whose database file is garbage."""
        return _cases(tmp_dir)
