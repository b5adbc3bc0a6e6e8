"""Issue 19 item 5: a database administrator who also holds ``keys/`` rewrites the whole chain with
recomputed hashes and a freshly MACed head; nothing inside the workspace can tell, signed checkpoints
kept elsewhere do.

Attackers planted here, on SQLite and PostgreSQL (the ``workspace`` fixture runs both): an edited event
with the chain recomputed after it; the newest events deleted and the head re-sealed; the chain replaced
by a new one; checkpoints forged with a new key, edited, or cut from another workspace. The benign twins:
an untouched chain, and one that grew after its checkpoints, verify.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import text

from mlsecops.core.errors import InputError
from mlsecops.store import Workspace, audit
from mlsecops.store import checkpoints as cp
from mlsecops.store._seal import KEY_FILE, MARK_FILE

pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")


def _append(ws: Workspace, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        with ws.session() as s:
            audit.append(s, actor="alice", action="test.touch", subject=f"item-{i}", details={"i": i})


def _checkpoint(ws: Workspace, path: Path) -> cp.Checkpoint:
    key = cp.load_or_create_key(ws.keys_dir)
    with ws.session(readonly=True) as s:
        mark = cp.sign_head(s, key)
    cp.write_checkpoint(path, mark)
    return mark


def _check(ws: Workspace, path: Path, public: Path) -> cp.CheckpointStatus:
    with ws.session(readonly=True) as s:
        return cp.verify_checkpoints(s, cp.read_checkpoints(path), cp.load_public_key(public))


def _plain(ws: Workspace) -> bool:
    with ws.session(readonly=True) as s:
        return audit.verify(s).ok


def _rewrite_from(ws: Workspace, seq: int, *, new_subject: str) -> None:
    """The attacker edits event ``seq`` and recomputes every hash after it, the head and its MAC
    (they hold the head key), and forgets the host's mark: a chain consistent in every way."""
    key = bytes.fromhex((ws.keys_dir / KEY_FILE).read_text().strip())
    with ws.engine.begin() as conn:
        rows = conn.execute(
            text("SELECT seq, ts, actor, action, subject, details, prev_hash FROM audit_events ORDER BY seq")
        ).all()
        prev = audit.GENESIS
        for row in rows:
            subject = new_subject if row.seq == seq else row.subject
            if row.seq < seq:
                prev = conn.execute(
                    text("SELECT hash FROM audit_events WHERE seq = :s"), {"s": row.seq}
                ).scalar_one()
                continue
            digest = audit.event_hash(
                prev,
                seq=row.seq,
                ts=row.ts,
                actor=row.actor,
                action=row.action,
                subject=subject,
                details=row.details,
            )
            conn.execute(
                text("UPDATE audit_events SET subject = :sub, prev_hash = :p, hash = :h WHERE seq = :s"),
                {"sub": subject, "p": prev, "h": digest, "s": row.seq},
            )
            prev = digest
        last = rows[-1].seq
        mac = hmac.new(key, f"mlsecops-audit-head/1:{last}:{prev}".encode(), hashlib.sha256).hexdigest()
        conn.execute(
            text("UPDATE audit_head SET seq = :s, hash = :h, mac = :m"), {"s": last, "h": prev, "m": mac}
        )
    (ws.keys_dir / MARK_FILE).unlink()


@pytest.fixture
def trusted(workspace: Workspace, tmp_path: Path) -> tuple[Path, Path]:
    """Three checkpoints over a growing chain, and the public key copied out of the workspace."""
    file = tmp_path / "elsewhere" / "checkpoints.jsonl"
    file.parent.mkdir()
    for n in range(3):
        _append(workspace, 3, start=3 * n)
        _checkpoint(workspace, file)
    public = tmp_path / "elsewhere" / "audit.pub"
    public.write_bytes((workspace.keys_dir / cp.PUBLIC_KEY_FILE).read_bytes())
    return file, public


def test_benign_twin_checkpoints_of_an_untouched_and_a_grown_chain_hold(
    workspace: Workspace, trusted: tuple[Path, Path]
) -> None:
    file, public = trusted
    status = _check(workspace, file, public)
    assert status.ok and status.checked == 3 and status.newest == 10
    _append(workspace, 5, start=100)  # events after the newest checkpoint are fine
    assert _check(workspace, file, public).ok
    assert (workspace.keys_dir / cp.PRIVATE_KEY_FILE).stat().st_mode & 0o777 == 0o600


def test_rewritten_chain_with_keys_passes_plain_verify_but_not_the_checkpoints(
    workspace: Workspace, trusted: tuple[Path, Path]
) -> None:
    file, public = trusted
    _rewrite_from(workspace, 4, new_subject="item-hidden")
    assert _plain(workspace)  # the documented gap: nothing inside the workspace can tell
    status = _check(workspace, file, public)
    assert not status.ok and status.chain is not None and status.chain.bad_seq == 4
    assert "signed checkpoint records event 4" in status.reason


