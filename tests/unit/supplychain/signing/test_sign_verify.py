"""Signing and verification: round trips, every kind of tampering, wrong keys, bad bundles, path escapes."""

from __future__ import annotations

import base64
import json
import os
import shutil
from pathlib import Path

import pytest

from mlsecops.core.errors import InputError, VerificationError
from mlsecops.supplychain import signing

Keys = tuple[signing.PrivateKey, signing.PublicKey]


def test_sign_then_verify_round_trip(model_dir: Path, keypair: Keys) -> None:
    priv, pub = keypair
    result = signing.sign_model(model_dir, priv)
    assert result.signature == model_dir.parent / "model.sig"
    assert result.files == 4
    ok = signing.verify_model(model_dir, pub)
    assert ok.files == 4 and ok.model_name == "model" and ok.key_hint == signing.key_hint(pub)


@pytest.mark.parametrize("algorithm", list(signing.HashAlgorithm))
@pytest.mark.parametrize("shard_size", [None, 3000])
def test_every_algorithm_and_method_verifies_without_repeating_options(
    model_dir: Path, keypair: Keys, algorithm: signing.HashAlgorithm, shard_size: int | None
) -> None:
    priv, pub = keypair
    signing.sign_model(model_dir, priv, algorithm=algorithm, shard_size=shard_size, workers=2)
    result = signing.verify_model(model_dir, pub)  # configuration comes from the signed statement
    assert result.algorithm.startswith(str(algorithm))
    (model_dir / "weights" / "part-0.bin").write_bytes(b"x" * 10240)
    with pytest.raises(VerificationError, match=r"modified: 'weights/part-0\.bin'"):
        signing.verify_model(model_dir, pub)


def test_statement_has_the_model_signing_layout(model_dir: Path, keypair: Keys) -> None:
    priv, _ = keypair
    sig = signing.sign_model(model_dir, priv).signature
    bundle = json.loads(sig.read_text())
    assert bundle["mediaType"] == signing.BUNDLE_MEDIA_TYPE
    envelope = bundle["dsseEnvelope"]
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    statement = json.loads(base64.b64decode(envelope["payload"]))
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == signing.PREDICATE_TYPE
    names = [r["name"] for r in statement["predicate"]["resources"]]
    assert names == sorted(names) == ["config.json", "empty.txt", "weights/part-0.bin", "weights/part-1.bin"]
    assert statement["predicate"]["resources"][1]["digest"] == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"  # SHA-256 of nothing
    )


def test_modified_file_is_named(model_dir: Path, keypair: Keys) -> None:
    priv, pub = keypair
    signing.sign_model(model_dir, priv)
    (model_dir / "config.json").write_text('{"layers": 4}')
    with pytest.raises(VerificationError, match=r"modified: 'config.json'"):
        signing.verify_model(model_dir, pub)


def test_added_file_is_named(model_dir: Path, keypair: Keys) -> None:
    priv, pub = keypair
    signing.sign_model(model_dir, priv)
    (model_dir / "weights" / "extra.pkl").write_bytes(b"payload")
    with pytest.raises(VerificationError, match=r"added \(not signed\): 'weights/extra.pkl'"):
        signing.verify_model(model_dir, pub)


def test_removed_file_is_named(model_dir: Path, keypair: Keys) -> None:
    priv, pub = keypair
    signing.sign_model(model_dir, priv)
    (model_dir / "weights" / "part-1.bin").unlink()
    with pytest.raises(VerificationError, match=r"removed: 'weights/part-1.bin'"):
        signing.verify_model(model_dir, pub)


def test_renamed_file_is_named(model_dir: Path, keypair: Keys) -> None:
    priv, pub = keypair
    signing.sign_model(model_dir, priv)
    os.rename(model_dir / "weights" / "part-1.bin", model_dir / "weights" / "part-9.bin")
    with pytest.raises(VerificationError, match=r"renamed: 'weights/part-1.bin' -> 'weights/part-9.bin'"):
        signing.verify_model(model_dir, pub)


def test_wrong_key_is_refused(model_dir: Path, keypair: Keys, tmp_path: Path) -> None:
    priv, _ = keypair
    signing.sign_model(model_dir, priv)
    other_pub, _ = signing.create_keypair(tmp_path / "other.key")
    with pytest.raises(VerificationError, match=r"signed by key .* not by the given key"):
        signing.verify_model(model_dir, signing.load_public_key(other_pub))


