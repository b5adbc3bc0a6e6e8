"""Sign a model and verify it: the public operations of the signing package.

``sign_model(path, key)`` hashes the model file or directory (parallel, streamed), signs the manifest
and writes a model-signing bundle (by default beside the model, ``<path>.sig``). ``verify_model(path,
public_key)`` checks the bundle's signature, then hashes the model again with the signed configuration
and names every file that was modified, added, removed or renamed. ``verify_files`` does the same for
files given by name (the registry verifies stored blobs this way).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlsecops.core.errors import InputError, VerificationError
from mlsecops.supplychain.signing._audit import record
from mlsecops.supplychain.signing._bundle import load_bundle_file, make_bundle, open_bundle, read_bundle
from mlsecops.supplychain.signing._hashing import HashAlgorithm
from mlsecops.supplychain.signing._keys import PrivateKey, PublicKey, key_hint, key_type_of
from mlsecops.supplychain.signing._manifest import (
    DEFAULT_IGNORE,
    Manifest,
    Serialization,
    build_manifest,
    compare,
    manifest_from_files,
)

if TYPE_CHECKING:
    from mlsecops.store import Workspace

__all__ = [
    "SignResult",
    "VerifyResult",
    "default_signature_path",
    "sign_model",
    "verify_files",
    "verify_model",
]


def default_signature_path(model: Path) -> Path:
    """Where the signature of ``model`` goes by default: ``<model>.sig`` beside it."""
    resolved = model.resolve() if model.exists() else model.absolute()
    return resolved.with_name(resolved.name + ".sig")


@dataclass(frozen=True)
class SignResult:
    """What ``sign_model`` did."""

    signature: Path
    """The bundle written."""
    key_hint: str
    key_type: str
    files: int
    """Number of files (or shards) signed."""
    bytes: int
    algorithm: str
    seconds: float
    manifest: Manifest


@dataclass(frozen=True)
class VerifyResult:
    """A successful verification."""

    signature: Path | None
    key_hint: str
    files: int
    algorithm: str
    model_name: str
    seconds: float
    manifest: Manifest


def _model_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                continue
    return total


def sign_model(
    path: Path,
    key: PrivateKey,
    *,
    signature: Path | None = None,
    algorithm: HashAlgorithm = HashAlgorithm.SHA256,
    shard_size: int | None = None,
    allow_symlinks: bool = False,
    ignore_paths: tuple[str, ...] = (),
    workers: int | None = None,
    on_progress: Callable[[int], None] | None = None,
    workspace: Workspace | None = None,
    actor: str = "cli",
) -> SignResult:
    """Sign the model at ``path`` and write the bundle.

    With a ``workspace``, records ``artifact.sign`` (subject: the model's resolved path; details:
    signature path, key hint, files, algorithm) after writing the bundle; when the event cannot be
    written the new bundle is removed and the error raised.

    Args:
        path: model file or directory.
        key: the private key (``load_private_key``).
        signature: where to write the bundle (default ``<path>.sig``; a bundle inside the model directory
            is left out of the manifest).
        algorithm: per-file digest: SHA-256 (default), BLAKE3 or BLAKE2b.
        shard_size: hash ``shard_size``-byte shards instead of whole files (``shards`` method).
        allow_symlinks: follow symlinks that stay inside the model directory.
        ignore_paths: more paths (relative to the model) to leave out, besides ``.git`` and friends.
        workers: hashing threads (default: one per CPU).
        on_progress: called with bytes hashed.
        workspace: the workspace whose audit trail records the signing (none: not recorded).
        actor: who signs, for the audit trail.

    Raises:
        InputError: the model path is missing or unsafe (symlink escape, FIFO), or the signature cannot
            be written.
        WorkspaceError: the audit event could not be written (the new bundle is removed).
    """
    if shard_size is not None and shard_size <= 0:
        raise InputError(f"shard size must be a positive number of bytes; got {shard_size}")
    started = time.perf_counter()
    sig_path = signature or default_signature_path(path)
    ser = Serialization(
        method="shards" if shard_size else "files",
        hash_type=algorithm,
        shard_size=shard_size,
        allow_symlinks=allow_symlinks,
        ignore_paths=(*DEFAULT_IGNORE, *ignore_paths),
    )
    manifest = build_manifest(path, ser, extra_ignore=(sig_path,), workers=workers, on_progress=on_progress)
    data = make_bundle(manifest, key)
    try:
        sig_path.parent.mkdir(parents=True, exist_ok=True)
        # A new, randomly named file (O_EXCL): a name planted in a shared folder (a link to another
        # file) cannot make us truncate or write through it.
        fd, tmp = tempfile.mkstemp(dir=sig_path.parent, prefix=f".{sig_path.name}.tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                os.fchmod(fh.fileno(), 0o644)
                fh.write(data)
            os.replace(tmp, sig_path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as err:
        raise InputError(f"cannot write the signature {sig_path}: {err.strerror or err}") from err
    public = key.public_key()
    result = SignResult(
        signature=sig_path,
        key_hint=key_hint(public),
        key_type=key_type_of(public),
        files=len(manifest.digests),
        bytes=_model_bytes(path),
        algorithm=ser.algorithm_name,
        seconds=time.perf_counter() - started,
        manifest=manifest,
    )
    record(
        workspace,
        actor=actor,
        action="artifact.sign",
        subject=str(path.resolve()),
        details={
            "signature": str(sig_path),
            "key_hint": result.key_hint,
            "files": result.files,
            "algorithm": result.algorithm,
        },
        undo=lambda: sig_path.unlink(missing_ok=True),
    )
    return result


def _check(signed: Manifest, actual: Manifest, where: str) -> None:
    problems = compare(signed, actual)
    if problems:
        raise VerificationError(f"{where} does not match its signature: " + "; ".join(problems))


def verify_model(
    path: Path,
    key: PublicKey,
    *,
    signature: Path | None = None,
    bundle: bytes | None = None,
    workers: int | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> VerifyResult:
    """Verify the model at ``path`` against its signature bundle with ``key``.

    The hashing configuration (method, algorithm, shard size, ignored paths) is read from the signed
    statement, so a model signed with shards or BLAKE3 verifies without repeating the options.

    Args:
        path: model file or directory.
        key: the signer's public key (``load_public_key``).
        signature: the bundle file (default ``<path>.sig``).
        bundle: the bundle bytes, instead of reading ``signature``.
        workers: hashing threads.
        on_progress: called with bytes hashed.

    Returns:
        What was verified.

    Raises:
        VerificationError: wrong key, bad or truncated signature, or a file was modified, added,
            removed or renamed (each named).
        InputError: the model or the signature file is missing or unsafe.
    """
    started = time.perf_counter()
    sig_path = signature or default_signature_path(path)
    data = bundle if bundle is not None else load_bundle_file(sig_path)
    signed = open_bundle(read_bundle(data), key)
    ser = signed.serialization
    actual = build_manifest(path, ser, extra_ignore=(sig_path,), workers=workers, on_progress=on_progress)
    _check(signed, actual, f"the model {path}")
    return VerifyResult(
        signature=None if bundle is not None else sig_path,
        key_hint=key_hint(key),
        files=len(actual.digests),
        algorithm=ser.algorithm_name,
        model_name=signed.model_name,
        seconds=time.perf_counter() - started,
        manifest=signed,
    )


def verify_files(
    files: Mapping[str, Path], bundle: bytes, key: PublicKey, *, workers: int | None = None
) -> VerifyResult:
    """Verify files given as ``{name in the model: path to read}`` against a bundle.

    Raises:
        VerificationError: as ``verify_model``.
    """
    started = time.perf_counter()
    signed = open_bundle(read_bundle(bundle), key)
    actual = manifest_from_files(files, signed.serialization, model_name=signed.model_name, workers=workers)
    _check(signed, actual, f"the model {signed.model_name!r}")
    return VerifyResult(
        signature=None,
        key_hint=key_hint(key),
        files=len(actual.digests),
        algorithm=signed.serialization.algorithm_name,
        model_name=signed.model_name,
        seconds=time.perf_counter() - started,
        manifest=signed,
    )
