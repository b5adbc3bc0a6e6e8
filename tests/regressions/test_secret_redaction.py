"""Issue 11 item 8: a database URL's credentials reached the terminal and the permanent audit trail.

Each planted form carries a unique secret; after ``mlsecops init`` and ``audit log`` it must appear in
no output, no log record, no audit row, and (SQLite) nowhere in the bytes of any file of the
workspace (database, WAL, keys). The benign twin: a URL without secrets is kept whole.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from sqlalchemy import text

from mlsecops.store import Workspace

SECRET = "Hx7uniqueSecret42"


def _workspace_bytes(home: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(home.rglob("*")) if p.is_file())


def _all_rows(ws: Workspace) -> str:
    """Every value of every table, as text."""
    from sqlalchemy import inspect

    out = []
    with ws.engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            out += [repr(tuple(row)) for row in conn.execute(text(f'SELECT * FROM "{table}"'))]
    return "\n".join(out)


@pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")  # pysqlite ignores the parameter
@pytest.mark.parametrize(
    "query",
    [
        f"password={SECRET}",
        f"sslpassword={SECRET}",
        f"PASSWORD={SECRET}",
        f"%70assword={SECRET}",
        f"auth_token={SECRET}",
        f"client_secret={SECRET}",
        f"apikey={SECRET}",
    ],
)
def test_sqlite_url_credentials_stay_out_of_output_logs_and_workspace(
    cli, tmp_path: Path, caplog: pytest.LogCaptureFixture, query: str
) -> None:
    home = tmp_path / "ws"
    url = f"sqlite:///{tmp_path / 'ws.db'}?{query}"
    env = {"MLSECOPS_HOME": str(home), "MLSECOPS_DATABASE_URL": url}
    with caplog.at_level(logging.DEBUG):
        init = cli("init", env=env)
        log = cli("audit", "log", "--format", "json", env=env)
        verify = cli("audit", "verify", env=env)
    assert (init.code, log.code, verify.code) == (0, 0, 0), init.err + log.err + verify.err
    for stream in (init.out, init.err, log.out, log.err, verify.out, verify.err, caplog.text):
        assert SECRET not in stream
    events = json.loads(log.out)
    assert events[0]["action"] == "workspace.init" and "***" in events[0]["details"]["database"]
    blob = _workspace_bytes(home) + b"".join(p.read_bytes() for p in tmp_path.glob("ws.db*") if p.is_file())
    assert SECRET.encode() not in blob
    assert b"ws.db" in blob  # the benign part of the URL is kept


def test_benign_twin_plain_url_is_kept_whole(cli, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'plain.db'}"
    env = {"MLSECOPS_HOME": str(tmp_path / "ws"), "MLSECOPS_DATABASE_URL": url}
    assert cli("init", env=env).code == 0
    events = json.loads(cli("audit", "log", "--format", "json", env=env).out)
    assert events[0]["details"]["database"] == url


@pytest.mark.postgres
@pytest.mark.parametrize(
    "template",
    [
        "postgresql+psycopg://postgres:{s}@127.0.0.1:{port}/{db}",
        "postgresql+psycopg://postgres@127.0.0.1:{port}/{db}?password={s}",
        "postgresql+psycopg://postgres:{s}@127.0.0.1:{port}/{db}?sslmode=disable&password={s}",
    ],
    ids=["userinfo", "query", "both"],
)
def test_postgres_url_credentials_stay_out_of_output_and_database(
    cli, postgres_server, tmp_path: Path, caplog: pytest.LogCaptureFixture, template: str
) -> None:
    plain = postgres_server.create_database()  # trust authentication: any password is accepted
    db = plain.rsplit("/", 1)[1]
    url = template.format(s=SECRET, port=postgres_server.port, db=db)
    env = {"MLSECOPS_HOME": str(tmp_path / "ws"), "MLSECOPS_DATABASE_URL": url}
    with caplog.at_level(logging.DEBUG):
        init = cli("init", env=env)
        log = cli("audit", "log", "--format", "json", env=env)
    assert (init.code, log.code) == (0, 0), init.err + log.err
    for stream in (init.out, init.err, log.out, log.err, caplog.text):
        assert SECRET not in stream
    with Workspace.open(tmp_path / "ws", url) as ws:
        assert SECRET not in _all_rows(ws)
    assert SECRET.encode() not in _workspace_bytes(tmp_path / "ws")


def test_unreachable_database_error_does_not_echo_the_password(cli, tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql+psycopg://app:{SECRET}@127.0.0.1:{port}/db?password={SECRET}"
    result = cli("init", env={"MLSECOPS_HOME": str(tmp_path / "ws"), "MLSECOPS_DATABASE_URL": url})
    assert result.code == 2
    assert SECRET not in result.out + result.err
