"""SQLAlchemy 2 table definitions of the workspace database.

The schema itself is created and changed only by the Alembic migrations in ``store/migrations``; these
classes describe it for queries. A new table is a new model here plus a new migration script.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "AuditEvent",
    "AuditHead",
    "Base",
    "LineageEdge",
    "LineageNode",
    "PipelineRun",
    "StoredArtifact",
    "StoredReport",
]


class Base(DeclarativeBase):
    """Declarative base of every workspace table."""


class AuditEvent(Base):
    """One event of the append-only, hash-chained audit trail."""

    __tablename__ = "audit_events"
    __table_args__ = (UniqueConstraint("prev_hash", name="uq_audit_prev_hash"),)

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    """Position in the chain, 1, 2, 3... without gaps."""
    ts: Mapped[str] = mapped_column(String(40), index=True)
    """UTC time, ISO 8601 with microseconds (kept as text so every database hashes the same bytes)."""
    actor: Mapped[str] = mapped_column(String(200), index=True)
    action: Mapped[str] = mapped_column(String(100), index=True)
    subject: Mapped[str] = mapped_column(String(500), index=True)
    details: Mapped[str] = mapped_column(Text)
    """Canonical JSON text of the details."""
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditHead(Base):
    """The last position and hash of the chain, updated and MAC-sealed with every append."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    """Position of the last event, which is also the number of events (positions have no gaps)."""
    hash: Mapped[str] = mapped_column(String(64))
    mac: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """HMAC-SHA256 of ``seq`` and ``hash`` with the workspace's audit key (``keys/``, not the database)."""


class StoredArtifact(Base):
    """A blob in the content-addressed artifact store."""

    __tablename__ = "artifacts"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    original_name: Mapped[str] = mapped_column(String(500))
    created: Mapped[str] = mapped_column(String(40))


class PipelineRun(Base):
    """One ``mlsecops run`` of a pipeline and its gate decision."""

    __tablename__ = "pipeline_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    pipeline: Mapped[str] = mapped_column(String(200), index=True)
    pipeline_sha256: Mapped[str] = mapped_column(String(64))
    started: Mapped[str] = mapped_column(String(40))
    finished: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(200))
    passed: Mapped[bool] = mapped_column(Boolean)
    gate: Mapped[str] = mapped_column(Text)
    """JSON list of rule results."""


class StoredReport(Base):
    """A report kept in the workspace, optionally as one stage of a pipeline run."""

    __tablename__ = "reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("pipeline_runs.id"), index=True, nullable=True)
    stage: Mapped[str | None] = mapped_column(String(200), nullable=True)
    kind: Mapped[str] = mapped_column(String(200), index=True)
    subject: Mapped[str] = mapped_column(String(1000))
    created: Mapped[str] = mapped_column(String(40))
    max_severity: Mapped[str | None] = mapped_column(String(20), nullable=True)
    verdict: Mapped[str | None] = mapped_column(String(50), nullable=True)
    body: Mapped[str] = mapped_column(Text)
    """The report as JSON (``mlsecops.report/1`` schema)."""
    artifacts: Mapped[str | None] = mapped_column(Text, nullable=True)
    """JSON list, for a pipeline stage, of the paths it evaluated: ``path``, ``digest`` (the registry's
    content identity of the file or directory) and ``files`` (``[name, sha256]``), read before and after
    the stage ran; a path that changed meanwhile has ``digest`` null (migration ``0004``)."""


class LineageNode(Base):
    """A dataset, training run, model version, deployment (or quarantine set) in the lineage graph."""

    __tablename__ = "lineage_nodes"
    __table_args__ = (UniqueConstraint("kind", "name", "version", name="uq_lineage_node"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(50))
    """``dataset``, ``training_run``, ``model_version``, ``deployment``, ``quarantine``..."""
    name: Mapped[str] = mapped_column(String(300))
    version: Mapped[str] = mapped_column(String(100), default="")
    digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """SHA-256 of the content (file, manifest, or model directory manifest), when there is one."""
    attributes: Mapped[str] = mapped_column(Text, default="{}")
    """JSON object: manifest, metrics, parameters."""
    created: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(200))


class LineageEdge(Base):
    """``parent`` was used to produce ``child`` (``relation``: ``trained_on``, ``derived_from``...)."""

    __tablename__ = "lineage_edges"
    __table_args__ = (UniqueConstraint("parent_id", "child_id", "relation", name="uq_lineage_edge"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    parent_id: Mapped[int] = mapped_column(ForeignKey("lineage_nodes.id"), index=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("lineage_nodes.id"), index=True)
    relation: Mapped[str] = mapped_column(String(50))
