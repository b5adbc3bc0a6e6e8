"""Registering a model version: store content-addressed, scan the stored bytes, check the signature,
record lineage.

What is scanned is what is stored. Every file of the model is read exactly once, through one
descriptor (no symlink followed, regular files only), straight into the content-addressed artifact
store; the scanner then judges those stored blobs (hard links to them under their original names in a
private staging folder), never the source path again. A file swapped or rewritten after the copy
cannot change the verdict recorded for the blob. A ``malicious`` or ``error`` verdict refuses the
model (the refusal, with the worst findings, is audited) and leaves only unreferenced blobs, which
nothing loads. A signature that came with the model is read once (bounded) and checked against the
trusted keys over the stored blobs too, and one transaction creates the version, its lineage node and
edges, and the audit event.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from mlsecops.core.errors import InputError, VerificationError, WorkspaceError
from mlsecops.core.findings import utcnow
from mlsecops.registry._identity import Actor, Permission, audited, check
from mlsecops.registry._scanning import REFUSED_VERDICTS, ScanOutcome, scan_artifact
from mlsecops.registry._tables import ModelVersion, RegisteredModel, TrustedKey
from mlsecops.registry._txn import writing
from mlsecops.registry._versions import VersionInfo, check_model_name, describe
from mlsecops.store import StoredArtifact, Workspace, audit, lineage
from mlsecops.store.models import LineageNode
from mlsecops.supplychain import signing

__all__ = ["register_version", "scan_stored"]

STORE_THREADS = 8
"""Threads copying files into the store: each blob is fsynced, and threads overlap those waits (~6x
faster for thousands of small files here); more gives nothing on a local disk."""


def _now() -> str:
    return utcnow().isoformat(timespec="microseconds")


def _digest(files: list[tuple[str, str, int]]) -> str:
    return signing.tree_digest((n, sha) for n, sha, _ in files)


def _file_sha(path: Path) -> str:
    """SHA-256 of a data file, read through one safe descriptor (a FIFO swapped in is refused, not
    waited on forever).
    """
    digest = hashlib.sha256()
    with signing.open_regular_file(path, follow_symlinks=True) as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _store(ws: Workspace, model: Path, entries: list[tuple[str, Path, int]]) -> list[tuple[str, str, int]]:
    """Copy every file into the artifact store, reading each source once, reached without following a
    symlink anywhere below ``model``; ``(name, sha256, size)``.
    """

    def put(name: str) -> tuple[str, int]:
        with signing.open_model_file(model, name) as fh:
            return ws.artifacts.put_stream(fh)

    # The order of the result stays the order of ``entries``.
    with ThreadPoolExecutor(
        max_workers=min(STORE_THREADS, len(entries)), thread_name_prefix="mlsecops-store"
    ) as pool:
        stored = list(pool.map(put, [name for name, _, _ in entries]))
    return [(rel, sha, size) for (rel, _, _), (sha, size) in zip(entries, stored, strict=True)]


@contextmanager
def _staged(ws: Workspace, files: list[tuple[str, str, int]], file_name: str) -> Iterator[Path]:
    """The stored blobs of a model under their original names, in a private folder inside the store
    (hard links, so nothing is copied; a copy of the blob where links are not possible; a verified
    decrypted copy when the store is encrypted).
    """
    root = ws.artifacts.root
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=".scan-", dir=root))
    except OSError as err:
        raise WorkspaceError(
            f"cannot stage a scan in the artifact store {root}: {err.strerror or err}"
        ) from err
    try:
        try:
            for rel, sha, _ in files:
                dest = stage / (file_name if rel == "." else rel)
                dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                ws.artifacts.export(sha, dest)
        except OSError as err:
            raise WorkspaceError(
                f"cannot stage a scan in the artifact store {root}: {err.strerror or err}"
            ) from err
        yield stage / file_name if files and files[0][0] == "." else stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _relabel(outcome: ScanOutcome, staged: Path, source: Path) -> ScanOutcome:
    """The outcome with the staging folder's paths replaced by the source's, for messages and records."""
    old, new = str(staged), str(source)

    def name(artifact: str | None) -> str | None:
        if artifact is None or not artifact.startswith(old):
            return artifact
        return new + artifact[len(old) :]

    findings = [f.model_copy(update={"artifact": name(f.artifact)}) for f in outcome.report.findings]
    report = outcome.report.model_copy(update={"findings": tuple(findings), "subject": new})
    return ScanOutcome(verdict=outcome.verdict, report=report)


def scan_stored(ws: Workspace, files: list[tuple[str, str, int]], source: Path) -> ScanOutcome:
    """Scan the stored blobs ``files`` (``(name, sha256, size)``; ``"."`` for a single file) under
    their names; findings name ``source``, the path they were registered from.

    Raises:
        WorkspaceError: the staging folder cannot be made.
    """
    with _staged(ws, files, source.name or "model") as staged:
        return _relabel(scan_artifact(staged), staged, source)


def _parents(s: Session, trained_on: Sequence[str], actor: str) -> list[LineageNode]:
    """Lineage parents: a data file (hashed into a ``dataset`` node) or an existing ``kind:name@version``."""
    nodes = []
    for item in trained_on:
        path = Path(item)
        if path.is_file():
            digest = _file_sha(path)
            nodes.append(
                lineage.add_node(
                    s, kind="dataset", name=path.name, version=digest[:12], digest=digest, actor=actor
                )
            )
            continue
        kind, sep, rest = item.partition(":")
        name, _, version = rest.partition("@")
        node = lineage.find_node(s, kind, name, version) if sep else None
        if node is None:
            raise InputError(
                f"--trained-on {item!r} is neither a file nor a lineage node like dataset:NAME@VERSION"
            )
        nodes.append(node)
    return nodes


def _trusted_signer(
    s: Session, bundle: bytes, ws: Workspace, blobs: dict[str, str]
) -> tuple[str | None, str | None]:
    """``(key hint, trusted key name)`` of a bundle; the name only when it verifies with a trusted key.

    Raises:
        VerificationError: the bundle is malformed, or a trusted key's signature does not match the files.
    """
    parsed = signing.read_bundle(bundle)
    if parsed.key_hint is None:
        return None, None
    trusted = s.execute(
        select(TrustedKey).where(TrustedKey.key_hint == parsed.key_hint, TrustedKey.revoked.is_(None))
    ).scalar_one_or_none()
    if trusted is None:
        return parsed.key_hint, None
    with ws.artifacts.plaintext_files(blobs) as files:
        signing.verify_files(files, bundle, signing.public_key_from_pem(trusted.pem.encode()))
    return parsed.key_hint, trusted.name


def register_version(
    ws: Workspace,
    actor: Actor,
    name: str,
    path: Path,
    *,
    signature: Path | None = None,
    description: str = "",
    trained_on: Sequence[str] = (),
    reuse_existing: bool = False,
) -> VersionInfo:
    """Register the model at ``path`` as the next version of ``name``.

    Args:
        ws: the workspace.
        actor: who registers (deployer or admin).
        name: model name.
        path: model file or directory.
        signature: its model-signing bundle (default: ``<path>.sig`` when that exists).
        description: set on the model when it is new.
        trained_on: data files or lineage nodes (``kind:name@version``) the model was produced from.
        reuse_existing: when a non-archived version has the same content digest, return it instead of
            registering a new version (pipelines re-run without piling up identical versions).

    Raises:
        PermissionDenied: the role does not allow registering.
        InputError: the scanner judged it malicious or could not scan it (its worst findings named), or
            the path is missing or unsafe.
        VerificationError: a signature by a trusted key does not match the files.
        ConflictError: a concurrent registration took the version number; retry.
    """
    check_model_name(name)
    with audited(ws):
        check(actor, Permission.REGISTER, name)
    sig_path = signature or signing.default_signature_path(path)
    entries = signing.model_files(path, extra_ignore=(sig_path,))
    if path.is_file():
        entries = [(".", path, entries[0][2])]  # a single-file model is "." in its manifest, as in signatures
    if not entries:
        raise InputError(f"{path} holds no files to register")
    # Read once, bounded: the bytes checked below are the bytes stored with the version.
    bundle = signing.load_bundle_file(sig_path) if (signature is not None or sig_path.is_file()) else None
    files = _store(ws, path, entries)
    outcome = scan_stored(ws, files, path)
    if outcome.verdict in REFUSED_VERDICTS:
        what = "malicious" if outcome.verdict == "malicious" else "unscannable"
        with ws.session() as s:
            audit.append(
                s,
                actor=actor.name,
                action="registry.register.refused",
                subject=name,
                details={"path": str(path), "digest": _digest(files), **outcome.summary()},
            )
        raise InputError(f"refused to register {path}: the scanner judged it {what}: {outcome.headline()}")
    blobs = {rel: sha for rel, sha, _ in files}
    digest = _digest(files)
    if reuse_existing:
        with ws.session(readonly=True) as s:
            found = s.execute(
                select(RegisteredModel, ModelVersion)
                .join(ModelVersion, ModelVersion.model_id == RegisteredModel.id)
                .where(
                    RegisteredModel.name == name,
                    ModelVersion.digest == digest,
                    ModelVersion.archived.is_(False),
                )
                .order_by(ModelVersion.version.desc())
            ).first()
            if found is not None:
                return describe(s, found[0], found[1])
    try:
        with writing(ws, f"another registration of {name} happened at the same moment; retry") as s:
            hint, signed_by = _trusted_signer(s, bundle, ws, blobs) if bundle is not None else (None, None)
            model = s.execute(
                select(RegisteredModel).where(RegisteredModel.name == name).with_for_update()
            ).scalar_one_or_none()
            if model is None:
                model = RegisteredModel(
                    name=name,
                    description=description,
                    created=_now(),
                    created_by=actor.name,
                    last_version=0,
                    generation=0,
                )
                s.add(model)
                s.flush()
            model.last_version += 1
            number = model.last_version
            for _, sha, size in files:
                if s.get(StoredArtifact, sha) is None:
                    s.add(
                        StoredArtifact(sha256=sha, size=size, original_name=path.name[:500], created=_now())
                    )
            node = lineage.add_node(
                s,
                kind="model_version",
                name=name,
                version=str(number),
                digest=digest,
                attributes={"files": len(files), "source": path.name, "scan": outcome.verdict},
                actor=actor.name,
            )
            for parent in _parents(s, trained_on, actor.name):
                lineage.link(s, parent, node, "trained_on", actor=actor.name)
            v = ModelVersion(
                model_id=model.id,
                version=number,
                digest=digest,
                files=json.dumps(files),
                size=sum(f[2] for f in files),
                source_name=path.name[:500],
                created=_now(),
                created_by=actor.name,
                archived=False,
                scan_verdict=outcome.verdict,
                scan_summary=json.dumps(outcome.summary()),
                signature=bundle.decode("utf-8", "replace") if bundle is not None else None,
                signature_key_hint=hint,
                signed_by=signed_by,
                lineage_node_id=node.id,
            )
            s.add(v)
            s.flush()
            audit.append(
                s,
                actor=actor.name,
                action="registry.register",
                subject=f"{name}@{number}",
                details={
                    "digest": digest,
                    "files": len(files),
                    "scan": outcome.verdict,
                    "signed_by": signed_by,
                    "key_hint": hint,
                },
            )
            info = describe(s, model, v)
    except VerificationError as err:
        with ws.session() as s:
            audit.append(
                s,
                actor=actor.name,
                action="registry.register.refused",
                subject=name,
                details={"path": str(path), "signature": err.diagnostics()},
            )
        raise VerificationError(f"refused to register {path}: {err.diagnostics()}") from err
    return info
