"""Signing keys: ECDSA (P-256, also P-384/P-521 for interoperability) and Ed25519, as PEM files.

``create_keypair`` writes the private key with mode 0600 (created exclusively, never overwritten unless
asked) and the public key beside it. Keys are identified by their *hint*, the SHA-256 of the PEM
SubjectPublicKeyInfo, which is what the OpenSSF model-signing format records in a bundle's
``verificationMaterial.publicKey.hint``. Private key bytes and passwords are never logged or put in
an error message.
"""

from __future__ import annotations

import hashlib
import os
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from mlsecops.core.errors import InputError
from mlsecops.supplychain.signing._audit import record
from mlsecops.supplychain.signing._hashing import open_regular

if TYPE_CHECKING:
    from mlsecops.store import Workspace

__all__ = [
    "KeyType",
    "PrivateKey",
    "PublicKey",
    "create_keypair",
    "key_hint",
    "key_type_of",
    "load_private_key",
    "load_public_key",
    "public_key_from_pem",
    "public_pem",
    "sign_bytes",
    "verify_bytes",
]

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

_CURVES: dict[str, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]] = {
    "secp256r1": hashes.SHA256,
    "secp384r1": hashes.SHA384,
    "secp521r1": hashes.SHA512,
}
_MAX_KEY_FILE = 64 * 1024


class KeyType(StrEnum):
    """Key algorithms ``mlsecops keys create`` makes."""

    ECDSA_P256 = "ecdsa-p256"
    ED25519 = "ed25519"

    def __str__(self) -> str:
        return self.value


def public_pem(key: PublicKey) -> bytes:
    """The PEM SubjectPublicKeyInfo bytes of ``key``."""
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_hint(key: PublicKey) -> str:
    """SHA-256 (hex) of the PEM SubjectPublicKeyInfo: the key id used in bundles and the registry."""
    return hashlib.sha256(public_pem(key)).hexdigest()


def key_type_of(key: PublicKey) -> str:
    """A short name of the key's algorithm, e.g. ``ecdsa-p256`` or ``ed25519``."""
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "ed25519"
    return {"secp256r1": "ecdsa-p256", "secp384r1": "ecdsa-p384", "secp521r1": "ecdsa-p521"}[key.curve.name]


def _write_exclusive(path: Path, data: bytes, mode: int, *, overwrite: bool) -> None:
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        fd = os.open(path, flags | getattr(os, "O_NOFOLLOW", 0), mode)
    except FileExistsError:
        raise InputError(
            f"{path} exists already; choose another name or pass --force to replace it"
        ) from None
    except OSError as err:
        raise InputError(f"cannot write {path}: {err.strerror or err}") from err
    with os.fdopen(fd, "wb") as fh:
        os.fchmod(fh.fileno(), mode)  # an existing file keeps its old mode under O_TRUNC otherwise
        fh.write(data)


def create_keypair(
    private_path: Path,
    *,
    key_type: KeyType = KeyType.ECDSA_P256,
    password: bytes | None = None,
    overwrite: bool = False,
    workspace: Workspace | None = None,
    actor: str = "cli",
) -> tuple[Path, str]:
    """Create a key pair: ``private_path`` (PKCS#8 PEM, 0600) and ``private_path`` + ``.pub`` (0644).

    With a ``workspace``, records ``key.create`` (subject ``key:NAME``, NAME being the private key's
    file name without ``.key``; details: key hint, type, public key path) after writing the files;
    when the event cannot be written the new files are removed and the error raised.

    Args:
        private_path: where the private key goes; the public key is written next to it.
        key_type: ECDSA P-256 (interoperable with model-signing) or Ed25519.
        password: encrypt the private key with it (best available PKCS#8 encryption).
        overwrite: replace existing files instead of refusing.
        workspace: the workspace whose audit trail records the new key (none: not recorded).
        actor: who creates the key, for the audit trail.

    Returns:
        The public key path and the key hint.

    Raises:
        InputError: a file exists (without ``overwrite``) or cannot be written.
        WorkspaceError: the audit event could not be written (no key files are left behind).
    """
    private: PrivateKey
    if key_type is KeyType.ED25519:
        private = ed25519.Ed25519PrivateKey.generate()
    else:
        private = ec.generate_private_key(ec.SECP256R1())
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    public_path = private_path.with_name(private_path.name + ".pub")
    private_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    _write_exclusive(private_path, pem, 0o600, overwrite=overwrite)
    _write_exclusive(public_path, public_pem(private.public_key()), 0o644, overwrite=overwrite)
    hint = key_hint(private.public_key())

    def remove_files() -> None:
        private_path.unlink(missing_ok=True)
        public_path.unlink(missing_ok=True)

    record(
        workspace,
        actor=actor,
        action="key.create",
        subject=f"key:{private_path.name.removesuffix('.key')}",
        details={"key_hint": hint, "type": str(key_type), "public_key": str(public_path)},
        undo=remove_files,
    )
    return public_path, hint


