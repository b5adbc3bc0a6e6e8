"""The ``registry.register`` check (the pipeline's ``register`` stage) and the ``sign.model`` stage's
first-run key creation."""

from __future__ import annotations

from pathlib import Path

from mlsecops.core.checks import Target, get_check
from mlsecops.core.findings import Severity
from mlsecops.store import Workspace


def _target(ws: Workspace, model: Path, key_file: Path) -> Target:
    options = {"name": "digits", "api_key_file": str(key_file), "bootstrap": True}
    return Target(paths=(model,), options=options, home=ws.home, database_url=ws.url)


def test_register_stage_bootstraps_reuses_and_refuses(workspace: Workspace, tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "w.bin").write_bytes(b"\x01" * 64)
    key_file = tmp_path / "keys" / "registry-api-key"
    key_file.parent.mkdir()
    key_file.write_text("mlsk_stale_from-an-old-workspace\n")  # no users yet: replaced by bootstrap
    check = get_check("registry.register").create()
    first = check.run(_target(workspace, model, key_file))
    assert first.verdict == "registered" and first.data["version"] == 1
    assert key_file.stat().st_mode & 0o777 == 0o600
    again = check.run(_target(workspace, model, key_file))
    assert again.data["version"] == 1  # same content: the existing version, not a new one
    (model / "evil.pkl").write_bytes(b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.")
    refused = check.run(_target(workspace, model, key_file))
    assert refused.verdict == "refused" and refused.max_severity == Severity.CRITICAL
    assert "malicious" in refused.findings[0].detail


def test_sign_stage_creates_its_key_once(tmp_path: Path) -> None:
    model = tmp_path / "model.bin"
    model.write_bytes(b"\x02" * 64)
    key = tmp_path / "keys" / "release.key"
    check = get_check("sign.model").create()
    target = Target(paths=(model,), options={"key": str(key), "create_key": True, "key_type": "ed25519"})
    first = check.run(target)
    assert key.stat().st_mode & 0o777 == 0o600 and first.verdict == "signed"
    second = check.run(target)
    assert second.data["key_hint"] == first.data["key_hint"]  # the existing key is reused
    verified = get_check("sign.verify").create().run(Target(paths=(model,), options={"key": f"{key}.pub"}))
    assert verified.verdict == "verified"
