"""Registering a model version: scan, store content-addressed, check the signature, record lineage.

Order matters. The scan runs first and a ``malicious`` or ``error`` verdict refuses the model before
anything is stored (the refusal, with the worst findings, is audited). Files are then copied into the
artifact store (content-addressed, so an interrupted registration leaves only harmless, unreferenced
blobs), a signature that came with the model is checked against the trusted keys over the *stored*
copies, and one transaction creates the version, its lineage node and edges, and the audit event.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mlsecops.core.errors import ConflictError, InputError, VerificationError
from mlsecops.core.findings import utcnow
from mlsecops.registry._identity import Actor, Permission, audited, check
from mlsecops.registry._scanning import REFUSED_VERDICTS, scan_artifact
from mlsecops.registry._tables import ModelVersion, RegisteredModel, TrustedKey
from mlsecops.registry._versions import VersionInfo, check_model_name, describe
from mlsecops.store import StoredArtifact, Workspace, audit, lineage, sha256_file
from mlsecops.store.models import LineageNode
from mlsecops.supplychain import signing

__all__ = ["register_version"]


def _now() -> str:
    return utcnow().isoformat(timespec="microseconds")


def _digest(files: list[tuple[str, str, int]]) -> str:
    canon = json.dumps([[n, sha] for n, sha, _ in sorted(files)], separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()


def _parents(s: Session, trained_on: Sequence[str], actor: str) -> list[LineageNode]:
    """Lineage parents: a data file (hashed into a ``dataset`` node) or an existing ``kind:name@version``."""
    nodes = []
    for item in trained_on:
        path = Path(item)
        if path.is_file():
            digest = sha256_file(path)
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


def _trusted_signer(s: Session, bundle: bytes, blobs: dict[str, Path]) -> tuple[str | None, str | None]:
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
    signing.verify_files(blobs, bundle, signing.public_key_from_pem(trusted.pem.encode()))
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
    outcome = scan_artifact(path)
    if outcome.verdict in REFUSED_VERDICTS:
        what = "malicious" if outcome.verdict == "malicious" else "unscannable"
        with ws.session() as s:
            audit.append(
                s,
                actor=actor.name,
                action="registry.register.refused",
                subject=name,
                details={"path": str(path), **outcome.summary()},
            )
        raise InputError(f"refused to register {path}: the scanner judged it {what}: {outcome.headline()}")
    # Each blob is fsynced by the store; threads overlap those waits (8 threads: ~6x faster for
    # thousands of small files here), and the order of ``files`` stays the order of ``entries``.
    with ThreadPoolExecutor(max_workers=min(8, len(entries)), thread_name_prefix="mlsecops-store") as pool:
        stored = list(pool.map(ws.artifacts.put_file, [real for _, real, _ in entries]))
    files = [(rel, sha, size) for (rel, _, _), (sha, size) in zip(entries, stored, strict=True)]
    bundle = sig_path.read_bytes() if (signature is not None or sig_path.is_file()) else None
    if signature is not None and bundle is None:
        raise InputError(f"no signature at {signature}")
    blobs = {rel: ws.artifacts.path_for(sha) for rel, sha, _ in files}
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
        with ws.session() as s:
            hint, signed_by = _trusted_signer(s, bundle, blobs) if bundle is not None else (None, None)
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
    except IntegrityError as err:
        raise ConflictError(f"another registration of {name} happened at the same moment; retry") from err
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
