"""The membership-inference audit: ``audit_privacy`` runs every attack on one model and returns scores.

Given the model, records it was trained on (members) and records it was not (non-members), each
attack scores every record; the metrics (``_metrics.py``) say how well the scores tell the two apart.
Reference models, the cost of the strong attacks, are trained through the executor
(``mlsecops.core.executor``), so they run in parallel on a process pool today and on Ray later, and
give the same result on every engine (their seeds depend on the job's seed and position only).

Inputs are checked before any work: a record present in both sets (same features and label, compared
by SHA-256 of the row) is an error, as are sets too small to measure, reference sets too small to
train on, and a model whose outputs are not probabilities. A model that answers one-hot labels is
audited with the label-only attack only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlsecops.assess.privacy._attacks import (
    ATTACK_NAMES,
    REFERENCE_ATTACKS,
    reference_scores,
    threshold_scores,
)
from mlsecops.assess.privacy._label_only import label_only_scores
from mlsecops.assess.privacy._metrics import AttackMetrics, attack_metrics
from mlsecops.assess.privacy._reference import learner_of, plan_references, run_references
from mlsecops.core.errors import ConfigError, InputError
from mlsecops.core.executor import Executor, get_executor
from mlsecops.models.interface import ModelAdapter, check_inputs, check_probabilities

__all__ = ["MIN_RECORDS", "PrivacyAudit", "audit_privacy", "row_digests", "strongest"]

MIN_RECORDS = 10
"""Fewest members and fewest non-members an audit accepts: below that every rate is noise."""
DEFAULT_REFERENCES = 8
"""Reference models trained by default (LiRA's online attack is useful from about 8; more is better)."""
Progress = Callable[[str, int, int], None]


def row_digests(x: np.ndarray, y: np.ndarray) -> list[bytes]:
    """SHA-256 of each record (float32 features and label), to compare sets without keeping rows."""
    flat = np.ascontiguousarray(np.asarray(x, dtype=np.float32).reshape(len(x), -1))
    labels = np.asarray(y, dtype=np.int64)
    return [hashlib.sha256(flat[i].tobytes() + labels[i].tobytes()).digest() for i in range(len(flat))]


@dataclass(frozen=True)
class PrivacyAudit:
    """What an audit measured.

    Attributes:
        attacks: metrics per attack, in the order run.
        scores: each attack's scores on the records (members first, then non-members).
        probabilities: the target's probabilities on the records (None for a label-only model).
        references: the references' probabilities ``(K, n, C)`` and the IN mask ``(K, n)``, if trained.
        accuracy: the target's accuracy on members and on non-members.
        label_only: the model answers labels only.
        notes: what the audit could not do, and why.
    """

    n_members: int
    n_non_members: int
    attacks: tuple[AttackMetrics, ...]
    scores: dict[str, np.ndarray]
    y: np.ndarray
    probabilities: np.ndarray | None
    references: tuple[np.ndarray, np.ndarray] | None
    accuracy: dict[str, float]
    label_only: bool
    n_references: int = 0
    notes: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def member(self) -> np.ndarray:
        """Truth per record: True for the members (the first ``n_members``)."""
        return np.arange(self.n_members + self.n_non_members) < self.n_members


def strongest(attacks: Sequence[AttackMetrics]) -> AttackMetrics:
    """The attack with the highest TPR at 0.1% FPR, then at 1%, then AUC."""
    return max(attacks, key=lambda a: (a.tpr[0.001], a.tpr[0.01], a.auc))


def _is_label_only(p: np.ndarray) -> bool:
    return bool(p.size) and bool(np.all((p == 0.0) | (p == 1.0)))


def _check_sets(members: tuple[np.ndarray, np.ndarray], non_members: tuple[np.ndarray, np.ndarray]) -> None:
    for name, (x, _) in (("members", members), ("non-members", non_members)):
        if len(x) < MIN_RECORDS:
            raise InputError(f"the {name} have {len(x)} rows; an audit needs at least {MIN_RECORDS} of each")
    seen = set(row_digests(*members))
    both = sum(1 for d in row_digests(*non_members) if d in seen)
    if both:
        raise InputError(
            f"{both} non-member row(s) also appear among the members (same features and label); a record "
            "cannot be both: split the data so the two sets do not overlap"
        )


def _choose(
    attacks: Sequence[str] | None, *, label_only: bool, trainable: bool
) -> tuple[list[str], list[str]]:
    notes: list[str] = []
    if attacks:
        unknown = [a for a in attacks if a not in ATTACK_NAMES]
        if unknown:
            raise ConfigError(f"unknown attack(s) {unknown}; choose from {', '.join(ATTACK_NAMES)}")
        chosen = list(dict.fromkeys(attacks))
        if not trainable and any(a in REFERENCE_ATTACKS for a in chosen):
            raise InputError(
                "the reference attacks (calibrated, lira_offline, lira_online, rmia) retrain the model's "
                "architecture: give a scikit-learn estimator or a python:module:attr PyTorch module, or "
                "choose loss, confidence, label_only"
            )
        if label_only and any(a != "label_only" for a in chosen):
            raise InputError(
                "the model answers labels only (one-hot outputs): only the label_only attack applies"
            )
        return chosen, notes
    if label_only:
        return ["label_only"], ["the model answers labels only: audited with the label-only attack"]
    chosen = ["loss", "confidence"]
    if trainable:
        chosen += list(REFERENCE_ATTACKS)
    else:
        notes.append(
            "no reference attacks: this model cannot be retrained here (ONNX, endpoint or exported "
            "program); the loss and confidence attacks are weaker at low FPR, so leakage may be understated"
        )
    return [*chosen, "label_only"], notes


def audit_privacy(
    model: ModelAdapter,
    members: tuple[np.ndarray, np.ndarray],
    non_members: tuple[np.ndarray, np.ndarray],
    *,
    reference: tuple[np.ndarray, np.ndarray] | None = None,
    attacks: Sequence[str] | None = None,
    references: int = DEFAULT_REFERENCES,
    executor: Executor | None = None,
    learner: Any = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> PrivacyAudit:
    """Run the membership-inference attacks on ``model``.

    Args:
        model: the audited model.
        members: ``(X, y)`` of records the model was trained on (``y`` class indices).
        non_members: ``(X, y)`` of records from the same distribution it was not trained on.
        reference: ``(X, y)`` of other records for the reference models (the pool); optional.
        attacks: names from ``ATTACK_NAMES``; default: every one that applies.
        references: reference models to train (K).
        executor: where reference models train (default: a local process pool).
        learner: what references are cloned from (default: the model's estimator or module).
        seed: the same seed gives the same audit.
        progress: called as ``(step, done, total)``.

    Raises:
        InputError: overlapping sets, too few rows, outputs that are not probabilities, an attack that
            does not apply to this model.
        ConfigError: an unknown attack or a bad number of references.
    """
    xm = check_inputs(members[0], model.input_shape, what="members")
    xn = check_inputs(non_members[0], model.input_shape, what="non-members")
    ym, yn = np.asarray(members[1], np.int64), np.asarray(non_members[1], np.int64)
    _check_sets((xm, ym), (xn, yn))
    x, y = np.concatenate([xm, xn]), np.concatenate([ym, yn])
    member = np.arange(len(x)) < len(xm)
    proba = check_probabilities(model.predict_proba(x), len(x), model.n_classes, source="the model")
    label_only = _is_label_only(proba)
    learner = learner if learner is not None else learner_of(model)
    chosen, notes = _choose(attacks, label_only=label_only, trainable=learner is not None)
    pred = proba.argmax(axis=1)
    accuracy = {
        "members": float(np.mean(pred[member] == y[member])),
        "non_members": float(np.mean(pred[~member] == y[~member])),
    }
    scores: dict[str, np.ndarray] = {}
    for name, s in threshold_scores(proba, y).items():
        if name in chosen:
            scores[name] = s
    refs: tuple[np.ndarray, np.ndarray] | None = None
    if any(a in REFERENCE_ATTACKS for a in chosen):
        pool = _pool(reference, model, (x, y), notes)
        plan = plan_references(
            len(x), len(pool[0]) if pool else 0, len(xm), references, model.n_classes, seed
        )
        ex = executor if executor is not None else get_executor(progress=progress)
        ref = run_references(learner, plan, (x, y), pool, model.n_classes, ex, seed=seed)
        refs = (ref, plan.inside)
        for name, s in reference_scores(proba, ref, plan.inside, y).items():
            if name in chosen:
                scores[name] = s
    if "label_only" in chosen:
        scores["label_only"] = label_only_scores(model, x, y, seed=seed, progress=progress)
    ordered = [a for a in ATTACK_NAMES if a in scores]
    metrics = tuple(attack_metrics(a, scores[a], member, seed=seed) for a in ordered)
    return PrivacyAudit(
        n_members=len(xm),
        n_non_members=len(xn),
        attacks=metrics,
        scores={a: scores[a] for a in ordered},
        y=y,
        probabilities=None if label_only else proba,
        references=refs,
        accuracy=accuracy,
        label_only=label_only,
        n_references=references if refs is not None else 0,
        notes=tuple(notes),
    )


def _pool(
    reference: tuple[np.ndarray, np.ndarray] | None,
    model: ModelAdapter,
    records: tuple[np.ndarray, np.ndarray],
    notes: list[str],
) -> tuple[np.ndarray, np.ndarray] | None:
    """The reference pool without any audited record (those would corrupt the OUT statistics)."""
    if reference is None:
        return None
    xp = check_inputs(reference[0], model.input_shape, what="reference data")
    yp = np.asarray(reference[1], np.int64)
    audited = set(row_digests(*records))
    keep = np.array([d not in audited for d in row_digests(xp, yp)], dtype=bool)
    if not keep.all():
        notes.append(
            f"{int((~keep).sum())} reference row(s) are audited records and were left out of the pool"
        )
    return xp[keep], yp[keep]
