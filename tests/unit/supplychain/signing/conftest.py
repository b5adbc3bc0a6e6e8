"""Fixtures for the signing tests: a small model directory and key pairs of each type."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlsecops.supplychain import signing


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A model directory with nested files, including an empty one."""
    root = tmp_path / "model"
    (root / "weights").mkdir(parents=True)
    (root / "config.json").write_text('{"layers": 3}')
    (root / "weights" / "part-0.bin").write_bytes(bytes(range(256)) * 40)
    (root / "weights" / "part-1.bin").write_bytes(b"\x01\x02" * 5000)
    (root / "empty.txt").write_bytes(b"")
    return root


@pytest.fixture(params=[signing.KeyType.ECDSA_P256, signing.KeyType.ED25519], ids=str)
def keypair(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[signing.PrivateKey, signing.PublicKey]:
    """A private and public key of each supported type."""
    pub, _ = signing.create_keypair(tmp_path / "keys" / "signer.key", key_type=request.param)
    return signing.load_private_key(tmp_path / "keys" / "signer.key"), signing.load_public_key(pub)
