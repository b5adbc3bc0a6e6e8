"""Work functions of the Ray tests, importable on every Ray node as ``_ray_fns``: the executor tests'
own (``tests._executor_fns``; the fixture puts the repository on the nodes' PYTHONPATH) plus one that
only makes sense on Ray."""

from __future__ import annotations

import time

from tests._executor_fns import die_always, die_once, fail_on_three, seeded_draw, square

__all__ = ["die_always", "die_once", "fail_on_three", "node_of", "seeded_draw", "square"]


def node_of(x: int) -> tuple[int, str]:
    """The Ray node that ran item ``x`` (after a pause, so that tasks overlap)."""
    import ray

    time.sleep(0.5)
    return x, ray.get_runtime_context().get_node_id()
