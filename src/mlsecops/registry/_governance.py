"""Governance of the registry: trusted signing keys, approvals, policy-gate reports, webhooks, and the
requirements they feed for production.

``production_blockers`` names every unmet requirement, the one bar for promotion *and* rollback to
production, checked at the moment of the change: a signature that verifies over the *stored* files
with a trusted, unrevoked key; a ``safe`` scan; a passing pipeline run attached as the gate report
that evaluated this version's exact bytes (``gate_problem``); and an approval by an approver (or admin)
other than the user who registered the version. Approvals name a pinned version (``NAME@3``), never
``latest``, a stage or an alias. ``Registry`` inherits these methods.

A gate run is bound to a version by content: every stage of the run that the policy judged and that
evaluates models (``pipeline.evaluated``) must have read this version's files unchanged, and one of them
must be a check in ``GATE_REQUIRED_CHECKS``; so a run that never looked at the model, or looked at
another one, gates nothing, and one run gates only versions with identical bytes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mlsecops.core.errors import (
    ConflictError,
    GovernanceRefusal,
    InputError,
    VerificationError,
)
from mlsecops.core.findings import utcnow
from mlsecops.pipeline.evaluated import covers
from mlsecops.registry._identity import Actor, Permission, Role, audited, check
from mlsecops.registry._tables import Approval, ModelVersion, RegisteredModel, TrustedKey, User, Webhook
from mlsecops.registry._txn import lock_model, writing
from mlsecops.registry._versions import resolve, resolve_pinned
from mlsecops.registry._webhooks import EVENTS, check_url
from mlsecops.store import PipelineRun, StoredReport, Workspace, audit
from mlsecops.supplychain import signing

__all__ = ["GATE_REQUIRED_CHECKS", "Governance", "gate_problem"]

GATE_REQUIRED_CHECKS = frozenset({"artifact.scan"})
"""Checks a gate run must have run, judged by its policy, over the version's exact bytes."""


def _now() -> str:
    return utcnow().isoformat(timespec="microseconds")


def _json(text: str | None) -> dict[str, Any] | None:
    try:
        value = json.loads(text) if text else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def gate_problem(s: Session, v: ModelVersion, run_id: int | None) -> str | None:
    """Why pipeline run ``run_id`` cannot be ``v``'s gate report, or ``None`` when it can.

    It must exist and have passed, and its policy must have judged at least one model-facing stage;
    every such stage must have evaluated ``v``'s exact files (``pipeline.evaluated.covers``), and one of
    them must run a check in ``GATE_REQUIRED_CHECKS``.
    """
    run = s.get(PipelineRun, run_id) if run_id is not None else None
    if run is None:
        return "no passing policy gate report is attached (`mlsecops registry attach-gate`)"
    if not run.passed:
        return f"pipeline run {run.id} ({run.pipeline}) failed its policy gate"
    files = {str(n): str(h) for n, h, _ in json.loads(v.files)}
    judged = {}
    for stage, text in s.execute(
        select(StoredReport.stage, StoredReport.artifacts).where(
            StoredReport.run_id == run.id, StoredReport.stage.is_not(None)
        )
    ).all():
        record = _json(text)
        if record is not None and record.get("judged") is True and record.get("paths"):
            judged[str(stage)] = record
    if not judged:
        return (
            f"pipeline run {run.id} ({run.pipeline}) judged no stage that evaluated a model; a gate run must "
            f"scan this version's files ({', '.join(sorted(GATE_REQUIRED_CHECKS))}) under its policy"
        )
    elsewhere = sorted(name for name, record in judged.items() if not covers(record, files, v.digest))
    if elsewhere:
        return (
            f"pipeline run {run.id} ({run.pipeline}) evaluated other bytes than this version (digest "
            f"{v.digest[:12]}...) in stage(s) {', '.join(elsewhere)}"
        )
    if not any(record.get("check") in GATE_REQUIRED_CHECKS for record in judged.values()):
        return (
            f"pipeline run {run.id} ({run.pipeline}) has no judged "
            f"{' or '.join(sorted(GATE_REQUIRED_CHECKS))} stage over this version"
        )
    return None


