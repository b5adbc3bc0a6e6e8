"""Encryption at rest: key-encryption keys (KEKs), key providers and the workspace's keyring.

A workspace with encryption on has a random 256-bit data key (``store_data_keys``, several during a
data-key rotation), stored only wrapped by a KEK. The KEK comes from one of:

- a file (``KekSource.file``): 32 random bytes, raw, as 64 hex digits or as base64; refused unless it
  is a regular file owned by this user with no permission bits for group or others (0600 or 0400);
- an environment variable (``KekSource.env``): the same text forms;
- a key provider (``KekSource.provider``): any object with the ``KeyProvider`` protocol (a KMS, an HSM,
  a vault's transit engine), which wraps and unwraps the data key itself so the KEK never leaves it.
  Providers are found by name among those registered in this process (``register_key_provider``) or
  installed under the entry point group ``mlsecops.key_providers``. The database names the provider
  but never a module path: whoever can write the database must not be able to make mlsecops import
  code.

The workspace settings (``store_encryption``) record where the KEK comes from, never the KEK; the
``Keyring`` reads them, unwraps data keys when a blob first needs one and keeps them in memory only.
Wrong or missing keys raise ``KeyUnavailable`` (one line, exit 2); no key material is ever part of a
message, a log line or an audit event.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import stat
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Protocol, runtime_checkable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select
from sqlalchemy.orm import Session

from mlsecops.core.errors import ConfigError, WorkspaceError
from mlsecops.core.redaction import redact
from mlsecops.store._encryption_tables import DataKeyRow, EncryptionRow

__all__ = [
    "ENTRY_POINT_GROUP",
    "KEY_SIZE",
    "KekSource",
    "KeyProvider",
    "KeyUnavailable",
    "Keyring",
    "LocalKek",
    "Policy",
    "parse_key",
    "register_key_provider",
]

KEY_SIZE = 32
"""Bytes of a KEK and of a data key (AES-256)."""
MAX_KEY_FILE = 4096
"""Bytes read from a KEK file at most: a KEK is 32 bytes; anything near this is not one."""
ENTRY_POINT_GROUP = "mlsecops.key_providers"
STATES = ("encrypting", "on", "rekeying")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_PROVIDER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_WRAP_NONCE = 12


class KeyUnavailable(WorkspaceError):
    """A key needed to read or write encrypted blobs is missing, wrong or unusable."""


@runtime_checkable
class KeyProvider(Protocol):
    """Wraps and unwraps data keys with a KEK it holds.

    ``context`` is authenticated with the wrapped key (the data key's id); a provider must refuse to
    unwrap under another context. Errors of ``unwrap`` mean "wrong key or not ours".
    """

    def kek_id(self) -> str:
        """A non-secret fingerprint of the KEK (shown in status, recorded in the audit trail)."""
        ...

    def wrap(self, data_key: bytes, context: bytes) -> bytes:
        """The data key wrapped by the KEK."""
        ...

    def unwrap(self, wrapped: bytes, context: bytes) -> bytes:
        """The data key, or an exception when the KEK or the context is not the one it was wrapped with."""
        ...


ProviderFactory = Callable[[Mapping[str, str]], KeyProvider]
_PROVIDERS: dict[str, ProviderFactory] = {}


def register_key_provider(name: str, factory: ProviderFactory) -> None:
    """Make a key provider available under ``name`` in this process (``--kek-provider NAME``).

    ``factory(options)`` gets the ``--kek-option KEY=VALUE`` pairs recorded with the workspace
    (names of keys, regions, URLs: never secrets, which the provider reads from its own environment).

    Raises:
        ConfigError: the name is not a simple name, or is taken.
    """
    if not _PROVIDER_NAME.match(name):
        raise ConfigError(f"key provider name {name!r} must be letters, digits, '.', '_' or '-'")
    if name in _PROVIDERS and _PROVIDERS[name] is not factory:
        raise ConfigError(f"a key provider named {name!r} is registered already")
    _PROVIDERS[name] = factory


def _find_provider(name: str) -> ProviderFactory:
    if name in _PROVIDERS:
        return _PROVIDERS[name]
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            factory: ProviderFactory = ep.load()
            return factory
    raise KeyUnavailable(
        f"no key provider named {name!r} is installed (entry point group {ENTRY_POINT_GROUP!r})"
    )


def parse_key(raw: bytes, what: str) -> bytes:
    """A 32-byte key from raw bytes, 64 hex digits or base64 (surrounding whitespace allowed).

    Raises:
        KeyUnavailable: anything else (the message never quotes the content).
    """
    if len(raw) == KEY_SIZE:
        return raw
    text = raw.strip()
    try:
        if len(text) == 2 * KEY_SIZE:
            return bytes.fromhex(text.decode("ascii"))
        decoded = base64.b64decode(text, validate=True)
        if len(decoded) == KEY_SIZE:
            return decoded
    except (ValueError, binascii.Error, UnicodeDecodeError):
        pass
    raise KeyUnavailable(
        f"{what} does not hold a 256-bit key: expected 32 random bytes, raw, as 64 hex digits or as "
        "base64 (make one with `mlsecops workspace encryption keygen FILE`)"
    )


def read_key_file(path: Path) -> bytes:
    """The KEK in ``path``, refused unless only its owner (this user) may read it.

    Raises:
        KeyUnavailable: missing, not a regular file, too open, owned by someone else, or not a key.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as err:
        raise KeyUnavailable(
            f"cannot read the key-encryption key file {path}: {err.strerror or err}"
        ) from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise KeyUnavailable(f"the key-encryption key file {path} is not a regular file")
    with os.fdopen(fd, "rb") as fh:
        if st.st_mode & 0o077:
            raise KeyUnavailable(
                f"the key-encryption key file {path} is open to other users (mode "
                f"{stat.S_IMODE(st.st_mode):04o}); run `chmod 600 {path}`"
            )
        if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
            raise KeyUnavailable(f"the key-encryption key file {path} is owned by another user")
        raw = fh.read(MAX_KEY_FILE + 1)
    if len(raw) > MAX_KEY_FILE:
        raise KeyUnavailable(f"the key-encryption key file {path} is too large to be a key")
    return parse_key(raw, f"the key-encryption key file {path}")


class LocalKek:
    """A KEK held in this process (from a file or an environment variable); wraps with AES-256-GCM."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_SIZE:
            raise KeyUnavailable("a key-encryption key must be 32 bytes")
        self._aead = AESGCM(key)
        self._id = HKDF(algorithm=hashes.SHA256(), length=8, salt=None, info=b"mlsecops kek id v1").derive(
            key
        )

    def kek_id(self) -> str:
        """``local:`` and 16 hex digits derived one-way from the key."""
        return "local:" + self._id.hex()

    def wrap(self, data_key: bytes, context: bytes) -> bytes:
        """``nonce | AES-GCM(data key)`` with ``context`` as associated data."""
        nonce = os.urandom(_WRAP_NONCE)
        return nonce + self._aead.encrypt(nonce, data_key, context)

    def unwrap(self, wrapped: bytes, context: bytes) -> bytes:
        """The data key; ``InvalidTag`` when the KEK or the context differs."""
        return self._aead.decrypt(wrapped[:_WRAP_NONCE], wrapped[_WRAP_NONCE:], context)

    def __repr__(self) -> str:
        return f"LocalKek({self.kek_id()})"


@dataclass(frozen=True)
class KekSource:
    """Where the KEK comes from: the only part of it the workspace records."""

    kind: str
    """``file``, ``env`` or ``provider``."""
    name: str
    """The file's absolute path, the variable's name or the provider's name."""
    options: Mapping[str, str] = field(default_factory=dict)
    """Provider options (never secrets)."""

    @classmethod
    def file(cls, path: Path) -> KekSource:
        """A KEK file (recorded by absolute path)."""
        return cls("file", str(Path(path).expanduser().absolute()))

    @classmethod
    def env(cls, name: str) -> KekSource:
        """A KEK in an environment variable.

        Raises:
            ConfigError: not a variable name.
        """
        if not _ENV_NAME.match(name):
            raise ConfigError(f"{name!r} is not an environment variable name")
        return cls("env", name)

    @classmethod
    def provider(cls, name: str, options: Mapping[str, str] | None = None) -> KekSource:
        """A registered key provider.

        Raises:
            ConfigError: not a provider name (module paths are refused on purpose).
        """
        if not _PROVIDER_NAME.match(name):
            raise ConfigError(
                f"key provider {name!r}: give the name it is registered under, not a module path"
            )
        return cls("provider", name, dict(options or {}))

    def describe(self) -> str:
        """What to show and audit: kind and name (options redacted), never key material."""
        if self.kind == "provider" and self.options:
            opts = ", ".join(f"{k}={redact(v)}" for k, v in sorted(self.options.items()))
            return f"provider {self.name} ({opts})"
        return f"{self.kind} {self.name}"

    def to_json(self) -> str:
        """The settings column's value."""
        return json.dumps(
            {"kind": self.kind, "name": self.name, "options": dict(self.options)}, sort_keys=True
        )

    @classmethod
    def from_json(cls, text: str) -> KekSource:
        """Read the settings column.

        Raises:
            WorkspaceError: the column is not one this mlsecops wrote.
        """
        try:
            raw = json.loads(text)
            source = cls(
                str(raw["kind"]), str(raw["name"]), {str(k): str(v) for k, v in raw["options"].items()}
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            raise WorkspaceError("the workspace's encryption settings are corrupt (kek_source)") from None
        if source.kind not in ("file", "env", "provider"):
            raise WorkspaceError(
                f"the workspace's encryption settings name an unknown KEK source {source.kind!r}"
            )
        if source.kind == "provider":
            return cls.provider(source.name, source.options)
        return source

    def open(self, environ: Mapping[str, str] | None = None) -> KeyProvider:
        """The provider that wraps and unwraps with this KEK.

        Raises:
            KeyUnavailable: the file or variable is missing or not a key, or the provider is unknown.
        """
        if self.kind == "file":
            return LocalKek(read_key_file(Path(self.name)))
        if self.kind == "env":
            env = os.environ if environ is None else environ
            value = env.get(self.name)
            if not value:
                raise KeyUnavailable(
                    f"the key-encryption key variable {self.name} is not set; the workspace's blobs are "
                    "encrypted with a key wrapped by it"
                )
            return LocalKek(parse_key(value.encode(), f"the variable {self.name}"))
        try:
            made = _find_provider(self.name)(self.options)
        except KeyUnavailable:
            raise
        except Exception as err:  # a third-party provider: its own errors become one line
            reason = redact(str(err).splitlines()[0] if str(err) else type(err).__name__)
            raise KeyUnavailable(f"key provider {self.name!r} failed to start: {reason}") from None
        if not isinstance(made, KeyProvider):
            raise KeyUnavailable(f"key provider {self.name!r} does not implement kek_id, wrap and unwrap")
        return made


def wrap_context(key_id: str) -> bytes:
    """Associated data of a wrapped data key: it unwraps only as the key it was stored as."""
    return b"mlsecops data key v1:" + key_id.encode()


def wrap_key(provider: KeyProvider, data_key: bytes, key_id: str) -> str:
    """``data_key`` wrapped by ``provider``, base64 for the settings table."""
    return base64.b64encode(provider.wrap(data_key, wrap_context(key_id))).decode()


def unwrap_key(provider: KeyProvider, row: DataKeyRow, source: KekSource, recorded_kek: str) -> bytes:
    """The data key of ``row``.

    Raises:
        KeyUnavailable: the KEK is not the one the key was wrapped with (or the row was altered).
    """
    try:
        current = provider.kek_id()
    except Exception:  # a third-party provider failing
        current = "?"
    try:
        key = provider.unwrap(base64.b64decode(row.wrapped), wrap_context(row.key_id))
    except (InvalidTag, ValueError, binascii.Error):
        key = b""
    except Exception as err:  # a provider's own failure (network, permission)
        reason = redact(str(err).splitlines()[0] if str(err) else type(err).__name__)
        raise KeyUnavailable(f"the key provider failed to unwrap the workspace data key: {reason}") from None
    if len(key) != KEY_SIZE:
        raise KeyUnavailable(
            f"wrong key-encryption key: the key from {source.describe()} (fingerprint {current}) does not "
            f"unwrap the workspace data key (wrapped with {recorded_kek}), or the stored wrapped key was altered"
        )
    return key


@dataclass(frozen=True)
class Policy:
    """What the artifact store does now: encrypt new blobs with ``active_key``; read plaintext blobs
    only while existing ones are still being encrypted (``accept_plain``).
    """

    state: str
    active_key: str
    kek_id: str
    source: KekSource

    @property
    def accept_plain(self) -> bool:
        """Plaintext blobs may still exist (encryption was turned on and is not finished)."""
        return self.state == "encrypting"


SessionFactory = Callable[..., AbstractContextManager[Session]]


def read_policy(s: Session) -> Policy | None:
    """The workspace's encryption settings, or None when encryption was never turned on."""
    row = s.get(EncryptionRow, 1)
    if row is None:
        return None
    if row.state not in STATES:
        raise WorkspaceError(f"the workspace's encryption settings have an unknown state {row.state!r}")
    return Policy(row.state, row.active_key, row.kek_id, KekSource.from_json(row.kek_source))


class Keyring:
    """The data keys of one workspace, unwrapped on first use and kept in memory only.

    Thread-safe. ``environ`` is where an ``env`` KEK source is read (default: this process's
    environment, read when a key is first needed).
    """

    def __init__(self, session: SessionFactory, *, environ: Mapping[str, str] | None = None) -> None:
        self._session = session
        self._environ = environ
        self._keys: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Keyring({len(self._keys)} key(s) unwrapped)"

    def policy(self) -> Policy | None:
        """The current settings, read fresh (another process may have turned encryption on)."""
        with self._session(readonly=True) as s:
            return read_policy(s)

    def forget(self) -> None:
        """Drop the unwrapped keys (after a rotation)."""
        with self._lock:
            self._keys.clear()

    def key(self, key_id: str) -> bytes:
        """The data key ``key_id``.

        Raises:
            KeyUnavailable: encryption is off, the key is unknown, or the KEK is missing or wrong.
        """
        with self._lock:
            if key_id in self._keys:
                return self._keys[key_id]
            with self._session(readonly=True) as s:
                policy = read_policy(s)
                row = s.execute(select(DataKeyRow).where(DataKeyRow.key_id == key_id)).scalar_one_or_none()
            if policy is None:
                raise KeyUnavailable(
                    "a blob in the artifact store is encrypted, but this workspace has no encryption settings"
                )
            if row is None:
                raise KeyUnavailable(
                    f"a blob is encrypted with data key {key_id}, which this workspace does not hold"
                )
            self._keys[key_id] = unwrap_key(
                policy.source.open(self._environ), row, policy.source, policy.kek_id
            )
            return self._keys[key_id]

    def holds(self, key_id: str) -> bool:
        """Whether the workspace holds data key ``key_id`` (wrapped; nothing is unwrapped)."""
        with self._lock:
            if key_id in self._keys:
                return True
        with self._session(readonly=True) as s:
            return s.get(DataKeyRow, key_id) is not None

    def key_by_raw_id(self, raw: bytes) -> bytes:
        """``key`` for the 8-byte id in a blob header."""
        return self.key(raw.hex())

    def keys(self) -> Iterator[str]:
        """Ids of the keys unwrapped so far."""
        with self._lock:
            yield from list(self._keys)
