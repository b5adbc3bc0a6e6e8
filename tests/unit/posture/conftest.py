"""Posture fixtures: a workspace (SQLite and PostgreSQL) with users of every role, a trusted key, and
helpers that register real model folders and run real pipelines over them."""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

from mlsecops.pipeline import load_pipeline, run_pipeline
from mlsecops.registry import Registry, Role, authenticate, create_api_key, create_user
from mlsecops.store import Workspace
from mlsecops.supplychain import signing


class _Payload:
    """Pickles into a call of os.system (never unpickled here: the scanner must catch it)."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo owned",))


@dataclass
class World:
    """A workspace, a registry per role, a trusted signing key and real breast-cancer data files."""

    ws: Workspace
    regs: dict[str, Registry]
    key_path: Path
    tmp: Path

    def model(self, name: str, seed: int = 0, *, sign: bool = True, payload: bool = False) -> Path:
        """A release folder ``<name>/`` holding ``model/`` (weights as .npy, config; signed with the
        trusted key unless ``sign`` is false); with ``payload``, a malicious pickle beside ``model/``."""
        root = self.tmp / "releases" / name
        model = root / "model"
        model.mkdir(parents=True)
        np.save(model / "weights.npy", np.random.default_rng(seed).normal(size=(30, 2)))
        (model / "config.json").write_text('{"kind": "linear", "classes": 2}')
        if sign:
            signing.sign_model(model, signing.load_private_key(self.key_path))
        if payload:
            (root / "extra.pkl").write_bytes(pickle.dumps(_Payload()))
        return model

    def data(self) -> tuple[Path, Path]:
        """``train.csv`` (scikit-learn's breast-cancer data) and ``incoming.csv`` (every other row of it:
        a batch from the training distribution, inside its ranges)."""
        folder = self.tmp / "data"
        train, incoming = folder / "train.csv", folder / "incoming.csv"
        if not train.exists():
            folder.mkdir(exist_ok=True)
            frame = load_breast_cancer(as_frame=True).frame.rename(columns={"target": "label"})
            frame.columns = [c.replace(" ", "_") for c in frame.columns]
            frame.to_csv(train, index=False)
            frame.iloc[1::2].to_csv(incoming, index=False)
        return train, incoming

    def run(self, model: Path, *, name: str = "release") -> int:
        """Run a real pipeline over the release folder of ``model``: scan it, verify the model's
        signature, check the incoming data; return the recorded run id."""
        train, incoming = self.data()
        pub = self.key_path.with_name(self.key_path.name + ".pub")
        spec = self.tmp / f"{name}-{model.parent.name}.yaml"
        spec.write_text(
            f"""name: {name}
stages:
  - name: scan
    check: artifact.scan
    paths: [{model.parent}]
  - name: verify
    check: sign.verify
    paths: [{model}]
    options: {{key: {pub}}}
  - name: data
    check: data.check
    paths: [{incoming}]
    options: {{baseline: {train}, label: label}}
policy:
  - stage: scan
    max_severity: low
  - stage: verify
    max_severity: info
  - stage: data
    max_severity: high
"""
        )
        result = run_pipeline(load_pipeline(spec), workspace=self.ws, actor="ci")
        assert result.run_id is not None
        return result.run_id

    def clean_version(self, name: str, seed: int = 0) -> int:
        """Register a signed model trained on train.csv, gate it with a passing run, approve it."""
        model = self.model(f"{name}-{seed}", seed)
        train, _ = self.data()
        info = self.regs["deployer"].register(name, model, trained_on=[str(train)])
        run_id = self.run(model)
        self.regs["deployer"].attach_gate(f"{name}@{info.version}", run_id)
        self.regs["approver"].approve(f"{name}@{info.version}")
        return info.version


def make_world(ws: Workspace, tmp_path: Path) -> World:
    """Users of every role, their registries and a trusted key in ``ws``."""
    create_user(ws, "root", Role.ADMIN, actor=None)
    keys = {"admin": create_api_key(ws, "root", actor=None)}
    admin = authenticate(ws, keys["admin"])
    for role in ("approver", "deployer", "viewer"):
        create_user(ws, role, Role(role), actor=admin)
        keys[role] = create_api_key(ws, role, actor=admin)
    regs = {role: Registry(ws, authenticate(ws, key)) for role, key in keys.items()}
    pub, _ = signing.create_keypair(tmp_path / "keys" / "release.key")
    regs["admin"].trust_key("release", pub)
    return World(ws, regs, tmp_path / "keys" / "release.key", tmp_path)


@pytest.fixture
def world(workspace: Workspace, tmp_path: Path) -> World:
    return make_world(workspace, tmp_path)
