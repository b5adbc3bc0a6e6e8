"""Migration 0006 on SQLite and PostgreSQL: creates the grant, revision, control and budget tables with
the revision row, and its downgrade removes them again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command
from sqlalchemy import Engine, inspect, text

from mlsecops.store._database import make_engine
from mlsecops.store.workspace import _alembic_config

TABLES = {"registry_grants", "access_revision", "runtime_controls", "runtime_budgets"}


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    try:
        yield eng
    finally:
        eng.dispose()


def migrate(engine: Engine, revision: str, *, down: bool = False) -> None:
    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)


def tables(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(inspect(conn).get_table_names())


def test_upgrade_creates_the_tables_and_the_revision_row_and_downgrade_drops_them(engine: Engine) -> None:
    migrate(engine, "0005")
    assert not TABLES & tables(engine)
    migrate(engine, "0006")
    assert tables(engine) >= TABLES
    with engine.begin() as conn:
        row = conn.execute(text('SELECT id, "identity", "grants", "controls" FROM access_revision')).all()
        assert [tuple(r) for r in row] == [(1, 0, 0, 0)]
        conn.execute(
            text(
                "INSERT INTO registry_grants (model, principal, created, created_by) VALUES ('m', 'p', 't', 'a')"
            )
        )
        with pytest.raises(Exception, match=r"(?i)unique"), conn.begin_nested():
            conn.execute(
                text(
                    "INSERT INTO registry_grants (model, principal, created, created_by) "
                    "VALUES ('m', 'p', 't2', 'b')"
                )
            )
    migrate(engine, "0005", down=True)
    assert not TABLES & tables(engine)
    migrate(engine, "0006")
    assert tables(engine) >= TABLES
