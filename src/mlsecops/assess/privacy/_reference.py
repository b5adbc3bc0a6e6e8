"""Reference ("shadow") models for the calibrated, LiRA and RMIA attacks, trained through the executor.

The attacker's best guess of the target's training procedure: the same architecture trained the same
way on other data. A scikit-learn estimator is ``sklearn.base.clone``d (same hyper-parameters, no
fitted state); a PyTorch module is deep-copied, re-initialised (``reset_parameters`` of every layer)
and trained with ``train_torch`` (Adam, cross-entropy, the epochs and learning rate given). Other
models (ONNX, endpoints, exported programs) cannot be retrained: the reference attacks need the
architecture.

Plan (LiRA's online design, Carlini et al. 2022): every audited record (member or non-member) is in
the training set of exactly half the K models, chosen at random per record, so each record has K/2
models that saw it (IN) and K/2 that did not (OUT); the offline attacks use only the OUT ones. Rows of
the reference pool top each training set up to the target's training-set size. Each job returns the
reference model's class probabilities on the audited records only (small; the model stays in the
worker).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlsecops.core.errors import ConfigError, InputError
from mlsecops.core.executor import Executor, InlineExecutor, item_seed

__all__ = [
    "MIN_REFERENCES",
    "MIN_REFERENCE_ROWS",
    "ReferencePlan",
    "TorchRecipe",
    "learner_of",
    "plan_references",
    "run_references",
    "train_torch",
]

MIN_REFERENCES = 2
"""Fewest reference models: each record needs at least one IN and one OUT model."""
MAX_REFERENCES = 1024
"""Most reference models one audit trains: bounds the work a typo buys."""
POOL_PAYS_SECONDS = 10.0
"""Estimated seconds of the remaining reference models below which a local process pool (seconds to
start) is skipped and they train in this process; other engines (Ray) are always used."""
MIN_REFERENCE_ROWS = 20
"""Fewest rows a reference model may train on (and at least two per class): fewer gives a model
unlike the target, and scores that look like leakage or its absence for the wrong reason."""


@dataclass(frozen=True)
class TorchRecipe:
    """How PyTorch reference models are trained: a re-initialised copy of the target's module."""

    module: Any
    epochs: int = 30
    lr: float = 1e-3
    batch_size: int = 64
    weight_decay: float = 0.0
    output: str = "logits"


def learner_of(model: Any, *, epochs: int = 30, lr: float = 1e-3, batch_size: int = 64) -> Any | None:
    """What a reference model is cloned from: the estimator (scikit-learn), a ``TorchRecipe``, or None.

    None means the model cannot be retrained here (ONNX, an endpoint, a TorchScript or exported program).
    """
    est = getattr(model, "estimator", None)
    if est is not None and callable(getattr(est, "fit", None)):
        return est
    module = getattr(model, "module", None)
    if module is not None and _resettable(module):
        return TorchRecipe(
            module=module,
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            output=str(getattr(model, "output", "logits")),
        )
    return None


def _resettable(module: Any) -> bool:
    import torch

    if isinstance(module, torch.jit.ScriptModule) or not isinstance(module, torch.nn.Module):
        return False
    params = list(module.parameters())
    if not params:
        return False
    owners = [m for m in module.modules() if callable(getattr(m, "reset_parameters", None))]
    owned = {id(p) for m in owners for p in m.parameters(recurse=False)}
    return all(id(p) in owned for p in params)


@dataclass(frozen=True)
class ReferencePlan:
    """Which audited records each reference model trains on.

    Attributes:
        inside: ``(K, n)`` bool; ``inside[k, i]`` is True when record ``i`` trains model ``k``.
        pool_rows: for each model, the pool row indices that top its training set up.
    """

    inside: np.ndarray
    pool_rows: tuple[np.ndarray, ...]


def plan_references(
    n_records: int, n_pool: int, train_size: int, k: int, n_classes: int, seed: int
) -> ReferencePlan:
    """Balanced IN/OUT assignment of ``n_records`` audited records to ``k`` models, plus pool rows.

    Raises:
        ConfigError: ``k`` out of range.
        InputError: too few rows for a reference model to train on.
    """
    if not MIN_REFERENCES <= k <= MAX_REFERENCES:
        raise ConfigError(f"references must be in [{MIN_REFERENCES}, {MAX_REFERENCES}]; got {k}")
    rng = np.random.default_rng(seed)
    inside = np.zeros((k, n_records), dtype=bool)
    half = k // 2
    for i in range(n_records):
        inside[rng.permutation(k)[:half], i] = True
    per_model = int(inside.sum(axis=1).min())
    fill = max(0, min(n_pool, train_size - per_model))
    rows = per_model + fill
    need = max(MIN_REFERENCE_ROWS, 2 * n_classes)
    if rows < need:
        raise InputError(
            f"too few rows for {k} reference models: each would train on {rows} rows (half of the "
            f"{n_records} audited records plus {fill} pool rows); need at least {need}. Give more rows "
            "with --reference-data, or use the attacks without reference models (loss, confidence)"
        )
    pool_rows = tuple(np.sort(rng.choice(n_pool, size=fill, replace=False)) for _ in range(k))
    return ReferencePlan(inside=inside, pool_rows=pool_rows)


