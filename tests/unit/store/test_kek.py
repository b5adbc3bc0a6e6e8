"""Key-encryption keys: accepted forms, refused files (too open, not ours, symlinks, not a key),
environment variables, providers by name only, and no key material in any message."""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag

from mlsecops.core.errors import ConfigError
from mlsecops.store.encryption import (
    KekSource,
    KeyProvider,
    KeyUnavailable,
    LocalKek,
    parse_key,
    register_key_provider,
)

KEK = bytes(range(100, 132))


def _file(tmp_path: Path, content: bytes, mode: int = 0o600) -> Path:
    path = tmp_path / "kek"
    path.write_bytes(content)
    path.chmod(mode)
    return path


@pytest.mark.parametrize(
    "form",
    [
        KEK,
        KEK.hex().encode(),
        KEK.hex().encode() + b"\n",
        base64.b64encode(KEK),
        base64.b64encode(KEK) + b"\n",
    ],
)
def test_key_forms(form: bytes, tmp_path: Path) -> None:
    assert parse_key(form, "x") == KEK
    provider = KekSource.file(_file(tmp_path, form)).open()
    assert provider.kek_id() == LocalKek(KEK).kek_id()


@pytest.mark.parametrize(
    "bad", [b"", b"short", KEK[:31], KEK.hex().encode()[:-2], b"z" * 64, b"passphrase please"]
)
def test_not_a_key_is_refused_without_quoting_it(bad: bytes) -> None:
    with pytest.raises(KeyUnavailable, match="256-bit key") as info:
        parse_key(bad, "the file k")
    if len(bad) > 4:
        assert bad.decode(errors="replace") not in info.value.diagnostics()


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o602])
def test_key_file_open_to_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = _file(tmp_path, KEK.hex().encode(), mode)
    with pytest.raises(KeyUnavailable, match="chmod 600"):
        KekSource.file(path).open()


def test_key_file_0400_is_accepted_and_symlink_is_refused(tmp_path: Path) -> None:
    path = _file(tmp_path, KEK.hex().encode(), 0o400)
    assert KekSource.file(path).open().kek_id() == LocalKek(KEK).kek_id()
    link = tmp_path / "link"
    link.symlink_to(path)
    with pytest.raises(KeyUnavailable, match="cannot read"):
        KekSource.file(link).open()
    with pytest.raises(KeyUnavailable, match="cannot read"):
        KekSource.file(tmp_path / "missing").open()
    with pytest.raises(KeyUnavailable, match="not a regular file"):
        KekSource.file(tmp_path).open()


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="chown to another user needs root"
)
def test_key_file_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    path = _file(tmp_path, KEK.hex().encode())
    os.chown(path, 65534, 65534)
    with pytest.raises(KeyUnavailable, match="owned by another user"):
        KekSource.file(path).open()


def test_env_source(tmp_path: Path) -> None:
    source = KekSource.env("MY_KEK")
    assert source.open({"MY_KEK": base64.b64encode(KEK).decode()}).kek_id() == LocalKek(KEK).kek_id()
    with pytest.raises(KeyUnavailable, match="MY_KEK is not set"):
        source.open({})
    with pytest.raises(KeyUnavailable, match="256-bit"):
        source.open({"MY_KEK": "hunter2"})
    with pytest.raises(ConfigError):
        KekSource.env("not a name; rm -rf /")


def test_wrap_is_bound_to_key_and_context() -> None:
    kek = LocalKek(KEK)
    wrapped = kek.wrap(b"d" * 32, b"ctx-1")
    assert kek.unwrap(wrapped, b"ctx-1") == b"d" * 32
    with pytest.raises(InvalidTag):
        kek.unwrap(wrapped, b"ctx-2")
    with pytest.raises(InvalidTag):
        LocalKek(bytes(32)).unwrap(wrapped, b"ctx-1")
    assert KEK.hex() not in repr(kek) and kek.kek_id().startswith("local:")


class _Vault:
    """A provider that keeps its KEK to itself (as a KMS would)."""

    def __init__(self, options: Mapping[str, str]) -> None:
        self.inner = LocalKek(KEK)
        self.options = dict(options)

    def kek_id(self) -> str:
        return "vault:" + self.options.get("key", "?")

    def wrap(self, data_key: bytes, context: bytes) -> bytes:
        return self.inner.wrap(data_key, context)

    def unwrap(self, wrapped: bytes, context: bytes) -> bytes:
        return self.inner.unwrap(wrapped, context)


def test_provider_by_registered_name_only() -> None:
    register_key_provider("test-vault", _Vault)
    source = KekSource.provider("test-vault", {"key": "ml"})
    provider = source.open()
    assert isinstance(provider, KeyProvider) and provider.kek_id() == "vault:ml"
    assert KekSource.from_json(source.to_json()) == source
    with pytest.raises(ConfigError, match="not a module path"):
        KekSource.provider("os:system")
    with pytest.raises(KeyUnavailable, match="no key provider named"):
        KekSource.provider("absent").open()
    forged = '{"kind": "provider", "name": "subprocess:run", "options": {}}'
    with pytest.raises(ConfigError):
        KekSource.from_json(forged)
