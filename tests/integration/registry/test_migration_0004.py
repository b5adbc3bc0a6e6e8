"""Migration 0004 on a database the PostgreSQL alias race already hit (issue 11 item 6): the upgrade
closes all but the newest open holder of each slot, then the partial unique index holds the line.
SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import IntegrityError

from mlsecops.store._database import make_engine
from mlsecops.store.workspace import _alembic_config


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    try:
        yield eng
    finally:
        eng.dispose()


def _migrate(engine: Engine, revision: str, *, down: bool = False) -> None:
    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)


def _assign(conn: Connection, id_: int, version_id: int, started: str, slot: str = "alias:champion") -> None:
    conn.execute(
        text(
            "INSERT INTO registry_assignments (id, model_id, slot, version_id, started, started_by, reason) "
            "VALUES (:id, 1, :slot, :v, :t, 'dep', 'alias')"
        ),
        {"id": id_, "slot": slot, "v": version_id, "t": started},
    )


def test_upgrade_repairs_duplicate_holders_then_refuses_new_ones(engine: Engine) -> None:
    _migrate(engine, "0003")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO registry_models (id, name, description, created, created_by, last_version, "
                "generation) VALUES (1, 'fraud', '', 't', 'dep', 2, 3)"
            )
        )
        for v in (1, 2):
            conn.execute(
                text(
                    "INSERT INTO registry_versions (id, model_id, version, digest, files, size, source_name, "
                    "created, created_by, archived, scan_verdict, scan_summary) VALUES "
                    "(:v, 1, :v, 'd', '[]', 0, 'm', 't', 'dep', false, 'safe', '{}')"
                ),
                {"v": v},
            )
        # what the race left: two open holders of one alias; and a healthy slot beside it
        _assign(conn, 1, 1, "2026-01-01T00:00:01")
        _assign(conn, 2, 2, "2026-01-01T00:00:02")
        _assign(conn, 3, 1, "2026-01-01T00:00:03", slot="stage:staging")
    _migrate(engine, "head")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, ended, ended_by FROM registry_assignments ORDER BY id")).all()
    assert rows == [
        (1, "2026-01-01T00:00:02", "migration 0004"),
        (2, None, None),
        (3, None, None),
    ]
    with pytest.raises(IntegrityError), engine.begin() as conn:
        _assign(conn, 4, 1, "2026-01-01T00:00:04")
    with engine.begin() as conn:  # the benign twin: a holding that has ended does not count
        conn.execute(text("UPDATE registry_assignments SET ended = 'x', ended_by = 'dep' WHERE id = 2"))
        _assign(conn, 4, 1, "2026-01-01T00:00:04")
    _migrate(engine, "0003", down=True)  # and it can be undone
