"""The workspace store: database (SQLite or PostgreSQL, schema under Alembic), content-addressed
artifacts, keys and the tamper-evident audit trail.

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

from mlsecops.store import audit
from mlsecops.store.artifacts import ArtifactStore, sha256_file
from mlsecops.store.audit import ChainStatus
from mlsecops.store.models import AuditEvent, Base, PipelineRun, StoredArtifact, StoredReport
from mlsecops.store.workspace import Workspace

__all__ = [
    "ArtifactStore",
    "AuditEvent",
    "Base",
    "ChainStatus",
    "PipelineRun",
    "StoredArtifact",
    "StoredReport",
    "Workspace",
    "audit",
    "sha256_file",
]