@dataclass
class Governance:
    """Trust, approvals, gate reports and webhooks of a workspace's registry, acting as ``actor``."""

    ws: Workspace
    actor: Actor

    def _blob_files(self, v: ModelVersion) -> dict[str, str]:
        return {name: sha for name, sha, _ in json.loads(v.files)}

    def trust_key(self, name: str, public_key: Path) -> str:
        """Trust a public key for promotion to production; return its hint."""
        key = signing.load_public_key(public_key)
        hint = signing.key_hint(key)
        conflict = f"a trusted key named {name!r} or with hint {hint[:16]}... was added at the same moment"
        with audited(self.ws), writing(self.ws, conflict) as s:
            check(self.actor, Permission.ADMIN, f"trusted-key:{name}")
            if s.execute(
                select(TrustedKey.id).where((TrustedKey.name == name) | (TrustedKey.key_hint == hint))
            ).first():
                raise ConflictError(
                    f"a trusted key named {name!r} or with hint {hint[:16]}... exists already"
                )
            s.add(
                TrustedKey(
                    name=name,
                    key_hint=hint,
                    pem=signing.public_pem(key).decode(),
                    created=_now(),
                    created_by=self.actor.name,
                )
            )
            audit.append(
                s,
                actor=self.actor.name,
                action="registry.key.trust",
                subject=f"trusted-key:{name}",
                details={"hint": hint, "type": signing.key_type_of(key)},
            )
        return hint

    def distrust_key(self, name: str) -> None:
        """Revoke trust in a key; versions signed only by it can no longer be promoted to production."""
        with audited(self.ws), self.ws.session() as s:
            check(self.actor, Permission.ADMIN, f"trusted-key:{name}")
            row = s.execute(select(TrustedKey).where(TrustedKey.name == name)).scalar_one_or_none()
            if row is None:
                raise InputError(f"no trusted key named {name!r}")
            row.revoked = row.revoked or _now()
            audit.append(
                s,
                actor=self.actor.name,
                action="registry.key.distrust",
                subject=f"trusted-key:{name}",
                details={"hint": row.key_hint},
            )

    def approve(self, ref: str, *, comment: str = "") -> None:
        """Approve a pinned version (``NAME@3``) for production (approver or admin; not its registrant).

        Raises:
            InputError: ``ref`` is not pinned to a version number (``latest``, a stage or an alias).
            GovernanceRefusal: the role does not allow it, or the approver registered the version.
            ConflictError: this user approved it already.
        """
        conflict = f"{self.actor.name} approved {ref} already"
        with audited(self.ws), writing(self.ws, conflict) as s:
            check(self.actor, Permission.APPROVE, ref)
            model, v = resolve_pinned(s, ref, action="approve")
            if v.created_by == self.actor.name:
                raise GovernanceRefusal(
                    f"{self.actor.name} registered {model.name}@{v.version} and may not approve it too (four eyes)"
                )
            if s.execute(
                select(Approval.id).where(Approval.version_id == v.id, Approval.user_name == self.actor.name)
            ).first():
                raise ConflictError(f"{self.actor.name} approved {model.name}@{v.version} already")
            s.add(
                Approval(version_id=v.id, user_name=self.actor.name, comment=comment[:2000], created=_now())
            )
            audit.append(
                s,
                actor=self.actor.name,
                action="registry.approve",
                subject=f"{model.name}@{v.version}",
                details={"comment": comment[:200]},
            )

    def attach_gate(self, ref: str, run_id: int) -> None:
        """Attach a passing pipeline run that evaluated this version's exact bytes (see ``gate_problem``).

        Raises:
            InputError: no such run, or the run cannot gate this version (named why).
        """
        with audited(self.ws), writing(self.ws, f"{ref} changed while the gate was attached; retry") as s:
            check(self.actor, Permission.ATTACH, ref)
            model, v = resolve(s, ref)
            model = lock_model(s, model.name)
            if s.get(PipelineRun, run_id) is None:
                raise InputError(f"no pipeline run {run_id}; `mlsecops run` records runs")
            problem = gate_problem(s, v, run_id)
            if problem is not None:
                raise InputError(f"run {run_id} cannot gate {model.name}@{v.version}: {problem}")
            run = s.get(PipelineRun, run_id)
            assert run is not None
            v.gate_run_id = run.id
            audit.append(
                s,
                actor=self.actor.name,
                action="registry.gate.attach",
                subject=f"{model.name}@{v.version}",
                details={"run_id": run_id, "pipeline": run.pipeline, "digest": v.digest},
            )

    def add_webhook(self, url: str, secret: str, events: Sequence[str] = ("*",)) -> int:
        """Subscribe ``url`` to registry events (``*`` for all); return the webhook id."""
        check_url(url)
        unknown = [e for e in events if e != "*" and e not in EVENTS]
        if unknown:
            raise InputError(f"unknown webhook event(s) {unknown}; known: {', '.join(EVENTS)}")
        if len(secret) < 16:
            raise InputError("the webhook secret must be at least 16 characters")
        with audited(self.ws), self.ws.session() as s:
            check(self.actor, Permission.ADMIN, "webhooks")
            hook = Webhook(
                url=url,
                secret=secret,
                events=",".join(events),
                created=_now(),
                created_by=self.actor.name,
                active=True,
            )
            s.add(hook)
            s.flush()
            audit.append(
                s,
                actor=self.actor.name,
                action="registry.webhook.add",
                subject=f"webhook:{hook.id}",
                details={"url": url, "events": list(events)},
            )
            return hook.id

    def _signature_problem(self, s: Session, v: ModelVersion, *, verify_blobs: bool = True) -> str | None:
        if not v.signature:
            return "it has no signature (register it with its .sig bundle)"
        trusted = s.execute(
            select(TrustedKey).where(
                TrustedKey.key_hint == v.signature_key_hint, TrustedKey.revoked.is_(None)
            )
        ).scalar_one_or_none()
        if trusted is None:
            return f"its signature's key {str(v.signature_key_hint)[:16]}... is not a trusted key"
        if not verify_blobs:
            return None
        try:
            with self.ws.artifacts.plaintext_files(self._blob_files(v)) as files:
                signing.verify_files(
                    files, v.signature.encode(), signing.public_key_from_pem(trusted.pem.encode())
                )
        except (VerificationError, InputError) as err:
            return f"its signature does not verify: {err.diagnostics()}"
        return None

    def production_blockers(
        self, s: Session, model: RegisteredModel, v: ModelVersion, *, verify_blobs: bool = True
    ) -> list[str]:
        """Every unmet requirement for ``v`` to hold production, by promotion or by rollback (empty when
        it may).

        ``verify_blobs=False`` skips re-hashing the stored blobs (the signature was verified over them
        earlier in the same action; blobs are immutable) but still checks that its key is trusted and
        unrevoked now: the cheap re-check inside the write transaction.
        """
        problems = []
        if v.archived:
            problems.append("it is archived")
        if v.scan_verdict != "safe":
            problems.append(f"its scan verdict is {v.scan_verdict}, not safe")
        sig = self._signature_problem(s, v, verify_blobs=verify_blobs)
        if sig:
            problems.append(sig)
        gate = gate_problem(s, v, v.gate_run_id)
        if gate:
            problems.append(gate)
        approvers = [
            a
            for a in s.execute(select(Approval).where(Approval.version_id == v.id)).scalars()
            if (u := s.execute(select(User).where(User.name == a.user_name)).scalar_one_or_none()) is not None
            and not u.disabled
            and u.role in (Role.APPROVER, Role.ADMIN)
            and a.user_name != v.created_by
        ]
        if not approvers:
            problems.append("no approver has approved it (`mlsecops registry approve`)")
        return problems
