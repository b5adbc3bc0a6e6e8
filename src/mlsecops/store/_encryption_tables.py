"""Tables of encryption at rest (created by migration ``0009``).

``store_encryption`` holds at most one row (``id`` 1): the state (``encrypting`` while existing
blobs are being encrypted, ``on`` once every blob is, ``rekeying`` while blobs move to a new data
key), where the key-encryption key (KEK) comes from (a file path, an environment variable's name or
a registered provider's name, never the key), the KEK's fingerprint and the active data key's id.
``store_data_keys`` holds each data key wrapped by the KEK; a key stays until no blob uses it.
Times are UTC ISO 8601 strings with microseconds, like the audit trail.
"""

from __future__ import annotations

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mlsecops.store.models import Base

__all__ = ["DataKeyRow", "EncryptionRow"]


class EncryptionRow(Base):
    """The workspace's encryption settings (one row, or none when encryption was never turned on)."""

    __tablename__ = "store_encryption"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    state: Mapped[str] = mapped_column(String(20))
    kek_source: Mapped[str] = mapped_column(Text)
    """JSON: ``{"kind": "file", "path": ...}``, ``{"kind": "env", "name": ...}`` or
    ``{"kind": "provider", "name": ..., "options": {...}}``."""
    kek_id: Mapped[str] = mapped_column(String(64))
    active_key: Mapped[str] = mapped_column(String(16))
    updated: Mapped[str] = mapped_column(String(40))


class DataKeyRow(Base):
    """A data key, wrapped by the KEK (base64)."""

    __tablename__ = "store_data_keys"

    key_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    wrapped: Mapped[str] = mapped_column(Text)
    created: Mapped[str] = mapped_column(String(40))
