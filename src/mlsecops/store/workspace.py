"""The workspace: a database, a content-addressed artifact store and a key directory under one home.

``Workspace.init(home)`` creates ``home`` (mode 0700) with ``mlsecops.db`` (SQLite in WAL mode, unless a
database URL points elsewhere, such as PostgreSQL), ``artifacts/`` and ``keys/`` (0700), brings the
schema to the newest migration and records ``workspace.init`` as audit event 1, in the transaction
that creates the schema; it also creates ``keys/audit-head.key``, the key that seals the audit head
(``store._seal``). ``Workspace.open`` refuses a missing or corrupt workspace and one written by a newer
mlsecops; an older schema is migrated forward (recorded as ``workspace.migrate``, which also seals the
head of a workspace from before sealing).
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DatabaseError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from mlsecops.core.errors import SchemaTooNewError, WorkspaceError
from mlsecops.core.findings import utcnow
from mlsecops.core.redaction import redact
from mlsecops.core.settings import Settings
from mlsecops.store import audit
from mlsecops.store._database import READONLY, make_engine
from mlsecops.store._seal import MARK_FILE, Mark, Seal, create_key, database_id, load_key
from mlsecops.store.artifacts import ArtifactStore
from mlsecops.store.encryption import Keyring
from mlsecops.store.models import StoredArtifact

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["Workspace", "schema_revisions"]

_REVISION_RE = re.compile(r'^revision\s*=\s*"([^"]+)"', re.MULTILINE)
_DOWN_RE = re.compile(r'^down_revision\s*=\s*(?:None|"([^"]+)")', re.MULTILINE)


def _alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("mlsecops.store") / "migrations"))
    return cfg


@functools.cache
def schema_revisions() -> tuple[str, frozenset[str]]:
    """The newest schema revision this mlsecops ships, and all revisions it knows.

    Read from the migration scripts' ``revision``/``down_revision`` lines, so opening an up-to-date
    workspace never imports Alembic (a test checks this agrees with Alembic's own view).
    """
    known: set[str] = set()
    parents: set[str] = set()
    for script in (resources.files("mlsecops.store") / "migrations" / "versions").iterdir():
        if not script.name.endswith(".py") or script.name.startswith("__"):
            continue
        source = script.read_text(encoding="utf-8")
        rev, down = _REVISION_RE.search(source), _DOWN_RE.search(source)
        if rev is None or down is None:
            raise WorkspaceError(
                f"migration script {script.name} has no revision line; the installation is broken"
            )
        known.add(rev.group(1))
        if down.group(1):
            parents.add(down.group(1))
    heads = known - parents
    if len(heads) != 1:
        raise WorkspaceError(
            f"the shipped migrations have {len(heads)} heads {sorted(heads)}; the installation is broken"
        )
    return heads.pop(), frozenset(known)


def _head_revision() -> str:
    return schema_revisions()[0]


def _precreate_private_sqlite(url: str) -> None:
    """Create an absent SQLite file with mode 0600 first; SQLite gives its -wal/-shm files the same mode."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return
    path = Path(parsed.database)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        return
    except OSError as err:
        raise WorkspaceError(f"cannot create the database file {path}: {err.strerror or err}") from err


@dataclass
class Workspace:
    """An opened workspace. Use ``session()`` for transactions; close with ``close()`` or ``with``."""

    home: Path
    engine: Engine
    url: str
    _seal: Seal | None = field(default=None, init=False, repr=False)
    _keyring: Keyring | None = field(default=None, init=False, repr=False)

    @property
    def keyring(self) -> Keyring:
        """The data keys of encryption at rest (``store.encryption``), unwrapped when first needed."""
        if self._keyring is None:
            self._keyring = Keyring(self.session)
        return self._keyring

    @property
    def artifacts(self) -> ArtifactStore:
        """The content-addressed artifact store (transparently encrypted when encryption is on)."""
        return ArtifactStore(self.home / "artifacts", self.keyring)

    @property
    def keys_dir(self) -> Path:
        """Directory for key files (0700; files in it 0600)."""
        return self.home / "keys"

    @classmethod
    def from_settings(cls, settings: Settings, *, create: bool = False) -> Workspace:
        """Open (or with ``create``, initialise) the workspace the settings name."""
        url = settings.resolved_database_url()
        return cls.init(settings.home, url) if create else cls.open(settings.home, url)

    @classmethod
    def init(cls, home: Path, database_url: str | None = None, *, actor: str = "cli") -> Workspace:
        """Create the workspace at ``home`` (idempotent: an existing one is opened and migrated).

        Raises:
            WorkspaceError: the directory cannot be created or the database cannot be reached.
            SchemaTooNewError: an existing database was written by a newer mlsecops.
        """
        try:
            home.mkdir(mode=0o700, parents=True, exist_ok=True)
            for sub in ("artifacts", "keys"):
                (home / sub).mkdir(mode=0o700, exist_ok=True)
                os.chmod(home / sub, 0o700)
        except OSError as err:
            raise WorkspaceError(f"cannot create the workspace at {home}: {err.strerror or err}") from err
        url = database_url or f"sqlite:///{(home / 'mlsecops.db').resolve()}"
        _precreate_private_sqlite(url)
        ws = cls(home=home, engine=make_engine(url), url=url)
        try:
            ws._migrate(actor=actor, allow_create=True)
        except BaseException:
            ws.close()
            raise
        return ws

    @classmethod
    def open(cls, home: Path, database_url: str | None = None, *, actor: str = "cli") -> Workspace:
        """Open an existing workspace.

        Raises:
            WorkspaceError: no workspace at ``home``, or its database is corrupt or unreachable.
            SchemaTooNewError: the database was written by a newer mlsecops.
        """
        if not home.is_dir():
            raise WorkspaceError(f"no mlsecops workspace at {home}; create one with `mlsecops init`")
        if database_url is None:
            db = home / "mlsecops.db"
            if not db.is_file():
                raise WorkspaceError(
                    f"the workspace at {home} has no database {db.name}; run `mlsecops init`"
                )
            database_url = f"sqlite:///{db.resolve()}"
        ws = cls(home=home, engine=make_engine(database_url), url=database_url)
        try:
            ws._migrate(actor=actor, allow_create=False)
        except BaseException:
            ws.close()
            raise
        return ws

    def _current_revision(self) -> str | None:
        with self.engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            versions = [
                str(v) for v in conn.execute(text("SELECT version_num FROM alembic_version")).scalars()
            ]
        if len(versions) > 1:
            raise WorkspaceError(
                f"the workspace database has several schema versions {versions}; it is corrupt"
            )
        return versions[0] if versions else None

    def _load_seal(self) -> Seal:
        return Seal(self.keys_dir, load_key(self.keys_dir), database_id(self.url))

    def _migrate(self, *, actor: str, allow_create: bool) -> bool:
        """Bring the schema to the newest revision and seal the audit head; True when just created."""
        where = redact(self.url)
        try:
            self._seal = self._load_seal()
            current = self._current_revision()
            if current is None and not allow_create:
                with self.engine.connect() as conn:
                    tables = inspect(conn).get_table_names()
                what = "has unknown tables" if tables else "is empty"
                raise WorkspaceError(f"the workspace database {where} {what}; run `mlsecops init`")
            head, known = schema_revisions()
            if current is not None and current not in known:
                raise SchemaTooNewError(
                    f"the workspace database {where} has schema {current!r}, newer than this mlsecops "
                    f"knows (newest {head!r}); upgrade mlsecops to use it"
                )
            if current is None:
                self._create(actor=actor)
                return True
            if current != head:
                from alembic import command

                cfg = _alembic_config()
                with self.engine.begin() as conn:
                    cfg.attributes["connection"] = conn
                    command.upgrade(cfg, "head")
            sealing = self._seal.key is None and self._head_unsealed()
            database = self._seal.database
            if sealing:  # a workspace from before sealing (or its upgrade stopped half-way): seal it now
                key = create_key(self.keys_dir)
                self._seal = Seal(self.keys_dir, key, database, accept_unsealed=True)
            if current != head or sealing:
                with self.session() as s:
                    audit.append(
                        s,
                        actor=actor,
                        action="workspace.migrate" if current != head else "audit.seal",
                        subject=str(self.home.resolve()),
                        details={"from": current, "to": head, "head_sealed_from_here": sealing},
                    )
            if sealing:
                self._seal = Seal(self.keys_dir, key, database)
            return False
        except (OperationalError, DatabaseError) as err:
            reason = redact(str(getattr(err, "orig", err)).splitlines()[0])
            raise WorkspaceError(f"cannot use the workspace database {where}: {reason}") from err

    def _head_unsealed(self) -> bool:
        with self.session(readonly=True) as s:
            return audit.head_unsealed(s)

    def _create(self, *, actor: str) -> None:
        """Create the schema and write ``workspace.init`` as event 1 in one transaction.

        Raises:
            WorkspaceError: this host's audit mark says the (empty) database held a chain before.
        """
        assert self._seal is not None
        mark = self._seal.read_mark()
        if mark is not None:
            raise WorkspaceError(
                f"the workspace database {redact(self.url)} is empty, but this workspace's audit mark "
                f"records {mark.seq} event(s) in it: it was wiped or replaced. Restore it from a "
                f"backup; to start a new audit chain there on purpose, delete {self.keys_dir / MARK_FILE}"
            )
        key = self._seal.key or create_key(self.keys_dir)
        self._seal = Seal(self.keys_dir, key, self._seal.database)
        from alembic import command

        cfg = _alembic_config()
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            with Session(bind=conn, info={audit.SEAL_INFO: self._seal}) as s:
                audit.append(
                    s,
                    actor=actor,
                    action=audit.INIT_ACTION,
                    subject=str(self.home.resolve()),
                    details={"database": redact(self.url), "schema": _head_revision()},
                )
                appended = s.info.get(audit.APPENDED_INFO)
        if isinstance(appended, Mark):
            self._seal.advance_mark(appended)

    @contextmanager
    def session(self, *, readonly: bool = False) -> Iterator[Session]:
        """A transaction: commits when the block ends, rolls back on an exception.

        ``readonly`` sessions do not take SQLite's write lock. Sessions carry the audit seal (head
        key and mark), so ``audit.append`` and ``audit.verify`` work in them; after a commit that
        appended events, this host's audit mark moves to the newest one.
        """
        seal = self._seal if self._seal is not None else self._load_seal()
        bind = self.engine.execution_options(**{READONLY: True}) if readonly else self.engine
        factory = sessionmaker(bind=bind, expire_on_commit=False, info={audit.SEAL_INFO: seal})
        try:
            with factory() as s:
                with s.begin():
                    yield s
                appended = s.info.pop(audit.APPENDED_INFO, None)
        except (OperationalError, DatabaseError) as err:
            reason = redact(str(getattr(err, "orig", err)).splitlines()[0])
            raise WorkspaceError(f"database error on {redact(self.url)}: {reason}") from err
        if isinstance(appended, Mark):
            seal.advance_mark(appended)

    def add_artifact(self, path: Path, *, actor: str) -> str:
        """Copy a file into the artifact store, index it and record ``artifact.store``; return its SHA-256."""
        sha, size = self.artifacts.put_file(path)
        with self.session() as s:
            if s.get(StoredArtifact, sha) is None:
                s.add(
                    StoredArtifact(
                        sha256=sha, size=size, original_name=path.name[:500], created=utcnow().isoformat()
                    )
                )
                audit.append(
                    s,
                    actor=actor,
                    action="artifact.store",
                    subject=sha,
                    details={"name": path.name, "size": size},
                )
        return sha

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
