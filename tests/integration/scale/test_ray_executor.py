"""The ``ray`` engine keeps the executor contract on a real two-node local cluster: results in order and
identical to the other engines for the same seed, exceptions as themselves, a killed worker retried,
a worker that keeps dying a clear error, progress aggregated across workers, work spread over both
nodes, and a privacy audit whose reference models train on Ray giving the same report as on the pool.
"""

from __future__ import annotations

import time
from pathlib import Path

import _ray_fns as fns
import pytest

from mlsecops.core.executor import ExecutorError, get_executor


def test_results_in_order_and_identical_across_engines(ray_cluster: str) -> None:
    items = list(range(12))
    on_ray = get_executor("ray", address=ray_cluster).map(fns.seeded_draw, items, seed=7)
    assert on_ray == get_executor("inline").map(fns.seeded_draw, items, seed=7)
    assert on_ray == get_executor("process", workers=2).map(fns.seeded_draw, items, seed=7)
    assert get_executor("ray", address=ray_cluster, workers=1).map(fns.square, items) == [
        i * i for i in items
    ]


def test_an_error_in_fn_propagates_as_itself(ray_cluster: str) -> None:
    with pytest.raises(ValueError, match="item three is bad"):
        get_executor("ray", address=ray_cluster).map(fns.fail_on_three, range(6))


def test_a_killed_worker_is_retried(ray_cluster: str, tmp_path: Path) -> None:
    marker = tmp_path / "died-once"
    out = get_executor("ray", address=ray_cluster).map(fns.die_once, [str(marker)])
    assert marker.exists() and isinstance(out[0], int)


def test_a_worker_that_keeps_dying_is_a_clear_error(ray_cluster: str) -> None:
    with pytest.raises(ExecutorError, match=r"died 2 times .*1 of 1 items not done"):
        get_executor("ray", address=ray_cluster).map(fns.die_always, [1], desc="doomed")


def test_progress_is_aggregated_across_workers(ray_cluster: str) -> None:
    seen: list[tuple[str, int, int]] = []
    get_executor("ray", address=ray_cluster, progress=lambda *a: seen.append(a)).map(
        fns.square, range(9), desc="squares"
    )
    done = [d for _, d, _ in seen]
    assert seen[0] == ("squares", 0, 9) and seen[-1] == ("squares", 9, 9)
    assert done == sorted(done) and {t for _, _, t in seen} == {9}


def test_work_spreads_over_both_nodes(ray_cluster: str) -> None:
    import ray

    nodes = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    assert len(nodes) == 2
    # The tests before this one killed workers and cancelled tasks; their CPUs come back asynchronously.
    deadline = time.monotonic() + 60
    while ray.available_resources().get("CPU", 0) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ray.available_resources().get("CPU", 0) == 2, ray.available_resources()
    out = get_executor("ray", address=ray_cluster, workers=2).map(fns.node_of, range(6))
    assert [x for x, _ in out] == list(range(6))
    assert {node for _, node in out} == nodes


def test_an_address_is_refused_for_local_engines() -> None:
    from mlsecops.core.errors import ConfigError

    with pytest.raises(ConfigError, match="cluster engine"):
        get_executor("process", address="127.0.0.1:1")


def test_privacy_audit_reference_models_on_ray_match_the_pool(ray_cluster: str) -> None:
    """The costly fan-out of the privacy audit (K reference models) gives the same report on Ray."""
    import numpy as np
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    from mlsecops.assess.privacy.audit import audit_privacy
    from mlsecops.models import SklearnModel

    X, y = load_breast_cancer(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    members, non_members, pool = order[:150], order[150:300], order[300:]
    model = LogisticRegression(C=100.0, max_iter=2000).fit(X[members], y[members])

    def run(engine: str, **kw: object) -> list[object]:
        audit = audit_privacy(
            SklearnModel(model),
            (X[members], y[members]),
            (X[non_members], y[non_members]),
            reference=(X[pool], y[pool]),
            attacks=["lira_offline", "rmia"],
            references=4,
            executor=get_executor(engine, **kw),  # type: ignore[arg-type]
            seed=3,
        )
        assert audit.references is not None  # the reference models were trained
        return [audit.attacks, audit.scores["lira_offline"].tolist(), audit.scores["rmia"].tolist()]

    assert run("ray", address=ray_cluster) == run("process", workers=2)
