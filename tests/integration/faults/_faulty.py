"""Scan functions that SIGKILL the worker process running them: importable by forked and spawned
workers alike (a test patches them in for the scanner's own)."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

from mlsecops.supplychain.scanner import _api

TRIGGER = "trigger"
"""Files whose name starts with this kill the worker scanning them."""
_SCAN_ONE = _api._scan_one  # the scanner's own, taken before a test patches these in
_SCAN_CHUNK = _api._scan_chunk


def _maybe_die(path: str, *, always: bool = False) -> None:
    p = Path(path)
    if not p.name.startswith(TRIGGER):
        return
    if not always:
        try:  # once per directory: the marker beside it says a worker already died on it
            with open(p.parent.parent / f".died-{p.parent.name}", "x"):
                pass
        except FileExistsError:
            return
    os.kill(os.getpid(), signal.SIGKILL)


def die_once_scan_one(task: tuple[Any, ...]) -> Any:
    _maybe_die(task[0])
    return _SCAN_ONE(task)  # type: ignore[arg-type]


def die_once_scan_chunk(task: tuple[Any, ...]) -> Any:
    for f in task[0]:
        _maybe_die(f)
    return _SCAN_CHUNK(task)  # type: ignore[arg-type]


def die_always_scan_one(task: tuple[Any, ...]) -> Any:
    _maybe_die(task[0], always=True)
    return _SCAN_ONE(task)  # type: ignore[arg-type]