def test_forged_signature_with_copied_key_hint_is_refused(
    model_dir: Path, keypair: Keys, tmp_path: Path
) -> None:
    priv, pub = keypair
    sig = signing.sign_model(model_dir, priv).signature
    # An attacker re-signs a changed statement with their own key but keeps the victim's key hint.
    signing.create_keypair(tmp_path / "attacker.key")
    attacker = signing.load_private_key(tmp_path / "attacker.key")
    forged = model_dir.parent / "forged.sig"
    signing.sign_model(model_dir, attacker, signature=forged)
    bundle = json.loads(forged.read_text())
    bundle["verificationMaterial"]["publicKey"]["hint"] = json.loads(sig.read_text())["verificationMaterial"][
        "publicKey"
    ]["hint"]
    forged.write_text(json.dumps(bundle))
    with pytest.raises(VerificationError, match="signature does not match"):
        signing.verify_model(model_dir, pub, signature=forged)


def test_altered_payload_is_refused(model_dir: Path, keypair: Keys) -> None:
    priv, pub = keypair
    sig = signing.sign_model(model_dir, priv).signature
    bundle = json.loads(sig.read_text())
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    statement["predicate"]["resources"][0]["digest"] = "00" * 32
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    sig.write_text(json.dumps(bundle))
    with pytest.raises(VerificationError, match="signature does not match"):
        signing.verify_model(model_dir, pub)


@pytest.mark.parametrize("cut", [0, 10, 200, -40])
def test_truncated_bundle_is_a_clear_verification_error(model_dir: Path, keypair: Keys, cut: int) -> None:
    priv, pub = keypair
    sig = signing.sign_model(model_dir, priv).signature
    data = sig.read_bytes()
    sig.write_bytes(data[:cut])
    with pytest.raises(VerificationError, match=r"truncated|malformed"):
        signing.verify_model(model_dir, pub)


def test_missing_signature_and_missing_key_are_input_errors(model_dir: Path, tmp_path: Path) -> None:
    pub, _ = signing.create_keypair(tmp_path / "k.key")
    with pytest.raises(InputError, match="no signature at"):
        signing.verify_model(model_dir, signing.load_public_key(pub))
    with pytest.raises(InputError, match="no public key at"):
        signing.load_public_key(tmp_path / "absent.pub")
    with pytest.raises(InputError, match="is a private key"):
        signing.load_public_key(tmp_path / "k.key")
    with pytest.raises(InputError, match="is a public key"):
        signing.load_private_key(pub)
    (tmp_path / "junk.pem").write_text("not a key")
    with pytest.raises(InputError, match="not a PEM private key"):
        signing.load_private_key(tmp_path / "junk.pem")


def test_symlink_escaping_the_model_is_refused(model_dir: Path, keypair: Keys, tmp_path: Path) -> None:
    priv, pub = keypair
    (tmp_path / "secret.txt").write_text("outside")
    (model_dir / "link.txt").symlink_to(tmp_path / "secret.txt")
    for allow in (False, True):
        with pytest.raises(InputError, match="outside the model directory"):
            signing.sign_model(model_dir, priv, allow_symlinks=allow)
    (model_dir / "link.txt").unlink()
    signing.sign_model(model_dir, priv)
    (model_dir / "link.txt").symlink_to("../secret.txt")  # planted after signing
    with pytest.raises(InputError, match="outside the model directory"):
        signing.verify_model(model_dir, pub)


def test_inner_symlink_needs_allow_symlinks(model_dir: Path, keypair: Keys) -> None:
    priv, pub = keypair
    (model_dir / "alias.json").symlink_to("config.json")
    with pytest.raises(InputError, match="is a symlink; refused"):
        signing.sign_model(model_dir, priv)
    signing.sign_model(model_dir, priv, allow_symlinks=True)
    assert signing.verify_model(model_dir, pub).files == 5


def test_fifo_is_refused_without_blocking(model_dir: Path, keypair: Keys) -> None:
    priv, _ = keypair
    os.mkfifo(model_dir / "pipe")
    with pytest.raises(InputError, match="not a regular file"):
        signing.sign_model(model_dir, priv)


def test_dotdot_names_in_a_signed_statement_are_refused(model_dir: Path, tmp_path: Path) -> None:
    from mlsecops.supplychain.signing._bundle import make_bundle
    from mlsecops.supplychain.signing._manifest import Manifest

    pub_path, _ = signing.create_keypair(tmp_path / "k.key")
    priv = signing.load_private_key(tmp_path / "k.key")
    evil = Manifest(model_name="model", digests={"../../etc/passwd": "00" * 32})
    (model_dir.parent / "model.sig").write_bytes(make_bundle(evil, priv))
    with pytest.raises(VerificationError, match="outside the model directory"):
        signing.verify_model(model_dir, signing.load_public_key(pub_path))


