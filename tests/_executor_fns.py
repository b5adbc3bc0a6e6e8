"""Top-level work functions for the executor tests (importable by spawned worker processes)."""

from __future__ import annotations

import os
import random
from pathlib import Path


def square(x: int) -> int:
    return x * x


def seeded_draw(item: int, seed: int) -> tuple[int, int, float]:
    return item, seed, random.Random(seed).random()


def fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError("item three is bad")
    return x


def die_once(marker: str) -> int:
    """Kill the worker the first time (the marker file does not exist yet), succeed the second."""
    path = Path(marker)
    if not path.exists():
        path.write_text("died")
        os._exit(13)
    return os.getpid()


def die_always(x: int) -> int:
    os._exit(13)