def test_truncated_and_resealed_chain_fails(workspace: Workspace, trusted: tuple[Path, Path]) -> None:
    file, public = trusted
    key = bytes.fromhex((workspace.keys_dir / KEY_FILE).read_text().strip())
    with workspace.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_events WHERE seq > 6"))
        digest = conn.execute(text("SELECT hash FROM audit_events WHERE seq = 6")).scalar_one()
        mac = hmac.new(key, f"mlsecops-audit-head/1:6:{digest}".encode(), hashlib.sha256).hexdigest()
        conn.execute(text("UPDATE audit_head SET seq = 6, hash = :h, mac = :m"), {"h": digest, "m": mac})
    (workspace.keys_dir / MARK_FILE).unlink()
    assert _plain(workspace)
    status = _check(workspace, file, public)
    assert not status.ok and "is gone" in status.reason


def test_checkpoints_re_signed_with_a_new_key_are_refused(
    workspace: Workspace, trusted: tuple[Path, Path], tmp_path: Path
) -> None:
    """The attacker replaces the workspace's checkpoint key and signs fresh checkpoints of the
    rewritten chain: the verifier's own copy of the public key refuses them."""
    _, public = trusted
    _rewrite_from(workspace, 2, new_subject="x")
    (workspace.keys_dir / cp.PRIVATE_KEY_FILE).unlink()
    (workspace.keys_dir / cp.PUBLIC_KEY_FILE).unlink()
    forged = tmp_path / "forged.jsonl"
    _checkpoint(workspace, forged)
    assert _check(workspace, forged, workspace.keys_dir / cp.PUBLIC_KEY_FILE).ok  # the weak check
    status = _check(workspace, forged, public)
    assert not status.ok and "not by the given key" in status.reason


def test_edited_checkpoint_line_has_an_invalid_signature(
    workspace: Workspace, trusted: tuple[Path, Path]
) -> None:
    file, public = trusted
    lines = file.read_text().splitlines()
    lines[1] = lines[1].replace('"seq":7', '"seq":6')
    file.write_text("\n".join(lines) + "\n")
    status = _check(workspace, file, public)
    assert not status.ok and "invalid signature" in status.reason


def test_checkpoints_of_another_workspace_do_not_vouch(
    workspace: Workspace, trusted: tuple[Path, Path], tmp_path: Path
) -> None:
    file, _ = trusted
    other = Workspace.init(tmp_path / "other")
    try:
        # the same key material moved over: only the chain identity tells them apart
        for name in (cp.PRIVATE_KEY_FILE, cp.PUBLIC_KEY_FILE):
            (other.keys_dir / name).write_bytes((workspace.keys_dir / name).read_bytes())
        status = _check(other, file, other.keys_dir / cp.PUBLIC_KEY_FILE)
        assert not status.ok and "event 1 differs" in status.reason
    finally:
        other.close()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not json\n", "line 1: not JSON"),
        (b'{"seq": 1}\n', "exactly the fields"),
        (b"\n" + b"x" * 5000 + b"\n", "line 2: longer than"),
        (b"", "holds no checkpoint"),
    ],
    ids=["not-json", "fields", "huge-line", "empty"],
)
def test_malformed_checkpoint_files_are_one_line_errors(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "c.jsonl"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        cp.read_checkpoints(path)


def test_a_public_key_of_another_type_is_refused(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    path = tmp_path / "ec.pub"
    path.write_bytes(pem)
    with pytest.raises(InputError, match="not an Ed25519 public key"):
        cp.load_public_key(path)
    assert isinstance(Ed25519PrivateKey.generate(), Ed25519PrivateKey)


def test_cli_checkpoint_and_verify(cli, tmp_path: Path) -> None:
    """`audit checkpoint --to` appends and audits; `audit verify --checkpoints --public-key` passes,
    then fails with one line (exit 1) after a rewrite; bad files are exit 2."""
    assert cli("init").code == 0
    file = tmp_path / "cps.jsonl"
    first = cli("audit", "checkpoint", "--to", str(file))
    assert first.code == 0 and "signed by key" in first.out
    assert cli("audit", "checkpoint", "--to", str(file)).code == 0
    log = cli("audit", "log", "--format", "json")
    assert log.out.count("audit.checkpoint") == 2
    public = tmp_path / "trusted.pub"
    public.write_bytes((tmp_path / ".mlsecops" / "keys" / cp.PUBLIC_KEY_FILE).read_bytes())
    ok = cli("audit", "verify", "--checkpoints", str(file), "--public-key", str(public))
    assert ok.code == 0 and "2 signed checkpoint(s) hold" in ok.out
    weak = cli("audit", "verify", "--checkpoints", str(file))
    assert weak.code == 0 and "--public-key" in weak.err
    with Workspace.open(tmp_path / ".mlsecops") as ws:
        _rewrite_from(ws, 2, new_subject="rewritten")
    assert cli("audit", "verify").code == 0
    bad = cli("audit", "verify", "--checkpoints", str(file), "--public-key", str(public))
    assert bad.code == 1 and "signed checkpoint" in bad.err and "Traceback" not in bad.err
    (tmp_path / "junk").write_text("garbage\n")
    junk = cli("audit", "verify", "--checkpoints", str(tmp_path / "junk"))
    assert junk.code == 2 and "line 1" in junk.err
    assert cli("audit", "verify", "--public-key", str(public)).code == 2
