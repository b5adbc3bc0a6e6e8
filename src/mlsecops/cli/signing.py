"""``mlsecops sign``, ``mlsecops verify``, ``mlsecops keys create`` and ``mlsecops bom``."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mlsecops.cli._common import (
    EXIT_FAIL,
    EXIT_OK,
    FormatOpt,
    OutputOpt,
    console,
    emit,
    err_console,
    resolve_format,
    safe,
    settings,
)
from mlsecops.core.checks import Target
from mlsecops.core.errors import InputError, WorkspaceError
from mlsecops.report import Format

if TYPE_CHECKING:
    from mlsecops.store import Workspace

__all__ = ["register"]

keys_app = typer.Typer(help="Create signing keys.", no_args_is_help=True)

_PASSWORD_ENV = "MLSECOPS_KEY_PASSWORD"


def _password() -> bytes | None:
    value = os.environ.get(_PASSWORD_ENV)
    return value.encode() if value else None


@contextmanager
def _workspace() -> Iterator[Workspace | None]:
    """The workspace here, open, when one exists: the library records key creation and signing in
    its audit trail. Signing also works without one.
    """
    cfg = settings()
    if not cfg.workspace_exists():
        if cfg.home.is_dir():
            err_console.print(
                f"note: not recorded in the audit trail (no usable workspace at {safe(cfg.home)})"
            )
        yield None
        return
    from mlsecops.store import Workspace  # the database layer only when there is a workspace

    try:
        ws = Workspace.from_settings(cfg)
    except WorkspaceError:
        err_console.print(f"note: not recorded in the audit trail (no usable workspace at {safe(cfg.home)})")
        yield None
        return
    with ws:
        yield ws


def sign(
    path: Annotated[Path, typer.Argument(help="Model file or directory.")],
    key: Annotated[
        Path, typer.Option("--key", "-k", help="Private key (PEM); password in MLSECOPS_KEY_PASSWORD.")
    ],
    signature: Annotated[
        Path | None, typer.Option("--signature", "-s", help="Bundle to write [default: PATH.sig].")
    ] = None,
    algorithm: Annotated[str, typer.Option(help="Per-file digest: sha256, blake3 or blake2b.")] = "sha256",
    shard_size: Annotated[
        int | None, typer.Option(help="Hash shards of this many bytes instead of whole files.", min=1)
    ] = None,
    allow_symlinks: Annotated[bool, typer.Option(help="Follow symlinks that stay inside the model.")] = False,
    workers: Annotated[
        int | None, typer.Option(help="Hashing threads [default: one per CPU].", min=1)
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Sign a model in the OpenSSF model-signing format (Sigstore bundle, DSSE, in-toto)."""
    from mlsecops.supplychain import signing

    try:
        algo = signing.HashAlgorithm("blake2b" if algorithm == "blake2" else algorithm)
    except ValueError:
        raise typer.BadParameter("must be sha256, blake3 or blake2b", param_hint="--algorithm") from None
    private = signing.load_private_key(key, password=_password())
    with _workspace() as ws:
        result = signing.sign_model(
            path,
            private,
            signature=signature,
            algorithm=algo,
            shard_size=shard_size,
            allow_symlinks=allow_symlinks,
            workers=workers,
            workspace=ws,
            actor=settings().actor,
        )
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "signature": str(result.signature),
                    "key_hint": result.key_hint,
                    "key_type": result.key_type,
                    "files": result.files,
                    "bytes": result.bytes,
                    "algorithm": result.algorithm,
                    "seconds": round(result.seconds, 3),
                }
            )
        )
        return
    console.print(
        f"[green]signed[/] {result.files} file(s), {result.bytes / 1e6:.1f} MB, {result.algorithm}, in "
        f"{result.seconds:.2f} s with {result.key_type} key {result.key_hint[:16]}... -> {safe(str(result.signature))}"
    )


