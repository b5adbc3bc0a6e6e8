"""The dashboard in a real browser: ``mlsecops ui`` started once per session as a subprocess on a free
loopback port, over a workspace populated with real registry calls, and one headless Debian Chromium
(``/usr/bin/chromium``) driven by Playwright (no browser download).

The workspace: an admin, an approver, a deployer, a viewer and a client; ``digits`` v1, a logistic
regression on scikit-learn's digits trained on a CSV recorded as its lineage, signed with a trusted
key, gated, approved and promoted to production; v2 registered from a file whose name is HTML; an
extraction alert the playbook answered with a block (an incident), and alerts whose model and
principal are HTML. Screenshots go to ``out/test-artifacts/browser/``.
"""

from __future__ import annotations

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

import pytest
from tests._deps import require

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "out" / "test-artifacts" / "browser"
HTML_FILE = "digits<img src=x onerror=alert(1)>.joblib"
"""A file name that is HTML: shown as text, it must never become an element."""
HTML_MODEL = '<script>alert("model")</script>'
HTML_PRINCIPAL = "<img src=x onerror=alert(2)>"

POLICY = """\
version: 1
playbooks:
  - name: contain-model-thieves
    kind: extraction
    min_severity: high
    actions:
      - action: block
"""
GATE_PIPELINE = """\
name: release-gate
stages:
  - name: scan
    check: artifact.scan
    paths: ["{model}"]
  - name: audit
    check: audit.verify
policy:
  - stage: scan
    max_severity: low
  - stage: audit
    max_severity: info
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class World:
    """The running dashboard and what the workspace holds."""

    url: str
    home: Path
    keys: dict[str, str]
    alerts: dict[str, int]
    incident: int
    run_id: int
    proc: subprocess.Popen[bytes]
    log_path: Path
    extra: dict[str, Any] = field(default_factory=dict)

    def workspace(self) -> Any:
        from mlsecops.store import Workspace

        return Workspace.open(self.home)


def _populate(home: Path, tmp: Path) -> tuple[dict[str, str], dict[str, int], int, int]:
    import joblib
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    from mlsecops.core.severity import Severity
    from mlsecops.monitor.alerts import AlertStore
    from mlsecops.monitor.interface import Alert
    from mlsecops.pipeline import load_pipeline, run_pipeline
    from mlsecops.registry import Registry, Role, authenticate, create_api_key, create_user
    from mlsecops.runtime.policy import load_policy
    from mlsecops.runtime.response import ResponseEngine
    from mlsecops.store import Workspace
    from mlsecops.supplychain import signing

    ws = Workspace.init(home, actor="test")
    try:
        create_user(ws, "root", Role.ADMIN, actor=None)
        keys = {"admin": create_api_key(ws, "root", actor=None)}
        admin = authenticate(ws, keys["admin"])
        users = (
            ("ann", "approver"),
            ("dan", "deployer"),
            ("vera", "viewer"),
            ("cleo", "client"),
            ("cli1", "thief"),
        )
        for user, role in users:
            create_user(ws, user, Role(role if role != "thief" else "client"), actor=admin)
            keys[role] = create_api_key(ws, user, actor=admin)
        regs = {r: Registry(ws, authenticate(ws, keys[r])) for r in ("admin", "approver", "deployer")}
        key_path = tmp / "keys" / "release.key"
        pub, _ = signing.create_keypair(key_path)
        regs["admin"].trust_key("release", pub)

        X, y = load_digits(return_X_y=True)
        data = tmp / "digits-train.csv"
        np.savetxt(data, np.column_stack([X[:900], y[:900]]), delimiter=",", fmt="%g")
        model = LogisticRegression(max_iter=60).fit(X[:900], y[:900])
        v1_dir = tmp / "models" / "v1"
        v1_dir.mkdir(parents=True)
        v1 = v1_dir / "digits.joblib"
        joblib.dump(model, v1)
        sig = signing.sign_model(v1, signing.load_private_key(key_path)).signature
        info = regs["deployer"].register("digits", v1, signature=sig, trained_on=[str(data)])

        pipeline = tmp / "release-gate.yaml"
        pipeline.write_text(GATE_PIPELINE.format(model=v1))
        run_id = run_pipeline(load_pipeline(pipeline), workspace=ws, actor="ci").run_id
        assert run_id is not None
        ref = f"digits@{info.version}"
        regs["deployer"].attach_gate(ref, run_id)
        regs["approver"].approve(ref, comment="reviewed the scan and the gate")
        regs["deployer"].promote("digits", info.version, to="production")

        v2_dir = tmp / "models" / "v2"
        v2_dir.mkdir(parents=True)
        joblib.dump(model, v2_dir / HTML_FILE)
        regs["deployer"].register("digits", v2_dir / HTML_FILE)

        store = AlertStore(ws)
        now = time.time()
        thief = store.record(
            Alert(
                "extraction",
                "cli1",
                "digits",
                Severity.HIGH,
                812,
                now - 30,
                {"margin_rank": 0.97, "queries": 812},
            )
        )
        policy_path = tmp / "guard.yaml"
        policy_path.write_text(POLICY)
        incidents = ResponseEngine(ws, load_policy(policy_path)).respond(thief.alert.id)
        assert incidents and incidents[0].id is not None, "the playbook should have run"
        html = store.record(
            Alert(
                "query_attack",
                HTML_PRINCIPAL,
                HTML_MODEL,
                Severity.MEDIUM,
                40,
                now - 20,
                {"note": "<b>x</b>"},
            )
        )
        drift = store.record(Alert("drift", "", "digits", Severity.MEDIUM, 0, now - 10, {"p_value": 0.001}))
        alerts = {"thief": thief.alert.id, "html": html.alert.id, "drift": drift.alert.id}
        return keys, alerts, int(incidents[0].id), int(run_id)
    finally:
        ws.close()


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLSECOPS_")}
    env.update({"MLSECOPS_HOME": str(home), "PYTHONUNBUFFERED": "1"})
    return env


@pytest.fixture(scope="session")
def world() -> Iterator[World]:
    """The populated workspace and ``mlsecops ui`` serving it."""
    require("fastapi", "serve")
    httpx = require("httpx", "test")
    tmp = Path(tempfile.mkdtemp(prefix="mlsecops-ui-"))
    home = tmp / "ws" / ".mlsecops"
    from mlsecops.store import Workspace

    Workspace.init(home, actor="test").close()
    # the server boots (imports, app) while the workspace is populated below; identities and data
    # are read per request, so nothing it holds goes stale
    port = _free_port()
    log_path = tmp / "ui.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlsecops.cli", "ui", "--host", "127.0.0.1", "--port", str(port)],
        env=_env(home),
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp,
    )
    url = f"http://127.0.0.1:{port}"
    keys, alerts, incident, run_id = _populate(home, tmp)
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"mlsecops ui exited {proc.returncode}: {log_path.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/login", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"mlsecops ui did not start: {log_path.read_text()[-2000:]}")
        time.sleep(0.1)
    # postures computed at start-up predate the data: wait until they cover the newest event
    auth = {"Authorization": f"Bearer {keys['admin']}"}
    while time.monotonic() < deadline:
        doc = httpx.get(f"{url}/api/models", headers=auth, timeout=30).json()
        if doc["postures_as_of_event"] == doc["audit_head"]:
            break
        time.sleep(0.1)
    try:
        yield World(url, home, keys, alerts, incident, run_id, proc, log_path)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Debian Chromium for the session (install it with ``apt-get install chromium``)."""
    sync_api = require("playwright.sync_api", "test")
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} not found, but CI must run the browser tests (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} not found; apt-get install -y chromium")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        try:
            yield b
        finally:
            b.close()


@dataclass
class Tab:
    """A fresh browser context (own cookies) and page, with what the page reported."""

    page: Any
    world: World
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def go(self, path: str) -> Any:
        response = self.page.goto(self.world.url + path)
        self.page.wait_for_load_state("load")
        return response

    def login(self, role: str) -> None:
        self.go("/login")
        self.page.fill("#credential", self.world.keys[role])
        self.page.click("#login-submit")
        self.page.wait_for_load_state("load")

    def shot(self, name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def tab(browser: Any, world: World) -> Iterator[Tab]:
    """A new context per test: its console errors, page errors and dialogs are collected."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    t = Tab(page, world)
    page.on(
        "console", lambda m: t.errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None
    )
    page.on("pageerror", lambda e: t.errors.append(f"page error: {e}"))

    def _dialog(d: Any) -> None:
        t.dialogs.append(d.message)
        d.dismiss()

    page.on("dialog", _dialog)
    try:
        yield t
    finally:
        context.close()


Login = Callable[[str], Tab]
