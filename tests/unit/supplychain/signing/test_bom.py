"""The CycloneDX 1.6 ML-BOM: schema-valid, with model card, files, datasets and signature."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path

import pytest

from mlsecops.core.errors import ConfigError, InputError
from mlsecops.supplychain import signing
from mlsecops.supplychain.bom import build_bom, validate_bom


def test_bom_is_schema_valid_and_complete(model_dir: Path, tmp_path: Path) -> None:
    pub, hint = signing.create_keypair(tmp_path / "k.key")
    signing.sign_model(model_dir, signing.load_private_key(tmp_path / "k.key"))
    card = tmp_path / "card.yaml"
    card.write_text(
        "approach: supervised\ntask: classification\narchitecture_family: cnn\narchitecture: 2-layer CNN\n"
        "datasets: [digits]\ninputs: [image]\noutputs: [label]\nmetrics: {accuracy: 0.98}\n"
        "considerations:\n  users: [analysts]\n  ethical_considerations:\n    - {name: misuse, mitigation: review}\n"
    )
    context = {
        "version": {
            "name": "digits",
            "version": 3,
            "scan_verdict": "safe",
            "signed_by": "release",
            "scan": {"counts": {"critical": 0}},
        },
        "datasets": [{"name": "train.csv", "version": "abc", "digest": "ab" * 32, "kind": "dataset"}],
        "metrics": {"robust_accuracy@pgd": 0.61},
    }
    bom = build_bom(model_dir, card=card, context=context)
    validate_bom(bom)
    model = bom["metadata"]["component"]
    assert model["type"] == "machine-learning-model" and model["name"] == "digits" and model["version"] == "3"
    params = model["modelCard"]["modelParameters"]
    assert params["approach"] == {"type": "supervised"} and params["task"] == "classification"
    refs = {d["ref"] for d in params["datasets"]}
    assert {"dataset:train.csv@abc", "dataset:digits@"} == refs
    metrics = {
        m["type"]: m["value"] for m in model["modelCard"]["quantitativeAnalysis"]["performanceMetrics"]
    }
    assert metrics == {"accuracy": "0.98", "robust_accuracy@pgd": "0.61"}
    files = {c["name"]: c["hashes"][0]["content"] for c in bom["components"] if c["type"] == "file"}
    assert files["config.json"] == hashlib.sha256(b'{"layers": 3}').hexdigest() and len(files) == 4
    props = {p["name"]: p["value"] for p in model["properties"]}
    assert props["mlsecops:signature:key_hint"] == hint and props["mlsecops:scan:verdict"] == "safe"
    assert model["externalReferences"][0]["type"] == "attestation"
    assert pub.exists()


def test_invalid_document_is_refused_by_the_schema(model_dir: Path) -> None:
    bom = build_bom(model_dir)
    validate_bom(bom)
    broken = copy.deepcopy(bom)
    broken["metadata"]["component"]["modelCard"]["modelParameters"] = {"approach": {"type": "guessing"}}
    with pytest.raises(InputError, match=r"does not conform to CycloneDX 1\.6"):
        validate_bom(broken)


def test_bad_model_card_is_a_config_error(model_dir: Path, tmp_path: Path) -> None:
    card = tmp_path / "card.yaml"
    card.write_text("approach: guessing\n")
    with pytest.raises(ConfigError, match="approach must be one of"):
        build_bom(model_dir, card=card)
    card.write_text("- a list\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        build_bom(model_dir, card=card)
