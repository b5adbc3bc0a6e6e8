"""Turning encryption at rest on, rotating its keys, and reporting its state.

``enable_encryption`` records the settings and a new wrapped data key (state ``encrypting``, audit
event ``workspace.encryption.enable``, one transaction), then encrypts every existing blob in place:
each is decrypted or read, verified against its address, sealed into a new file next to it, fsynced
and renamed over it, so a crash leaves every blob either whole plaintext or whole ciphertext. Run
again after a crash, it goes on where it stopped. When no plaintext blob is left, the state becomes
``on`` (``workspace.encryption.complete``); from then on a plaintext blob is refused as tampering.

``rotate_kek`` rewraps every data key with a new KEK in one transaction (``workspace.encryption.rotate_kek``):
the old KEK no longer opens the workspace. ``rotate_data_key`` makes a new data key active (state
``rekeying``, ``workspace.encryption.rotate_data_key``), re-encrypts every blob under it the same
crash-safe, resumable way, then deletes the old keys (``workspace.encryption.rekeyed``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from mlsecops.core.errors import ConfigError, InputError, VerificationError
from mlsecops.core.findings import utcnow
from mlsecops.store import audit
from mlsecops.store._blobcrypt import HEADER_SIZE, KEY_ID_SIZE, parse_header
from mlsecops.store._encryption_tables import DataKeyRow, EncryptionRow
from mlsecops.store.encryption import (
    KEY_SIZE,
    KekSource,
    KeyUnavailable,
    read_policy,
    unwrap_key,
    wrap_key,
)

if TYPE_CHECKING:
    from mlsecops.store.workspace import Workspace

__all__ = ["EncryptionResult", "enable_encryption", "encryption_status", "rotate_data_key", "rotate_kek"]

Progress = Callable[[str, int, int], None]
STALE_STAGING_SECONDS = 24 * 3600
"""Age after which a leftover staging file or folder in the store (from a process that crashed while
scanning, serving or storing) is removed by ``enable_encryption``/``rotate_data_key``: younger ones may
belong to a command running now."""
MAX_PASSES = 3
"""Walks over the store before the old data keys are retired: a blob written meanwhile by a process that
read the settings just before they changed is caught by the next walk."""
_STAGING_PREFIXES = (".incoming-", ".scan-", ".plain-", ".spool-")


@dataclass(frozen=True)
class EncryptionResult:
    """What a command did."""

    state: str
    """The state afterwards."""
    sealed: int
    """Blobs (re-)encrypted by this run."""
    skipped: int
    """Blobs that were already encrypted with the active key."""
    kek_id: str
    """Fingerprint of the KEK in use."""
    active_key: str
    """Id of the active data key."""


def _now() -> str:
    return utcnow().isoformat(timespec="microseconds")


def _blob_key_id(path: Path) -> str | None:
    try:
        with path.open("rb") as fh:
            parsed = parse_header(fh.read(HEADER_SIZE))
    except OSError:
        return None
    return parsed[0].hex() if parsed is not None else None


def _clean_staging(root: Path) -> int:
    """Remove staging leftovers older than ``STALE_STAGING_SECONDS``; return how many."""
    import shutil

    removed = 0
    if not root.is_dir():
        return 0
    limit = time.time() - STALE_STAGING_SECONDS
    for entry in root.iterdir():
        if not entry.name.startswith(_STAGING_PREFIXES):
            continue
        try:
            if entry.lstat().st_mtime > limit:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed += 1
        except OSError:
            continue
    return removed


def _seal_all(ws: Workspace, active: str, progress: Progress | None) -> tuple[int, int]:
    """Re-encrypt every blob not yet under ``active``; ``(sealed, skipped)``.

    Raises:
        VerificationError: some blobs could not be read or do not hash to their address (named; the
            others were encrypted).
    """
    store = ws.artifacts
    key = ws.keyring.key(active)
    _clean_staging(store.root)
    sealed = 0
    failures: list[str] = []
    for _ in range(MAX_PASSES):
        pending = [sha for sha in store.digests() if _blob_key_id(store.path_for(sha)) != active]
        if not pending:
            break
        for i, sha in enumerate(pending):
            if progress is not None:
                progress(sha[:12], i, len(pending))
            try:
                store.reseal(sha, key, active)
                sealed += 1
            except (VerificationError, InputError) as err:
                failures.append(f"{sha[:12]}...: {err.diagnostics()}")
        if failures:
            break
    skipped = sum(1 for _ in store.digests()) - sealed
    if failures:
        raise VerificationError(
            f"{len(failures)} blob(s) could not be encrypted and stay as they are ({failures[0]}"
            f"{' and more' if len(failures) > 1 else ''}); restore them from a backup and run the "
            "command again to finish"
        )
    return sealed, skipped


def enable_encryption(
    ws: Workspace,
    source: KekSource,
    *,
    actor: str,
    progress: Progress | None = None,
    environ: Mapping[str, str] | None = None,
) -> EncryptionResult:
    """Turn encryption at rest on (or finish turning it on) and encrypt every stored blob.

    Raises:
        KeyUnavailable: the KEK is missing, not a key, too open, or (when encryption is on already)
            not the workspace's KEK.
        VerificationError: some blobs could not be encrypted (the state stays ``encrypting``).
        ConfigError: a data-key rotation is in progress (finish it with ``rotate_data_key``).
    """
    provider = source.open(environ)
    kek_id = provider.kek_id()
    with ws.session() as s:
        row = s.get(EncryptionRow, 1, with_for_update=True)
        if row is None:
            key_id = os.urandom(KEY_ID_SIZE).hex()
            s.add(
                DataKeyRow(
                    key_id=key_id, wrapped=wrap_key(provider, os.urandom(KEY_SIZE), key_id), created=_now()
                )
            )
            s.add(
                EncryptionRow(
                    id=1,
                    state="encrypting",
                    kek_source=source.to_json(),
                    kek_id=kek_id,
                    active_key=key_id,
                    updated=_now(),
                )
            )
            audit.append(
                s,
                actor=actor,
                action="workspace.encryption.enable",
                subject=str(ws.home.resolve()),
                details={"kek_source": source.describe(), "kek_id": kek_id, "data_key": key_id},
            )
        else:
            if row.kek_id != kek_id:
                raise KeyUnavailable(
                    f"encryption is on already with another key-encryption key (fingerprint {row.kek_id}, "
                    f"given {kek_id}); change it with `mlsecops workspace rotate-key`"
                )
            if row.state == "rekeying":
                raise ConfigError(
                    "a data-key rotation is in progress; finish it with `mlsecops workspace rotate-key --data-key`"
                )
            key_id = row.active_key
    ws.keyring.forget()
    sealed, skipped = _seal_all(ws, key_id, progress)
    with ws.session() as s:
        row = s.get(EncryptionRow, 1, with_for_update=True)
        assert row is not None
        if row.state == "encrypting":
            row.state, row.updated = "on", _now()
            audit.append(
                s,
                actor=actor,
                action="workspace.encryption.complete",
                subject=str(ws.home.resolve()),
                details={"blobs_encrypted": sealed, "data_key": key_id},
            )
        state = row.state
    return EncryptionResult(state=state, sealed=sealed, skipped=skipped, kek_id=kek_id, active_key=key_id)


def rotate_kek(
    ws: Workspace, new: KekSource, *, actor: str, environ: Mapping[str, str] | None = None
) -> EncryptionResult:
    """Rewrap every data key with the KEK from ``new``; the old KEK stops opening the workspace.

    Raises:
        ConfigError: encryption is off.
        KeyUnavailable: the current KEK (from the recorded source) or the new one is missing or wrong.
    """
    new_provider = new.open(environ)
    new_id = new_provider.kek_id()
    with ws.session() as s:
        row = s.get(EncryptionRow, 1, with_for_update=True)
        if row is None:
            raise ConfigError("encryption at rest is off here; turn it on with `mlsecops workspace encrypt`")
        old_source = KekSource.from_json(row.kek_source)
        old = old_source.open(environ)
        keys = list(s.execute(select(DataKeyRow).with_for_update()).scalars())
        for k in keys:
            k.wrapped = wrap_key(new_provider, unwrap_key(old, k, old_source, row.kek_id), k.key_id)
        old_id = row.kek_id
        row.kek_id, row.kek_source, row.updated = new_id, new.to_json(), _now()
        audit.append(
            s,
            actor=actor,
            action="workspace.encryption.rotate_kek",
            subject=str(ws.home.resolve()),
            details={
                "from_kek_id": old_id,
                "to_kek_id": new_id,
                "kek_source": new.describe(),
                "data_keys": len(keys),
            },
        )
        state, active = row.state, row.active_key
    ws.keyring.forget()
    return EncryptionResult(state=state, sealed=0, skipped=0, kek_id=new_id, active_key=active)


def rotate_data_key(
    ws: Workspace, *, actor: str, progress: Progress | None = None, environ: Mapping[str, str] | None = None
) -> EncryptionResult:
    """Make a new data key active, re-encrypt every blob under it, then delete the old keys; resumes an
    interrupted rotation instead of starting another.

    Raises:
        ConfigError: encryption is off, or still being turned on.
        KeyUnavailable: the KEK is missing or wrong.
        VerificationError: some blobs could not be re-encrypted (the state stays ``rekeying``).
    """
    with ws.session() as s:
        row = s.get(EncryptionRow, 1, with_for_update=True)
        if row is None:
            raise ConfigError("encryption at rest is off here; turn it on with `mlsecops workspace encrypt`")
        if row.state == "encrypting":
            raise ConfigError(
                "encryption is still being turned on; finish it with `mlsecops workspace encrypt`"
            )
        source = KekSource.from_json(row.kek_source)
        provider = source.open(environ)
        current = s.get(DataKeyRow, row.active_key)
        if current is None:
            raise KeyUnavailable(f"the active data key {row.active_key} is missing from the workspace")
        unwrap_key(provider, current, source, row.kek_id)  # the KEK must be right before anything changes
        if row.state == "on":
            old, key_id = row.active_key, os.urandom(KEY_ID_SIZE).hex()
            s.add(
                DataKeyRow(
                    key_id=key_id, wrapped=wrap_key(provider, os.urandom(KEY_SIZE), key_id), created=_now()
                )
            )
            row.active_key, row.state, row.updated = key_id, "rekeying", _now()
            audit.append(
                s,
                actor=actor,
                action="workspace.encryption.rotate_data_key",
                subject=str(ws.home.resolve()),
                details={"from_data_key": old, "to_data_key": key_id},
            )
        key_id, kek_id = row.active_key, row.kek_id
    ws.keyring.forget()
    sealed, skipped = _seal_all(ws, key_id, progress)
    with ws.session() as s:
        row = s.get(EncryptionRow, 1, with_for_update=True)
        assert row is not None
        retired = [k for k in s.execute(select(DataKeyRow).where(DataKeyRow.key_id != key_id)).scalars()]
        for k in retired:
            s.delete(k)
        if row.state == "rekeying":
            row.state, row.updated = "on", _now()
            audit.append(
                s,
                actor=actor,
                action="workspace.encryption.rekeyed",
                subject=str(ws.home.resolve()),
                details={
                    "blobs_reencrypted": sealed,
                    "data_key": key_id,
                    "retired": [k.key_id for k in retired],
                },
            )
        state = row.state
    ws.keyring.forget()
    return EncryptionResult(state=state, sealed=sealed, skipped=skipped, kek_id=kek_id, active_key=key_id)


def encryption_status(ws: Workspace) -> dict[str, Any]:
    """The settings and how many blobs are in which form (from their headers), and whether the KEK is
    available now; never key material.
    """
    with ws.session(readonly=True) as s:
        policy = read_policy(s)
        key_ids = sorted(s.execute(select(DataKeyRow.key_id)).scalars())
    store = ws.artifacts
    counts = {"blobs": 0, "encrypted_active_key": 0, "encrypted_other_key": 0, "unencrypted": 0}
    for sha in store.digests():
        counts["blobs"] += 1
        kid = _blob_key_id(store.path_for(sha)) if policy is not None else None
        if kid is None or kid not in key_ids:
            counts["unencrypted"] += 1
        elif policy is not None and kid == policy.active_key:
            counts["encrypted_active_key"] += 1
        else:
            counts["encrypted_other_key"] += 1
    staging = (
        sum(1 for e in store.root.iterdir() if e.name.startswith(_STAGING_PREFIXES))
        if store.root.is_dir()
        else 0
    )
    out: dict[str, Any] = {
        "state": "off" if policy is None else policy.state,
        "kek_source": None if policy is None else policy.source.describe(),
        "kek_id": None if policy is None else policy.kek_id,
        "active_data_key": None if policy is None else policy.active_key,
        "data_keys": len(key_ids),
        **counts,
        "staging_leftovers": staging,
        "kek_available": None,
        "kek_problem": None,
    }
    if policy is not None:
        try:
            ws.keyring.forget()
            ws.keyring.key(policy.active_key)
            out["kek_available"] = True
        except KeyUnavailable as err:
            out["kek_available"], out["kek_problem"] = False, err.diagnostics()
    return out
