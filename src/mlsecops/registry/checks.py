"""The ``registry.register`` check: the ``register`` stage of a pipeline.

Options: ``name`` (model name, required), ``signature`` (bundle path, default ``<model>.sig``),
``trained_on`` (list of data files or lineage nodes), ``api_key_file`` (a file holding the API key) or
``api_key_env`` (environment variable holding it, default ``MLSECOPS_API_KEY``), ``bootstrap`` (true:
in a workspace without users, create the first admin and write its key to ``api_key_file``, 0600). Registering the same
content again reports the existing version instead of adding one. A refusal (malicious or unscannable
artifact, a signature that does not match) is a critical finding.
"""

from __future__ import annotations

import os
from pathlib import Path

from mlsecops.core.checks import CheckKind, ContractCases, Target, register
from mlsecops.core.errors import ConfigError, InputError, VerificationError
from mlsecops.core.findings import Finding, Report, Severity, utcnow
from mlsecops.registry._identity import Role, authenticate, create_api_key, create_user
from mlsecops.registry._register import register_version
from mlsecops.store import Workspace
from mlsecops.supplychain import signing

__all__ = ["RegisterCheck"]

MAX_KEY_FILE_BYTES = 4096
"""An API key is ~60 characters; a key file larger than this is not one."""


def _bootstrap(ws: Workspace, target: Target) -> None:
    """With ``bootstrap: true``, a workspace without users gets its first admin, whose key is written
    to ``api_key_file`` (0600): the same first-user rule as ``mlsecops registry users add``.
    """
    path = target.path_option("api_key_file")
    if not target.opt_bool("bootstrap") or path is None:
        return
    from sqlalchemy import func, select

    from mlsecops.registry._tables import User

    with ws.session(readonly=True) as s:
        if s.execute(select(func.count()).select_from(User)).scalar_one():
            return
    create_user(ws, "pipeline", Role.ADMIN, actor=None)
    key = create_api_key(ws, "pipeline", actor=None, label="pipeline bootstrap")
    path.parent.mkdir(parents=True, exist_ok=True)
    # No users means no key can be valid: a key file left from an earlier workspace is replaced.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        os.fchmod(fh.fileno(), 0o600)
        fh.write(key + "\n")


def _api_key(target: Target) -> str:
    path = target.path_option("api_key_file")
    if path is not None:
        # One bounded read through a descriptor checked to be a regular file: a FIFO or a huge file
        # swapped in is refused, not waited on or loaded whole.
        data = signing.read_regular(path, limit=MAX_KEY_FILE_BYTES, what="the API key file")
        return data.decode("utf-8", "replace").strip()
    env = target.opt_str("api_key_env", "MLSECOPS_API_KEY")
    key = os.environ.get(env)
    if not key:
        raise ConfigError(f"registry.register needs an API key: set {env} or the option api_key_file")
    return key


@register(
    "registry.register",
    kind=CheckKind.REGISTRY,
    summary="Scan, store and register a model version in the workspace's model registry",
    metrics=("registered_version", "registered_files"),
    options=("name", "trained_on", "signature", "api_key_file", "api_key_env", "bootstrap"),
)
class RegisterCheck:
    """Registers ``target.paths[0]`` under the ``name`` option."""

    @classmethod
    def contract_cases(cls, tmp_dir: Path) -> ContractCases:
        """A workspace with a deployer key and a small model; a missing model path."""
        home = tmp_dir / "ws"
        with Workspace.init(home) as ws:
            create_user(ws, "ci", Role.ADMIN, actor=None)
            key = create_api_key(ws, "ci", actor=None)
        key_file = tmp_dir / "key"
        key_file.write_text(key)
        key_file.chmod(0o600)
        model = tmp_dir / "model"
        model.mkdir()
        (model / "weights.bin").write_bytes(b"\x00" * 64)
        options = {"name": "demo", "api_key_file": str(key_file)}
        return ContractCases(
            valid=Target(paths=(model,), options=options, home=home),
            corrupt=Target(paths=(tmp_dir / "absent",), options=options, home=home),
        )

    def run(self, target: Target) -> Report:
        """Register the model and report the version."""
        started = utcnow()
        if len(target.paths) != 1:
            raise InputError(f"registry.register takes exactly one model path; got {len(target.paths)}")
        model = target.paths[0]
        name = target.opt_str("name")
        if not name:
            raise ConfigError("registry.register needs the option `name` (the model name)")
        trained_on = []
        for text in target.opt_list("trained_on"):
            local = target.base_dir / text if target.base_dir is not None else None
            trained_on.append(str(local) if local is not None and local.exists() else text)
        if target.home is None:
            raise ConfigError("registry.register needs a workspace (run it through `mlsecops run`)")
        with Workspace.open(target.home, target.database_url, actor=target.actor) as ws:
            _bootstrap(ws, target)
            actor = authenticate(ws, _api_key(target))
            try:
                info = register_version(
                    ws,
                    actor,
                    name,
                    model,
                    signature=target.path_option("signature"),
                    trained_on=trained_on,
                    reuse_existing=True,
                )
            except (InputError, VerificationError) as err:
                if not model.exists():
                    raise
                finding = Finding(
                    check="registry.register",
                    severity=Severity.CRITICAL,
                    title="registration refused",
                    detail=err.diagnostics(),
                    artifact=str(model),
                    remediation="do not deploy this artifact; inspect it with `mlsecops scan` and `mlsecops verify`",
                    atlas="AML.T0010",
                )
                return Report(
                    subject=name,
                    kind="registry.register",
                    started=started,
                    findings=(finding,),
                    verdict="refused",
                )
        return Report(
            subject=f"{name}@{info.version}",
            kind="registry.register",
            started=started,
            metrics={"registered_version": float(info.version), "registered_files": float(info.files)},
            verdict="registered",
            data={
                "model": name,
                "version": info.version,
                "digest": info.digest,
                "scan_verdict": info.scan_verdict,
                "signed_by": info.signed_by,
            },
        )
