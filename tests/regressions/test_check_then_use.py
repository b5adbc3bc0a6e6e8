"""Check-then-use on paths outside the registry (issue 11 item 3): ``bom`` and ``data register``.

Each test plants a swap of the file between the check (a scan, a profile) and the use (the hashes the
document records) and asserts the document describes one set of bytes; each has a benign twin.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from mlsecops.core.errors import InputError
from mlsecops.data import manifest as manifest_mod
from mlsecops.data.manifest import build_manifest
from mlsecops.registry import scan_artifact
from mlsecops.supplychain import signing
from mlsecops.supplychain.bom import build_bom

BENIGN = pickle.dumps({"weights": [0.5, 1.5]}, protocol=4)
EVIL = b"cos\nsystem\n(S'touch /tmp/mlsecops-pwned'\ntR."


def _model(tmp: Path) -> Path:
    root = tmp / "model"
    root.mkdir()
    (root / "model.pkl").write_bytes(BENIGN)
    (root / "config.json").write_text("{}")
    return root


def _file_hashes(bom: Mapping[str, Any]) -> dict[str, str]:
    return {c["name"]: c["hashes"][0]["content"] for c in bom["components"] if c["type"] == "file"}


def _props(bom: Mapping[str, Any]) -> dict[str, str]:
    return {p["name"]: p["value"] for p in bom["metadata"]["component"]["properties"]}


def test_bom_scan_and_hashes_describe_the_same_bytes_despite_a_swap(tmp_path: Path) -> None:
    model = _model(tmp_path)
    scanned: list[dict[str, str]] = []

    def scan(path: Path) -> dict[str, Any]:
        scanned.append({n: h for n, h, _ in signing.content_files(path)})
        summary = scan_artifact(path).summary()
        (model / "model.pkl").write_bytes(EVIL)  # the attacker's swap, right after the scan
        return summary

    bom = build_bom(model, scan=scan)
    assert _props(bom)["mlsecops:scan:verdict"] == "safe"
    assert _file_hashes(bom) == scanned[0]  # the hashes are of the bytes that were scanned
    assert _file_hashes(bom)["model.pkl"] == hashlib.sha256(BENIGN).hexdigest()


def test_bom_of_a_malicious_model_says_so(tmp_path: Path) -> None:
    model = _model(tmp_path)
    (model / "model.pkl").write_bytes(EVIL)
    bom = build_bom(model, scan=lambda p: scan_artifact(p).summary())
    assert _props(bom)["mlsecops:scan:verdict"] == "malicious"


def test_bom_refuses_registry_facts_about_other_bytes(tmp_path: Path) -> None:
    model = _model(tmp_path)
    digest = signing.tree_digest((n, h) for n, h, _ in signing.content_files(model))
    info = {"name": "fraud", "version": 3, "digest": digest, "scan_verdict": "safe", "signed_by": "release"}
    bom = build_bom(model, context={"version": info})  # the benign twin: the registered bytes
    assert _props(bom)["mlsecops:registry:version"] == "3"
    (model / "model.pkl").write_bytes(EVIL)
    with pytest.raises(InputError, match="is not fraud@3"):
        build_bom(model, context={"version": info})


def _csv(path: Path, rows: int) -> None:
    path.write_text("a,b,label\n" + "".join(f"{i},{i * 2},{i % 2}\n" for i in range(rows)))


def test_data_manifest_digest_and_profile_are_of_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "train.csv"
    _csv(data, 50)
    original = hashlib.sha256(data.read_bytes()).hexdigest()
    real = manifest_mod.profile_chunks

    def profile_then_swap(*args: Any, **kwargs: Any) -> Any:
        prof = real(*args, **kwargs)
        _csv(data, 500)  # poisoned rows swapped in after the profile read the file
        return prof

    monkeypatch.setattr(manifest_mod, "profile_chunks", profile_then_swap)
    m = build_manifest([data], label="label")
    assert m.files[0].sha256 == original and m.files[0].rows == 50 == m.profile.rows
    assert m.files[0].size == len("a,b,label\n") + sum(len(f"{i},{i * 2},{i % 2}\n") for i in range(50))


def test_data_manifest_benign_twin(tmp_path: Path) -> None:
    data = tmp_path / "train.csv"
    _csv(data, 50)
    m = build_manifest([data], label="label")
    assert m.files[0].sha256 == hashlib.sha256(data.read_bytes()).hexdigest()
    assert m.files[0].path == str(data) and m.files[0].rows == 50


def test_data_manifest_refuses_a_fifo_without_hanging(tmp_path: Path) -> None:
    fifo = tmp_path / "train.csv"
    os.mkfifo(fifo)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            build_manifest([fifo])
        except BaseException as err:
            errors.append(err)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout=10)
    assert not t.is_alive(), "a FIFO hung data register"
    assert isinstance(errors[0], InputError) and "not a regular file" in str(errors[0])
