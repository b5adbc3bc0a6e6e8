"""``mlsecops workspace encrypt | rotate-key | encryption status | encryption keygen``: encryption at
rest of the workspace's artifact store (``mlsecops.store.at_rest``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from mlsecops.cli._common import (
    FormatOpt,
    Listing,
    OutputOpt,
    QuietOpt,
    console,
    emit_listing,
    open_workspace,
    progress_hook,
    safe,
    settings,
)
from mlsecops.core.errors import ConfigError, InputError

__all__ = ["register"]

workspace_app = typer.Typer(help="Workspace administration: encryption at rest.", no_args_is_help=True)
encryption_app = typer.Typer(help="Encryption at rest: status and key files.", no_args_is_help=True)

KekFileOpt = Annotated[
    Path | None,
    typer.Option("--kek-file", help="File holding the 32-byte key-encryption key (mode 0600, owned by you)."),
]
KekEnvOpt = Annotated[
    str | None,
    typer.Option("--kek-env", help="Environment variable holding the key-encryption key (hex or base64)."),
]
KekProviderOpt = Annotated[
    str | None,
    typer.Option(
        "--kek-provider", help="Registered key provider (entry point group mlsecops.key_providers)."
    ),
]
KekOptionOpt = Annotated[
    list[str] | None,
    typer.Option("--kek-option", help="KEY=VALUE for the key provider (repeatable; never secrets)."),
]


def _source(
    kek_file: Path | None, kek_env: str | None, kek_provider: str | None, kek_option: list[str] | None
) -> object | None:
    from mlsecops.store.encryption import KekSource

    given = [x for x in (kek_file, kek_env, kek_provider) if x is not None]
    if len(given) > 1:
        raise InputError("give one of --kek-file, --kek-env, --kek-provider")
    if kek_option and kek_provider is None:
        raise InputError("--kek-option applies to --kek-provider only")
    if kek_file is not None:
        return KekSource.file(kek_file)
    if kek_env is not None:
        return KekSource.env(kek_env)
    if kek_provider is not None:
        options = {}
        for item in kek_option or []:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise InputError(f"--kek-option {item!r}: expected KEY=VALUE")
            options[key] = value
        return KekSource.provider(kek_provider, options)
    return None


@workspace_app.command("encrypt")
def encrypt(
    kek_file: KekFileOpt = None,
    kek_env: KekEnvOpt = None,
    kek_provider: KekProviderOpt = None,
    kek_option: KekOptionOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Turn encryption at rest on and encrypt every stored blob in place (crash-safe; run it again to
    resume). New blobs are encrypted from the first moment on.
    """
    from mlsecops.store.at_rest import enable_encryption
    from mlsecops.store.encryption import KekSource

    source = _source(kek_file, kek_env, kek_provider, kek_option)
    if not isinstance(source, KekSource):
        raise InputError("give the key-encryption key: --kek-file FILE, --kek-env VAR or --kek-provider NAME")
    with open_workspace() as ws, progress_hook("encrypting blobs", quiet=quiet) as hook:
        result = enable_encryption(ws, source, actor=settings().actor, progress=hook)
    console.print(
        f"encryption at rest is [bold]{result.state}[/]: {result.sealed} blob(s) encrypted now, "
        f"{result.skipped} already were (key-encryption key {safe(source.describe())}, "
        f"fingerprint {result.kek_id})"
    )


@workspace_app.command("rotate-key")
def rotate_key(
    kek_file: KekFileOpt = None,
    kek_env: KekEnvOpt = None,
    kek_provider: KekProviderOpt = None,
    kek_option: KekOptionOpt = None,
    data_key: Annotated[
        bool, typer.Option("--data-key", help="Also make a new data key and re-encrypt every blob with it.")
    ] = False,
    quiet: QuietOpt = False,
) -> None:
    """Rewrap the workspace's data key with a new key-encryption key (the old one stops working), and
    with --data-key re-encrypt every blob under a new data key (resumable).
    """
    from mlsecops.store.at_rest import rotate_data_key, rotate_kek
    from mlsecops.store.encryption import KekSource

    source = _source(kek_file, kek_env, kek_provider, kek_option)
    if source is None and not data_key:
        raise InputError(
            "give the new key-encryption key (--kek-file, --kek-env, --kek-provider) and/or --data-key"
        )
    actor = settings().actor
    with open_workspace() as ws:
        if isinstance(source, KekSource):
            result = rotate_kek(ws, source, actor=actor)
            console.print(
                f"data key rewrapped with the key-encryption key from {safe(source.describe())} "
                f"(fingerprint {result.kek_id}); the old key no longer opens this workspace"
            )
        if data_key:
            with progress_hook("re-encrypting blobs", quiet=quiet) as hook:
                result = rotate_data_key(ws, actor=actor, progress=hook)
            console.print(
                f"new data key {result.active_key}: {result.sealed} blob(s) re-encrypted; old data keys deleted"
            )


@encryption_app.command("status")
def status(fmt: FormatOpt = None, output: OutputOpt = None) -> None:
    """Show whether encryption at rest is on, where its key-encryption key comes from, and how many
    blobs are encrypted (never key material).
    """
    from mlsecops.store.at_rest import encryption_status

    with open_workspace() as ws:
        doc = encryption_status(ws)
    rows = [{"setting": k, "value": "" if v is None else str(v)} for k, v in doc.items()]
    listing = Listing(
        kind="workspace.encryption",
        subject=str(settings().home),
        title=f"encryption at rest: {doc['state']}",
        key="encryption",
        rows=rows,
        document=doc,
        columns=("setting", "value"),
    )
    emit_listing(listing, fmt, output)


@encryption_app.command("keygen")
def keygen(
    path: Annotated[Path, typer.Argument(help="New key file to write (mode 0600; never overwritten).")],
) -> None:
    """Write a new random 256-bit key-encryption key (hex) to a new file readable only by you."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except FileExistsError:
        raise ConfigError(f"{path} exists already; keys are never overwritten") from None
    except OSError as err:
        raise InputError(f"cannot create {path}: {err.strerror or err}") from None
    with os.fdopen(fd, "w") as fh:
        fh.write(os.urandom(32).hex() + "\n")
    console.print(f"key-encryption key written to {safe(path)} (mode 0600); keep a copy somewhere safe")


workspace_app.add_typer(encryption_app, name="encryption")


def register(app: typer.Typer) -> None:
    """Add the ``workspace`` command group to the app."""
    app.add_typer(workspace_app, name="workspace")
