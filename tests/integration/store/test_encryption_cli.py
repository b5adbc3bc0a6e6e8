"""Encryption at rest through the real commands: the same model and data go through a plain workspace
and one encrypted half-way (after the first registration); digests, signatures, scan verdicts and
lineage are identical, the stored blobs hold no plaintext, and promotion (signature re-verified over
the stored blobs), serve's loader and the artifact check work on the encrypted store."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlsecops.core.checks import Target
from mlsecops.data import generate_ratings
from mlsecops.registry import Registry, authenticate
from mlsecops.runtime.serving import load_registered
from mlsecops.store import Workspace
from mlsecops.store.checks import ArtifactStoreCheck
from mlsecops.supplychain import signing

Cli = Callable[..., Any]
MARKER = "feature_PLAINTEXT_MARKER_5e1d"


def _key_of(out: str) -> str:
    return [line for line in out.splitlines() if line.startswith("mlsk_")][-1]


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Path]:
    """A signed scikit-learn model whose pickle carries a marker string, a second model, ratings data."""
    import joblib
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(60, 3)), columns=[MARKER, "b", "c"])
    y = (x[MARKER] > 0).astype(int)
    out: dict[str, Path] = {}
    for name, c in (("first", 1.0), ("second", 0.1)):
        d = tmp_path / "models" / name
        d.mkdir(parents=True)
        out[name] = d / "model.joblib"
        joblib.dump(LogisticRegression(C=c).fit(x, y), out[name])
    pub, _ = signing.create_keypair(tmp_path / "keys" / "release.key")
    out["key"], out["pub"] = tmp_path / "keys" / "release.key", pub
    generate_ratings(n_users=600, n_items=300, n_fake=50, seed=3).write_csv(tmp_path / "ratings.csv")
    out["ratings"] = tmp_path / "ratings.csv"
    out["kek"] = tmp_path / "kek"
    return out


def _passing_run(ws: Workspace, model: Path) -> int:
    """A recorded pipeline run whose judged scan stage evaluated ``model`` (as ``mlsecops run`` records it)."""
    from mlsecops.core.checks import get_check
    from mlsecops.pipeline import Stage
    from mlsecops.pipeline.evaluated import read_paths, stage_record
    from mlsecops.store import PipelineRun, StoredReport

    stage = Stage(name="scan", check=get_check("artifact.scan"), paths=(model,))
    record = stage_record(stage, read_paths(stage), judged=True)
    with ws.session() as s:
        run = PipelineRun(
            pipeline="gate",
            pipeline_sha256="0" * 64,
            started="2026-01-01T00:00:00+00:00",
            finished="2026-01-01T00:00:01+00:00",
            actor="ci",
            passed=True,
            gate="[]",
        )
        s.add(run)
        s.flush()
        s.add(
            StoredReport(
                run_id=run.id,
                stage="scan",
                kind="artifact.scan",
                subject=str(model),
                created="2026-01-01T00:00:01+00:00",
                verdict="safe",
                body="{}",
                artifacts=json.dumps(record),
            )
        )
        return int(run.id)


def _flow(cli: Cli, home: Path, inputs: dict[str, Path], *, encrypt: bool) -> dict[str, Any]:
    env = {"MLSECOPS_HOME": str(home), "MLSECOPS_API_KEY": ""}
    assert cli("init", env=env).code == 0
    admin = _key_of(cli("registry", "users", "add", "root", "--role", "admin", env=env).out)
    env_admin = {**env, "MLSECOPS_API_KEY": admin}
    dep = _key_of(cli("registry", "users", "add", "dan", "--role", "deployer", env=env_admin).out)
    app = _key_of(cli("registry", "users", "add", "ann", "--role", "approver", env=env_admin).out)
    env_dep = {**env, "MLSECOPS_API_KEY": dep}
    assert cli("registry", "trust-key", "release", str(inputs["pub"]), env=env_admin).code == 0
    out: dict[str, Any] = {}
    for i, name in enumerate(("first", "second")):
        model = inputs[name]
        if not model.with_suffix(".joblib.sig").exists():
            assert cli("sign", str(model), "--key", str(inputs["key"]), env=env).code == 0
        assert cli("verify", str(model), "--key", str(inputs["pub"]), env=env).code == 0
        r = cli(
            "registry",
            "register",
            name,
            str(model),
            "--trained-on",
            str(inputs["ratings"]),
            "--json",
            env=env_dep,
        )
        assert r.code == 0, r.err
        shown = json.loads(cli("registry", "show", f"{name}@1", "--json", env=env_dep).out)
        lineage = json.loads(cli("lineage", "show", f"{name}@1", "--format", "json", env=env_dep).out)
        out[name] = {
            k: shown[k] for k in ("digest", "files", "signed_by", "scan_verdict", "signature_key_hint")
        }
        out[name]["lineage"] = sorted((n["kind"], n["name"], n["digest"]) for n in lineage["nodes"].values())
        if i == 0 and encrypt:  # one blob stored before, one after: both paths of the store
            r = cli("workspace", "encrypt", "--kek-file", str(inputs["kek"]), env=env)
            assert r.code == 0, r.err
    r = cli(
        "data",
        "poison",
        str(inputs["ratings"]),
        "--quarantine",
        str(home.parent / f"q-{encrypt}"),
        "--format",
        "json",
        env=env,
    )
    assert r.code in (0, 1), r.err
    out["quarantine"] = json.loads(r.out)["quarantine"]
    r = cli("data", "register", str(inputs["ratings"]), "--name", "ratings", "--format", "json", env=env)
    assert r.code == 0, r.err
    out["dataset"] = json.loads(r.out)["digest"]
    with Workspace.open(home) as ws:  # promotion re-verifies the signature over the stored blobs
        ref = "first@1"
        Registry(ws, authenticate(ws, dep)).attach_gate(ref, _passing_run(ws, inputs["first"]))
        Registry(ws, authenticate(ws, app)).approve(ref)
        Registry(ws, authenticate(ws, dep)).promote("first", 1, to="production")
        out["served"] = load_registered(ws, "first@production").adapter.predict_proba(np.zeros((2, 3)))
        out["check"] = ArtifactStoreCheck().run(Target(home=home)).verdict
    assert cli("audit", "verify", env=env).code == 0
    out["status"] = json.loads(cli("workspace", "encryption", "status", "--format", "json", env=env).out)
    return out


def test_encrypted_workspace_matches_plain_one(cli: Cli, tmp_path: Path, inputs: dict[str, Path]) -> None:
    inputs["kek"].write_text(os.urandom(32).hex())
    inputs["kek"].chmod(0o600)
    plain = _flow(cli, tmp_path / "plain" / ".mlsecops", inputs, encrypt=False)
    home = tmp_path / "enc" / ".mlsecops"
    enc = _flow(cli, home, inputs, encrypt=True)
    for key in ("first", "second", "dataset"):
        assert enc[key] == plain[key], key
    for key in ("clean_sha256", "suspect_sha256"):
        assert enc["quarantine"][key] == plain["quarantine"][key]
    assert np.array_equal(enc["served"], plain["served"])
    assert enc["check"] == plain["check"] == "intact"
    assert plain["status"]["state"] == "off" and enc["status"]["state"] == "on"
    assert enc["status"]["unencrypted"] == 0 and enc["status"]["blobs"] == plain["status"]["blobs"] >= 4
    blobs = [p for p in (home / "artifacts").rglob("*") if p.is_file()]
    header = inputs["ratings"].read_text().splitlines()[0].encode()
    assert blobs and not any(MARKER.encode() in p.read_bytes() or header in p.read_bytes() for p in blobs)
    plain_blobs = b"".join(
        p.read_bytes() for p in (tmp_path / "plain" / ".mlsecops" / "artifacts").rglob("*") if p.is_file()
    )
    assert MARKER.encode() in plain_blobs and header in plain_blobs  # the marker test can fail


def test_wrong_key_through_the_cli(cli: Cli, tmp_path: Path, inputs: dict[str, Path]) -> None:
    env = {"MLSECOPS_HOME": str(tmp_path / ".mlsecops")}
    assert cli("init", env=env).code == 0
    admin = _key_of(cli("registry", "users", "add", "root", "--role", "admin", env=env).out)
    env_admin = {**env, "MLSECOPS_API_KEY": admin}
    assert cli("registry", "trust-key", "release", str(inputs["pub"]), env=env_admin).code == 0
    assert cli("workspace", "encryption", "keygen", str(inputs["kek"])).code == 0
    r = cli("workspace", "encrypt", "--kek-env", "MLSECOPS_TEST_KEK", env={**env, "MLSECOPS_TEST_KEK": ""})
    assert r.code == 2 and "MLSECOPS_TEST_KEK is not set" in r.err and "Traceback" not in r.err
    assert cli("workspace", "encrypt", "--kek-file", str(inputs["kek"]), env=env).code == 0
    r = cli("registry", "register", "m", str(inputs["first"]), env=env_admin)
    assert r.code == 0, r.err
    good = inputs["kek"].read_text()
    inputs["kek"].write_text(os.urandom(32).hex())
    for args in (
        ("registry", "register", "m", str(inputs["second"])),
        ("workspace", "rotate-key", "--data-key"),
    ):
        r = cli(*args, env=env_admin)
        assert r.code == 2 and "wrong key-encryption key" in r.err, r.err
        assert len(r.err.strip().splitlines()) == 1 and good.strip() not in r.err + r.out
    inputs["kek"].chmod(0o644)
    r = cli("registry", "register", "m", str(inputs["second"]), env=env_admin)
    assert r.code == 2 and "chmod 600" in r.err
    inputs["kek"].write_text(good)
    inputs["kek"].chmod(0o600)
    new = tmp_path / "kek2"
    assert cli("workspace", "encryption", "keygen", str(new)).code == 0
    assert cli("workspace", "encryption", "keygen", str(new)).code == 2  # never overwritten
    assert cli("workspace", "rotate-key", "--kek-file", str(new), "--data-key", env=env).code == 0
    assert cli("registry", "register", "m", str(inputs["second"]), env=env_admin).code == 0
    status = json.loads(cli("workspace", "encryption", "status", "--format", "json", env=env).out)
    assert status["kek_source"] == f"file {new}" and status["data_keys"] == 1 and status["unencrypted"] == 0
    assert good.strip() not in json.dumps(status) and new.read_text().strip() not in json.dumps(status)
