"""SIGKILL of the CLI inside the transaction of a registry promotion and of a registration (its audit
append): afterwards no half state. The alias points at the old version, artifacts are whole, the
audit chain verifies, and the same command then succeeds. On SQLite and PostgreSQL.

The kill lands inside the transaction for sure: the test-only ``MLSECOPS_TEST_FAULT_PAUSE`` hook makes
the named audit append (rows flushed, not committed) create a file and sleep; the test waits for the
file and kills the process then."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.integration.runtime.conftest import Registry, make_registry, train_digits

from mlsecops.store.artifacts import sha256_file
from mlsecops.store.audit import FAULT_PAUSE_ENV

pytestmark = pytest.mark.timeout(240)


def _env(home: Path, db_url: str, key: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLSECOPS_")}
    env.update(
        {
            "MLSECOPS_HOME": str(home),
            "MLSECOPS_DATABASE_URL": db_url,
            "MLSECOPS_API_KEY": key,
            "COLUMNS": "200",
        }
    )
    env.update(extra)
    return env


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlsecops.cli", *args], env=env, capture_output=True, text=True, timeout=120
    )


def _killed_inside(env: dict[str, str], marker: Path, action: str, *args: str) -> None:
    """Run ``mlsecops ARGS``; SIGKILL it while it sleeps inside the transaction of ``action``."""
    env = {**env, FAULT_PAUSE_ENV: f"{action}:{marker}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlsecops.cli", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 90
    while not marker.exists():
        if proc.poll() is not None:
            _out, err = proc.communicate()
            pytest.fail(f"mlsecops {' '.join(args)} exited {proc.returncode} before the pause: {err!r}")
        assert time.monotonic() < deadline, "the CLI never reached the transaction"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL


def _production(home: Path, db_url: str) -> int | None:
    from mlsecops.registry._tables import ModelVersion
    from mlsecops.registry._versions import current_holder, get_model
    from mlsecops.store import Workspace

    with Workspace.open(home, db_url) as ws, ws.session(readonly=True) as s:
        holder = current_holder(s, get_model(s, "digits").id, "stage:production")
        if holder is None:
            return None
        version = s.get(ModelVersion, holder.version_id)
        assert version is not None  # never a dangling alias
        return int(version.version)


def _versions(home: Path, db_url: str) -> list[int]:
    from sqlalchemy import select

    from mlsecops.registry._tables import ModelVersion
    from mlsecops.store import Workspace

    with Workspace.open(home, db_url) as ws, ws.session(readonly=True) as s:
        return sorted(int(v) for v in s.execute(select(ModelVersion.version)).scalars())


def _artifacts_whole(home: Path, db_url: str) -> int:
    """Every blob file in the store hashes to its name, and every indexed artifact has its blob."""
    from sqlalchemy import select

    from mlsecops.store import StoredArtifact, Workspace

    with Workspace.open(home, db_url) as ws:
        root = ws.artifacts.root
        blobs = [p for p in root.glob("??/*") if p.is_file()]
        for p in blobs:
            assert sha256_file(p) == p.parent.name + p.name, f"half-written blob {p}"
        with ws.session(readonly=True) as s:
            for sha in s.execute(select(StoredArtifact.sha256)).scalars():
                assert ws.artifacts.verify(sha), sha
        return len(blobs)


@pytest.fixture
def world(tmp_path: Path, db_url: str) -> tuple[Registry, Path, str]:
    home = tmp_path / "ws" / ".mlsecops"
    reg = make_registry(home, tmp_path, db_url)
    model, _X, _y = train_digits(max_iter=20)
    reg.release(model, "v1")
    reg.ws.close()
    return reg, home, db_url


def test_kill_inside_a_promotion_leaves_the_old_version(
    world: tuple[Registry, Path, str], tmp_path: Path
) -> None:
    reg, home, db_url = world
    reg.ws = reg.ws.__class__.open(home, db_url)  # release v2 gated and approved, not promoted
    model, _X, _y = train_digits(seed=1, max_iter=20)
    v2 = reg.release(model, "v2", promote=False)
    reg.ws.close()
    env = _env(home, db_url, reg.keys["deployer"])
    assert _production(home, db_url) == 1
    _killed_inside(
        env,
        tmp_path / "paused",
        "registry.promote",
        "registry",
        "promote",
        "digits",
        str(v2),
        "--to",
        "production",
    )
    assert _production(home, db_url) == 1  # rolled back whole: the alias still names v1
    verify = _cli(env, "audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    # the lock the killed process held is gone: the same promotion now goes through
    done = _cli(env, "registry", "promote", "digits", str(v2), "--to", "production")
    assert done.returncode == 0, done.stdout + done.stderr
    assert _production(home, db_url) == v2
    assert _cli(env, "audit", "verify").returncode == 0


def test_kill_inside_a_registration_leaves_no_half_version(
    world: tuple[Registry, Path, str], tmp_path: Path
) -> None:
    reg, home, db_url = world
    reg.ws = reg.ws.__class__.open(home, db_url)
    model, _X, _y = train_digits(seed=2, max_iter=20)
    path, sig = reg.save_signed(model, "v2")
    reg.ws.close()
    env = _env(home, db_url, reg.keys["deployer"])
    blobs_before = _artifacts_whole(home, db_url)
    _killed_inside(
        env,
        tmp_path / "paused",
        "registry.register",
        "registry",
        "register",
        "digits",
        str(path),
        "-s",
        str(sig),
    )
    _artifacts_whole(home, db_url)  # a blob may have been stored before the transaction: whole if so
    verify = _cli(env, "audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert _production(home, db_url) == 1
    assert _versions(home, db_url) == [1]  # the killed registration left no version behind
    done = _cli(env, "registry", "register", "digits", str(path), "-s", str(sig))
    assert done.returncode == 0, done.stdout + done.stderr
    assert _versions(home, db_url) == [1, 2]  # and took no version number
    assert _artifacts_whole(home, db_url) >= blobs_before
    assert _cli(env, "audit", "verify").returncode == 0
