"""Reading the registry: resolving ``NAME@VERSION|STAGE|ALIAS``, describing versions, and history.

Stages and aliases are *slots* (``stage:production``, ``stage:staging``, ``alias:champion``); every
holding of a slot is one ``Assignment`` row with a start and (once over) an end, so ``history`` can say
what held each slot at any moment.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from mlsecops.core.errors import InputError
from mlsecops.registry._tables import Approval, Assignment, ModelVersion, RegisteredModel

__all__ = [
    "STAGES",
    "HistoryEntry",
    "VersionInfo",
    "current_holder",
    "describe",
    "get_model",
    "get_version",
    "history_rows",
    "parse_ref",
    "resolve",
    "resolve_pinned",
]

STAGES = ("staging", "production")
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_ALIAS = re.compile(r"^[a-z][a-z0-9_-]{0,49}$")


def check_model_name(name: str) -> str:
    """Validate a model name.

    Raises:
        InputError: not 1-100 letters, digits, '.', '_' or '-'.
    """
    if not _MODEL_NAME.match(name):
        raise InputError(f"model name {name!r} must be 1-100 letters, digits, '.', '_' or '-'")
    return name


def check_alias(alias: str) -> str:
    """Validate an alias name (lowercase, not a stage name, not a number).

    Raises:
        InputError: invalid alias.
    """
    if not _ALIAS.match(alias) or alias in (*STAGES, "latest"):
        raise InputError(
            f"alias {alias!r} must start with a lowercase letter, use a-z, 0-9, '_' or '-', and not be "
            "'staging', 'production' or 'latest'"
        )
    return alias


def parse_ref(ref: str) -> tuple[str, str | None]:
    """Split ``NAME@WHICH`` into the name and the version/stage/alias part (``None`` without ``@``)."""
    name, sep, which = ref.partition("@")
    return check_model_name(name), (which if sep else None)


@dataclass(frozen=True)
class VersionInfo:
    """A version as the CLI and the API show it."""

    name: str
    version: int
    digest: str
    files: int
    size: int
    source_name: str
    created: str
    created_by: str
    archived: bool
    scan_verdict: str
    signed_by: str | None
    signature_key_hint: str | None
    gate_run_id: int | None
    stages: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    approvals: tuple[str, ...] = ()
    scan: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class HistoryEntry:
    """One holding of a slot by a version."""

    slot: str
    version: int
    started: str
    started_by: str
    reason: str
    ended: str | None
    ended_by: str | None


def get_model(s: Session, name: str) -> RegisteredModel:
    """The model row.

    Raises:
        InputError: no such model.
    """
    model = s.execute(select(RegisteredModel).where(RegisteredModel.name == name)).scalar_one_or_none()
    if model is None:
        raise InputError(f"no registered model named {name!r}; `mlsecops registry list` shows them")
    return model


def get_version(s: Session, model: RegisteredModel, version: int) -> ModelVersion:
    """The version row.

    Raises:
        InputError: no such version.
    """
    row = s.execute(
        select(ModelVersion).where(ModelVersion.model_id == model.id, ModelVersion.version == version)
    ).scalar_one_or_none()
    if row is None:
        raise InputError(f"{model.name} has no version {version} (latest is {model.last_version})")
    return row


def current_holder(s: Session, model_id: int, slot: str) -> Assignment | None:
    """The open assignment of ``slot``, if any."""
    return s.execute(
        select(Assignment).where(
            Assignment.model_id == model_id, Assignment.slot == slot, Assignment.ended.is_(None)
        )
    ).scalar_one_or_none()


def resolve(s: Session, ref: str) -> tuple[RegisteredModel, ModelVersion]:
    """Resolve ``NAME@3``, ``NAME@production``, ``NAME@champion`` or ``NAME``/``NAME@latest``.

    Raises:
        InputError: unknown model, version, or an empty stage/alias.
    """
    name, which = parse_ref(ref)
    model = get_model(s, name)
    if which in (None, "", "latest"):
        if model.last_version == 0:
            raise InputError(f"{name} has no versions")
        return model, get_version(s, model, model.last_version)
    if which.isdigit():
        return model, get_version(s, model, int(which))
    slot = f"stage:{which}" if which in STAGES else f"alias:{which}"
    holder = current_holder(s, model.id, slot)
    if holder is None:
        raise InputError(f"{name} has no version in {slot.replace(':', ' ')}")
    version = s.get(ModelVersion, holder.version_id)
    assert version is not None
    return model, version


def resolve_pinned(s: Session, ref: str, *, action: str) -> tuple[RegisteredModel, ModelVersion]:
    """Resolve ``NAME@VERSION`` only: a decision about one version must name it, not ``latest``, a stage
    or an alias, whose target can change between reading and acting.

    Raises:
        InputError: ``ref`` is not pinned to a version number, or names no such version.
    """
    name, which = parse_ref(ref)
    if which is None or not which.isdigit():
        raise InputError(
            f"{action} needs a pinned version such as {name}@3, not {ref!r} (latest, stages and aliases "
            "move); `mlsecops registry show` tells which version a stage or alias holds"
        )
    model = get_model(s, name)
    return model, get_version(s, model, int(which))


def describe(s: Session, model: RegisteredModel, v: ModelVersion) -> VersionInfo:
    """Build the ``VersionInfo`` of a version (its current stages, aliases and approvals included)."""
    slots = s.execute(
        select(Assignment.slot).where(Assignment.version_id == v.id, Assignment.ended.is_(None))
    ).scalars()
    stages: list[str] = []
    aliases: list[str] = []
    for slot in slots:
        kind, _, label = slot.partition(":")
        (stages if kind == "stage" else aliases).append(label)
    approvals = s.execute(
        select(Approval.user_name).where(Approval.version_id == v.id).order_by(Approval.id)
    ).scalars()
    return VersionInfo(
        name=model.name,
        version=v.version,
        digest=v.digest,
        files=len(json.loads(v.files)),
        size=v.size,
        source_name=v.source_name,
        created=v.created,
        created_by=v.created_by,
        archived=v.archived,
        scan_verdict=v.scan_verdict,
        signed_by=v.signed_by,
        signature_key_hint=v.signature_key_hint,
        gate_run_id=v.gate_run_id,
        stages=tuple(sorted(stages)),
        aliases=tuple(sorted(aliases)),
        approvals=tuple(approvals),
        scan=json.loads(v.scan_summary or "{}"),
    )


def history_rows(s: Session, model: RegisteredModel, *, at: str | None = None) -> list[HistoryEntry]:
    """Every holding of every slot, oldest first; with ``at`` (UTC ISO time) only those open then."""
    query = (
        select(Assignment, ModelVersion.version)
        .join(ModelVersion, ModelVersion.id == Assignment.version_id)
        .where(Assignment.model_id == model.id)
        .order_by(Assignment.started, Assignment.id)
    )
    if at is not None:
        query = query.where(
            and_(Assignment.started <= at, or_(Assignment.ended.is_(None), Assignment.ended > at))
        )
    return [
        HistoryEntry(a.slot, version, a.started, a.started_by, a.reason, a.ended, a.ended_by)
        for a, version in s.execute(query).all()
    ]
