"""The executor contract: order, seeds independent of engine and workers, retries, errors."""

from __future__ import annotations

import pytest
from tests._executor_fns import die_always, die_once, fail_on_three, seeded_draw, square

from mlsecops.core.errors import ConfigError
from mlsecops.core.executor import (
    ENGINES,
    Executor,
    ExecutorError,
    get_executor,
    item_seed,
    register_engine,
)


@pytest.mark.parametrize("engine", ["inline", "process"])
def test_results_in_item_order(engine: str) -> None:
    ex = get_executor(engine, workers=2)
    assert isinstance(ex, Executor)
    assert ex.map(square, list(range(7))) == [i * i for i in range(7)]
    assert ex.map(square, []) == []


def test_same_seed_same_results_on_every_engine_and_worker_count() -> None:
    runs = [
        get_executor("inline").map(seeded_draw, list(range(6)), seed=5),
        get_executor("process", workers=1).map(seeded_draw, list(range(6)), seed=5),
        get_executor("process", workers=2).map(seeded_draw, list(range(6)), seed=5),
    ]
    assert runs[0] == runs[1] == runs[2]
    assert [r[1] for r in runs[0]] == [item_seed(5, i) for i in range(6)]
    assert len({r[1] for r in runs[0]}) == 6  # every item its own seed
    other = get_executor("inline").map(seeded_draw, list(range(6)), seed=6)
    assert [r[2] for r in other] != [r[2] for r in runs[0]]


def test_item_seed_fits_every_library() -> None:
    seeds = [item_seed(s, i) for s in (0, 1, 2**40) for i in range(50)]
    assert all(0 <= s < 2**32 for s in seeds)
    assert item_seed(3, 4) == item_seed(3, 4) != item_seed(4, 3)


@pytest.mark.parametrize("engine", ["inline", "process"])
def test_an_error_in_fn_propagates_unchanged(engine: str) -> None:
    with pytest.raises(ValueError, match="item three is bad"):
        get_executor(engine, workers=2).map(fail_on_three, [1, 2, 3, 4])


@pytest.mark.timeout(120)
def test_a_dead_worker_is_retried_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    marker = tmp_path / "died"
    out = get_executor("process", workers=1).map(die_once, [str(marker)], desc="flaky")
    assert marker.exists() and isinstance(out[0], int)


@pytest.mark.timeout(120)
def test_a_worker_dying_twice_is_a_clear_error() -> None:
    with pytest.raises(ExecutorError, match="flaky job: a worker process died twice"):
        get_executor("process", workers=2).map(die_always, [1, 2], desc="flaky job")


def test_progress_reports_every_item() -> None:
    seen: list[tuple[str, int, int]] = []
    get_executor("inline", progress=lambda s, d, t: seen.append((s, d, t))).map(
        square, [1, 2, 3], desc="squares"
    )
    assert seen[-1] == ("squares", 3, 3) and seen[0] == ("squares", 0, 3)
    seen.clear()
    get_executor("process", workers=2, progress=lambda s, d, t: seen.append((s, d, t))).map(
        square, [1, 2, 3], desc="squares"
    )
    assert seen[0] == ("squares", 0, 3) and seen[-1] == ("squares", 3, 3)


def test_unknown_engine_and_bad_workers_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown executor 'rya'; choose one of: inline, process"):
        get_executor("rya")
    with pytest.raises(ConfigError, match="workers must be in"):
        get_executor("process", workers=0)


def test_an_engine_registers_by_name() -> None:
    calls: list[int | None] = []

    class Recording:
        name = "recording"

        def __init__(self, *, workers: int | None = None, progress: object = None) -> None:
            calls.append(workers)
            self.workers = workers or 1

        def map(self, fn, items, *, desc=None, seed=None):  # type: ignore[no-untyped-def]
            return [fn(i) for i in items]

    register_engine("recording", Recording)
    try:
        assert get_executor("recording", workers=3).map(square, [2]) == [4]
        assert calls == [3]
    finally:
        ENGINES.pop("recording")
