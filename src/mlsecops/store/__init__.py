"""The workspace store: database (SQLite or PostgreSQL, schema under Alembic), content-addressed
artifacts, keys, the tamper-evident audit trail (``audit``) and the lineage graph (``lineage``).

A schema change is a new model in ``models.py`` plus a new script in ``migrations/versions/`` whose
``down_revision`` is the current head; every state change appends an audit event in its transaction.

>>> from pathlib import Path; import tempfile
>>> from mlsecops.store import Workspace, audit
>>> with Workspace.init(Path(tempfile.mkdtemp()) / ".mlsecops") as ws:
...     with ws.session() as s:
...         _ = audit.append(s, actor="alice", action="demo.touch", subject="x")
...     with ws.session(readonly=True) as s:
...         audit.verify(s).events
2
"""

from __future__ import annotations

from mlsecops.store import audit, lineage
from mlsecops.store.artifacts import ArtifactStore, sha256_file
from mlsecops.store.audit import ChainStatus
from mlsecops.store.models import (
    AuditEvent,
    Base,
    LineageEdge,
    LineageNode,
    PipelineRun,
    StoredArtifact,
    StoredReport,
)
from mlsecops.store.workspace import Workspace

__all__ = [
    "ArtifactStore",
    "AuditEvent",
    "Base",
    "ChainStatus",
    "LineageEdge",
    "LineageNode",
    "PipelineRun",
    "StoredArtifact",
    "StoredReport",
    "Workspace",
    "audit",
    "lineage",
    "sha256_file",
]
