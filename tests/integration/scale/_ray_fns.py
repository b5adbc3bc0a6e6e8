"""Top-level work functions of the Ray tests, importable on every Ray node as ``_ray_fns`` (the
fixture puts this folder on the nodes' PYTHONPATH; a top-level ``tests`` package that some dependency
installs into site-packages would shadow ``tests._executor_fns`` there)."""

from __future__ import annotations

import os
import random
import time
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


def node_of(x: int) -> tuple[int, str]:
    """The Ray node that ran item ``x`` (after a pause, so that tasks overlap)."""
    import ray

    time.sleep(0.5)
    return x, ray.get_runtime_context().get_node_id()