def verify(
    path: Annotated[Path, typer.Argument(help="Model file or directory.")],
    key: Annotated[Path, typer.Option("--key", "-k", help="The signer's public key (PEM).")],
    signature: Annotated[
        Path | None, typer.Option("--signature", "-s", help="Bundle [default: PATH.sig].")
    ] = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """Verify a model against its signature: exit 1 naming every changed, added, removed or renamed file."""
    from mlsecops.supplychain.signing.checks import VerifyCheck

    fmt = resolve_format(fmt, output)
    options: dict[str, str] = {"key": str(key)}
    if signature is not None:
        options["signature"] = str(signature)
    report = VerifyCheck().run(Target(paths=(path,), options=options))
    failed = bool(report.findings)
    if fmt is Format.TEXT and output is None:
        if failed:
            err_console.print(f"[bold red]VERIFICATION FAILED[/]: {safe(report.findings[0].detail)}")
        else:
            console.print(
                f"[green]verified[/] {int(report.metrics['verified_files'])} file(s) of {safe(str(path))} ({report.data['algorithm']}, key {str(report.data['key_hint'])[:16]}...)"
            )
    else:
        emit(report, fmt, output)
    raise typer.Exit(EXIT_FAIL if failed else EXIT_OK)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="Key name: writes NAME.key (0600) and NAME.key.pub.")],
    key_type: Annotated[
        str, typer.Option("--type", help="ecdsa-p256 (model-signing compatible) or ed25519.")
    ] = "ecdsa-p256",
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Where to write [default: the workspace's keys/, else here].")
    ] = None,
    force: Annotated[bool, typer.Option(help="Replace existing key files.")] = False,
) -> None:
    """Create a signing key pair (private key encrypted when MLSECOPS_KEY_PASSWORD is set)."""
    from mlsecops.supplychain import signing

    if "/" in name or name.startswith(".") or not name:
        raise InputError(f"key name {name!r} must be a plain file name")
    try:
        kind = signing.KeyType(key_type)
    except ValueError:
        raise typer.BadParameter("must be ecdsa-p256 or ed25519", param_hint="--type") from None
    cfg = settings()
    folder = directory or ((cfg.home / "keys") if (cfg.home / "keys").is_dir() else Path.cwd())
    with _workspace() as ws:
        pub, hint = signing.create_keypair(
            folder / f"{name}.key",
            key_type=kind,
            password=_password(),
            overwrite=force,
            workspace=ws,
            actor=cfg.actor,
        )
    console.print(
        f"created {kind} key [bold]{safe(name)}[/] {hint[:16]}...: private {safe(str(folder / (name + '.key')))} (0600), public {safe(str(pub))}"
    )


def bom(
    path: Annotated[Path, typer.Argument(help="Model file or directory.")],
    name: Annotated[
        str | None,
        typer.Option(help="Model name [default: the path's name, or the registry model of --ref]."),
    ] = None,
    ref: Annotated[
        str | None, typer.Option(help="Registry version NAME@VERSION: adds its lineage, scan and signature.")
    ] = None,
    card: Annotated[
        Path | None,
        typer.Option(
            help="Model card (YAML or JSON) with approach, task, datasets, inputs, outputs, considerations."
        ),
    ] = None,
    signature: Annotated[
        Path | None,
        typer.Option("--signature", "-s", help="Signature bundle [default: PATH.sig if present]."),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the BOM here [default: stdout].")
    ] = None,
) -> None:
    """Write a CycloneDX 1.6 ML-BOM for a model, validated against the CycloneDX JSON schema."""
    from mlsecops.supplychain.bom import build_bom, validate_bom

    context: dict[str, Any] = {}
    scan: Callable[[Path], dict[str, object]] | None = None
    if ref is not None:
        from mlsecops.cli._registry_common import registry_session

        with registry_session() as reg:
            context = reg.bom_context(ref)
        err_console.print(f"BOM for registry version {safe(ref)}")
    else:
        from mlsecops.registry import scan_artifact

        def scan(copy: Path) -> dict[str, object]:  # judged on the BOM's own snapshot of the files
            return scan_artifact(copy).summary()

    document = build_bom(path, name=name, card=card, signature=signature, context=context, scan=scan)
    validate_bom(document)
    text = json.dumps(document, indent=2) + "\n"
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as err:
        raise InputError(f"cannot write {output}: {err.strerror or err}") from err
    err_console.print(f"CycloneDX 1.6 ML-BOM written to {safe(output)} (schema-valid)")


def register(app: typer.Typer) -> None:
    """Add ``sign``, ``verify``, ``keys`` and ``bom`` to the app."""
    app.command("sign")(sign)
    app.command("verify")(verify)
    app.command("bom")(bom)
    app.add_typer(keys_app, name="keys")
