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
import os
import stat
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

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
COPY_CHUNK = 1 << 20
"""Bytes read at a time while a data file is copied and hashed (memory stays constant)."""


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


def _open_data(src: Path) -> BinaryIO:
    """Open a data file without blocking (a FIFO cannot hang it), refused unless ``fstat`` of the open
    descriptor says it is a regular file.

    Raises:
        InputError: missing, unreadable or not a regular file.
    """
    try:
        fd = os.open(src, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as err:
        raise InputError(f"{src}: cannot read it: {err.strerror or err}") from err
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise InputError(f"{src}: not a regular file (FIFO, socket, device or directory)")
    return open(fd, "rb")


def _sha256(src: Path) -> str:
    digest = hashlib.sha256()
    with _open_data(src) as fh:
        while chunk := fh.read(COPY_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _private_copy(src: Path, dest: Path) -> tuple[str, int]:
    """Copy ``src`` to the new file ``dest`` (0600) through one descriptor; return ``(sha256, size)``.

    Raises:
        InputError: the source is missing, unreadable or not a regular file, or the copy fails.
    """
    digest, size = hashlib.sha256(), 0
    with _open_data(src) as fh:
        try:
            out_fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
            with open(out_fd, "wb") as out:
                while chunk := fh.read(COPY_CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
        except OSError as err:
            raise InputError(f"{src}: cannot make a private copy: {err.strerror or err}") from err
    return digest.hexdigest(), size


def build_manifest(
    paths: list[Path], *, name: str | None = None, label: str | None = None
) -> DatasetManifest:
    """Hash, count and profile every file.

    What is hashed is what is profiled: each file is read once, through one descriptor, into a private
    temporary copy (hashed while copied), and the rows and the profile come from that copy; a file
    swapped or rewritten meanwhile cannot give the manifest one file's digest and another's profile.

    Raises:
        InputError: no file, an unreadable file, or files whose schemas differ.
    """
    if not paths:
        raise InputError("a dataset manifest needs at least one file")
    entries: list[FileEntry] = []
    first: DataProfile | None = None
    with tempfile.TemporaryDirectory(prefix="mlsecops-manifest-") as tmp:
        for i, p in enumerate(paths):
            copy = Path(tmp) / f"{i}{p.suffix}"
            sha, size = _private_copy(p, copy)
            try:
                prof = profile_chunks(iter_chunks(copy), label=label)
            except InputError as err:  # name the user's file, not the private copy
                raise InputError(err.diagnostics().replace(str(copy), str(p))) from err
            if first is None:
                first = prof
            elif prof.fingerprint != first.fingerprint:
                raise InputError(
                    f"{p}: its columns differ from {paths[0]}'s; register different schemas separately"
                )
            entries.append(FileEntry(path=str(p), sha256=sha, size=size, rows=prof.rows))
            copy.unlink()
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
        digest = _sha256(p)
        if digest != entry.sha256:
            raise VerificationError(
                f"{p}: changed since data set {name!r} version {version} was registered (sha256 {digest[:12]}..., "
                f"manifest {entry.sha256[:12]}...); register a new manifest if the change is intended"
            )
    return version
