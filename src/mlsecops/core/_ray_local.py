"""A multi-node Ray cluster on this machine, for tests and benchmarks of the ``ray`` engine.

``local_cluster(nodes=2)`` starts a head and ``nodes - 1`` more nodes, each its own ``ray start``
process tree (as separate machines would run) on its own loopback address (``127.0.0.2``,
``127.0.0.3``, ...: addresses Ray does not rewrite to the host's network address, as it does
``127.0.0.1``), on free ports, and stops them all on exit::

    with local_cluster(nodes=2, cpus_per_node=1) as address:
        get_executor("ray", address=address).map(fn, items)

Token authentication: a fresh random token of this process (``enable_token_auth``) is set in
``os.environ`` before Ray is imported (Ray reads its auth mode once, when imported) and handed to every
node, so nothing else on the machine can join the cluster or submit work, and nothing in ``$HOME`` is
read or written. Nodes on one machine share its CPUs: such a cluster exercises the multi-node path
(scheduling across nodes, object transfer between them) and its overhead, not more hardware.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from mlsecops.core._ray import _import_ray
from mlsecops.core.errors import ConfigError
from mlsecops.core.executor import ExecutorError

__all__ = ["MAX_NODES", "enable_token_auth", "local_cluster", "node_ip"]

MAX_NODES = 16
"""Most nodes one local cluster starts (each is a ``ray start`` process tree of several processes)."""
START_TIMEOUT = 120.0
"""Seconds the whole cluster has to come up."""
_LOG_TAIL = 2000
"""Characters of a node's log quoted when it does not start."""


def node_ip(index: int) -> str:
    """The loopback address of node ``index`` (0 is the head): ``127.0.0.{index + 2}``."""
    return f"127.0.0.{index + 2}"


