"""Pipeline checks: ``sign.model`` signs a model, ``sign.verify`` verifies one.

Options (``Target.options``): ``key`` (private key for ``sign.model``, public key for ``sign.verify``),
``signature`` (bundle path, default ``<model>.sig``), ``algorithm`` (``sha256``, ``blake3``, ``blake2b``),
``shard_size`` (bytes; shards instead of whole files), ``password_env`` (environment variable holding
the private key's password, default ``MLSECOPS_KEY_PASSWORD``), ``create_key`` (``sign.model``: create
the key pair, 0600, when ``key`` does not exist yet; ``key_type`` chooses ``ecdsa-p256`` or ``ed25519``). A failed verification is a critical
finding (ATLAS AML.T0010, supply-chain compromise); a check that cannot run raises ``InputError``.
With a workspace (``Target.home``), ``sign.model`` records ``key.create`` (when it creates the key) and
``artifact.sign`` in its audit trail, through the same library calls the CLI uses.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import JsonValue

from mlsecops.core.checks import CheckKind, ContractCases, Target, register
from mlsecops.core.errors import ConfigError, InputError, VerificationError
from mlsecops.core.findings import Finding, Report, Severity, utcnow
from mlsecops.supplychain.signing._api import sign_model, verify_model
from mlsecops.supplychain.signing._bundle import root_digest
from mlsecops.supplychain.signing._hashing import HashAlgorithm
from mlsecops.supplychain.signing._keys import KeyType, create_keypair, load_private_key, load_public_key

if TYPE_CHECKING:
    from mlsecops.store import Workspace

__all__ = ["SignCheck", "VerifyCheck"]


@contextmanager
def _workspace(target: Target) -> Iterator[Workspace | None]:
    """The target's workspace, open, when it names one: the key and the signing are recorded there."""
    if target.home is None:
        yield None
        return
    from mlsecops.store import Workspace  # the database layer only when there is a workspace

    with Workspace.open(target.home, target.database_url, actor=target.actor) as ws:
        yield ws


def _model(target: Target, check: str) -> Path:
    if len(target.paths) != 1:
        raise InputError(
            f"{check} takes exactly one model path (a file or a directory); got {len(target.paths)}"
        )
    return target.paths[0]


def _key(target: Target, check: str) -> Path:
    key = target.path_option("key")
    if key is None:
        raise ConfigError(f"{check} needs the option `key` (a key file path)")
    return key


def _algorithm(target: Target) -> HashAlgorithm:
    raw = target.opt_choice("algorithm", ("sha256", "blake3", "blake2b", "blake2"), "sha256")
    return HashAlgorithm("blake2b" if raw == "blake2" else str(raw))


def _cases(tmp_dir: Path, *, sign: bool) -> ContractCases:
    model = tmp_dir / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"\x00\x01" * 1000)
    pub, _ = create_keypair(tmp_dir / "k.key", key_type=KeyType.ED25519)
    if sign:
        return ContractCases(
            valid=Target(paths=(model,), options={"key": str(tmp_dir / "k.key")}),
            corrupt=Target(paths=(tmp_dir / "absent",), options={"key": str(tmp_dir / "k.key")}),
        )
    sign_model(model, load_private_key(tmp_dir / "k.key"))
    tampered = tmp_dir / "tampered"
    tampered.mkdir()
    (tampered / "weights.bin").write_bytes(b"\x00\x02" * 1000)
    (tmp_dir / "tampered.sig").write_bytes((tmp_dir / "model.sig").read_bytes())
    return ContractCases(
        valid=Target(paths=(model,), options={"key": str(pub)}),
        corrupt=Target(paths=(tampered,), options={"key": str(pub)}),
    )


@register(
    "sign.model",
    kind=CheckKind.SIGNING,
    summary="Sign a model file or directory (OpenSSF model-signing format)",
    metrics=("signed_files", "signed_bytes"),
    options=("key", "signature", "algorithm", "shard_size", "password_env", "create_key", "key_type"),
)
class SignCheck:
    """Signs the model and reports what was signed."""

    @classmethod
    def contract_cases(cls, tmp_dir: Path) -> ContractCases:
        """A model to sign, and a missing path."""
        return _cases(tmp_dir, sign=True)

    def run(self, target: Target) -> Report:
        """Sign ``target.paths[0]`` with the private key named by the ``key`` option."""
        started = utcnow()
        model = _model(target, "sign.model")
        env = target.opt_str("password_env", "MLSECOPS_KEY_PASSWORD")
        password = os.environ.get(env)
        key_path = _key(target, "sign.model")
        shard = target.opt_int("shard_size", lo=1)
        key_type = KeyType(target.opt_choice("key_type", [str(k) for k in KeyType], "ecdsa-p256"))
        algorithm = _algorithm(target)
        signature = target.path_option("signature")
        with _workspace(target) as ws:
            if target.opt_bool("create_key") and not key_path.exists():
                # First run of a pipeline: make the signing key (0600) where the pipeline says it lives.
                create_keypair(
                    key_path,
                    key_type=key_type,
                    workspace=ws,
                    actor=target.actor,
                )
            key = load_private_key(key_path, password=password.encode() if password else None)
            result = sign_model(
                model,
                key,
                signature=signature,
                algorithm=algorithm,
                shard_size=shard,
                workspace=ws,
                actor=target.actor,
            )
        digests = [d for _, d in result.manifest.sorted_items()]
        data: dict[str, JsonValue] = {
            "signature": str(result.signature),
            "key_hint": result.key_hint,
            "key_type": result.key_type,
            "algorithm": result.algorithm,
            "model_digest": root_digest(digests),
        }
        return Report(
            subject=str(model),
            kind="sign.model",
            started=started,
            metrics={"signed_files": float(result.files), "signed_bytes": float(result.bytes)},
            verdict="signed",
            data=data,
        )


@register(
    "sign.verify",
    kind=CheckKind.SIGNING,
    summary="Verify a model against its signature and a public key",
    metrics=("verified_files",),
    options=("key", "signature"),
)
class VerifyCheck:
    """Verifies the model; a mismatch is a critical finding naming the files."""

    @classmethod
    def contract_cases(cls, tmp_dir: Path) -> ContractCases:
        """A signed model, and a tampered copy with the original signature."""
        return _cases(tmp_dir, sign=False)

    def run(self, target: Target) -> Report:
        """Verify ``target.paths[0]`` with the public key named by the ``key`` option."""
        started = utcnow()
        model = _model(target, "sign.verify")
        key = load_public_key(_key(target, "sign.verify"))
        try:
            result = verify_model(model, key, signature=target.path_option("signature"))
        except VerificationError as err:
            finding = Finding(
                check="sign.verify",
                severity=Severity.CRITICAL,
                title="model does not match its signature",
                detail=err.diagnostics(),
                artifact=str(model),
                remediation="do not load this model; obtain it again from its publisher and verify it",
                atlas="AML.T0010",
            )
            return Report(
                subject=str(model),
                kind="sign.verify",
                started=started,
                findings=(finding,),
                verdict="tampered",
            )
        return Report(
            subject=str(model),
            kind="sign.verify",
            started=started,
            metrics={"verified_files": float(result.files)},
            verdict="verified",
            data={
                "key_hint": result.key_hint,
                "algorithm": result.algorithm,
                "model_name": result.model_name,
            },
        )
