"""Signing state changes are recorded by the library: key created, model signed, the sign.model stage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlsecops.core.checks import Target
from mlsecops.core.errors import WorkspaceError
from mlsecops.store import Workspace, audit
from mlsecops.supplychain import signing
from mlsecops.supplychain.signing.checks import SignCheck

PASSWORD = b"correct horse battery staple 42"


def _events(home: Path) -> list[tuple[str, str, str, dict[str, object]]]:
    with Workspace.open(home) as ws, ws.session(readonly=True) as s:
        return [
            (e.actor, e.action, e.subject, json.loads(e.details))
            for e in audit.iter_events(s)
            if e.action in ("key.create", "artifact.sign")
        ]


def _raw_rows(home: Path) -> str:
    with Workspace.open(home) as ws, ws.session(readonly=True) as s:
        return "\n".join(f"{e.actor}|{e.action}|{e.subject}|{e.details}" for e in audit.iter_events(s))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "ws"
    Workspace.init(path).close()
    return path


def test_create_keypair_with_workspace_records_one_event_without_secrets(home: Path, tmp_path: Path) -> None:
    with Workspace.open(home) as ws:
        pub, hint = signing.create_keypair(
            tmp_path / "keys" / "release.key", password=PASSWORD, workspace=ws, actor="alice"
        )
    assert _events(home) == [
        (
            "alice",
            "key.create",
            "key:release",
            {"key_hint": hint, "type": "ecdsa-p256", "public_key": str(pub)},
        )
    ]
    rows = _raw_rows(home)
    private_pem = (tmp_path / "keys" / "release.key").read_bytes()
    body = b"".join(private_pem.splitlines()[1:-1]).decode()
    assert PASSWORD.decode() not in rows
    assert body[:40] not in rows and "PRIVATE KEY" not in rows


def test_create_keypair_without_workspace_records_nothing(home: Path, tmp_path: Path) -> None:
    signing.create_keypair(tmp_path / "k.key")
    assert _events(home) == []


def test_sign_model_with_workspace_records_one_event(home: Path, tmp_path: Path, model_dir: Path) -> None:
    signing.create_keypair(tmp_path / "k.key", password=PASSWORD)
    key = signing.load_private_key(tmp_path / "k.key", password=PASSWORD)
    with Workspace.open(home) as ws:
        result = signing.sign_model(model_dir, key, workspace=ws, actor="ci")
    assert _events(home) == [
        (
            "ci",
            "artifact.sign",
            str(model_dir.resolve()),
            {
                "signature": str(result.signature),
                "key_hint": result.key_hint,
                "files": result.files,
                "algorithm": result.algorithm,
            },
        )
    ]
    assert PASSWORD.decode() not in _raw_rows(home)


def test_sign_stage_records_key_and_signature(home: Path, tmp_path: Path, model_dir: Path) -> None:
    target = Target(
        paths=(model_dir,),
        options={"key": str(tmp_path / "pipe.key"), "create_key": True},
        home=home,
        actor="pipeline",
    )
    report = SignCheck().run(target)
    events = _events(home)
    assert [(a, act) for a, act, _, _ in events] == [
        ("pipeline", "key.create"),
        ("pipeline", "artifact.sign"),
    ]
    assert events[1][3]["key_hint"] == report.data["key_hint"]
    # A second run signs again with the existing key: one more event, no second key.create.
    SignCheck().run(target)
    assert [act for _, act, _, _ in _events(home)] == ["key.create", "artifact.sign", "artifact.sign"]


def test_sign_stage_without_workspace_records_nothing(home: Path, tmp_path: Path, model_dir: Path) -> None:
    target = Target(paths=(model_dir,), options={"key": str(tmp_path / "p.key"), "create_key": True})
    assert SignCheck().run(target).verdict == "signed"
    assert _events(home) == []


def test_unrecordable_change_leaves_no_files(
    home: Path, tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files first, then the event: when the event cannot be written, the files this call wrote go."""
    signing.create_keypair(tmp_path / "ok.key")
    key = signing.load_private_key(tmp_path / "ok.key")

    def refuse(*args: object, **kwargs: object) -> None:
        raise WorkspaceError("audit trail unavailable")

    monkeypatch.setattr(audit, "append", refuse)
    with Workspace.open(home) as ws:
        with pytest.raises(WorkspaceError, match="audit trail unavailable"):
            signing.create_keypair(tmp_path / "new.key", workspace=ws)
        with pytest.raises(WorkspaceError, match="audit trail unavailable"):
            signing.sign_model(model_dir, key, workspace=ws)
    assert not (tmp_path / "new.key").exists() and not (tmp_path / "new.key.pub").exists()
    assert not signing.default_signature_path(model_dir).exists()
    monkeypatch.undo()
    assert _events(home) == []
