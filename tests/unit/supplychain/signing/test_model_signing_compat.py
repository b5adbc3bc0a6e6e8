"""Cross-verification with the OpenSSF ``model-signing`` package (the ``signing-compat`` extra):
models signed by us verify with model-signing's library and CLI, and models signed by model-signing
verify with us, for whole-file and shard serialization and for SHA-256 and BLAKE3.

Skipped where model-signing is absent, except under CI, which installs the extra.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests._deps import require

from mlsecops.core.errors import VerificationError
from mlsecops.supplychain import signing

if os.environ.get("CI"):
    import model_signing
else:
    model_signing = require("model_signing", "signing-compat")


@pytest.fixture
def ec_key(tmp_path: Path) -> tuple[Path, Path]:
    """An ECDSA P-256 key pair (model-signing 1.1.1 cannot use Ed25519 keys)."""
    pub, _ = signing.create_keypair(tmp_path / "ec.key", key_type=signing.KeyType.ECDSA_P256)
    return tmp_path / "ec.key", pub


def _their_verify(model: Path, sig: Path, pub: Path, hashing: object | None = None) -> None:
    config = model_signing.verifying.Config().use_elliptic_key_verifier(public_key=pub)
    if hashing is not None:
        config = config.set_hashing_config(hashing)
    config.verify(model, sig)


@pytest.mark.parametrize("algorithm", [signing.HashAlgorithm.SHA256, signing.HashAlgorithm.BLAKE3])
def test_model_signing_library_verifies_our_signature(
    model_dir: Path, ec_key: tuple[Path, Path], algorithm: signing.HashAlgorithm
) -> None:
    priv, pub = ec_key
    sig = signing.sign_model(model_dir, signing.load_private_key(priv), algorithm=algorithm).signature
    _their_verify(model_dir, sig, pub)
    (model_dir / "config.json").write_text("{}")
    with pytest.raises(ValueError, match=r"config\.json"):
        _their_verify(model_dir, sig, pub)


def test_model_signing_verifies_our_shard_signature(model_dir: Path, ec_key: tuple[Path, Path]) -> None:
    priv, pub = ec_key
    sig = signing.sign_model(model_dir, signing.load_private_key(priv), shard_size=4096).signature
    # model-signing 1.1.1 cannot read shard_size back from a signature, so its verifier needs the
    # hashing configuration again (ours reads it from the signed statement).
    _their_verify(
        model_dir, sig, pub, model_signing.hashing.Config().use_shard_serialization(shard_size=4096)
    )


def test_model_signing_cli_verifies_our_single_file_signature(
    model_dir: Path, ec_key: tuple[Path, Path]
) -> None:
    priv, pub = ec_key
    target = model_dir / "weights" / "part-0.bin"
    sig = signing.sign_model(target, signing.load_private_key(priv)).signature
    cmd = [
        sys.executable,
        "-m",
        "model_signing",
        "verify",
        "key",
        "--signature",
        str(sig),
        "--public_key",
        str(pub),
        str(target),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr + done.stdout
    target.write_bytes(b"tampered")
    assert subprocess.run(cmd, capture_output=True, text=True, timeout=120).returncode != 0


@pytest.mark.parametrize(
    "make_hashing",
    [
        None,
        lambda: model_signing.hashing.Config().use_file_serialization(hashing_algorithm="blake3"),
        lambda: model_signing.hashing.Config().use_file_serialization(hashing_algorithm="blake2"),
        lambda: model_signing.hashing.Config().use_shard_serialization(shard_size=4096),
    ],
    ids=["sha256-files", "blake3-files", "blake2-files", "sha256-shards"],
)
def test_we_verify_model_signing_signatures(
    model_dir: Path, ec_key: tuple[Path, Path], tmp_path: Path, make_hashing: object
) -> None:
    priv, pub = ec_key
    sig = tmp_path / "theirs.sig"
    config = model_signing.signing.Config().use_elliptic_key_signer(private_key=priv)
    if make_hashing is not None:
        config = config.set_hashing_config(make_hashing())  # type: ignore[operator]
    config.sign(model_dir, sig)
    key = signing.load_public_key(pub)
    result = signing.verify_model(model_dir, key, signature=sig)  # no hashing options repeated
    assert result.files >= 4
    os.rename(model_dir / "config.json", model_dir / "config2.json")
    with pytest.raises(VerificationError, match=r"renamed: 'config\.json' -> 'config2\.json'"):
        signing.verify_model(model_dir, key, signature=sig)


def test_we_verify_a_model_signing_cli_signature(
    model_dir: Path, ec_key: tuple[Path, Path], tmp_path: Path
) -> None:
    priv, pub = ec_key
    sig = tmp_path / "cli.sig"
    cmd = [
        sys.executable,
        "-m",
        "model_signing",
        "sign",
        "key",
        "--signature",
        str(sig),
        "--private_key",
        str(priv),
        str(model_dir),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr + done.stdout
    assert signing.verify_model(model_dir, signing.load_public_key(pub), signature=sig).files == 4
    (model_dir / "weights" / "part-1.bin").unlink()
    with pytest.raises(VerificationError, match=r"removed: 'weights/part-1\.bin'"):
        signing.verify_model(model_dir, signing.load_public_key(pub), signature=sig)
