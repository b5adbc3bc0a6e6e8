"""A local Ray cluster for the scale-out tests: a head and a second node, each its own ``ray start``
process tree on this machine (as separate machines would be), on free loopback ports; started once per
test session and stopped at its end. CI installs the ``ray`` extra, so these tests never skip there.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

# Token authentication with a token of this session's own, set before Ray is imported (it reads its
# auth mode once): nothing else on the machine can join or submit work, nothing in $HOME is used.
_AUTH = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
os.environ.update(_AUTH)

try:
    import ray
except ImportError:  # pragma: no cover - CI installs the extra and must never skip these
    if os.environ.get("CI"):
        raise
    pytest.skip("the ray extra is not installed", allow_module_level=True)

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # the test modules import _ray_fns as the Ray nodes do
    sys.path.insert(0, str(HERE))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ray_cli() -> str:
    found = Path(sys.executable).with_name("ray")
    return str(found) if found.exists() else (shutil.which("ray") or "ray")


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [_ray_cli(), "start", "--block", "--disable-usage-stats", *args],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The address of a two-node local cluster (1 CPU per node); this process is connected to it."""
    logs = tmp_path_factory.mktemp("ray-logs")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(HERE), str(HERE.parents[2]), os.environ.get("PYTHONPATH", "")]
        ).rstrip(os.pathsep),
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    env.pop("RAY_ADDRESS", None)
    env.update(_AUTH)
    # loopback addresses Ray does not rewrite to the host's network address (it does so for 127.0.0.1)
    head_ip, node_ip = "127.0.0.2", "127.0.0.3"
    port = _free_port()
    address = f"{head_ip}:{port}"
    common = [
        "--num-cpus=1",
        f"--dashboard-agent-listen-port={_free_port()}",
        f"--metrics-export-port={_free_port()}",
    ]
    head = _start(
        ["--head", f"--node-ip-address={head_ip}", f"--port={port}", "--include-dashboard=false", *common],
        env,
        logs / "head.log",
    )
    procs = [head]
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                ray.init(
                    address=address, _node_ip_address=head_ip, logging_level="ERROR", log_to_driver=False
                )
                break
            except (ConnectionError, RuntimeError):
                if head.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the Ray head did not start: {(logs / 'head.log').read_text()[-2000:]}"
                    ) from None
                time.sleep(1)
        worker = _start(
            [f"--address={address}", f"--node-ip-address={node_ip}", *common], env, logs / "node2.log"
        )
        procs.append(worker)
        while sum(1 for n in ray.nodes() if n["Alive"]) < 2:
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the second Ray node did not join: {(logs / 'node2.log').read_text()[-2000:]}"
                )
            time.sleep(1)
        yield address
    finally:
        ray.shutdown()
        for proc in reversed(procs):
            _stop(proc)