def test_signature_inside_the_model_directory_is_left_out(model_dir: Path, keypair: Keys) -> None:
    priv, pub = keypair
    inside = model_dir / "model.sig"
    signing.sign_model(model_dir, priv, signature=inside)
    assert signing.verify_model(model_dir, pub, signature=inside).files == 4


def test_git_metadata_is_ignored_like_model_signing(model_dir: Path, keypair: Keys) -> None:
    priv, pub = keypair
    (model_dir / ".git").mkdir()
    (model_dir / ".git" / "HEAD").write_text("ref")
    signing.sign_model(model_dir, priv)
    (model_dir / ".git" / "HEAD").write_text("changed")
    assert signing.verify_model(model_dir, pub).files == 4


def test_single_file_model(model_dir: Path, keypair: Keys) -> None:
    priv, pub = keypair
    target = model_dir / "weights" / "part-0.bin"
    signing.sign_model(target, priv)
    assert signing.verify_model(target, pub).files == 1
    target.write_bytes(b"changed")
    with pytest.raises(VerificationError, match="modified"):
        signing.verify_model(target, pub)


def test_verify_files_checks_blobs_by_name(model_dir: Path, keypair: Keys, tmp_path: Path) -> None:
    priv, pub = keypair
    sig = signing.sign_model(model_dir, priv).signature
    copy = tmp_path / "copy"
    shutil.copytree(model_dir, copy)
    files = {p.relative_to(copy).as_posix(): p for p in copy.rglob("*") if p.is_file()}
    assert signing.verify_files(files, sig.read_bytes(), pub).files == 4
    files["config.json"].write_text("{}")
    with pytest.raises(VerificationError, match=r"modified: 'config\.json'"):
        signing.verify_files(files, sig.read_bytes(), pub)


def test_private_key_is_0600_and_never_overwritten(tmp_path: Path) -> None:
    pub, hint = signing.create_keypair(tmp_path / "a.key", key_type=signing.KeyType.ED25519)
    assert (tmp_path / "a.key").stat().st_mode & 0o777 == 0o600
    assert pub.stat().st_mode & 0o777 == 0o644
    assert signing.key_hint(signing.load_public_key(pub)) == hint
    with pytest.raises(InputError, match="exists already"):
        signing.create_keypair(tmp_path / "a.key")


def test_encrypted_private_key_needs_its_password(model_dir: Path, tmp_path: Path) -> None:
    signing.create_keypair(tmp_path / "enc.key", password=b"s3cret")
    with pytest.raises(InputError, match="encrypted; set MLSECOPS_KEY_PASSWORD") as err:
        signing.load_private_key(tmp_path / "enc.key")
    assert "s3cret" not in str(err.value)
    with pytest.raises(InputError, match="password is wrong"):
        signing.load_private_key(tmp_path / "enc.key", password=b"wrong")
    signing.sign_model(model_dir, signing.load_private_key(tmp_path / "enc.key", password=b"s3cret"))


@pytest.mark.slow
def test_many_tiny_files(tmp_path: Path) -> None:
    """100,000 tiny files sign and verify; a change to one of them is found by name."""
    root = tmp_path / "tiny"
    for d in range(100):
        sub = root / f"d{d:03d}"
        sub.mkdir(parents=True)
        for f in range(1000):
            (sub / f"f{f:04d}").write_bytes(b"%d-%d" % (d, f))
    pub, _ = signing.create_keypair(tmp_path / "k.key")
    priv = signing.load_private_key(tmp_path / "k.key")
    assert signing.sign_model(root, priv).files == 100_000
    (root / "d042" / "f0999").write_bytes(b"x")
    with pytest.raises(VerificationError, match="modified: 'd042/f0999'"):
        signing.verify_model(root, signing.load_public_key(pub))


@pytest.mark.parametrize("shard_size", [None, 9 * (1 << 20) + 7])
def test_blake3_large_files_match_the_reference_digest(tmp_path: Path, shard_size: int | None) -> None:
    """Large files take the memory-mapped, all-cores BLAKE3 path; digests equal plain BLAKE3."""
    import blake3

    from mlsecops.supplychain.signing._hashing import HashTask, hash_tasks

    data = bytes(range(251)) * ((20 << 20) // 251)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    step = shard_size or len(data)
    tasks = [
        HashTask(
            f"big:{a}:{min(a + step, len(data))}", path, a, min(a + step, len(data)), min(step, len(data) - a)
        )
        for a in range(0, len(data), step)
    ]
    got = hash_tasks(tasks, signing.HashAlgorithm.BLAKE3, workers=2)
    for t in tasks:
        assert got[t.name] == blake3.blake3(data[t.start : t.end]).hexdigest()
