"""The runtime guard, for real: a workspace with a signed, approved, promoted logistic regression on
digits, and ``mlsecops serve digits@production`` started once per session as a subprocess on a free
loopback port. Tests talk to it over HTTP and read its captured stderr (the access log)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests._deps import require

GUARD_POLICY = """\
version: 1
server:
  max_body_bytes: 65536
  request_timeout_s: 2
limits:
  requests_per_second: 100000
  burst: 100000
  daily_budget: 10000000
model_outputs:
  digits:
    mode: top_k
    top_k: 3
    decimals: 4
logging:
  sample_rate: 1.0
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Guard:
    """A running guard and the workspace behind it."""

    url: str
    home: Path
    tmp: Path
    keys: dict[str, str]
    key_path: Path
    proc: subprocess.Popen[bytes]
    log_path: Path
    X: np.ndarray
    y: np.ndarray
    extra: dict[str, Any] = field(default_factory=dict)

    def headers(self, who: str = "alice") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}

    def body(self, rows: np.ndarray | None = None, **extra: Any) -> dict[str, Any]:
        x = self.X[:1] if rows is None else rows
        return {
            "inputs": [
                {
                    "name": "input-0",
                    "shape": list(x.shape),
                    "datatype": "FP64",
                    "data": x.reshape(-1).tolist(),
                }
            ],
            **extra,
        }

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def workspace(self) -> Any:
        from mlsecops.store import Workspace

        return Workspace.open(self.home)


def _env(home: Path, database_url: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLSECOPS_")}
    env.update({"MLSECOPS_HOME": str(home), "PYTHONUNBUFFERED": "1", "COLUMNS": "200"})
    if database_url is not None:
        env["MLSECOPS_DATABASE_URL"] = database_url
    return env


def start_guard(
    home: Path,
    args: list[str],
    log_path: Path,
    *,
    ready_timeout: float = 120.0,
    database_url: str | None = None,
) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``mlsecops serve ARGS`` on a free port; wait for /v2/health/ready."""
    import httpx

    port = free_port()
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlsecops.cli", "serve", *args, "--host", "127.0.0.1", "--port", str(port)],
        env=_env(home, database_url),
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=home.parent,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mlsecops serve exited {proc.returncode}: {log_path.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"mlsecops serve did not become ready: {log_path.read_text()[-2000:]}")


def stop_guard(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def train_digits(seed: int = 0, *, max_iter: int = 60) -> tuple[Any, np.ndarray, np.ndarray]:
    """A logistic regression on digits (inputs 0..16, as the data set has them); quick to fit."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(X))
    train, test = idx[:900], idx[900:]
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LogisticRegression(max_iter=max_iter).fit(X[train], y[train])
    return model, X[test], y[test]


@dataclass
class Registry:
    """Library handles on the test workspace."""

    ws: Any
    regs: dict[str, Any]
    keys: dict[str, str]
    key_path: Path
    tmp: Path

    def save_signed(self, model: Any, name: str) -> tuple[Path, Path]:
        import joblib

        from mlsecops.supplychain import signing

        d = self.tmp / "models" / name
        d.mkdir(parents=True)
        path = d / "digits.joblib"
        joblib.dump(model, path)
        return path, signing.sign_model(path, signing.load_private_key(self.key_path)).signature

    def passing_run(self, model: Path) -> int:
        from mlsecops.core.checks import get_check
        from mlsecops.pipeline import Stage
        from mlsecops.pipeline.evaluated import read_paths, stage_record
        from mlsecops.store import PipelineRun, StoredReport

        stage = Stage(name="scan", check=get_check("artifact.scan"), paths=(model,))
        record = stage_record(stage, read_paths(stage), judged=True)
        with self.ws.session() as s:
            run = PipelineRun(
                pipeline="gate",
                pipeline_sha256="0" * 64,
                started="2026-01-01T00:00:00+00:00",
                finished="2026-01-01T00:00:01+00:00",
                actor="ci",
                passed=True,
                gate="[]",
            )
            s.add(run)
            s.flush()
            s.add(
                StoredReport(
                    run_id=run.id,
                    stage="scan",
                    kind="artifact.scan",
                    subject=str(model),
                    created="2026-01-01T00:00:01+00:00",
                    verdict="safe",
                    body="{}",
                    artifacts=json.dumps(record),
                )
            )
            return int(run.id)

    def release(self, model: Any, tag: str, *, promote: bool = True) -> int:
        """Register a signed model, gate and approve it, promote it to production; its version."""
        path, sig = self.save_signed(model, tag)
        info = self.regs["deployer"].register("digits", path, signature=sig)
        ref = f"digits@{info.version}"
        self.regs["deployer"].attach_gate(ref, self.passing_run(path))
        self.regs["approver"].approve(ref)
        if promote:
            self.regs["deployer"].promote("digits", info.version, to="production")
        return int(info.version)


def make_registry(home: Path, tmp: Path, database_url: str | None = None) -> Registry:
    from mlsecops.registry import Registry as Reg
    from mlsecops.registry import Role, authenticate, create_api_key, create_user, grant
    from mlsecops.store import Workspace
    from mlsecops.supplychain import signing

    ws = Workspace.init(home, database_url, actor="test")
    create_user(ws, "root", Role.ADMIN, actor=None)
    keys = {"admin": create_api_key(ws, "root", actor=None)}
    admin = authenticate(ws, keys["admin"])
    for role in ("approver", "deployer"):
        create_user(ws, role, Role(role), actor=admin)
        keys[role] = create_api_key(ws, role, actor=admin)
    for client in ("alice", "bob", "carol", "dave", "erin", "fuzz", "gina"):
        create_user(ws, client, Role.CLIENT, actor=admin)
        keys[client] = create_api_key(ws, client, actor=admin)
        if client != "bob":  # bob may call no model
            grant(ws, "digits", client, actor=admin)
    regs = {
        role: Reg(ws, authenticate(ws, key))
        for role, key in keys.items()
        if role in ("admin", "approver", "deployer")
    }
    key_path = tmp / "keys" / "release.key"
    pub, _ = signing.create_keypair(key_path)
    regs["admin"].trust_key("release", pub)
    return Registry(ws, regs, keys, key_path, tmp)


@pytest.fixture(scope="session")
def guard_world() -> Iterator[tuple[Guard, Registry]]:
    """The session's guard (digits@production) and the registry handles to change it."""
    require("fastapi", "serve")
    require("httpx", "test")
    tmp = Path(tempfile.mkdtemp(prefix="mlsecops-guard-"))
    home = tmp / "ws" / ".mlsecops"
    reg = make_registry(home, tmp)
    model, X, y = train_digits()
    reg.release(model, "v1")
    policy = tmp / "guard.yaml"
    policy.write_text(GUARD_POLICY)
    log_path = tmp / "guard.log"
    proc, url = start_guard(home, ["digits@production", "--policy", str(policy)], log_path)
    guard = Guard(url, home, tmp, reg.keys, reg.key_path, proc, log_path, X, y)
    try:
        yield guard, reg
    finally:
        stop_guard(proc)
        reg.ws.close()


@pytest.fixture(scope="session")
def guard(guard_world: tuple[Guard, Registry]) -> Guard:
    return guard_world[0]


@pytest.fixture(scope="session")
def registry(guard_world: tuple[Guard, Registry]) -> Registry:
    return guard_world[1]


@pytest.fixture
def client(guard: Guard) -> Iterator[Any]:
    import httpx

    with httpx.Client(base_url=guard.url, timeout=10) as c:
        yield c


Post = Callable[..., Any]
