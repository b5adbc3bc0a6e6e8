"""Inversion probes: attribute inference on training records, and class-representative reconstruction.

Attribute inference (``attribute_inference``): an attacker who knows a training record except one
sensitive feature, and sees the model's answer on the whole record, guesses the feature. Two guesses
are measured on the members, each by 5-fold cross-validation of a logistic regression: from the other
features alone (the baseline: what the data itself reveals) and from the other features plus the
model's probabilities. The query attack of Fredrikson et al. (2014) is measured too: try every value of
the feature in the record and keep the one under which the model gives the true label the highest
probability (weighted by the value's frequency). The gain is the best with-model accuracy minus the
baseline, with a 95% paired bootstrap interval; the same numbers on the non-members tell memorisation
(members only) from what the model learned about the population (both).

Reconstruction (``reconstruct_classes``, image models): per class, an input the model is most sure of
(gradient ascent on the class log-probability for PyTorch models, a query-only random search
otherwise), compared with the nearest member and the nearest non-member by cosine similarity. A
reconstruction much closer to a member than to any non-member shows the model memorised that image.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mlsecops.core.errors import InputError
from mlsecops.models.interface import ModelAdapter, TorchNative

__all__ = ["MAX_CATEGORIES", "attribute_inference", "reconstruct_classes"]

MAX_CATEGORIES = 20
"""Most distinct values a sensitive feature keeps as categories; a feature with more is cut into
``QUANTILE_BINS`` quantile bins (the attacker guesses the bin)."""
QUANTILE_BINS = 4
BOOTSTRAP_ROUNDS = 500
"""Paired bootstrap resamples for the gain interval."""
FOLDS = 5
RECON_STEPS = 200
"""Gradient steps of one class reconstruction (PyTorch models)."""
SEARCH_ROUNDS = 80
"""Rounds of the query-only search (every class in one model call per round)."""
SEARCH_CANDIDATES = 32
"""Candidates per class and round of the query-only search."""


def _categories(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    uniq = np.unique(values)
    if len(uniq) <= MAX_CATEGORIES:
        return np.searchsorted(uniq, values), uniq, "categories"
    edges = np.quantile(values, np.linspace(0, 1, QUANTILE_BINS + 1)[1:-1])
    codes = np.searchsorted(edges, values, side="right")
    centres = np.array(
        [np.median(values[codes == c]) if np.any(codes == c) else 0.0 for c in range(QUANTILE_BINS)]
    )
    return codes, centres, f"{QUANTILE_BINS} quantile bins"


def _cv_correct(features: np.ndarray, target: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    counts = np.bincount(target)
    folds = int(min(FOLDS, counts[counts > 0].min()))
    if folds < 2:
        return np.asarray(target == np.argmax(counts))
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    pred = cross_val_predict(
        clf, features, target, cv=StratifiedKFold(folds, shuffle=True, random_state=seed)
    )
    return np.asarray(pred == target)


def _query_correct(
    model: ModelAdapter, x: np.ndarray, y: np.ndarray, col: int, codes: np.ndarray, values: np.ndarray
) -> np.ndarray:
    prior = np.bincount(codes, minlength=len(values)) / len(codes)
    flat = x.reshape(len(x), -1)
    best = np.full(len(x), -np.inf)
    guess = np.zeros(len(x), dtype=np.int64)
    for c, v in enumerate(values):
        trial = flat.copy()
        trial[:, col] = v
        p = model.predict_proba(trial.reshape(x.shape))[np.arange(len(x)), y]
        score = np.log(np.maximum(p, 1e-12)) + np.log(max(prior[c], 1e-12))
        better = score > best
        best[better], guess[better] = score[better], c
    return np.asarray(guess == codes)


def _one_set(
    model: ModelAdapter, x: np.ndarray, y: np.ndarray, col: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    flat = x.reshape(len(x), -1)
    codes, values, how = _categories(flat[:, col])
    others = np.delete(flat, col, axis=1)
    proba = model.predict_proba(x)
    base = _cv_correct(others, codes, seed)
    with_model = _cv_correct(np.hstack([others, proba]), codes, seed)
    query = _query_correct(model, x, y, col, codes, values)
    return base, with_model, query, how


def attribute_inference(
    model: ModelAdapter,
    members: tuple[np.ndarray, np.ndarray],
    non_members: tuple[np.ndarray, np.ndarray],
    feature_names: Sequence[str],
    sensitive: str,
    *,
    seed: int = 0,
) -> dict[str, Any]:
    """How much better the model's outputs let an attacker guess ``sensitive`` than the data alone.

    Raises:
        InputError: ``sensitive`` is not a feature of the data.
    """
    names = list(feature_names)
    if sensitive not in names:
        shown = ", ".join(names[:20])
        raise InputError(f"sensitive feature {sensitive!r} is not a feature of the data (features: {shown})")
    col = names.index(sensitive)
    base, with_model, query, how = _one_set(model, members[0], members[1], col, seed)
    best_with = with_model if with_model.mean() >= query.mean() else query
    diff = best_with.astype(np.float64) - base
    rng = np.random.default_rng(seed)
    boots = [float(diff[rng.integers(0, len(diff), len(diff))].mean()) for _ in range(BOOTSTRAP_ROUNDS)]
    nb, nw, nq, _ = _one_set(model, non_members[0], non_members[1], col, seed)
    return {
        "sensitive": sensitive,
        "encoding": how,
        "accuracy_baseline": round(float(base.mean()), 6),
        "accuracy_with_outputs": round(float(with_model.mean()), 6),
        "accuracy_query_inversion": round(float(query.mean()), 6),
        "accuracy_with_model": round(float(best_with.mean()), 6),
        "gain": round(float(diff.mean()), 6),
        "gain_ci": [round(float(np.quantile(boots, 0.025)), 6), round(float(np.quantile(boots, 0.975)), 6)],
        "non_members": {
            "accuracy_baseline": round(float(nb.mean()), 6),
            "accuracy_with_model": round(float(max(nw.mean(), nq.mean())), 6),
        },
        "interval": "95% paired bootstrap over members",
    }


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    an = a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12)
    bn = b / np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), 1e-12)
    return np.asarray(an @ bn.T)


def _ascend_torch(
    model: TorchNative, cls: int, shape: tuple[int, ...], lo: float, hi: float, seed: int
) -> np.ndarray:
    import torch

    gen = torch.Generator().manual_seed(seed)
    x = (lo + (hi - lo) * torch.rand((1, *shape), generator=gen)).to(model.device).requires_grad_(True)
    opt = torch.optim.Adam([x], lr=0.05 * (hi - lo))
    for _ in range(RECON_STEPS):
        logp = torch.log_softmax(model.logits(x), dim=1)[0, cls]
        loss = -logp + 1e-3 * (x**2).sum()
        opt.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]  # torch stub gap
        opt.step()
        with torch.no_grad():
            x.clamp_(lo, hi)
    return np.asarray(x.detach().cpu().numpy()[0])


def _search_blackbox(
    model: ModelAdapter, classes: list[int], shape: tuple[int, ...], lo: float, hi: float, seed: int
) -> list[np.ndarray]:
    """Query-only hill climbing for every class at once: one model call per round."""
    rng = np.random.default_rng(seed)
    k = len(classes)
    cls = np.asarray(classes)
    best = (lo + (hi - lo) * rng.random((k, *shape))).astype(np.float32)
    best_p = model.predict_proba(best)[np.arange(k), cls]
    step = 0.2 * (hi - lo)
    for r in range(SEARCH_ROUNDS):
        noise = rng.normal(0, step, size=(k, SEARCH_CANDIDATES, *shape))
        cand = np.clip(best[:, None] + noise, lo, hi).astype(np.float32)
        p = model.predict_proba(cand.reshape(k * SEARCH_CANDIDATES, *shape)).reshape(k, SEARCH_CANDIDATES, -1)
        pc = p[np.arange(k), :, cls]
        i = pc.argmax(axis=1)
        better = pc[np.arange(k), i] > best_p
        best[better] = cand[np.arange(k), i][better]
        best_p[better] = pc[np.arange(k), i][better]
        if r % 20 == 19:
            step *= 0.5
    return list(best)


def _class_mean(x: np.ndarray, y: np.ndarray, cls: int) -> np.ndarray:
    rows = x[y == cls]
    return np.asarray(rows.mean(axis=0) if len(rows) else np.zeros(x.shape[1:]))


def reconstruct_classes(
    model: ModelAdapter,
    members: tuple[np.ndarray, np.ndarray],
    non_members: tuple[np.ndarray, np.ndarray],
    *,
    seed: int = 0,
    max_classes: int = 10,
    image_shape: tuple[int, ...] | None = None,
) -> tuple[dict[str, Any], list[tuple[np.ndarray, np.ndarray, str]]]:
    """Reconstruct a representative input per class; compare it with the nearest member and non-member.

    Returns the JSON summary and ``(reconstruction, class mean of the members, caption)`` image triples
    for a figure: an average, never a training record (records appear by index only).
    """
    xm, ym = members
    xn = non_members[0]
    shape = tuple(int(s) for s in model.input_shape)
    lo, hi = float(min(xm.min(), xn.min())), float(max(xm.max(), xn.max()))
    flat_m, flat_n = xm.reshape(len(xm), -1), xn.reshape(len(xn), -1)
    rows, pairs = [], []
    classes = list(range(min(model.n_classes, max_classes)))
    if isinstance(model, TorchNative):
        recs, method = [_ascend_torch(model, c, shape, lo, hi, seed + c) for c in classes], "gradient ascent"
    else:
        recs, method = _search_blackbox(model, classes, shape, lo, hi, seed), "query-only random search"
    for cls, rec in zip(classes, recs, strict=True):
        r = rec.reshape(1, -1)
        sim_m, sim_n = _cosine(r, flat_m)[0], _cosine(r, flat_n)[0]
        near = int(np.argmax(sim_m))
        rows.append(
            {
                "class": cls,
                "method": method,
                "confidence": round(float(model.predict_proba(rec[None].astype(np.float32))[0, cls]), 6),
                "nearest_member": near,
                "similarity_member": round(float(sim_m[near]), 6),
                "similarity_non_member": round(float(sim_n.max()), 6),
                "member_label": int(ym[near]),
            }
        )
        pairs.append(
            (
                rec.reshape(image_shape or xm.shape[1:]),
                _class_mean(xm, ym, cls).reshape(image_shape or xm.shape[1:]),
                f"class {cls}: nearest member #{near}, cos {sim_m[near]:.2f}",
            )
        )
    summary = {
        "classes": rows,
        "mean_similarity": round(float(np.mean([r["similarity_member"] for r in rows])), 6),
        "mean_similarity_non_member": round(float(np.mean([r["similarity_non_member"] for r in rows])), 6),
        "similarity": "cosine, to the nearest member and the nearest non-member",
    }
    return summary, pairs
