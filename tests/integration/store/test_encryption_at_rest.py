"""Encryption at rest on a real workspace (SQLite and PostgreSQL): in-place encryption, transparent
reads, refusal of altered ciphertext, wrong and missing keys, key rotation, crash and resume."""

from __future__ import annotations

import io
import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

import pytest
from sqlalchemy import select

from mlsecops.core.checks import Target
from mlsecops.core.errors import InputError, VerificationError
from mlsecops.core.severity import Severity
from mlsecops.store import Workspace, audit
from mlsecops.store._encryption_tables import DataKeyRow
from mlsecops.store.artifacts import ArtifactStore
from mlsecops.store.at_rest import enable_encryption, encryption_status, rotate_data_key, rotate_kek
from mlsecops.store.checks import ArtifactStoreCheck
from mlsecops.store.encryption import KekSource, KeyUnavailable

MARKER = b"PLAINTEXT-MARKER-7f3a"


def _kek(path: Path) -> Path:
    path.write_text(os.urandom(32).hex() + "\n")
    path.chmod(0o600)
    return path


def _blob(tmp_path: Path, name: str, size: int) -> Path:
    path = tmp_path / name
    body = (MARKER + name.encode()) * (size // (len(MARKER) + len(name)) + 1)
    path.write_bytes(body[:size])
    return path


def _all_audit_text(ws: Workspace) -> str:
    with ws.session(readonly=True) as s:
        return json.dumps([[e.action, e.subject, e.details] for e in audit.iter_events(s)])


def _on_disk(ws: Workspace) -> bytes:
    return b"".join(ws.artifacts.path_for(sha).read_bytes() for sha in ws.artifacts.digests())


def test_encrypt_in_place_and_read_transparently(workspace: Workspace, tmp_path: Path) -> None:
    ws = workspace
    big, small = _blob(tmp_path, "big.bin", (5 << 20) // 2), _blob(tmp_path, "small.bin", 100)
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    before = {p: ws.add_artifact(p, actor="t") for p in (big, small, empty)}
    assert MARKER in _on_disk(ws)
    kek = _kek(tmp_path / "kek")
    result = enable_encryption(ws, KekSource.file(kek), actor="alice")
    assert result.state == "on" and result.sealed == 3
    after = _blob(tmp_path, "after.bin", 3000)
    sha_after = ws.add_artifact(after, actor="t")
    assert MARKER not in _on_disk(ws)
    for path, sha in [*before.items(), (after, sha_after)]:
        blob = ws.artifacts.path_for(sha)
        assert (
            stat.S_IMODE(blob.stat().st_mode) == 0o600 and stat.S_IMODE(blob.parent.stat().st_mode) == 0o700
        )
        assert ws.artifacts.is_encrypted(sha) and ws.artifacts.verify(sha)
        with ws.artifacts.open(sha) as fh:
            assert fh.read() == path.read_bytes()
    assert ws.add_artifact(big, actor="t") == before[big]  # same address as before encryption
    status = encryption_status(ws)
    assert status["state"] == "on" and status["blobs"] == 4 and status["encrypted_active_key"] == 4
    assert status["unencrypted"] == 0 and status["kek_available"] is True
    text = _all_audit_text(ws) + json.dumps(status)
    assert "workspace.encryption.enable" in text and "workspace.encryption.complete" in text
    assert kek.read_text().strip() not in text
    with ws.session(readonly=True) as s:
        assert audit.verify(s).ok
    # a second run has nothing left to do
    assert enable_encryption(ws, KekSource.file(kek), actor="alice").sealed == 0
    # a fresh process (no cached key) reads the same
    with Workspace.open(ws.home, ws.url) as other, other.artifacts.open(before[small]) as fh:
        assert fh.read() == small.read_bytes()


def test_wrong_or_missing_key_is_a_clear_error(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = workspace
    sha = ws.add_artifact(_blob(tmp_path, "m.bin", 5000), actor="t")
    right = os.urandom(32).hex()
    monkeypatch.setenv("TEST_KEK", right)
    enable_encryption(ws, KekSource.env("TEST_KEK"), actor="t")
    cases = {
        "": "TEST_KEK is not set",
        os.urandom(32).hex(): "wrong key-encryption key",
        "garbage": "256-bit",
    }
    for value, message in cases.items():
        monkeypatch.setenv("TEST_KEK", value)
        ws.keyring.forget()
        with pytest.raises(KeyUnavailable, match=message) as info:
            ws.artifacts.open(sha).read()
        assert len(info.value.diagnostics().splitlines()) == 1 and right not in info.value.diagnostics()
        with pytest.raises(KeyUnavailable):
            ws.add_artifact(tmp_path / "m.bin", actor="t")
    with pytest.raises(KeyUnavailable, match="another key-encryption key"):
        enable_encryption(
            ws, KekSource.env("TEST_KEK"), actor="t", environ={"TEST_KEK": os.urandom(32).hex()}
        )
    monkeypatch.setenv("TEST_KEK", right)
    ws.keyring.forget()
    assert ws.artifacts.verify(sha)


def test_altered_ciphertext_is_refused(workspace: Workspace, tmp_path: Path) -> None:
    ws = workspace
    a = ws.add_artifact(_blob(tmp_path, "a.bin", 3 << 20), actor="t")
    b = ws.add_artifact(_blob(tmp_path, "b.bin", 4000), actor="t")
    c = ws.add_artifact(_blob(tmp_path, "c.bin", 4000), actor="t")
    enable_encryption(ws, KekSource.file(_kek(tmp_path / "kek")), actor="t")
    pa, pb, pc = (ws.artifacts.path_for(x) for x in (a, b, c))
    data_a, data_b = pa.read_bytes(), pb.read_bytes()
    pa.write_bytes(data_a[: len(data_a) - (1 << 20) - 28])  # the last whole chunk dropped
    pb.write_bytes(data_a)  # a's ciphertext under b's address
    pc.write_bytes((tmp_path / "c.bin").read_bytes())  # plaintext put back after encryption finished
    for sha in (a, b, c):
        assert not ws.artifacts.verify(sha)
        with pytest.raises(VerificationError), ws.artifacts.open(sha) as fh:
            fh.read()
    report = ArtifactStoreCheck().run(Target(home=ws.home, database_url=ws.url))
    assert report.verdict == "tampered"
    assert sum(f.severity is Severity.CRITICAL for f in report.findings) == 3
    flipped = bytearray(data_b)
    flipped[-20] ^= 0x40
    pb.write_bytes(bytes(flipped))
    assert not ws.artifacts.verify(b)
    pb.write_bytes(data_b)
    assert ws.artifacts.verify(b)


def test_rotation(workspace: Workspace, tmp_path: Path) -> None:
    ws = workspace
    shas = [ws.add_artifact(_blob(tmp_path, f"{i}.bin", 2000 + i), actor="t") for i in range(3)]
    old = _kek(tmp_path / "old")
    first = enable_encryption(ws, KekSource.file(old), actor="t")
    new = _kek(tmp_path / "new")
    rotated = rotate_kek(ws, KekSource.file(new), actor="t")
    assert rotated.kek_id != first.kek_id and rotated.active_key == first.active_key
    for sha in shas:
        assert ws.artifacts.verify(sha)
    new_text = new.read_text()
    new.write_text(old.read_text())  # the old KEK no longer opens the workspace
    ws.keyring.forget()
    with pytest.raises(KeyUnavailable, match="wrong key-encryption key"):
        ws.artifacts.verify(shas[0])
    with pytest.raises(KeyUnavailable, match="wrong key-encryption key"):
        rotate_kek(ws, KekSource.file(old), actor="t")
    new.write_text(new_text)
    ws.keyring.forget()
    rekeyed = rotate_data_key(ws, actor="t")
    assert rekeyed.active_key != first.active_key and rekeyed.sealed == 3 and rekeyed.state == "on"
    with ws.session(readonly=True) as s:
        assert list(s.execute(select(DataKeyRow.key_id)).scalars()) == [rekeyed.active_key]
    for i, sha in enumerate(shas):
        assert ws.artifacts.path_for(sha).read_bytes()[9:17].hex() == rekeyed.active_key
        with ws.artifacts.open(sha) as fh:
            assert fh.read() == (tmp_path / f"{i}.bin").read_bytes()
    text = _all_audit_text(ws)
    for action in ("rotate_kek", "rotate_data_key", "rekeyed"):
        assert f"workspace.encryption.{action}" in text
    assert old.read_text().strip() not in text and new_text.strip() not in text


def test_interrupted_encryption_resumes(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = workspace
    paths = [_blob(tmp_path, f"{i}.bin", 1500 + i) for i in range(3)]
    shas = [ws.add_artifact(p, actor="t") for p in paths]
    kek = KekSource.file(_kek(tmp_path / "kek"))
    real = ArtifactStore.reseal
    calls = []

    def crash_on_second(self: ArtifactStore, sha: str, key: bytes, key_id: str) -> None:
        calls.append(sha)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the process dies between two blobs
        real(self, sha, key, key_id)

    monkeypatch.setattr(ArtifactStore, "reseal", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        enable_encryption(ws, kek, actor="t")
    monkeypatch.setattr(ArtifactStore, "reseal", real)
    status = encryption_status(ws)
    assert (
        status["state"] == "encrypting" and status["unencrypted"] == 2 and status["encrypted_active_key"] == 1
    )
    assert not [p for p in ws.artifacts.root.iterdir() if p.name.startswith(".incoming-")]
    for p, sha in zip(paths, shas, strict=True):  # mixed store: every blob still reads, verified
        with ws.artifacts.open(sha) as fh:
            assert fh.read() == p.read_bytes()
    new = ws.add_artifact(_blob(tmp_path, "during.bin", 700), actor="t")
    assert ws.artifacts.is_encrypted(new)
    done = enable_encryption(ws, kek, actor="t")
    assert done.state == "on" and done.sealed == 2
    assert MARKER not in _on_disk(ws)


class _Pipe(io.RawIOBase):
    """A non-seekable stream (a pipe or a socket)."""

    def __init__(self, data: bytes) -> None:
        self._buf = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, b: memoryview | bytearray) -> int:  # type: ignore[override]
        return self._buf.readinto(b)


class _Shifty(io.BytesIO):
    """A seekable source whose content changes after the first pass."""

    def seek(self, pos: int, whence: int = 0) -> int:
        self.write(b"!")  # rewritten by someone else between the passes
        return super().seek(pos, whence)


def test_streams(workspace: Workspace, tmp_path: Path) -> None:
    ws = workspace
    enable_encryption(ws, KekSource.file(_kek(tmp_path / "kek")), actor="t")
    data = MARKER * 200_000
    sha, size = ws.artifacts.put_stream(_Pipe(data))  # type: ignore[arg-type]
    assert size == len(data) and MARKER not in ws.artifacts.path_for(sha).read_bytes()
    with ws.artifacts.open(sha) as fh:
        assert fh.read() == data
    assert not [p for p in ws.artifacts.root.iterdir() if p.name.startswith(".spool-")]
    shifty: BinaryIO = _Shifty(b"x" * 5000)
    with pytest.raises(InputError, match="changed while"):
        ws.artifacts.put_stream(shifty)
    assert len(list(ws.artifacts.digests())) == 1


class _Kms:
    """A key provider keeping its KEK to itself, as a KMS does; counts its calls."""

    calls = 0

    def __init__(self, options: Mapping[str, str]) -> None:
        from mlsecops.store.encryption import LocalKek

        self._kek = LocalKek(bytes.fromhex(options["seed"]) * 2)

    def kek_id(self) -> str:
        return "kms:test"

    def wrap(self, data_key: bytes, context: bytes) -> bytes:
        _Kms.calls += 1
        return self._kek.wrap(data_key, context)

    def unwrap(self, wrapped: bytes, context: bytes) -> bytes:
        _Kms.calls += 1
        return self._kek.unwrap(wrapped, context)


def test_key_provider(workspace: Workspace, tmp_path: Path) -> None:
    from mlsecops.store.encryption import register_key_provider

    ws = workspace
    register_key_provider("test-kms", _Kms)
    sha = ws.add_artifact(_blob(tmp_path, "p.bin", 3000), actor="t")
    source = KekSource.provider("test-kms", {"seed": "ab" * 16})
    assert enable_encryption(ws, source, actor="t").kek_id == "kms:test"
    ws.keyring.forget()
    before = _Kms.calls
    with ws.artifacts.open(sha) as fh:
        assert fh.read() == (tmp_path / "p.bin").read_bytes()
    assert _Kms.calls == before + 1  # unwrapped once, then cached
    assert encryption_status(ws)["kek_source"] == "provider test-kms (seed=" + "ab" * 16 + ")"
    rotate_kek(ws, KekSource.file(_kek(tmp_path / "kek")), actor="t")
    ws.keyring.forget()
    assert ws.artifacts.verify(sha)
