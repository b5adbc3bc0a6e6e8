"""The model registry on SQLite and PostgreSQL: registration, gated promotion, rollback, archive,
aliases, history, roles, API keys and the audit trail."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from mlsecops.core.errors import InputError, PermissionDenied, VerificationError
from mlsecops.registry import Role, authenticate, create_api_key, create_user, revoke_api_key
from mlsecops.store import LineageEdge, audit, lineage
from mlsecops.supplychain import signing

from .conftest import World  # noqa: TID252 - pytest's importlib mode needs the sibling conftest's class

Events = Callable[..., list[tuple[str, str, str]]]


def test_register_stores_content_addressed_with_signature_and_lineage(world: World, tmp_path: Path) -> None:
    data = tmp_path / "train.csv"
    data.write_text("x,y\n1,0\n")
    info = world.regs["deployer"].register("fraud", world.model("m1"), trained_on=[str(data)])
    assert (info.version, info.files, info.scan_verdict, info.signed_by) == (1, 2, "safe", "release")
    with world.ws.session(readonly=True) as s:
        node = lineage.find_node(s, "model_version", "fraud", "1")
        assert node is not None and node.digest == info.digest
        graph = lineage.ancestors(s, node)
        kinds = {(n.kind, n.digest) for n in graph.nodes.values()}
    assert ("dataset", hashlib.sha256(data.read_bytes()).hexdigest()) in kinds
    for rel in ("weights.bin", "config.json"):
        assert signing.model_files(world.tmp / "models" / "m1" / rel)[0][1].read_bytes() in {
            world.ws.artifacts.path_for(
                hashlib.sha256((world.tmp / "models" / "m1" / rel).read_bytes()).hexdigest()
            ).read_bytes()
        }
    second = world.regs["deployer"].register("fraud", world.model("m2", b"other"))
    assert second.version == 2 and second.digest != info.digest
    assert [v.version for v in world.regs["viewer"].versions("fraud")] == [1, 2]


def test_malicious_artifact_is_refused_with_findings(world: World, events: Events) -> None:
    bad = world.tmp / "evil"
    bad.mkdir()
    # A protocol-2 pickle calling os.system: GLOBAL 'os system', a string argument, TUPLE1, REDUCE, STOP.
    (bad / "model.pkl").write_bytes(b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.")
    with pytest.raises(InputError, match=r"judged it malicious: \[critical\]"):
        world.regs["deployer"].register("evil", bad)
    assert ("deployer", "registry.register.refused", "evil") in events()
    with pytest.raises(InputError, match="no registered model"):
        world.regs["viewer"].show("evil")


def test_tampered_signature_refuses_registration(world: World) -> None:
    root = world.model("tamper")
    (root / "weights.bin").write_bytes(b"changed after signing")
    with pytest.raises(VerificationError, match=r"modified: 'weights\.bin'"):
        world.regs["deployer"].register("tamper", root)


def test_production_requires_signature_scan_gate_and_approval(world: World, events: Events) -> None:
    dep = world.regs["deployer"]
    unsigned = dep.register("fraud", world.model("u", sign=False))
    with pytest.raises(PermissionDenied) as err:
        dep.promote("fraud", unsigned.version, to="production")
    message = str(err.value)
    assert "no signature" in message and "policy gate" in message and "approver" in message
    assert ("deployer", "registry.promote.refused", "fraud@1") in events()
    version = world.ready_for_production("fraud")
    assert dep.promote("fraud", version, to="production") is None
    assert world.regs["viewer"].show("fraud@production").version == version


def test_untrusted_or_distrusted_key_blocks_production(world: World, tmp_path: Path) -> None:
    version = world.ready_for_production("fraud")
    world.regs["admin"].distrust_key("release")
    with pytest.raises(PermissionDenied, match="is not a trusted key"):
        world.regs["deployer"].promote("fraud", version, to="production")


def test_stored_blob_tampering_blocks_production(world: World) -> None:
    version = world.ready_for_production("fraud")
    info = world.regs["viewer"].show(f"fraud@{version}")
    with world.ws.session(readonly=True) as s:
        from mlsecops.registry._tables import ModelVersion

        row = s.query(ModelVersion).filter_by(version=version).one()
        sha = json.loads(row.files)[0][1]
    blob = world.ws.artifacts.path_for(sha)
    blob.chmod(0o600)
    blob.write_bytes(b"swapped in the store")
    with pytest.raises(PermissionDenied, match="signature does not verify"):
        world.regs["deployer"].promote("fraud", version, to="production")
    assert info.signed_by == "release"


def test_approver_cannot_approve_own_registration_and_viewer_cannot_promote(
    world: World, events: Events
) -> None:
    info = world.regs["admin"].register("fraud", world.model("own"))
    with pytest.raises(PermissionDenied, match="four eyes"):
        world.regs["admin"].approve(f"fraud@{info.version}")
    with pytest.raises(PermissionDenied, match=r"viewer \(viewer\) may not promote"):
        world.regs["viewer"].promote("fraud", info.version, to="staging")
    with pytest.raises(PermissionDenied, match="may not register"):
        world.regs["approver"].register("fraud", world.model("x"))
    assert ("viewer", "registry.denied", "fraud@1") in events()
    assert ("approver", "registry.denied", "fraud") in events()


def test_rollback_restores_previous_production_and_history_answers_dates(world: World) -> None:
    dep = world.regs["deployer"]
    v1 = world.ready_for_production("fraud", b"one")
    dep.promote("fraud", v1, to="production")
    between = dt.datetime.now(dt.UTC)
    v2 = world.ready_for_production("fraud", b"two")
    dep.promote("fraud", v2, to="staging")
    assert dep.promote("fraud", v2, to="production") == v1
    assert dep.rollback("fraud") == (v2, v1)
    assert world.regs["viewer"].show("fraud@production").version == v1
    with world.ws.session(readonly=True) as s:
        v1_node = lineage.find_node(s, "model_version", "fraud", str(v1))
        assert v1_node is not None
        deployed = s.query(LineageEdge).filter_by(parent_id=v1_node.id, relation="deployed_as").count()
    assert deployed == 2  # promoted, then rolled back to
    at_between = world.regs["viewer"].history("fraud", at=between)
    assert [(h.slot, h.version) for h in at_between] == [("stage:production", v1)]
    full = [(h.slot, h.version, h.reason) for h in world.regs["viewer"].history("fraud")]
    assert full == [
        ("stage:production", v1, "promote"),
        ("stage:staging", v2, "promote"),
        ("stage:production", v2, "promote"),
        ("stage:production", v1, "rollback"),
    ]


def test_rollback_without_previous_version_is_a_clear_error(world: World) -> None:
    dep = world.regs["deployer"]
    with pytest.raises(InputError, match="no registered model"):
        dep.rollback("absent")
    v1 = world.ready_for_production("fraud")
    with pytest.raises(InputError, match="nothing in production"):
        dep.rollback("fraud")
    dep.promote("fraud", v1, to="production")
    with pytest.raises(InputError, match="no previous production version"):
        dep.rollback("fraud")
    assert world.regs["viewer"].show("fraud@production").version == v1


def test_archive_and_aliases(world: World) -> None:
    dep = world.regs["deployer"]
    v1 = dep.register("fraud", world.model("a1")).version
    v2 = dep.register("fraud", world.model("a2", b"2")).version
    assert dep.set_alias("fraud", "champion", v1) is None
    assert dep.set_alias("fraud", "champion", v2) == v1
    assert world.regs["viewer"].show("fraud@champion").version == v2
    dep.archive("fraud", v2)
    with pytest.raises(InputError, match="no version in alias champion"):
        world.regs["viewer"].show("fraud@champion")
    with pytest.raises(InputError, match="archived"):
        dep.promote("fraud", v2, to="staging")
    with pytest.raises(InputError, match="must start with a lowercase letter"):
        dep.set_alias("fraud", "production", v1)
    slots = [(h.slot, h.version, h.ended is None) for h in world.regs["viewer"].history("fraud")]
    assert slots == [("alias:champion", v1, False), ("alias:champion", v2, False)]


def test_production_version_cannot_be_archived(world: World) -> None:
    v1 = world.ready_for_production("fraud")
    world.regs["deployer"].promote("fraud", v1, to="production")
    with pytest.raises(InputError, match="is in production"):
        world.regs["deployer"].archive("fraud", v1)
    with pytest.raises(InputError, match="is in production"):
        world.regs["deployer"].promote("fraud", v1, to="staging")
    assert world.regs["viewer"].show("fraud@production").version == v1


def test_api_keys_are_hashed_shown_once_and_revocable(world: World) -> None:
    key = world.keys["deployer"]
    with world.ws.session(readonly=True) as s:
        from mlsecops.registry._tables import ApiKey

        stored = [(k.key_id, k.hash, k.salt) for k in s.query(ApiKey)]
    secret = key.split("_", 2)[2]
    assert all(secret not in h and secret not in salt for _, h, salt in stored)
    key_id = key.split("_")[1]
    revoke_api_key(world.ws, key_id, actor=authenticate(world.ws, world.keys["admin"]))
    with pytest.raises(PermissionDenied, match="not valid"):
        authenticate(world.ws, key)
    with pytest.raises(PermissionDenied, match="not valid"):
        authenticate(world.ws, key[:-2] + "xx")
    with pytest.raises(PermissionDenied, match="not valid"):
        authenticate(world.ws, "garbage")


def test_bootstrap_only_once_and_only_admin(world: World) -> None:
    with pytest.raises(PermissionDenied, match="users exist already"):
        create_user(world.ws, "mallory", Role.ADMIN, actor=None)
    with pytest.raises(PermissionDenied, match="creating an API key needs"):
        create_api_key(world.ws, "root", actor=None)
    with pytest.raises(PermissionDenied, match="may not admin"):
        create_user(world.ws, "eve", Role.ADMIN, actor=authenticate(world.ws, world.keys["deployer"]))


def test_every_action_is_in_an_intact_audit_trail(world: World, events: Events) -> None:
    v1 = world.ready_for_production("fraud")
    world.regs["deployer"].promote("fraud", v1, to="production")
    actions = [a for _, a, _ in events()]
    for expected in (
        "registry.user.create",
        "registry.key.create",
        "registry.key.trust",
        "registry.register",
        "registry.gate.attach",
        "registry.approve",
        "registry.promote",
    ):
        assert expected in actions
    with world.ws.session(readonly=True) as s:
        assert audit.verify(s).ok
