"""Registry fixtures: a workspace (SQLite and PostgreSQL) with users of every role, a signed model,
a trusted key and a passing pipeline run."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlsecops.core.checks import get_check
from mlsecops.pipeline import Stage
from mlsecops.pipeline.evaluated import read_paths, stage_record
from mlsecops.registry import Registry, Role, authenticate, create_api_key, create_user
from mlsecops.store import PipelineRun, StoredReport, Workspace
from mlsecops.supplychain import signing


@dataclass
class World:
    """A workspace, a registry per role, and helpers to make signed models."""

    ws: Workspace
    keys: dict[str, str]
    regs: dict[str, Registry]
    key_path: Path
    tmp: Path

    def model(self, name: str, content: bytes = b"weights", *, sign: bool = True) -> Path:
        """A small safe model directory (signed with the trusted key unless ``sign`` is false)."""
        root = self.tmp / "models" / name
        root.mkdir(parents=True)
        (root / "weights.bin").write_bytes(content * 100)
        (root / "config.json").write_text('{"kind": "demo"}')
        if sign:
            signing.sign_model(root, signing.load_private_key(self.key_path))
        return root

    def passing_run(
        self, model: Path | None = None, *, check: str = "artifact.scan", judged: bool = True
    ) -> int:
        """A recorded pipeline run whose gate passed; with ``model``, its ``check`` stage (judged by the
        policy unless ``judged`` is false) evaluated that model, as the pipeline records it
        (``pipeline.evaluated``)."""
        record = None
        if model is not None:
            stage = Stage(name="scan", check=get_check(check), paths=(model,))
            record = stage_record(stage, read_paths(stage), judged=judged)
        with self.ws.session() as s:
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
            if record is not None:
                s.add(
                    StoredReport(
                        run_id=run.id,
                        stage="scan",
                        kind=check,
                        subject=str(model),
                        created="2026-01-01T00:00:01+00:00",
                        verdict="safe",
                        body="{}",
                        artifacts=json.dumps(record),
                    )
                )
            return run.id

    def ready_for_production(self, name: str, content: bytes = b"weights") -> int:
        """Register a signed model, attach a passing gate over it and approve it; return its version."""
        model = self.model(f"{name}-{content.hex()[:8]}", content)
        info = self.regs["deployer"].register(name, model)
        self.regs["deployer"].attach_gate(f"{name}@{info.version}", self.passing_run(model))
        self.regs["approver"].approve(f"{name}@{info.version}")
        return info.version


@pytest.fixture
def world(workspace: Workspace, tmp_path: Path) -> World:
    ws = workspace
    create_user(ws, "root", Role.ADMIN, actor=None)
    keys = {"admin": create_api_key(ws, "root", actor=None)}
    admin = authenticate(ws, keys["admin"])
    for role in ("approver", "deployer", "viewer"):
        create_user(ws, role, Role(role), actor=admin)
        keys[role] = create_api_key(ws, role, actor=admin)
    regs = {role: Registry(ws, authenticate(ws, key)) for role, key in keys.items()}
    pub, _ = signing.create_keypair(tmp_path / "keys" / "release.key")
    regs["admin"].trust_key("release", pub)
    return World(ws, keys, regs, tmp_path / "keys" / "release.key", tmp_path)


@pytest.fixture
def events(world: World) -> Callable[..., list[tuple[str, str, str]]]:
    """``events(prefix)`` -> ``(actor, action, subject)`` of audit events whose action starts with prefix."""
    from mlsecops.store import audit

    def _events(prefix: str = "registry.") -> list[tuple[str, str, str]]:
        with world.ws.session(readonly=True) as s:
            return [(e.actor, e.action, e.subject) for e in audit.iter_events(s, action=prefix + "*")]

    return _events