@dataclass(frozen=True)
class _Job:
    learner: Any
    x_train: np.ndarray
    y_train: np.ndarray
    x_eval: np.ndarray
    n_classes: int


def run_references(
    learner: Any,
    plan: ReferencePlan,
    records: tuple[np.ndarray, np.ndarray],
    pool: tuple[np.ndarray, np.ndarray] | None,
    n_classes: int,
    executor: Executor,
    *,
    seed: int,
) -> np.ndarray:
    """Train the planned reference models and return their probabilities on the records, ``(K, n, C)``."""
    x, y = records
    jobs = []
    for k in range(plan.inside.shape[0]):
        xs, ys = [x[plan.inside[k]]], [y[plan.inside[k]]]
        if pool is not None and plan.pool_rows[k].size:
            xs.append(pool[0][plan.pool_rows[k]])
            ys.append(pool[1][plan.pool_rows[k]])
        jobs.append(_Job(learner, np.concatenate(xs), np.concatenate(ys), x, n_classes))
    seeds = [item_seed(seed, k) for k in range(len(jobs))]
    items = list(zip(jobs, seeds, strict=True))
    # the first model trains here and times the job: a pool of fresh interpreters costs seconds to
    # start, which only pays when the remaining models take longer than that (same seeds either way)
    started = time.perf_counter()
    first = _train_item(items[0])
    rest_seconds = (time.perf_counter() - started) * (len(items) - 1) / max(executor.workers, 1)
    if rest_seconds < POOL_PAYS_SECONDS and executor.name == "process":
        executor = InlineExecutor(progress=getattr(executor, "progress", None))
    out = [first, *executor.map(_train_item, items[1:], desc="reference models")]
    return np.stack(out)


def _train_item(item: tuple[_Job, int]) -> np.ndarray:
    """Executor work item: one reference model with its seed."""
    return train_reference(*item)


def train_reference(job: _Job, seed: int) -> np.ndarray:
    """Fit one reference model (executor work item) and return its probabilities on ``job.x_eval``."""
    if isinstance(job.learner, TorchRecipe):
        return _torch_reference(job, seed)
    from sklearn.base import clone

    est = clone(job.learner)
    params = est.get_params()
    fixed = {k: seed for k in params if k == "random_state" or k.endswith("__random_state")}
    # one thread per reference model (the executor runs them in parallel); None already means one
    fixed.update(
        {k: 1 for k, v in params.items() if (k == "n_jobs" or k.endswith("__n_jobs")) and v not in (None, 1)}
    )
    if fixed:
        est.set_params(**fixed)
    est.fit(job.x_train.reshape(len(job.x_train), -1), job.y_train)
    flat = job.x_eval.reshape(len(job.x_eval), -1)
    out = np.zeros((len(flat), job.n_classes))
    classes = np.asarray(est.classes_).astype(np.int64)
    if callable(getattr(est, "predict_proba", None)):
        out[:, classes] = est.predict_proba(flat)
    else:
        out[np.arange(len(flat)), est.predict(flat).astype(np.int64)] = 1.0
    return out


def train_torch(
    module: Any,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    weight_decay: float = 0.0,
    seed: int = 0,
    output: str = "logits",
    progress: Callable[[int], None] | None = None,
) -> Any:
    """Train ``module`` in place with Adam on the cross-entropy (seeded); return it in eval mode."""
    import torch

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
    opt = torch.optim.Adam(module.parameters(), lr=lr, weight_decay=weight_decay)
    module.train()
    for epoch in range(epochs):
        perm = torch.randperm(len(xt), generator=gen)
        for start in range(0, len(xt), batch_size):
            idx = perm[start : start + batch_size]
            out = module(xt[idx])
            if output == "log_proba":
                logp = out
            elif output == "proba":
                logp = torch.log(out.clamp_min(1e-12))
            else:
                logp = torch.log_softmax(out, dim=1)
            loss = torch.nn.functional.nll_loss(logp, yt[idx])
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]  # torch stub gap
            opt.step()
        if progress is not None:
            progress(epoch + 1)
    return module.eval()


def _torch_reference(job: _Job, seed: int) -> np.ndarray:
    import torch

    recipe: TorchRecipe = job.learner
    torch.manual_seed(seed)
    module = copy.deepcopy(recipe.module).cpu()
    for m in module.modules():
        if callable(getattr(m, "reset_parameters", None)):
            m.reset_parameters()
    train_torch(
        module,
        job.x_train,
        job.y_train,
        epochs=recipe.epochs,
        lr=recipe.lr,
        batch_size=recipe.batch_size,
        weight_decay=recipe.weight_decay,
        seed=seed,
        output=recipe.output,
    )
    with torch.no_grad():
        out = module(torch.from_numpy(np.ascontiguousarray(job.x_eval, dtype=np.float32)))
        if recipe.output == "log_proba":
            proba = torch.exp(out)
        else:
            proba = out if recipe.output == "proba" else torch.softmax(out, dim=1)
    return np.asarray(proba.double().numpy())