def enable_token_auth() -> str:
    """Turn on Ray token authentication for this process and the nodes it starts; return the token.

    Sets ``RAY_AUTH_MODE=token`` and a fresh ``RAY_AUTH_TOKEN`` in ``os.environ``. Must run before the
    first ``import ray`` of the process; once Ray is imported, a token set earlier (by this function or
    by the user) is kept.

    Raises:
        ExecutorError: Ray was already imported without token authentication.
    """
    token = os.environ.get("RAY_AUTH_TOKEN", "")
    if "ray" in sys.modules:
        if os.environ.get("RAY_AUTH_MODE") == "token" and token:
            return token
        raise ExecutorError(
            "Ray was imported before token authentication was set up: enter local_cluster() or call "
            "enable_token_auth() before the first `import ray` of the process"
        )
    token = secrets.token_hex(32)
    os.environ.update({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token})
    os.environ.pop("RAY_AUTH_TOKEN_PATH", None)
    return token


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ray_cli() -> str:
    found = Path(sys.executable).with_name("ray")
    return str(found) if found.exists() else (shutil.which("ray") or "ray")


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:  # the child keeps its own descriptor
        return subprocess.Popen(
            [_ray_cli(), "start", "--block", "--disable-usage-stats", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as one, and only it
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _tail(log: Path, token: str) -> str:
    try:
        text = log.read_text(errors="replace")[-_LOG_TAIL:]
    except OSError as err:
        return f"(no log: {err})"
    return text.replace(token, "<token>") if token else text


@contextmanager
def local_cluster(
    nodes: int = 2,
    cpus_per_node: int = 1,
    *,
    pythonpath: Sequence[str | Path] = (),
    log_dir: str | Path | None = None,
    connect: bool = True,
    timeout: float = START_TIMEOUT,
) -> Iterator[str]:
    """Start a Ray cluster of ``nodes`` nodes on loopback addresses; yield the head's ``HOST:PORT``.

    Args:
        nodes: nodes to start, the head included (1 to ``MAX_NODES``).
        cpus_per_node: CPUs each node offers to Ray.
        pythonpath: folders put first on the nodes' ``PYTHONPATH`` (modules the tasks import).
        log_dir: where the nodes' ``ray start`` output goes (``head.log``, ``node2.log``, ...); default
            a temporary folder removed on exit.
        connect: leave this process connected to the cluster while it runs (``ray.init``); when False,
            the connection used to wait for the nodes is closed before the address is yielded, and the
            caller connects (e.g. ``get_executor("ray", address=address)``).
        timeout: seconds the cluster has to come up.

    Raises:
        ConfigError: a bad node or CPU count.
        ExecutorError: Ray is not installed or was imported without token authentication, this process
            is already connected to a Ray cluster, or a node did not start in time (with its log tail).
    """
    if not 1 <= nodes <= MAX_NODES:
        raise ConfigError(f"nodes must be in [1, {MAX_NODES}]; got {nodes}")
    if cpus_per_node < 1:
        raise ConfigError(f"cpus_per_node must be at least 1; got {cpus_per_node}")
    token = enable_token_auth()
    ray = _import_ray()  # after the token is set; imported when a cluster is first started
    if ray.is_initialized():
        raise ExecutorError("this process is already connected to a Ray cluster: ray.shutdown() first")
    with ExitStack() as stack:
        if log_dir is None:
            logs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mlsecops-ray-")))
        else:
            logs = Path(log_dir)
            logs.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                [*(str(p) for p in pythonpath), os.environ.get("PYTHONPATH", "")]
            ).strip(os.pathsep),
            "RAY_USAGE_STATS_ENABLED": "0",
        }
        env.pop("RAY_ADDRESS", None)
        port = _free_port()
        address = f"{node_ip(0)}:{port}"
        procs: list[tuple[subprocess.Popen[bytes], Path]] = []

        def stop_all() -> None:
            for proc, _ in reversed(procs):
                _stop(proc)

        stack.callback(stop_all)
        stack.callback(ray.shutdown)  # runs first: the driver leaves before the nodes stop

        def start(index: int, args: list[str]) -> None:
            log = logs / ("head.log" if index == 0 else f"node{index + 1}.log")
            common = [
                f"--node-ip-address={node_ip(index)}",
                f"--num-cpus={cpus_per_node}",
                f"--dashboard-agent-listen-port={_free_port()}",
                f"--metrics-export-port={_free_port()}",
            ]
            procs.append((_start([*args, *common], env, log), log))

        def failed(what: str, proc: subprocess.Popen[bytes], log: Path) -> ExecutorError:
            code = proc.poll()
            how = f"did not start within {timeout:.0f} s" if code is None else f"exited with code {code}"
            return ExecutorError(f"{what} {how}; {log}:\n{_tail(log, token)}")

        deadline = time.monotonic() + timeout
        start(0, ["--head", f"--port={port}", "--include-dashboard=false"])
        head, head_log = procs[0]
        while not _listening(node_ip(0), port):  # ray.init waits long on a head that is not there
            if head.poll() is not None or time.monotonic() > deadline:
                raise failed(f"the Ray head at {address}", head, head_log)
            time.sleep(0.5)
        while True:
            try:
                ray.init(
                    address=address,
                    _node_ip_address=node_ip(0),
                    logging_level=logging.ERROR,
                    log_to_driver=False,
                )
                break
            except (ConnectionError, RuntimeError):
                if head.poll() is not None or time.monotonic() > deadline:
                    raise failed(f"the Ray head at {address}", head, head_log) from None
                time.sleep(1)
        for index in range(1, nodes):
            start(index, [f"--address={address}"])
        while missing := [i for i in range(nodes) if node_ip(i) not in _alive(ray)]:
            late = time.monotonic() > deadline
            for index, (proc, log) in enumerate(procs):
                if proc.poll() is not None or (late and index == missing[0]):
                    raise failed(f"Ray node {index + 1} of {nodes} ({node_ip(index)})", proc, log)
            time.sleep(1)
        if not connect:
            ray.shutdown()
        yield address


def _alive(ray: Any) -> set[str]:
    """The addresses of the cluster's live nodes."""
    return {str(n["NodeManagerAddress"]) for n in ray.nodes() if n["Alive"]}