def _read_key_file(path: Path, what: str) -> bytes:
    """The key file's bytes, read once through a descriptor checked to be a regular file and never
    more than ``_MAX_KEY_FILE`` bytes (a FIFO or a huge file swapped in after a check is refused).
    """
    if not path.exists() and not path.is_symlink():
        raise InputError(f"no {what} at {path}; create one with `mlsecops keys create`")
    if path.is_dir():
        raise InputError(f"{path} is a directory, not a {what} file")
    fd = open_regular(path, follow_symlinks=True)
    try:
        with open(fd, "rb", closefd=False) as fh:
            data = fh.read(_MAX_KEY_FILE + 1)
    except OSError as err:
        raise InputError(f"cannot read the {what} {path}: {err.strerror or err}") from err
    finally:
        os.close(fd)
    if len(data) > _MAX_KEY_FILE:
        raise InputError(f"{path} is too large to be a {what} (over {_MAX_KEY_FILE} bytes)")
    return data


def _check_supported(key: object, path: Path) -> None:
    if isinstance(key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        return
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey) and key.curve.name in _CURVES:
        return
    raise InputError(
        f"{path} holds a {type(key).__name__.lstrip('_')} key; mlsecops signs with ECDSA (P-256, P-384, "
        "P-521) or Ed25519 keys: create one with `mlsecops keys create`"
    )


def load_private_key(path: Path, *, password: bytes | None = None) -> PrivateKey:
    """Load a PEM private key (ECDSA or Ed25519).

    Raises:
        InputError: missing, unreadable, not a private key, encrypted without (or with a wrong) password,
            or an unsupported algorithm.
    """
    data = _read_key_file(path, "private key")
    try:
        key = serialization.load_pem_private_key(data, password=password or None)
    except TypeError:
        if password:
            raise InputError(f"the private key {path} is not encrypted; do not pass a password") from None
        raise InputError(
            f"the private key {path} is encrypted; set MLSECOPS_KEY_PASSWORD to its password"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        if b"PUBLIC KEY" in data:
            raise InputError(f"{path} is a public key; signing needs the private key") from None
        hint = " (or the password is wrong)" if password else ""
        raise InputError(f"{path} is not a PEM private key{hint}") from None
    _check_supported(key, path)
    assert isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey)
    return key


def load_public_key(path: Path) -> PublicKey:
    """Load a PEM public key (ECDSA or Ed25519).

    Raises:
        InputError: missing, unreadable, a private key, not PEM, or an unsupported algorithm.
    """
    data = _read_key_file(path, "public key")
    if b"PRIVATE KEY" in data:
        raise InputError(f"{path} is a private key; verification takes the public key ({path.name}.pub)")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise InputError(f"{path} is not a PEM public key") from None
    _check_supported(key, path)
    assert isinstance(key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey)
    return key


def public_key_from_pem(data: bytes) -> PublicKey:
    """Parse PEM public key bytes (e.g. a trusted key kept in the registry).

    Raises:
        InputError: not a supported PEM public key.
    """
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise InputError("not a PEM public key") from None
    _check_supported(key, Path("<pem>"))
    assert isinstance(key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey)
    return key


def sign_bytes(key: PrivateKey, data: bytes) -> bytes:
    """Sign ``data``: ECDSA with the curve's hash (DER signature) or Ed25519."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    return key.sign(data, ec.ECDSA(_CURVES[key.curve.name]()))


def verify_bytes(key: PublicKey, signature: bytes, data: bytes) -> bool:
    """Whether ``signature`` over ``data`` verifies with ``key``."""
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
        else:
            key.verify(signature, data, ec.ECDSA(_CURVES[key.curve.name]()))
    except InvalidSignature:
        return False
    return True
