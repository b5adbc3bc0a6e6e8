"""Engines for the workspace database: SQLite (embedded default) and PostgreSQL, through one code path.

SQLite runs in WAL mode with a busy timeout; write transactions start with ``BEGIN IMMEDIATE`` so two
processes appending to the audit trail queue up on the write lock instead of failing half-way.
PostgreSQL serialises audit appends with a transaction-scoped advisory lock (see ``store.audit``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from mlsecops.core.errors import ConfigError
from mlsecops.core.redaction import redact

__all__ = ["READONLY", "make_engine", "redact_url"]

READONLY = "mlsecops_readonly"
"""Execution option: on SQLite, start the transaction deferred (a reader) instead of immediate."""

SQLITE_BUSY_TIMEOUT_MS = 60_000


def redact_url(url: str) -> str:
    """The URL with every credential hidden (``mlsecops.core.redact``), safe for messages, logs, audit."""
    return redact(url)


def _sqlite_events(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let us emit BEGIN ourselves (pysqlite's implicit BEGIN is deferred and comes too late).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        # WAL lets readers (audit log, dashboard) work while a writer appends; it persists in the file.
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        readonly = conn.get_execution_options().get(READONLY, False)
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


def make_engine(url: str) -> Engine:
    """Create an engine for ``url`` with the settings mlsecops relies on.

    Raises:
        ConfigError: the URL is malformed or names a driver that is not installed.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as err:
        raise ConfigError(f"database URL {redact_url(url)!r} is not a valid SQLAlchemy URL") from err
    try:
        if parsed.get_backend_name() == "sqlite":
            engine = create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
            _sqlite_events(engine)
            return engine
        return create_engine(parsed, pool_pre_ping=True)
    except (NoSuchModuleError, ModuleNotFoundError) as err:
        hint = (
            " Install it with: pip install 'mlsecops[postgres]'." if "postgres" in parsed.drivername else ""
        )
        raise ConfigError(f"no database driver for {parsed.drivername!r}.{hint}") from err
