"""Governance of the registry: trusted signing keys, approvals, policy-gate reports, webhooks, and the
requirements they feed for promotion to production.

``production_blockers`` names every unmet requirement, checked at the moment of promotion: a signature
that verifies over the *stored* files with a trusted, unrevoked key; a ``safe`` scan; a passing
pipeline run attached as the gate report; and an approval by an approver (or admin) other than the
user who registered the version. ``Registry`` inherits these methods.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from mlsecops.core.errors import ConflictError, InputError, PermissionDenied, VerificationError
from mlsecops.core.findings import utcnow
from mlsecops.registry._identity import Actor, Permission, Role, audited, check
from mlsecops.registry._tables import Approval, ModelVersion, RegisteredModel, TrustedKey, User, Webhook
from mlsecops.registry._versions import resolve
from mlsecops.registry._webhooks import EVENTS, check_url
from mlsecops.store import PipelineRun, Workspace, audit
from mlsecops.supplychain import signing

__all__ = ["Governance"]


def _now() -> str:
    return utcnow().isoformat(timespec="microseconds")


@dataclass
class Governance:
    """Trust, approvals, gate reports and webhooks of a workspace's registry, acting as ``actor``."""

    ws: Workspace
    actor: Actor

    def _blob_files(self, v: ModelVersion) -> dict[str, Path]:
        return {name: self.ws.artifacts.path_for(sha) for name, sha, _ in json.loads(v.files)}

    def trust_key(self, name: str, public_key: Path) -> str:
        """Trust a public key for promotion to production; return its hint."""
        key = signing.load_public_key(public_key)
        hint = signing.key_hint(key)
        with audited(self.ws), self.ws.session() as s:
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
        """Approve a version for production (approver or admin; not the user who registered it)."""
        with audited(self.ws), self.ws.session() as s:
            check(self.actor, Permission.APPROVE, ref)
            model, v = resolve(s, ref)
            if v.created_by == self.actor.name:
                raise PermissionDenied(
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
        """Attach a passing pipeline run (its policy gate report) to a version."""
        with audited(self.ws), self.ws.session() as s:
            check(self.actor, Permission.ATTACH, ref)
            model, v = resolve(s, ref)
            run = s.get(PipelineRun, run_id)
            if run is None:
                raise InputError(f"no pipeline run {run_id}; `mlsecops run` records runs")
            if not run.passed:
                raise InputError(
                    f"pipeline run {run_id} ({run.pipeline}) failed its policy gate; only a passing run can be attached"
                )
            v.gate_run_id = run.id
            audit.append(
                s,
                actor=self.actor.name,
                action="registry.gate.attach",
                subject=f"{model.name}@{v.version}",
                details={"run_id": run_id, "pipeline": run.pipeline},
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

    def _signature_problem(self, s: Session, v: ModelVersion) -> str | None:
        if not v.signature:
            return "it has no signature (register it with its .sig bundle)"
        trusted = s.execute(
            select(TrustedKey).where(
                TrustedKey.key_hint == v.signature_key_hint, TrustedKey.revoked.is_(None)
            )
        ).scalar_one_or_none()
        if trusted is None:
            return f"its signature's key {str(v.signature_key_hint)[:16]}... is not a trusted key"
        try:
            signing.verify_files(
                self._blob_files(v), v.signature.encode(), signing.public_key_from_pem(trusted.pem.encode())
            )
        except (VerificationError, InputError) as err:
            return f"its signature does not verify: {err.diagnostics()}"
        return None

    def production_blockers(self, s: Session, model: RegisteredModel, v: ModelVersion) -> list[str]:
        """Every unmet requirement for promoting ``v`` to production (empty when it may go)."""
        problems = []
        if v.archived:
            problems.append("it is archived")
        if v.scan_verdict != "safe":
            problems.append(f"its scan verdict is {v.scan_verdict}, not safe")
        sig = self._signature_problem(s, v)
        if sig:
            problems.append(sig)
        run = s.get(PipelineRun, v.gate_run_id) if v.gate_run_id is not None else None
        if run is None or not run.passed:
            problems.append("no passing policy gate report is attached (`mlsecops registry attach-gate`)")
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
