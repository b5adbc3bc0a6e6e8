"""The model registry: register, promote, roll back, archive and alias versions (trust, approvals, gate
reports and webhooks come from ``Governance`` in ``_governance``).

``Registry(ws, actor)`` performs every action as ``actor`` (from ``authenticate``): each checks the
actor's role, and each change writes an audit event in its own transaction. Registration scans the
artifact first and refuses a malicious or unscannable one; it stores every file content-addressed,
checks a signature that came with the model, and records a ``model_version`` node in the lineage graph.

Promotion to production requires, checked at the moment of promotion: a signature that verifies over
the stored files with a trusted (not revoked) key, a ``safe`` scan, a passing policy gate report
(pipeline run) attached to the version, and an approval by an approver other than the registrant.
A refusal names every unmet requirement and is audited.

Rollback meets the same bar as promotion (``production_blockers``, one function for both), checked
in full before the change and re-checked cheaply inside the write transaction.

Concurrency: promotions and rollbacks compare-and-set the model's ``generation``: the caller's view of
the model is read first (``expected_generation``, or read at the start of the call), checks run, then
one transaction bumps the generation only if it is unchanged. Of two concurrent promotions exactly one
wins; the other gets ``ConflictError``, and both attempts are in the audit trail. Aliases and archiving
lock the model's row (``_txn.lock_model``) so concurrent changes run one after the other on both
databases, and a partial unique index makes two open holders of one stage or alias impossible.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mlsecops.core.errors import ConflictError, GovernanceRefusal, InputError
from mlsecops.core.findings import utcnow
from mlsecops.registry._governance import Governance
from mlsecops.registry._identity import Permission, audited, check
from mlsecops.registry._register import register_version
from mlsecops.registry._tables import (
    Assignment,
    ModelVersion,
    RegisteredModel,
)
from mlsecops.registry._txn import lock_model, writing
from mlsecops.registry._versions import (
    STAGES,
    HistoryEntry,
    VersionInfo,
    check_alias,
    current_holder,
    describe,
    get_model,
    get_version,
    history_rows,
    parse_ref,
    resolve,
)
from mlsecops.registry._webhooks import deliver
from mlsecops.store import StoredReport, audit, lineage
from mlsecops.store.models import LineageNode

__all__ = ["Registry", "version_lineage"]


def _now() -> str:
    return utcnow().isoformat(timespec="microseconds")


class _Lost(Exception):
    """The compare-and-set found another change first."""


class _Refused(Exception):
    """A production requirement failed on the re-check inside the write transaction."""

    def __init__(self, blockers: list[str]) -> None:
        super().__init__("; ".join(blockers))
        self.blockers = blockers


_RACE = "{name} changed at the same moment; re-read it with `mlsecops registry show` and retry"


@dataclass
class Registry(Governance):
    """The model registry of a workspace, acting as ``actor``."""

    # ------------------------------------------------------------------ helpers

    def _audit(self, action: str, subject: str, details: dict[str, Any]) -> None:
        with self.ws.session() as s:
            audit.append(s, actor=self.actor.name, action=action, subject=subject, details=details)

    def _refuse(
        self, action: str, subject: str, details: dict[str, Any], blockers: list[str], what: str
    ) -> None:
        """Audit ``<action>.refused`` with the unmet requirements, then raise ``GovernanceRefusal``."""
        self._audit(f"{action}.refused", subject, {**details, "blockers": blockers})
        raise GovernanceRefusal(f"{what}: " + "; ".join(blockers))

    def _still_allowed(self, s: Session, model: RegisteredModel, v: ModelVersion) -> None:
        """Re-check, inside the write transaction, what may have changed since the full check (a key
        distrusted, an approver disabled, the gate run): the same requirements, without re-hashing.
        """
        late = self.production_blockers(s, model, v, verify_blobs=False)
        if late:
            raise _Refused(late)

    def _notify(self, event: str, payload: dict[str, Any]) -> None:
        deliver(self.ws, event, payload, actor=self.actor.name)

    def _cas(self, s: Session, model_id: int, expected: int) -> None:
        result = s.execute(
            update(RegisteredModel)
            .where(RegisteredModel.id == model_id, RegisteredModel.generation == expected)
            .values(generation=expected + 1)
        )
        if getattr(result, "rowcount", 0) != 1:
            raise _Lost

    def _conflict(
        self, action: str, subject: str, name: str, expected: int, details: dict[str, Any]
    ) -> ConflictError:
        with self.ws.session(readonly=True) as s:
            model = get_model(s, name)
            now = model.generation
            prod = current_holder(s, model.id, "stage:production")
            holder = ""
            if prod is not None:
                v = s.get(ModelVersion, prod.version_id)
                holder = f"; production is now version {v.version if v else '?'} (set by {prod.started_by} at {prod.started})"
        self._audit(
            f"{action}.conflict",
            subject,
            {**details, "expected_generation": expected, "found_generation": now},
        )
        return ConflictError(
            f"{name} changed while you were acting (state {expected} -> {now}){holder}; "
            "re-read it with `mlsecops registry show` and retry"
        )

    def _open_slot(
        self, s: Session, model: RegisteredModel, slot: str, version: ModelVersion, reason: str
    ) -> int | None:
        """Give ``slot`` to ``version``; return the version number that held it before."""
        now, before = _now(), None
        holder = current_holder(s, model.id, slot)
        if holder is not None:
            prev = s.get(ModelVersion, holder.version_id)
            before = prev.version if prev is not None else None
            holder.ended, holder.ended_by = now, self.actor.name
            s.flush()  # the old holding ends before the new one starts (one open holder per slot)
        s.add(
            Assignment(
                model_id=model.id,
                slot=slot,
                version_id=version.id,
                started=now,
                started_by=self.actor.name,
                reason=reason,
            )
        )
        return before

    def _close_slots(self, s: Session, version: ModelVersion, prefix: str) -> list[str]:
        closed = []
        for a in s.execute(
            select(Assignment).where(Assignment.version_id == version.id, Assignment.ended.is_(None))
        ).scalars():
            if a.slot.startswith(prefix):
                a.ended, a.ended_by = _now(), self.actor.name
                closed.append(a.slot)
        return closed

    def _deployment(self, s: Session, name: str, version: int, generation: int) -> None:
        """Record in the lineage graph that ``version`` went to production (one node per generation)."""
        node = lineage.add_node(
            s,
            kind="deployment",
            name=f"{name}:production",
            version=str(generation),
            attributes={"model_version": version},
            actor=self.actor.name,
        )
        mv = lineage.find_node(s, "model_version", name, str(version))
        if mv is not None:
            lineage.link(s, mv, node, "deployed_as", actor=self.actor.name)

    # ------------------------------------------------------------------ registering

    def register(
        self,
        name: str,
        path: Path,
        *,
        signature: Path | None = None,
        description: str = "",
        trained_on: Sequence[str] = (),
    ) -> VersionInfo:
        """Scan, store and register ``path`` as the next version of ``name`` (see ``register_version``)."""
        info = register_version(
            self.ws,
            self.actor,
            name,
            path,
            signature=signature,
            description=description,
            trained_on=trained_on,
        )
        self._notify("model.registered", {"model": name, "version": info.version, "digest": info.digest})
        return info

    # ------------------------------------------------------------------ reading

    def list_models(self) -> list[dict[str, Any]]:
        """Every model with its latest version and what holds production."""
        with audited(self.ws), self.ws.session(readonly=True) as s:
            check(self.actor, Permission.READ, "registry")
            out = []
            for m in s.execute(select(RegisteredModel).order_by(RegisteredModel.name)).scalars():
                slots = {}
                for a in s.execute(
                    select(Assignment).where(Assignment.model_id == m.id, Assignment.ended.is_(None))
                ).scalars():
                    v = s.get(ModelVersion, a.version_id)
                    slots[a.slot] = v.version if v else None
                out.append({"name": m.name, "latest": m.last_version, "slots": slots, "created": m.created})
            return out

    def show(self, ref: str) -> VersionInfo:
        """Describe ``NAME@VERSION|STAGE|ALIAS``."""
        with audited(self.ws), self.ws.session(readonly=True) as s:
            check(self.actor, Permission.READ, ref)
            model, v = resolve(s, ref)
            return describe(s, model, v)

    def lineage(self, ref: str) -> dict[str, Any]:
        """The lineage of ``NAME@VERSION|STAGE|ALIAS`` back to its data, as ``lineage.graph_document``."""
        with audited(self.ws), self.ws.session(readonly=True) as s:
            check(self.actor, Permission.READ, ref)
            return version_lineage(s, ref)

    def bom_context(self, ref: str) -> dict[str, Any]:
        """What the registry knows about a version, for ``mlsecops bom --ref``.

        Returns:
            ``{"version": VersionInfo JSON, "datasets": [lineage dataset nodes], "metrics": {the
            attached gate run's metrics}, "privacy": [differential-privacy facts of its ancestors]}``.
        """
        with audited(self.ws), self.ws.session(readonly=True) as s:
            check(self.actor, Permission.READ, ref)
            model, v = resolve(s, ref)
            info = describe(s, model, v)
            doc = version_lineage(s, f"{info.name}@{info.version}")
            privacy = [  # differential-privacy facts recorded by `harden dp-train` on an ancestor
                facts
                for node_id in doc["nodes"]
                if (node := s.get(LineageNode, int(node_id))) is not None
                and (facts := lineage.node_attributes(node).get("differential_privacy"))
            ]
            metrics: dict[str, float] = {}
            if info.gate_run_id is not None:
                body = s.execute(
                    select(StoredReport.body).where(
                        StoredReport.run_id == info.gate_run_id, StoredReport.stage.is_(None)
                    )
                ).scalar_one_or_none()
                if body is not None:
                    metrics = dict(json.loads(body).get("metrics", {}))
        datasets = [n for n in doc["nodes"].values() if n["kind"] == "dataset"]
        return {"version": info.to_json(), "datasets": datasets, "metrics": metrics, "privacy": privacy}

    def versions(self, name: str) -> list[VersionInfo]:
        """Every version of a model, oldest first."""
        with audited(self.ws), self.ws.session(readonly=True) as s:
            check(self.actor, Permission.READ, name)
            model = get_model(s, name)
            rows = s.execute(
                select(ModelVersion).where(ModelVersion.model_id == model.id).order_by(ModelVersion.version)
            ).scalars()
            return [describe(s, model, v) for v in rows]

    def generation(self, name: str) -> int:
        """The model's current state token (for ``expected_generation``)."""
        with self.ws.session(readonly=True) as s:
            return get_model(s, name).generation

    def history(self, name: str, *, at: dt.datetime | None = None) -> list[HistoryEntry]:
        """Which version held which stage or alias, and when; with ``at``, only what held it then.

        Args:
            name: the model.
            at: a point in time; a naive datetime is taken as UTC.
        """
        when = None
        if at is not None:
            aware = at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)
            when = aware.astimezone(dt.UTC).isoformat(timespec="microseconds")  # the stored form
        with audited(self.ws), self.ws.session(readonly=True) as s:
            check(self.actor, Permission.READ, name)
            return history_rows(s, get_model(s, name), at=when)

    # ------------------------------------------------------------------ promotion

    def promote(
        self, name: str, version: int, *, to: str, expected_generation: int | None = None
    ) -> int | None:
        """Move ``version`` into stage ``to`` (``staging`` or ``production``); return the version that
        held that stage before.

        Raises:
            GovernanceRefusal: the role does not allow it, or production requirements are unmet (named).
            ConflictError: the model changed since ``expected_generation`` (another promotion won).
            InputError: unknown model/version/stage, archived version, or already in that stage.
        """
        if to not in STAGES:
            raise InputError(f"stage must be one of {', '.join(STAGES)}; got {to!r}")
        subject = f"{name}@{version}"
        with audited(self.ws), self.ws.session(readonly=True) as s:
            check(self.actor, Permission.PROMOTE, subject)
            model = get_model(s, name)
            v = get_version(s, model, version)
            expected = model.generation if expected_generation is None else expected_generation
            if v.archived:
                raise InputError(f"{subject} is archived and cannot be promoted")
            blockers = self.production_blockers(s, model, v) if to == "production" else []
        what = f"{subject} cannot go to production"
        if blockers:
            self._refuse("registry.promote", subject, {"to": to}, blockers, what)
        try:
            with writing(self.ws, _RACE.format(name=name)) as s:
                self._cas(s, model.id, expected)
                model = get_model(s, name)
                v = get_version(s, model, version)
                if to == "production":
                    self._still_allowed(s, model, v)
                holder = current_holder(s, model.id, f"stage:{to}")
                if holder is not None and holder.version_id == v.id:
                    raise InputError(f"{subject} is in {to} already")
                prod = current_holder(s, model.id, "stage:production")
                if to != "production" and prod is not None and prod.version_id == v.id:
                    raise InputError(
                        f"{subject} is in production; promote another version to production or roll back first"
                    )
                self._close_slots(s, v, "stage:")
                before = self._open_slot(s, model, f"stage:{to}", v, "promote")
                if to == "production":
                    self._deployment(s, name, version, expected + 1)
                audit.append(
                    s,
                    actor=self.actor.name,
                    action="registry.promote",
                    subject=subject,
                    details={"to": to, "previous": before, "generation": expected + 1},
                )
        except _Lost:
            raise self._conflict("registry.promote", subject, name, expected, {"to": to}) from None
        except _Refused as refused:
            self._refuse("registry.promote", subject, {"to": to}, refused.blockers, what)
        self._notify("model.promoted", {"model": name, "version": version, "stage": to, "previous": before})
        return before

    def rollback(self, name: str, *, expected_generation: int | None = None) -> tuple[int, int]:
        """Put the previous production version back into production; return ``(from, to)`` versions.

        The version rolled back to must meet the production bar of ``promote`` now (trusted, unrevoked
        signature re-verified over its stored blobs, a ``safe`` scan, a gate run over its bytes, an
        approval): a version whose key was distrusted since, for one, cannot come back.

        Raises:
            InputError: nothing in production, or no earlier (non-archived) production version.
            GovernanceRefusal: the role does not allow it, or the earlier version fails a requirement.
            ConflictError: the model changed meanwhile.
        """
        with audited(self.ws), self.ws.session(readonly=True) as s:
            check(self.actor, Permission.ROLLBACK, name)
            model = get_model(s, name)
            expected = model.generation if expected_generation is None else expected_generation
            current = current_holder(s, model.id, "stage:production")
            if current is None:
                raise InputError(f"{name} has nothing in production to roll back")
            earlier = (
                s.execute(
                    select(Assignment)
                    .join(ModelVersion, ModelVersion.id == Assignment.version_id)
                    .where(
                        Assignment.model_id == model.id,
                        Assignment.slot == "stage:production",
                        Assignment.ended.is_not(None),
                        Assignment.version_id != current.version_id,
                        ModelVersion.archived.is_(False),
                    )
                    .order_by(Assignment.started.desc(), Assignment.id.desc())
                )
                .scalars()
                .first()
            )
            if earlier is None:
                raise InputError(f"{name} has no previous production version to roll back to")
            cur_v, prev_v = s.get(ModelVersion, current.version_id), s.get(ModelVersion, earlier.version_id)
            assert cur_v is not None and prev_v is not None
            frm, to = cur_v.version, prev_v.version
            blockers = self.production_blockers(s, model, prev_v)
        what = f"{name} cannot roll back to version {to}"
        details = {"from": frm, "to": to}
        if blockers:
            self._refuse("registry.rollback", f"{name}@{to}", details, blockers, what)
        try:
            with writing(self.ws, _RACE.format(name=name)) as s:
                self._cas(s, model.id, expected)
                model = get_model(s, name)
                target = get_version(s, model, to)
                self._still_allowed(s, model, target)
                self._close_slots(s, target, "stage:")
                self._open_slot(s, model, "stage:production", target, "rollback")
                self._deployment(s, name, to, expected + 1)
                audit.append(
                    s,
                    actor=self.actor.name,
                    action="registry.rollback",
                    subject=f"{name}@{to}",
                    details={"from": frm, "to": to, "generation": expected + 1},
                )
        except _Lost:
            raise self._conflict("registry.rollback", name, name, expected, details) from None
        except _Refused as refused:
            self._refuse("registry.rollback", f"{name}@{to}", details, refused.blockers, what)
        self._notify("model.rolled_back", {"model": name, "from": frm, "to": to})
        return frm, to

    def archive(self, name: str, version: int) -> None:
        """Archive a version: it leaves its stages and aliases and can no longer be promoted.

        Raises:
            InputError: it is in production (roll back or promote another version first).
        """
        subject = f"{name}@{version}"
        with audited(self.ws), writing(self.ws, _RACE.format(name=name)) as s:
            check(self.actor, Permission.ARCHIVE, subject)
            model = lock_model(s, name)
            v = get_version(s, model, version)
            if v.archived:
                raise InputError(f"{subject} is archived already")
            prod = current_holder(s, model.id, "stage:production")
            if prod is not None and prod.version_id == v.id:
                raise InputError(f"{subject} is in production; roll back or promote another version first")
            closed = self._close_slots(s, v, "")
            v.archived = True
            model.generation += 1
            audit.append(
                s, actor=self.actor.name, action="registry.archive", subject=subject, details={"left": closed}
            )
        self._notify("model.archived", {"model": name, "version": version})

    def set_alias(
        self, name: str, alias: str, version: int, *, expected_generation: int | None = None
    ) -> int | None:
        """Point ``alias`` (e.g. ``champion``) at ``version``; return the version it pointed at before.

        Concurrent alias changes of one model run one after the other (the model's row is locked);
        with ``expected_generation`` the change is also compare-and-set, like ``promote``.

        Raises:
            ConflictError: the model changed since ``expected_generation``.
            InputError: invalid alias, unknown or archived version.
        """
        check_alias(alias)
        subject = f"{name}@{version}"
        try:
            with audited(self.ws), writing(self.ws, _RACE.format(name=name)) as s:
                check(self.actor, Permission.ALIAS, subject)
                model = lock_model(s, name)
                if expected_generation is not None and model.generation != expected_generation:
                    raise _Lost
                v = get_version(s, model, version)
                if v.archived:
                    raise InputError(f"{subject} is archived; an alias cannot point at it")
                before = self._open_slot(s, model, f"alias:{alias}", v, "alias")
                model.generation += 1
                audit.append(
                    s,
                    actor=self.actor.name,
                    action="registry.alias",
                    subject=subject,
                    details={"alias": alias, "previous": before, "generation": model.generation},
                )
                return before
        except _Lost:
            assert expected_generation is not None
            raise self._conflict(
                "registry.alias", subject, name, expected_generation, {"alias": alias}
            ) from None

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove an alias."""
        with audited(self.ws), writing(self.ws, _RACE.format(name=name)) as s:
            check(self.actor, Permission.ALIAS, f"{name}@{alias}")
            model = lock_model(s, name)
            holder = current_holder(s, model.id, f"alias:{alias}")
            if holder is None:
                raise InputError(f"{name} has no alias {alias!r}")
            holder.ended, holder.ended_by = _now(), self.actor.name
            model.generation += 1
            audit.append(
                s,
                actor=self.actor.name,
                action="registry.alias.delete",
                subject=f"{name}@{alias}",
                details={},
            )


def version_lineage(s: Session, ref: str) -> dict[str, Any]:
    """The lineage document of a model version (``NAME@VERSION|STAGE|ALIAS``), read in session ``s``.

    Raises:
        InputError: unknown model or version, or no lineage recorded for it.
    """
    name, which = parse_ref(ref)
    if which is None or not which.isdigit():
        _, v = resolve(s, ref)
        which = str(v.version)
    node = lineage.find_node(s, "model_version", name, which)
    if node is None:
        raise InputError(f"no lineage recorded for {name}@{which}")
    return lineage.graph_document(lineage.ancestors(s, node))
