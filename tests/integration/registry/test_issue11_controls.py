"""Regressions of issue 11 in the registry, each planting the attack, each with a benign twin.

- item 3: a model swapped between the scan and the store (file and directory) never gets a ``safe``
  verdict recorded for bytes the scanner did not see;
- item 4: rollback refuses a version that no longer meets the production bar;
- item 5: a gate run must have evaluated the version's exact bytes in the stages its policy judged;
- item 13: approvals name a pinned version.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from mlsecops.core.errors import InputError, PermissionDenied
from mlsecops.registry import _register
from mlsecops.registry._tables import ModelVersion
from mlsecops.store import StoredReport, audit
from mlsecops.supplychain import signing

from .conftest import World  # noqa: TID252 - pytest's importlib mode needs the sibling conftest's class

BENIGN = pickle.dumps({"weights": [0.5, 1.5, 2.5]}, protocol=4)
EVIL = b"cos\nsystem\n(S'touch /tmp/mlsecops-pwned'\ntR."  # os.system: the scanner calls it malicious


def _model(tmp: Path, kind: str) -> tuple[Path, Path]:
    """A benign model (a file, or a directory holding it); returns ``(model path, the pickle in it)``."""
    if kind == "file":
        path = tmp / "model.pkl"
        path.write_bytes(BENIGN)
        return path, path
    root = tmp / "model"
    root.mkdir()
    (root / "config.json").write_text('{"kind": "demo"}')
    (root / "model.pkl").write_bytes(BENIGN)
    return root, root / "model.pkl"


def _stored_bytes(world: World, name: str, version: int) -> dict[str, bytes]:
    with world.ws.session(readonly=True) as s:
        files = s.execute(select(ModelVersion.files).where(ModelVersion.version == version)).scalar_one()
    return {n: world.ws.artifacts.path_for(sha).read_bytes() for n, sha, _ in json.loads(files)}


def _wrap_scanner(
    monkeypatch: pytest.MonkeyPatch, *, before: Callable[[], None] = lambda: None, after: Callable[[], None]
) -> list[str]:
    """Replace the registry's scanner by one that calls ``before``, records the content digest of what
    it is asked to scan, scans it for real, then calls ``after``; return the recorded digests."""
    real = _register.scan_artifact
    seen: list[str] = []

    def scan(path: Path) -> Any:
        before()
        files = signing.content_files(path)
        seen.append(signing.tree_digest((n, h) for n, h, _ in files))
        outcome = real(path)
        after()
        return outcome

    monkeypatch.setattr(_register, "scan_artifact", scan)
    return seen


# --------------------------------------------------------------------------- item 3: scan what is stored


@pytest.mark.parametrize("kind", ["file", "dir"])
def test_swap_after_the_scan_cannot_store_unscanned_bytes(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    model, pkl = _model(tmp_path, kind)
    seen = _wrap_scanner(monkeypatch, after=lambda: pkl.write_bytes(EVIL))
    info = world.regs["deployer"].register("fraud", model)
    assert info.scan_verdict == "safe"
    assert seen == [info.digest]  # the version is exactly what the scanner judged
    stored = _stored_bytes(world, "fraud", info.version)
    assert EVIL not in stored.values() and BENIGN in stored.values()


@pytest.mark.parametrize("kind", ["file", "dir"])
def test_swap_during_the_scan_cannot_store_unscanned_bytes(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    model, pkl = _model(tmp_path, kind)
    seen = _wrap_scanner(monkeypatch, before=lambda: pkl.write_bytes(EVIL), after=lambda: None)
    info = world.regs["deployer"].register("fraud", model)
    assert seen == [info.digest] and EVIL not in _stored_bytes(world, "fraud", info.version).values()


@pytest.mark.parametrize("kind", ["file", "dir"])
def test_swap_before_the_copy_is_scanned_and_refused(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    model, pkl = _model(tmp_path, kind)
    real_store = _register._store

    def swap_then_store(ws: Any, path: Path, entries: Any) -> Any:
        pkl.write_bytes(EVIL)  # after the walk, before the bytes are read
        return real_store(ws, path, entries)

    monkeypatch.setattr(_register, "_store", swap_then_store)
    with pytest.raises(InputError, match="malicious"):
        world.regs["deployer"].register("fraud", model)
    assert world.regs["viewer"].list_models() == []
    with world.ws.session(readonly=True) as s:
        refused = [e for e in audit.iter_events(s, action="registry.register.refused")]
    assert len(refused) == 1 and "os.system" in refused[0].details


@pytest.mark.parametrize("kind", ["file", "dir"])
def test_benign_registration_stores_and_scans_the_source_bytes(
    world: World, tmp_path: Path, kind: str
) -> None:
    model, _ = _model(tmp_path, kind)
    info = world.regs["deployer"].register("fraud", model)
    source = signing.tree_digest((n, h) for n, h, _ in signing.content_files(model))
    assert info.scan_verdict == "safe" and info.digest == source
    assert not list(world.ws.artifacts.root.glob(".scan-*"))  # the staging folder is gone


def test_register_refuses_a_fifo_signature_without_hanging(world: World, tmp_path: Path) -> None:
    import os

    model, _ = _model(tmp_path, "dir")
    fifo = tmp_path / "model.sig"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file"):
        world.regs["deployer"].register("fraud", model, signature=fifo)


# --------------------------------------------------------------------------- item 4: rollback's bar


def _two_in_production(world: World) -> tuple[int, int]:
    dep = world.regs["deployer"]
    v1 = world.ready_for_production("fraud", b"one")
    dep.promote("fraud", v1, to="production")
    v2 = world.ready_for_production("fraud", b"two")
    dep.promote("fraud", v2, to="production")
    return v1, v2


def test_rollback_refuses_a_version_whose_key_was_distrusted(world: World) -> None:
    v1, v2 = _two_in_production(world)
    world.regs["admin"].distrust_key("release")
    with pytest.raises(PermissionDenied, match=f"cannot roll back to version {v1}.*not a trusted key"):
        world.regs["deployer"].rollback("fraud")
    assert world.regs["viewer"].show("fraud@production").version == v2
    with world.ws.session(readonly=True) as s:
        assert [e.action for e in audit.iter_events(s, action="registry.rollback*")] == [
            "registry.rollback.refused"
        ]


def test_rollback_refuses_a_version_whose_stored_blob_was_tampered(world: World) -> None:
    v1, v2 = _two_in_production(world)
    with world.ws.session(readonly=True) as s:
        files = s.execute(select(ModelVersion.files).where(ModelVersion.version == v1)).scalar_one()
    weights = next(sha for name, sha, _ in json.loads(files) if name == "weights.bin")
    world.ws.artifacts.path_for(weights).write_bytes(b"tampered")
    with pytest.raises(PermissionDenied, match="signature does not verify"):
        world.regs["deployer"].rollback("fraud")
    assert world.regs["viewer"].show("fraud@production").version == v2


def test_rollback_to_a_version_that_meets_the_bar_still_works(world: World) -> None:
    v1, v2 = _two_in_production(world)
    assert world.regs["deployer"].rollback("fraud") == (v2, v1)


# --------------------------------------------------------------------------- item 5: gate bound to bytes


def test_gate_run_must_have_scanned_this_versions_bytes(world: World) -> None:
    dep = world.regs["deployer"]
    a, b = world.model("a", b"aaa"), world.model("b", b"bbb")
    va, vb = dep.register("fraud", a).version, dep.register("fraud", b).version
    cases = {
        "judged no stage that evaluated a model": world.passing_run(),
        "other bytes than this version": world.passing_run(b),
        "judged no stage that evaluated a model ": world.passing_run(a, judged=False),
        "has no judged artifact.scan stage": world.passing_run(a, check="sign.verify"),
    }
    for why, run in cases.items():
        with pytest.raises(InputError, match=why.strip()):
            dep.attach_gate(f"fraud@{va}", run)
    run_a = world.passing_run(a)
    dep.attach_gate(f"fraud@{va}", run_a)  # the benign twin
    with pytest.raises(InputError, match="other bytes"):
        dep.attach_gate(f"fraud@{vb}", run_a)  # one run cannot gate a different version
    twin = dep.register("twin", a)  # the same bytes under another name: the same artifact
    dep.attach_gate(f"twin@{twin.version}", run_a)


def test_gate_run_over_a_directory_holding_the_model_counts(world: World, tmp_path: Path) -> None:
    dep = world.regs["deployer"]
    single = tmp_path / "assets" / "model.pkl"
    single.parent.mkdir()
    single.write_bytes(BENIGN)
    (tmp_path / "assets" / "other.bin").write_bytes(b"other")
    v = dep.register("fraud", single).version
    dep.attach_gate(f"fraud@{v}", world.passing_run(tmp_path / "assets"))


def test_a_path_that_changed_during_the_stage_gates_nothing(world: World) -> None:
    from mlsecops.core.checks import get_check
    from mlsecops.pipeline import Stage
    from mlsecops.pipeline.evaluated import read_paths, stage_record

    model = world.model("m", b"mmm")
    v = world.regs["deployer"].register("fraud", model).version
    stage = Stage(name="scan", check=get_check("artifact.scan"), paths=(model,))
    before = read_paths(stage)
    (model / "weights.bin").write_bytes(b"swapped while the stage ran")
    record = stage_record(stage, before, judged=True)
    assert record is not None and record["paths"][0]["digest"] is None
    assert "changed while the stage ran" in record["paths"][0]["error"]
    run = world.passing_run()
    with world.ws.session() as s:
        s.add(
            StoredReport(
                run_id=run,
                stage="scan",
                kind="artifact.scan",
                subject=str(model),
                created="2026-01-01T00:00:01+00:00",
                body="{}",
                artifacts=json.dumps(record),
            )
        )
    with pytest.raises(InputError, match="other bytes than this version"):
        world.regs["deployer"].attach_gate(f"fraud@{v}", run)


def test_a_gate_set_behind_the_registrys_back_blocks_promotion(world: World) -> None:
    v = world.ready_for_production("fraud", b"one")
    unrelated = world.passing_run()
    with world.ws.session() as s:
        row = s.execute(select(ModelVersion).where(ModelVersion.version == v)).scalar_one()
        row.gate_run_id = unrelated
    with pytest.raises(PermissionDenied, match="judged no stage that evaluated a model"):
        world.regs["deployer"].promote("fraud", v, to="production")


# --------------------------------------------------------------------------- item 13: pinned approvals


def test_approve_refuses_an_unpinned_reference(world: World) -> None:
    dep, app = world.regs["deployer"], world.regs["approver"]
    v = dep.register("fraud", world.model("m", b"m")).version
    dep.set_alias("fraud", "champion", v)
    dep.promote("fraud", v, to="staging")
    for ref in ("fraud", "fraud@latest", "fraud@champion", "fraud@staging"):
        with pytest.raises(InputError, match="pinned version such as fraud@3"):
            app.approve(ref)
    app.approve(f"fraud@{v}")
    assert world.regs["viewer"].show(f"fraud@{v}").approvals == ("approver",)


def test_a_folder_swapped_for_a_symlink_after_the_walk_is_refused(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, _ = _model(tmp_path, "dir")
    (model / "sub").mkdir()
    (model / "sub" / "notes.txt").write_text("notes")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "notes.txt").write_text("a secret outside the model")
    real_store = _register._store

    def swap_then_store(ws: Any, path: Path, entries: Any) -> Any:
        (model / "sub" / "notes.txt").unlink()
        (model / "sub").rmdir()
        (model / "sub").symlink_to(outside)
        return real_store(ws, path, entries)

    monkeypatch.setattr(_register, "_store", swap_then_store)
    with pytest.raises(InputError, match="symlink"):
        world.regs["deployer"].register("fraud", model)
    assert world.regs["viewer"].list_models() == []
