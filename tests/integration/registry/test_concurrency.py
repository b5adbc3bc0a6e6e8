"""Two clients promoting at the same moment: exactly one wins, the other gets ConflictError, both
attempts are in the audit trail, and the registry stays consistent (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from mlsecops.core.errors import ConflictError
from mlsecops.registry import Registry, authenticate
from mlsecops.store import Workspace, audit

from .conftest import World  # noqa: TID252 - pytest's importlib mode needs the sibling conftest's class


def _race(world: World, calls: list[Callable[[Registry, int], object]]) -> list[object]:
    """Run each call in its own thread, with its own workspace connection, starting together from the
    same view of the model (its generation read before the barrier)."""
    expected = world.regs["deployer"].generation("fraud")
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(i: int) -> None:
        ws = Workspace.open(world.ws.home, world.ws.url, actor="test")
        try:
            reg = Registry(ws, authenticate(ws, world.keys["deployer"]))
            barrier.wait()
            results[i] = calls[i](reg, expected)
        except Exception as err:
            results[i] = err
        finally:
            ws.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


def test_concurrent_promotions_exactly_one_wins(world: World) -> None:
    v1 = world.ready_for_production("fraud", b"one")
    v2 = world.ready_for_production("fraud", b"two")
    results = _race(
        world,
        [
            lambda reg, gen: reg.promote("fraud", v1, to="production", expected_generation=gen),
            lambda reg, gen: reg.promote("fraud", v2, to="production", expected_generation=gen),
        ],
    )
    conflicts = [r for r in results if isinstance(r, ConflictError)]
    wins = [i for i, r in enumerate(results) if not isinstance(r, BaseException)]
    assert len(wins) == 1 and len(conflicts) == 1, results
    assert "changed while you were acting" in str(conflicts[0])
    winner = (v1, v2)[wins[0]]
    assert world.regs["viewer"].show("fraud@production").version == winner
    history = world.regs["viewer"].history("fraud")
    assert [(h.slot, h.version) for h in history if h.ended is None] == [("stage:production", winner)]
    with world.ws.session(readonly=True) as s:
        actions = [e.action for e in audit.iter_events(s, action="registry.promote*")]
        assert actions.count("registry.promote") == 1
        assert actions.count("registry.promote.conflict") == 1
        assert audit.verify(s).ok


def test_concurrent_rollback_and_promotion_exactly_one_wins(world: World) -> None:
    dep = world.regs["deployer"]
    v1 = world.ready_for_production("fraud", b"one")
    dep.promote("fraud", v1, to="production")
    v2 = world.ready_for_production("fraud", b"two")
    dep.promote("fraud", v2, to="production")
    v3 = world.ready_for_production("fraud", b"three")
    results = _race(
        world,
        [
            lambda reg, gen: reg.rollback("fraud", expected_generation=gen),
            lambda reg, gen: reg.promote("fraud", v3, to="production", expected_generation=gen),
        ],
    )
    assert sum(isinstance(r, ConflictError) for r in results) == 1, results
    expected = v1 if not isinstance(results[0], BaseException) else v3
    assert world.regs["viewer"].show("fraud@production").version == expected


@pytest.mark.parametrize("n", [4])
def test_concurrent_registrations_get_distinct_versions(world: World, n: int) -> None:
    models = [world.model(f"c{i}", bytes([i + 1])) for i in range(n)]
    world.regs["deployer"].register("fraud", world.model("seed"))
    results = _race(world, [lambda reg, _g, m=m: reg.register("fraud", m) for m in models])
    versions = sorted(r.version for r in results if not isinstance(r, BaseException))  # type: ignore[attr-defined]
    errors = [r for r in results if isinstance(r, BaseException)]
    assert all(isinstance(e, ConflictError) for e in errors), errors
    assert len(versions) == len(set(versions)) and len(versions) + len(errors) == n
