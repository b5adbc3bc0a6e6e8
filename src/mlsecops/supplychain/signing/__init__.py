"""Sign ML models and verify them, in the OpenSSF model-signing format (offline, key-based).

A signature is a Sigstore bundle holding a DSSE envelope around an in-toto statement whose predicate
lists a digest per file (or per shard) of the model, so models signed here verify with the
``model-signing`` tool and the other way round. Keys are ECDSA P-256 or Ed25519 PEM files.

>>> import tempfile; from pathlib import Path
>>> from mlsecops.supplychain import signing
>>> d = Path(tempfile.mkdtemp()); (d / "model").mkdir(); _ = (d / "model" / "w.bin").write_bytes(b"w")
>>> pub, hint = signing.create_keypair(d / "k.key")
>>> _ = signing.sign_model(d / "model", signing.load_private_key(d / "k.key"))
>>> signing.verify_model(d / "model", signing.load_public_key(pub)).files
1

Layers: ``_hashing`` (streamed, parallel digests) <- ``_manifest`` (walk, path safety, compare) <-
``_bundle`` (wire format) <- ``_api`` (sign, verify); ``_snapshot`` (read a model once into a private
copy, so what is checked is what is used); ``_keys`` stands alone; ``checks`` registers
``sign.model`` and ``sign.verify`` for pipelines.
"""

from __future__ import annotations

from mlsecops.supplychain.signing._api import (
    SignResult,
    VerifyResult,
    default_signature_path,
    sign_model,
    verify_files,
    verify_model,
)
from mlsecops.supplychain.signing._bundle import (
    BUNDLE_MEDIA_TYPE,
    PREDICATE_TYPE,
    load_bundle_file,
    open_bundle,
    read_bundle,
)
from mlsecops.supplychain.signing._hashing import HashAlgorithm
from mlsecops.supplychain.signing._keys import (
    KeyType,
    PrivateKey,
    PublicKey,
    create_keypair,
    key_hint,
    key_type_of,
    load_private_key,
    load_public_key,
    public_key_from_pem,
    public_pem,
)
from mlsecops.supplychain.signing._manifest import Manifest, Serialization, model_files
from mlsecops.supplychain.signing._snapshot import (
    Snapshot,
    content_files,
    open_model_file,
    open_regular_file,
    read_regular,
    snapshot,
    tree_digest,
)

__all__ = [
    "BUNDLE_MEDIA_TYPE",
    "PREDICATE_TYPE",
    "HashAlgorithm",
    "KeyType",
    "Manifest",
    "PrivateKey",
    "PublicKey",
    "Serialization",
    "SignResult",
    "Snapshot",
    "VerifyResult",
    "content_files",
    "create_keypair",
    "default_signature_path",
    "key_hint",
    "key_type_of",
    "load_bundle_file",
    "load_private_key",
    "load_public_key",
    "model_files",
    "open_bundle",
    "open_model_file",
    "open_regular_file",
    "public_key_from_pem",
    "public_pem",
    "read_bundle",
    "read_regular",
    "sign_model",
    "snapshot",
    "tree_digest",
    "verify_files",
    "verify_model",
]
