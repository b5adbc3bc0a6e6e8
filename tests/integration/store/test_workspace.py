"""Workspace creation, permissions, migrations and refusal of bad workspaces."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import text

from mlsecops.core.errors import InputError, SchemaTooNewError, WorkspaceError
from mlsecops.store import StoredArtifact, Workspace, audit


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_init_creates_private_layout(workspace_home: Path) -> None:
    with Workspace.init(workspace_home) as ws:
        assert _mode(workspace_home) == 0o700
        assert _mode(ws.keys_dir) == 0o700
        assert _mode(workspace_home / "artifacts") == 0o700
        assert _mode(workspace_home / "mlsecops.db") == 0o600
        with ws.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_init_is_idempotent_and_audited_once(workspace: Workspace, workspace_home: Path) -> None:
    Workspace.init(workspace_home, workspace.url).close()
    with workspace.session(readonly=True) as s:
        assert [e.action for e in audit.iter_events(s)] == ["workspace.init"]


def test_open_missing_workspace_is_clear_error(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="mlsecops init"):
        Workspace.open(tmp_path / "nowhere")


def test_corrupt_database_is_clear_error_and_untouched(workspace_home: Path) -> None:
    workspace_home.mkdir()
    db = workspace_home / "mlsecops.db"
    db.write_bytes(b"garbage" * 1000)
    with pytest.raises(WorkspaceError, match="cannot use the workspace database"):
        Workspace.open(workspace_home)
    assert db.read_bytes() == b"garbage" * 1000


def test_newer_schema_is_refused_without_change(workspace: Workspace, workspace_home: Path) -> None:
    with workspace.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    with pytest.raises(SchemaTooNewError, match="newer"):
        Workspace.open(workspace_home, workspace.url)
    with workspace.engine.connect() as conn:
        assert (
            conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "9999_from_the_future"
        )


def test_artifacts_are_content_addressed_and_audited(workspace: Workspace, tmp_path: Path) -> None:
    f = tmp_path / "model.bin"
    f.write_bytes(b"weights" * 100)
    sha = workspace.add_artifact(f, actor="alice")
    assert sha == workspace.add_artifact(f, actor="alice")  # stored once
    assert workspace.artifacts.verify(sha)
    assert _mode(workspace.artifacts.path_for(sha)) == 0o600
    with workspace.session(readonly=True) as s:
        assert s.get(StoredArtifact, sha) is not None
        assert [e.action for e in audit.iter_events(s, subject=sha)] == ["artifact.store"]


def test_artifact_store_rejects_bad_digest_and_missing_file(workspace: Workspace, tmp_path: Path) -> None:
    with pytest.raises(InputError):
        workspace.artifacts.path_for("../../etc/passwd")
    with pytest.raises(InputError):
        workspace.add_artifact(tmp_path / "absent.bin", actor="a")


def test_schema_revisions_agree_with_alembic() -> None:
    from alembic.script import ScriptDirectory

    from mlsecops.store.workspace import _alembic_config, schema_revisions

    script = ScriptDirectory.from_config(_alembic_config())
    head, known = schema_revisions()
    assert script.get_heads() == [head]
    assert known == {rev.revision for rev in script.walk_revisions()}


def test_opening_an_up_to_date_workspace_does_not_import_alembic(workspace_home: Path) -> None:
    import subprocess
    import sys

    Workspace.init(workspace_home).close()
    code = (
        "import sys; from pathlib import Path; from mlsecops.store import Workspace;"
        f"Workspace.open(Path({str(workspace_home)!r})).close(); print('alembic' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "False"
