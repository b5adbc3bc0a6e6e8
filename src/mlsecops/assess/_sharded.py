"""Sharded evaluation: robustness and certification of a large test set on an executor.

The rows are cut into shards of ``shard_rows`` (a fixed size, never derived from the worker count);
shard ``i`` runs with the executor's per-item seed ``item_seed(seed, i)``, and its per-example outcomes
are concatenated in shard order. Every metric of the reports is computed from those per-example arrays
(counts over the whole set), so a report is the same on ``inline``, ``process`` and ``ray`` and for any
number of workers. It differs from the unsharded run of the same seed only through the random draws
(attack starts, smoothing noise), which are per shard here.

Workers load the model themselves, through the same loader as the check (``load_target_model``: a
model file only through the artifact scanner), once per worker process: the model reference must be
reachable from every worker (a shared path, a URL).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mlsecops.assess._options import load_target_model
from mlsecops.assess.attack import AttackResult
from mlsecops.assess.constraints import FeatureConstraints
from mlsecops.core.checks import Target
from mlsecops.core.executor import Executor
from mlsecops.models.interface import ModelAdapter

__all__ = ["DEFAULT_SHARD_ROWS", "LOADER_OPTIONS", "certify_sharded", "robustness_sharded", "worker_model"]

DEFAULT_SHARD_ROWS = 128
"""Rows per shard (option ``shard_rows``)."""
LOADER_OPTIONS = ("input_shape", "output", "timeout", "weights")
"""Options a worker needs to load the model as the check did."""

_MODELS: dict[tuple[str, str], ModelAdapter] = {}
"""Models loaded in this worker process, by reference and loader options."""


def worker_model(target: Target) -> tuple[str, dict[str, Any]]:
    """The model reference (a local file made absolute: workers may run elsewhere) and the loader
    options the workers load the target's model with.
    """
    from pathlib import Path

    from mlsecops.assess._options import model_and_data

    ref, _ = model_and_data(target, "sharded evaluation needs")
    ref = str(ref)
    if "://" not in ref and not ref.startswith("python:") and Path(ref).exists():
        ref = str(Path(ref).resolve())
    return ref, {k: target.options[k] for k in LOADER_OPTIONS if k in target.options}


def _model(ref: str, options: Mapping[str, Any], x: np.ndarray) -> ModelAdapter:
    key = (ref, repr(sorted(options.items())))
    if key not in _MODELS:
        _MODELS.clear()  # one model per worker at a time
        _MODELS[key] = load_target_model(Target(options=dict(options)), ref, x)
    return _MODELS[key]


def _shards(n: int, rows: int) -> list[slice]:
    return [slice(s, min(s + rows, n)) for s in range(0, n, rows)]


def _robustness_shard(item: tuple[Any, ...], seed: int) -> tuple[np.ndarray, list[AttackResult]]:
    """One shard of ``robustness_sharded``: ``(clean_correct, results)``."""
    from mlsecops.assess.robustness import evaluate_robustness

    ref, options, x, y, attacks, eps, cons = item
    ev = evaluate_robustness(
        _model(ref, options, x), x, y, attacks=attacks, eps=eps, constraints=cons, seed=seed
    )
    return ev.clean_correct, list(ev.results)


def _merge(parts: Sequence[AttackResult]) -> AttackResult:
    first = parts[0]
    extra = {  # per-example arrays are kept (concatenated); anything else is per shard and dropped
        k: np.concatenate([np.asarray(p.extra[k]) for p in parts])
        for k in first.extra
        if all(k in p.extra and np.ndim(p.extra[k]) == 1 and len(p.extra[k]) == len(p.fooled) for p in parts)
    }
    return AttackResult(
        x_adv=np.concatenate([p.x_adv for p in parts]),
        fooled=np.concatenate([p.fooled for p in parts]),
        clean_correct=np.concatenate([p.clean_correct for p in parts]),
        queries=np.concatenate([p.queries for p in parts]),
        attack=first.attack,
        norm=first.norm,
        eps=first.eps,
        extra=extra,
    )


def robustness_sharded(
    executor: Executor,
    model: ModelAdapter,
    ref: str,
    options: Mapping[str, Any],
    x: np.ndarray,
    y: np.ndarray,
    *,
    attacks: Sequence[tuple[str, Mapping[str, Any]]],
    eps: Sequence[float],
    constraints: FeatureConstraints,
    seed: int,
    shard_rows: int = DEFAULT_SHARD_ROWS,
) -> Any:
    """``evaluate_robustness`` with the rows sharded on ``executor`` (see the module docstring).

    ``model`` (already loaded here) only captions the worst examples; ``ref`` and ``options`` load it
    in the workers.
    """
    from mlsecops.assess.robustness import Evaluation

    attack_list = [(name, dict(params)) for name, params in attacks]
    items = [
        (ref, dict(options), x[s], y[s], attack_list, [float(e) for e in eps], constraints)
        for s in _shards(len(x), shard_rows)
    ]
    parts = executor.map(_robustness_shard, items, desc="robustness shards", seed=seed)
    results = tuple(_merge([p[1][k] for p in parts]) for k in range(len(parts[0][1]))) if parts else ()
    return Evaluation(
        x=x,
        y=np.asarray(y),
        clean_correct=np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, dtype=bool),
        results=results,
        constraints=constraints,
        labels=lambda batch: np.asarray(model.predict_proba(batch)).argmax(axis=1),
    )


def _certify_shard(item: tuple[Any, ...], seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One shard of ``certify_sharded``: ``(prediction, radius, p_lower)``."""
    from mlsecops.assess.certify import certify

    ref, options, x, y, params = item
    cert = certify(_model(ref, options, x), x, y, seed=seed, **params)
    return cert.prediction, cert.radius, cert.p_lower


def certify_sharded(
    executor: Executor,
    ref: str,
    options: Mapping[str, Any],
    x: np.ndarray,
    y: np.ndarray,
    *,
    sigma: float,
    n: int,
    n0: int,
    alpha: float,
    seed: int,
    shard_rows: int = DEFAULT_SHARD_ROWS,
) -> Any:
    """``certify`` with the rows sharded on ``executor`` (see the module docstring)."""
    from mlsecops.assess.certify import Certification

    params = {"sigma": sigma, "n": n, "n0": n0, "alpha": alpha}
    items = [(ref, dict(options), x[s], y[s], params) for s in _shards(len(x), shard_rows)]
    parts = executor.map(_certify_shard, items, desc="certification shards", seed=seed)
    pred, radius, p_lower = (np.concatenate([p[k] for p in parts]) for k in range(3))
    return Certification(pred, radius, p_lower, np.asarray(y), float(sigma), int(n), float(alpha))
