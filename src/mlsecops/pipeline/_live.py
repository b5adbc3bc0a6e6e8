"""The live part of the demo's cases: the guard as a subprocess on loopback, and the CLI it records to.

The pipeline layer does not import the runtime; it starts ``mlsecops serve`` as a process, exactly as an
operator would, and reads alerts and incidents back through ``mlsecops ... -f json``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from mlsecops.core.errors import MlsecopsError
from mlsecops.pipeline._live_guard import infer_body, start_guard

__all__ = ["RESPONSE_USER", "cli", "cli_json", "guard", "infer_body", "show_incidents", "until_blocked"]

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


@contextmanager
def guard(home: Path, model: str, policy: Path, log: Path, *, ready_s: float = 180.0) -> Iterator[str]:
    """``mlsecops serve MODEL --policy POLICY`` on a free loopback port; yields its URL, stops it after.

    Raises:
        InputError: the guard exited or did not become ready (the end of its log says why).
    """
    live = start_guard(home, model, policy, log, ready_timeout=ready_s, env=_env(home), cwd=home.parent)
    try:
        yield live.url
    finally:
        live.stop()


def until_blocked(
    send: Callable[[str, np.ndarray], int],
    thief: Sequence[tuple[Any, np.ndarray]],
    *,
    after: Callable[[int], None] | None = None,
    wait_s: float = 90.0,
) -> int | None:
    """Send the thief's queries (``send("thief", rows)``) until the guard answers 403; how many it sent by
    then, or ``None`` when it was never blocked.

    Every 25 queries it pauses 50 ms (the detectors run off the request path: let them keep up);
    ``after(i)`` runs after the i-th query. When the stream ends unblocked, the last query is repeated
    every half second for up to ``wait_s`` seconds (a block can land a moment after its alert).
    """
    for i, (_, rows) in enumerate(thief, start=1):
        if send("thief", rows) == 403:
            return i
        if i % 25 == 0:
            time.sleep(0.05)
        if after is not None:
            after(i)
    sent = len(thief)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        time.sleep(0.5)
        sent += 1
        if send("thief", thief[-1][1]) == 403:
            return sent
    return None


def show_incidents(home: Path, principal: str, say: Callable[[str], None]) -> list[Any]:
    """The ids of the incidents recorded for ``principal``; the last one is shown (``mlsecops incidents
    show``) through ``say``.
    """
    incidents = [i for i in cli_json(home, "incidents", "list") if i["alert"]["principal"] == principal]
    if incidents:
        shown = cli(home, "incidents", "show", str(incidents[-1]["id"]))
        say(f"$ mlsecops incidents show {incidents[-1]['id']}")
        for line in shown.stdout.rstrip().splitlines():
            say(line)
    return [i["id"] for i in incidents]
