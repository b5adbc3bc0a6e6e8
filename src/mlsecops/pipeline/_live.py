"""The live part of the demo's cases: the guard as a subprocess on loopback, and the CLI it records to.

The pipeline layer does not import the runtime; it starts ``mlsecops serve`` as a process, exactly as an
operator would, and reads alerts and incidents back through ``mlsecops ... -f json``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from mlsecops.core.errors import MlsecopsError

__all__ = ["RESPONSE_USER", "cli", "cli_json", "guard", "infer_body"]

RESPONSE_USER = "mlsecops-response"
"""The user the guard's playbooks act as (``runtime.response.RESPONSE_USER``); rollback needs a deployer."""


def _env(home: Path, key: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLSECOPS_")}
    env.update({"MLSECOPS_HOME": str(home), "PYTHONUNBUFFERED": "1", "COLUMNS": "120"})
    if key is not None:
        env["MLSECOPS_API_KEY"] = key
    return env


def cli(home: Path, *args: str, key: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``mlsecops ARGS`` on the workspace ``home``."""
    return subprocess.run(
        [sys.executable, "-m", "mlsecops.cli", *args],
        env=_env(home, key),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=home.parent,
        check=False,
    )


def cli_json(home: Path, *args: str, key: str | None = None) -> Any:
    """``mlsecops ARGS -f json``, parsed.

    Raises:
        MlsecopsError: the command failed.
    """
    done = cli(home, *args, "-f", "json", key=key)
    if done.returncode != 0:
        raise MlsecopsError(f"mlsecops {' '.join(args)} failed: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def guard(home: Path, model: str, policy: Path, log: Path, *, ready_s: float = 180.0) -> Iterator[str]:
    """``mlsecops serve MODEL --policy POLICY`` on a free loopback port; yields its URL, stops it after.

    Raises:
        MlsecopsError: the guard exited or did not become ready (the end of its log says why).
    """
    import httpx

    port = _free_port()
    command = [sys.executable, "-m", "mlsecops.cli", "serve", model, "--policy", str(policy)]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command,
            env=_env(home),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=home.parent,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_s
        while True:
            if proc.poll() is not None:
                tail = log.read_text(errors="replace").strip().splitlines()[-1:]
                raise MlsecopsError(f"the guard exited ({proc.returncode}): {' '.join(tail)}")
            try:
                if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise MlsecopsError(f"the guard did not become ready in {ready_s:.0f} s; see {log}")
            time.sleep(0.2)
        yield url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def infer_body(rows: np.ndarray) -> dict[str, Any]:
    """An Open Inference Protocol v2 request for ``rows``."""
    return {
        "inputs": [
            {
                "name": "input-0",
                "shape": list(rows.shape),
                "datatype": "FP64",
                "data": rows.reshape(-1).tolist(),
            }
        ]
    }
