"""The sign / verify / keys / registry / lineage / bom commands end to end, in-process (SQLite)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

Cli = Callable[..., Any]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"MLSECOPS_HOME": str(tmp_path / ".mlsecops")}


def _key_of(out: str) -> str:
    return [line for line in out.splitlines() if line.startswith("mlsk_")][-1]


def test_sign_verify_keys_cli(cli: Cli, tmp_path: Path, env: dict[str, str]) -> None:
    assert cli("init", env=env).code == 0
    assert cli("keys", "create", "rel", "--type", "ed25519", env=env).code == 0
    key = tmp_path / ".mlsecops" / "keys" / "rel.key"
    assert key.stat().st_mode & 0o777 == 0o600
    model = tmp_path / "model"
    model.mkdir()
    (model / "w.bin").write_bytes(b"w" * 100)
    r = cli("sign", str(model), "--key", str(key), "--json", env=env)
    assert r.code == 0 and json.loads(r.out)["files"] == 1
    assert cli("verify", str(model), "--key", f"{key}.pub", env=env).code == 0
    (model / "w.bin").write_bytes(b"changed")
    r = cli("verify", str(model), "--key", f"{key}.pub", env=env)
    assert r.code == 1 and "w.bin" in r.err and "modified" in r.err
    r = cli("verify", str(model), "--key", f"{key}.pub", "--format", "json", env=env)
    assert r.code == 1 and json.loads(r.out)["verdict"] == "tampered"
    r = cli("verify", str(model), "--key", str(tmp_path / "nope.pub"), env=env)
    assert r.code == 2 and "no public key at" in r.err and "Traceback" not in r.err
    (tmp_path / "model.sig").write_text(
        '{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", "dsse'
    )
    r = cli("verify", str(model), "--key", f"{key}.pub", env=env)
    assert r.code == 1 and "truncated" in r.err
    with cli_log(cli, env) as events:
        assert "artifact.sign" in events and "key.create" in events


class cli_log:
    def __init__(self, cli: Cli, env: dict[str, str]) -> None:
        self.cli, self.env = cli, env

    def __enter__(self) -> list[str]:
        r = self.cli("audit", "log", "--format", "json", env=self.env)
        return [e["action"] for e in json.loads(r.out)]

    def __exit__(self, *exc: object) -> None:
        return None


def test_registry_lifecycle_cli(cli: Cli, tmp_path: Path, env: dict[str, str]) -> None:
    cli("init", env=env)
    admin = _key_of(cli("registry", "users", "add", "alice", "--role", "admin", env=env).out)
    env_admin = {**env, "MLSECOPS_API_KEY": admin}
    dep = _key_of(cli("registry", "users", "add", "dan", "--role", "deployer", env=env_admin).out)
    app = _key_of(cli("registry", "users", "add", "ann", "--role", "approver", env=env_admin).out)
    assert cli("keys", "create", "rel", env=env).code == 0
    keys = tmp_path / ".mlsecops" / "keys"
    assert cli("registry", "trust-key", "rel", str(keys / "rel.key.pub"), env=env_admin).code == 0
    data = tmp_path / "train.csv"
    data.write_text("a,b\n1,2\n")
    versions = []
    for i in (1, 2):
        model = tmp_path / f"m{i}"
        model.mkdir()
        (model / "w.bin").write_bytes(bytes([i]) * 64)
        cli("sign", str(model), "--key", str(keys / "rel.key"), env=env)
        r = cli(
            "registry",
            "register",
            "fraud",
            str(model),
            "--trained-on",
            str(data),
            "--json",
            env={**env, "MLSECOPS_API_KEY": dep},
        )
        assert r.code == 0, r.err
        versions.append(json.loads(r.out)["version"])
    env_dep, env_app = {**env, "MLSECOPS_API_KEY": dep}, {**env, "MLSECOPS_API_KEY": app}
    r = cli("registry", "promote", "fraud", "1", "--to", "production", env=env_dep)
    assert r.code == 1 and "policy gate" in r.err  # a governance verdict: exit 1, like a failed gate
    # A run that never looked at the model gates nothing; a run that scanned it gates only that version.
    blind = tmp_path / "blind.yaml"
    blind.write_text(
        "name: blind\nstages:\n  - {name: audit, check: audit.verify}\npolicy:\n  - {stage: audit, max_severity: info}\n"
    )
    assert cli("run", str(blind), env=env).code == 0
    r = cli("registry", "attach-gate", "fraud@1", "1", env=env_dep)
    assert r.code == 2 and "judged no stage that evaluated a model" in r.err
    for v in versions:
        gate = tmp_path / f"gate{v}.yaml"
        gate.write_text(
            f"name: gate{v}\nstages:\n  - {{name: scan, check: artifact.scan, paths: [m{v}]}}\n"
            "policy:\n  - {stage: scan, max_severity: low}\n"
        )
        assert cli("run", str(gate), env=env).code == 0
    r = cli("registry", "attach-gate", "fraud@2", "2", env=env_dep)
    assert r.code == 2 and "other bytes than this version" in r.err
    r = cli("registry", "approve", "fraud@latest", env=env_app)
    assert r.code == 2 and "pinned version" in r.err
    for v in versions:
        assert cli("registry", "attach-gate", f"fraud@{v}", str(v + 1), env=env_dep).code == 0, v
        assert cli("registry", "approve", f"fraud@{v}", env=env_app).code == 0
        assert cli("registry", "promote", "fraud", str(v), "--to", "production", env=env_dep).code == 0
    r = cli("registry", "rollback", "fraud", env=env_dep)
    assert r.code == 0 and "from version 2 to version 1" in r.out
    r = cli("registry", "show", "fraud@production", "--json", env=env_dep)
    assert json.loads(r.out)["version"] == 1
    r = cli("registry", "history", "fraud", "--json", env=env_dep)
    assert [(h["slot"], h["version"], h["reason"]) for h in json.loads(r.out)] == [
        ("stage:production", 1, "promote"),
        ("stage:production", 2, "promote"),
        ("stage:production", 1, "rollback"),
    ]
    r = cli("lineage", "show", "fraud@1", "--json", env=env_dep)
    kinds = {n["kind"] for n in json.loads(r.out)["nodes"].values()}
    assert {"model_version", "dataset"} <= kinds
    r = cli("bom", str(tmp_path / "m1"), "--ref", "fraud@1", env=env_dep)
    assert r.code == 0, r.err
    bom = json.loads(r.out)
    props = {p["name"]: p["value"] for p in bom["metadata"]["component"]["properties"]}
    assert props["mlsecops:scan:verdict"] == "safe" and props["mlsecops:signature:trusted_key"] == "rel"
    assert any(c["type"] == "data" and c["name"] == "train.csv" for c in bom["components"])
    # a deployer cannot approve; no key at all is a one-line error
    r = cli("registry", "approve", "fraud@2", env=env_dep)
    assert r.code == 1 and "may not approve" in r.err
    r = cli("registry", "list", env={**env, "MLSECOPS_API_KEY": ""})
    assert r.code == 2 and "MLSECOPS_API_KEY" in r.err
    key_id = dep.split("_")[1]
    assert cli("registry", "keys", "revoke", key_id, env=env_admin).code == 0
    r = cli("registry", "list", env=env_dep)
    assert r.code == 2 and "not valid" in r.err
    assert cli("audit", "verify", env=env).code == 0


def test_register_refuses_malicious_model_cli(cli: Cli, tmp_path: Path, env: dict[str, str]) -> None:
    cli("init", env=env)
    admin = _key_of(cli("registry", "users", "add", "alice", "--role", "admin", env=env).out)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "model.pkl").write_bytes(b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.")
    r = cli("registry", "register", "evil", str(bad), env={**env, "MLSECOPS_API_KEY": admin})
    assert r.code == 2 and "malicious" in r.err and "os.system" in r.err


def test_bom_without_registry_scans_and_validates(cli: Cli, tmp_path: Path, env: dict[str, str]) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "w.bin").write_bytes(b"\x00" * 128)
    card = tmp_path / "card.yaml"
    card.write_text("approach: supervised\ntask: classification\n")
    out = tmp_path / "bom.json"
    r = cli("bom", str(model), "--card", str(card), "--output", str(out), env=env)
    assert r.code == 0 and "schema-valid" in r.err
    component = json.loads(out.read_text())["metadata"]["component"]
    props = {p["name"]: p["value"] for p in component["properties"]}
    assert props["mlsecops:scan:verdict"] == "safe" and props["mlsecops:signature"] == "none"
    card.write_text("approach: guessing\n")
    r = cli("bom", str(model), "--card", str(card), env=env)
    assert r.code == 2 and "approach must be one of" in r.err
