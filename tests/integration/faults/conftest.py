"""A PostgreSQL cluster the fault tests own (they restart it), apart from the session's shared one."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from tests._deps import require
from tests.conftest import PostgresServer, _free_port, _pg_bindir


@dataclass
class OwnedPostgres(PostgresServer):
    """A throw-away cluster that a test may stop and start."""

    ctl: list[str] = field(default_factory=list)
    opts: str = ""

    def stop(self) -> None:
        subprocess.run([*self.ctl, "-m", "immediate", "stop"], check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        subprocess.run(
            [*self.ctl, "-o", self.opts, "-w", "-t", "60", "start"],
            check=True,
            capture_output=True,
            timeout=90,
        )


@pytest.fixture(scope="module")
def owned_postgres() -> Iterator[OwnedPostgres]:
    bindir = _pg_bindir()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL binaries not found, but CI must run the PostgreSQL tests")
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not installed")
    require("psycopg", "postgres")  # skipped locally without it, a failure under CI
    root = Path(tempfile.mkdtemp(prefix="mlsecops-pg-fault-"))
    data, sock = root / "data", root / "sock"
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres", "postgres")
        os.chmod(root, 0o700)
    for d in (data, sock):
        d.mkdir()
        if as_user:
            shutil.chown(d, "postgres", "postgres")
    subprocess.run(
        [*as_user, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    port = _free_port()
    server = OwnedPostgres(
        port=port,
        ctl=[*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log")],
        opts=f"-p {port} -k {sock} -h 127.0.0.1 -F -c fsync=off",
    )
    server.start()
    try:
        yield server
    finally:
        subprocess.run([*server.ctl, "-m", "immediate", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)
