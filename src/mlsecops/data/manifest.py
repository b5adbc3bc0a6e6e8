"""Dataset manifests and lineage: what a data set was when it was registered.

A ``DatasetManifest`` lists every file of a data set with its SHA-256, size and row count, the schema
fingerprint and the profile. ``register_dataset`` stores it as a ``dataset`` lineage node (name plus an
increasing version; the audit trail records who registered it), and ``verify_dataset`` compares files on
disk with the newest manifest: a data set that changed without a new manifest fails loudly
(``VerificationError``; the ``data.check`` check turns it into a critical finding).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from mlsecops.core.errors import InputError, VerificationError
from mlsecops.data._profile import DataProfile, profile_chunks
from mlsecops.data._readers import iter_chunks

__all__ = [
    "DatasetManifest",
    "FileEntry",
    "build_manifest",
    "latest_manifest",
    "register_dataset",
    "verify_dataset",
]

MANIFEST_SCHEMA = "mlsecops.dataset-manifest/1"


class FileEntry(BaseModel):
    """One file of a data set."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    """Path as given when the manifest was built."""
    sha256: str
    """Hex SHA-256 of the file's bytes."""
    size: int
    """Bytes."""
    rows: int
    """Data rows."""


class DatasetManifest(BaseModel):
    """Per-file digests, row counts, schema fingerprint and profile of a data set."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_id: str = MANIFEST_SCHEMA
    """Manifest format."""
    name: str
    """Data set name (the lineage node's name)."""
    files: list[FileEntry]
    """Every file, in the order given."""
    schema_fingerprint: str
    """SHA-256 of column names and types (equal for every file)."""
    profile: DataProfile
    """Profile of the first file (the baseline ``data check`` can compare against)."""

    @property
    def digest(self) -> str:
        """SHA-256 over the files' digests: the data set's identity."""
        text = json.dumps([[f.path, f.sha256] for f in self.files])
        return hashlib.sha256(text.encode()).hexdigest()


def build_manifest(
    paths: list[Path], *, name: str | None = None, label: str | None = None
) -> DatasetManifest:
    """Hash, count and profile every file.

    Raises:
        InputError: no file, an unreadable file, or files whose schemas differ.
    """
    from mlsecops.store import sha256_file

    if not paths:
        raise InputError("a dataset manifest needs at least one file")
    entries: list[FileEntry] = []
    first: DataProfile | None = None
    for p in paths:
        prof = profile_chunks(iter_chunks(p), label=label)
        if first is None:
            first = prof
        elif prof.fingerprint != first.fingerprint:
            raise InputError(
                f"{p}: its columns differ from {paths[0]}'s; register different schemas separately"
            )
        entries.append(FileEntry(path=str(p), sha256=sha256_file(p), size=p.stat().st_size, rows=prof.rows))
    assert first is not None
    return DatasetManifest(
        name=name or paths[0].stem, files=entries, schema_fingerprint=first.fingerprint, profile=first
    )


def register_dataset(
    manifest: DatasetManifest, *, home: Path, database_url: str | None = None, actor: str = "cli"
) -> tuple[str, str]:
    """Store ``manifest`` as a new version of the ``dataset`` lineage node named ``manifest.name``.

    Returns:
        ``(version, digest)``. Registering the same content again returns the existing version.

    Raises:
        WorkspaceError: the workspace cannot be opened.
    """
    from sqlalchemy import select

    from mlsecops.store import LineageNode, Workspace, lineage

    with Workspace.open(home, database_url, actor=actor) as ws, ws.session() as s:
        rows = (
            s.execute(
                select(LineageNode).where(LineageNode.kind == "dataset", LineageNode.name == manifest.name)
            )
            .scalars()
            .all()
        )
        for node in rows:
            if node.digest == manifest.digest:
                return node.version, manifest.digest
        version = str(1 + max((int(n.version) for n in rows if n.version.isdigit()), default=0))
        lineage.add_node(
            s,
            kind="dataset",
            name=manifest.name,
            version=version,
            digest=manifest.digest,
            attributes=manifest.model_dump(mode="json"),
            actor=actor,
        )
    return version, manifest.digest


def latest_manifest(
    name: str, *, home: Path, database_url: str | None = None
) -> tuple[str, DatasetManifest] | None:
    """The newest registered manifest of data set ``name`` with its version, or ``None``.

    Raises:
        WorkspaceError: the workspace cannot be opened.
    """
    from sqlalchemy import select

    from mlsecops.store import LineageNode, Workspace, lineage

    with Workspace.open(home, database_url) as ws, ws.session(readonly=True) as s:
        rows = (
            s.execute(select(LineageNode).where(LineageNode.kind == "dataset", LineageNode.name == name))
            .scalars()
            .all()
        )
        if not rows:
            return None
        node = max(rows, key=lambda n: int(n.version) if n.version.isdigit() else 0)
        attrs: dict[str, Any] = lineage.node_attributes(node)
        return node.version, DatasetManifest.model_validate(attrs)


def verify_dataset(paths: list[Path], name: str, *, home: Path, database_url: str | None = None) -> str:
    """Check that the files on disk are the ones of the newest manifest of ``name``.

    Returns:
        The matching manifest version.

    Raises:
        VerificationError: no manifest, a file changed, or the set of files differs.
    """
    from mlsecops.store import sha256_file

    found = latest_manifest(name, home=home, database_url=database_url)
    if found is None:
        raise VerificationError(
            f"data set {name!r} has no registered manifest; run `mlsecops data register` first"
        )
    version, manifest = found
    recorded = {Path(f.path).name: f for f in manifest.files}
    for p in paths:
        entry = recorded.get(p.name)
        if entry is None:
            raise VerificationError(
                f"{p}: not part of data set {name!r} version {version}; register a new manifest"
            )
        digest = sha256_file(p)
        if digest != entry.sha256:
            raise VerificationError(
                f"{p}: changed since data set {name!r} version {version} was registered (sha256 {digest[:12]}..., "
                f"manifest {entry.sha256[:12]}...); register a new manifest if the change is intended"
            )
    return version
