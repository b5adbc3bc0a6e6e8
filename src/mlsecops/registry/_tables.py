"""Tables of the model registry (created by migration ``0003``).

Users and API keys (keys only as salted scrypt hashes), trusted signing keys, registered models and
their versions, the full history of which version held which stage or alias (``registry_assignments``:
one row per holding, ``ended`` empty while it lasts), approvals and webhooks. Times are UTC ISO 8601
strings with microseconds, like the audit trail, so they compare as text on every database.

``RegisteredModel.generation`` grows with every change to a model's stages or aliases; a promotion
states the generation it decided on and writes only if it is unchanged (compare-and-set), so of two
concurrent promotions exactly one wins. Constraints (migration ``0004``) hold the invariants whatever
the code does: one open holder per model and slot (a partial unique index), and one bootstrap user and
one bootstrap key (``bootstrap`` is 1 on them, NULL elsewhere, and unique).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from mlsecops.store.models import Base

__all__ = [
    "ApiKey",
    "Approval",
    "Assignment",
    "ModelVersion",
    "RegisteredModel",
    "TrustedKey",
    "User",
    "Webhook",
]


class User(Base):
    """A person or service that acts on the registry."""

    __tablename__ = "registry_users"
    __table_args__ = (Index("uq_registry_users_bootstrap", "bootstrap", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    """``admin``, ``approver``, ``deployer`` or ``viewer``."""
    created: Mapped[str] = mapped_column(String(40))
    created_by: Mapped[str] = mapped_column(String(200))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    bootstrap: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """1 on the first admin, created without credentials; unique, so only one bootstrap can win."""


class ApiKey(Base):
    """An API key: a public id plus the salted scrypt hash of its secret (the secret is never stored)."""

    __tablename__ = "registry_api_keys"
    __table_args__ = (Index("uq_registry_api_keys_bootstrap", "bootstrap", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key_id: Mapped[str] = mapped_column(String(32), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("registry_users.id"), index=True)
    salt: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(128))
    label: Mapped[str] = mapped_column(String(200), default="")
    created: Mapped[str] = mapped_column(String(40))
    revoked: Mapped[str | None] = mapped_column(String(40), nullable=True)
    bootstrap: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """1 on the first admin's key, created without credentials; unique, so only one can be made so."""


class TrustedKey(Base):
    """A public key whose signatures the registry accepts for promotion to production."""

    __tablename__ = "registry_trusted_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    key_hint: Mapped[str] = mapped_column(String(64), unique=True)
    pem: Mapped[str] = mapped_column(Text)
    created: Mapped[str] = mapped_column(String(40))
    created_by: Mapped[str] = mapped_column(String(200))
    revoked: Mapped[str | None] = mapped_column(String(40), nullable=True)


class RegisteredModel(Base):
    """A named model; its versions are numbered 1, 2, 3..."""

    __tablename__ = "registry_models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created: Mapped[str] = mapped_column(String(40))
    created_by: Mapped[str] = mapped_column(String(200))
    last_version: Mapped[int] = mapped_column(Integer, default=0)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    """Grows with every stage or alias change (compare-and-set token for promotions)."""


class ModelVersion(Base):
    """One registered, content-addressed version of a model."""

    __tablename__ = "registry_versions"
    __table_args__ = (UniqueConstraint("model_id", "version", name="uq_registry_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("registry_models.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(64), index=True)
    """SHA-256 of the canonical JSON list of ``[name, sha256]`` of every file."""
    files: Mapped[str] = mapped_column(Text)
    """JSON list of ``[name, sha256, size]``; the blobs live in the artifact store."""
    size: Mapped[int] = mapped_column(BigInteger)
    source_name: Mapped[str] = mapped_column(String(500))
    created: Mapped[str] = mapped_column(String(40))
    created_by: Mapped[str] = mapped_column(String(200))
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    scan_verdict: Mapped[str] = mapped_column(String(20))
    scan_summary: Mapped[str] = mapped_column(Text, default="{}")
    """JSON: counts per severity and the top findings of the scan at registration."""
    signature: Mapped[str | None] = mapped_column(Text, nullable=True)
    """The model-signing bundle (JSON text), when one came with the model."""
    signature_key_hint: Mapped[str | None] = mapped_column(String(64), nullable=True)
    signed_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    """Name of the trusted key the signature verified with at registration, if any."""
    gate_run_id: Mapped[int | None] = mapped_column(ForeignKey("pipeline_runs.id"), nullable=True)
    """A passing pipeline run attached as the policy gate report."""
    lineage_node_id: Mapped[int | None] = mapped_column(ForeignKey("lineage_nodes.id"), nullable=True)


class Assignment(Base):
    """Version ``version_id`` held ``slot`` (``stage:production``, ``alias:champion``) from ``started``
    until ``ended`` (empty while it still does).
    """

    __tablename__ = "registry_assignments"
    __table_args__ = (
        Index(
            "uq_registry_open_slot",
            "model_id",
            "slot",
            unique=True,
            sqlite_where=text("ended IS NULL"),
            postgresql_where=text("ended IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("registry_models.id"), index=True)
    slot: Mapped[str] = mapped_column(String(120))
    version_id: Mapped[int] = mapped_column(ForeignKey("registry_versions.id"), index=True)
    started: Mapped[str] = mapped_column(String(40))
    started_by: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(String(40))
    """``promote``, ``rollback``, ``alias``."""
    ended: Mapped[str | None] = mapped_column(String(40), nullable=True)
    ended_by: Mapped[str | None] = mapped_column(String(200), nullable=True)


class Approval(Base):
    """An approver's approval of a version for production."""

    __tablename__ = "registry_approvals"
    __table_args__ = (UniqueConstraint("version_id", "user_name", name="uq_registry_approval"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("registry_versions.id"), index=True)
    user_name: Mapped[str] = mapped_column(String(200))
    comment: Mapped[str] = mapped_column(Text, default="")
    created: Mapped[str] = mapped_column(String(40))


class Webhook(Base):
    """An HTTP endpoint told about registrations, promotions and rollbacks (HMAC-SHA256 signed)."""

    __tablename__ = "registry_webhooks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(200))
    """The shared HMAC secret (needed in clear to sign; the workspace database is private, 0600)."""
    events: Mapped[str] = mapped_column(String(500))
    """Comma-separated event names, or ``*``."""
    created: Mapped[str] = mapped_column(String(40))
    created_by: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
