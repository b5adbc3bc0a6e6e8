"""Label-error and label-flip detection from cross-validated, out-of-sample class probabilities.

Confident-learning style: a row is suspect when models that never saw it during training give another
class clearly more probability than the row's own label. Three choices make it stronger than a single
pass (measured in ``benchmarks/data``):

* an ensemble of two model families (logistic regression and an RBF support-vector machine with Platt
  probabilities, both on standardised features), averaged over repeated K-fold splits, so no single
  model's blind spot decides;
* later rounds (three in all by default): the models are refit on the rows whose label the previous
  round's calibrated posterior (below) finds more likely right than wrong, which removes the flipped
  labels' pull on the decision boundary, and every row is scored again (kept rows out of fold, the
  others by the models trained on kept rows only). A posterior adapts to how sure the models are: at
  30% flips or under one-way flips the raw probabilities are flattened or shifted, and a fixed margin
  would keep most flipped rows in the refit (benchmarks/data);
* a cap from an estimated noise rate. Where classes genuinely overlap, many correctly labelled rows get
  more probability for another class, and a fixed margin would flag them all. A noise-aware calibration
  fits the final probabilities by maximum likelihood: a temperature and a class-pair label-noise matrix,
  which give the share of wrong labels (``noise_rate_``). On small data the likelihood hardly tells
  the temperatures apart, and a flat temperature explains flipped rows as merely uncertain ones, so the
  cap takes the largest noise rate among the temperatures within one log-likelihood unit of the best
  (wine, 178 rows with 20% flips: 0.185 by maximum likelihood, 0.20 planted). At most that share of the
  rows plus ``max_clean_rate`` of the others is flagged (the highest calibrated margins first).

The score of a row is ``max_{j != y} p_j - p_y`` in [-1, 1]; a row is suspect when it exceeds ``margin``
and lies within the cap.
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple, Self

import numpy as np

from mlsecops.core.errors import InputError, NotFittedError
from mlsecops.core.executor import Executor

__all__ = ["ConfidentLabelDetector", "out_of_sample_proba"]


_SVM_MAX_ROWS = 5_000
"""Above this many rows the default ensemble swaps the RBF SVM for gradient boosting."""


def _default_models(n_samples: int, seed: int) -> list[Any]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    # C=1 rather than a stronger penalty: on breast-cancer (30 correlated features) C=0.1 blurs the
    # classes and costs about 0.02 recall at the same false-positive rate (benchmarks/data).
    linear = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=3000))
    if n_samples > _SVM_MAX_ROWS:
        # An RBF SVM with Platt probabilities costs O(n^2) and more (one fit on 8,000 rows: 5.8 s here,
        # and the detector makes 30 per model; 196 s for 50,000 rows): on larger data a histogram
        # gradient-boosting model is the non-linear member instead.
        from sklearn.ensemble import HistGradientBoostingClassifier

        return [linear, HistGradientBoostingClassifier(max_iter=100, random_state=seed)]
    # Platt scaling (two parameters per class pair, fit on internal folds) ranks the flipped rows of
    # breast-cancer better than one temperature: the SVM's decision threshold moves too.
    svm = SVC(C=1.0, probability=True, random_state=seed)
    return [linear, make_pipeline(StandardScaler(), svm)]


def out_of_sample_proba(
    X: np.ndarray,
    y: np.ndarray,
    *,
    n_classes: int,
    fit_mask: np.ndarray | None = None,
    cv: int = 5,
    n_repeats: int = 2,
    random_state: int = 0,
    models: Any = None,
    trusted: tuple[np.ndarray, np.ndarray] | None = None,
    executor: Executor | None = None,
) -> np.ndarray:
    """Class probabilities for every row from models that did not train on it.

    Rows in ``fit_mask`` are scored out of fold; the others are scored by every fold's models (which
    never include them). ``models`` is a callable ``(n_samples, seed) -> list of sklearn classifiers``.
    ``trusted`` rows ``(X, y)`` join every fold's training set and are never scored. With ``executor``
    the folds fit on it (one item per fold; ``models`` must then be picklable); the probabilities are
    summed in fold order either way, so the result is the same bit for bit on every engine.

    Raises:
        InputError: a class has fewer rows than folds.
    """
    from sklearn.model_selection import StratifiedKFold

    n = X.shape[0]
    fit_mask = np.ones(n, dtype=bool) if fit_mask is None else fit_mask
    idx_fit = np.flatnonzero(fit_mask)
    idx_out = np.flatnonzero(~fit_mask)
    counts = np.bincount(y[idx_fit], minlength=n_classes)
    present = counts[counts > 0]
    folds = int(min(cv, present.min())) if present.size else 0
    if folds < 2 or present.size < 2:
        raise InputError(
            f"label detection needs at least 2 classes with 2+ rows each; class counts {counts.tolist()}"
        )
    factory = models or _default_models
    total = np.zeros((n, n_classes))
    seen = np.zeros(n)
    splits = [
        (idx_fit[tr], idx_fit[te])
        for rep in range(n_repeats)
        for tr, te in StratifiedKFold(folds, shuffle=True, random_state=random_state * 1000 + rep).split(
            X[idx_fit], y[idx_fit]
        )
    ]
    tasks = [(X, y, train, (te, idx_out), factory, random_state, n_classes, trusted) for train, te in splits]
    fitted = executor.map(_fit_fold, tasks, desc="label folds") if executor else map(_fit_fold, tasks)
    for (_, te), per_model in zip(splits, fitted, strict=True):
        for probas in per_model:  # the same additions, in the same order, as one loop over folds and models
            for rows, p in zip((te, idx_out), probas, strict=True):
                if rows.size:
                    total[rows] += p
                    seen[rows] += 1
    return total / np.maximum(seen, 1)[:, None]


def _fit_fold(task: tuple[Any, ...]) -> list[list[np.ndarray]]:
    """Fit each model of the factory on one fold's training rows; per model, its probabilities on each
    group of scored rows (the fold's held-out rows, then the rows outside ``fit_mask``).

    ``task`` is ``(X, y, train_rows, scored_groups, factory, seed, n_classes, trusted)``; a top-level
    function so that a process pool or Ray can run it.
    """
    from sklearn.base import clone

    X, y, train, groups, factory, seed, n_classes, trusted = task
    out = []
    for model in factory(X.shape[0], seed):
        m = clone(model)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m.fit(*_with_trusted(X[train], y[train], trusted))
        probas = []
        for rows in groups:
            p = np.zeros((rows.size, n_classes))
            if rows.size:
                p[:, np.asarray(m.classes_, dtype=int)] = m.predict_proba(X[rows])
            probas.append(p)
        out.append(probas)
    return out


def _with_trusted(
    X: np.ndarray, y: np.ndarray, trusted: tuple[np.ndarray, np.ndarray] | None
) -> tuple[np.ndarray, np.ndarray]:
    if trusted is None:
        return X, y
    return np.vstack([X, trusted[0]]), np.concatenate([y, trusted[1]])


class ConfidentLabelDetector:
    """Finds rows whose label disagrees with what the rest of the data says about them.

    Args:
        margin: a row is suspect when another class's out-of-sample probability exceeds its own label's
            by more than this.
        max_clean_rate: share of the correctly labelled rows the detector may flag on top of the estimated
            noise rate; caps the flags where classes overlap (see the module docstring).
        n_rounds: fitting rounds; later rounds refit on the rows whose label the previous round's
            calibrated posterior finds more likely right than wrong.
        cv: folds of the cross-validation.
        n_repeats: repeated K-fold splits averaged per round.
        random_state: seed of the splits.
        models: optional ``(n_samples, seed) -> list of classifiers`` replacing the default ensemble.
        executor: where the cross-validation folds fit (``mlsecops.core.executor``; default: here, one
            after the other); the result is the same on every engine.

    Attributes (after ``fit``):
        proba_: out-of-sample class probabilities of the last round.
        scores_: ``max_{j != y} p_j - p_y`` per row.
        suspect_: rows flagged (score above ``margin`` and within the noise-rate cap).
        suggested_labels_: the most probable other class for suspect rows, the given label otherwise.
        noise_rate_: estimated share of labels replaced by another class.
        temperature_: temperature of the noise-aware calibration.
    """

    def __init__(
        self,
        *,
        margin: float = 0.2,
        max_clean_rate: float = 0.02,
        n_rounds: int = 3,
        cv: int = 5,
        n_repeats: int = 2,
        random_state: int = 0,
        models: Any = None,
        executor: Executor | None = None,
    ) -> None:
        self.margin = margin
        self.max_clean_rate = max_clean_rate
        self.n_rounds = n_rounds
        self.cv = cv
        self.n_repeats = n_repeats
        self.random_state = random_state
        self.models = models
        self.executor = executor

    def fit(
        self, X: np.ndarray, y: np.ndarray, *, trusted: tuple[np.ndarray, np.ndarray] | None = None
    ) -> Self:
        """Learn out-of-sample probabilities and the suspect rows of ``(X, y)``.

        ``trusted``: optional rows ``(X, y)`` known to be clean (the baseline); they join every training
        fold, which helps most when the batch under test is small. Their labels use the same codes.

        Raises:
            InputError: shapes disagree, values are not finite, or a class is too small.
        """
        if (
            not 0.0 <= self.margin < 1.0
            or not 0.0 <= self.max_clean_rate <= 1.0
            or self.n_rounds < 1
            or self.cv < 2
            or self.n_repeats < 1
        ):
            raise InputError(
                "ConfidentLabelDetector: margin must be in [0, 1), max_clean_rate in [0, 1], n_rounds >= 1,"
                f" cv >= 2, n_repeats >= 1; got margin={self.margin}, max_clean_rate={self.max_clean_rate},"
                f" n_rounds={self.n_rounds}, cv={self.cv}, n_repeats={self.n_repeats}"
            )
        X2, y2 = _check_xy(X, y)
        self.n_classes_ = int(y2.max()) + 1
        if trusted is not None:
            tX, ty = _check_xy(trusted[0], trusted[1])
            if tX.shape[1] != X2.shape[1]:
                raise InputError(f"trusted rows have {tX.shape[1]} features, the data {X2.shape[1]}")
            trusted = (tX, ty)
            self.n_classes_ = max(self.n_classes_, int(ty.max()) + 1)
        keep = np.ones(y2.shape[0], dtype=bool)
        fit: NoiseFit | None = None
        for r in range(self.n_rounds):
            proba = out_of_sample_proba(
                X2,
                y2,
                n_classes=self.n_classes_,
                fit_mask=keep,
                cv=self.cv,
                n_repeats=self.n_repeats,
                random_state=self.random_state + r,
                models=self.models,
                trusted=trusted,
                executor=self.executor,
            )
            fit = noise_calibration(proba, y2)
            keep = fit.label_correct > 0.5
        assert fit is not None
        scores = _margin_scores(proba, y2)
        self.temperature_, self.noise_rate_ = fit.temperature, fit.noise_rate
        # The cap: no more rows than the estimated wrong labels plus max_clean_rate of the others, taken
        # in order of the calibrated margin (the same order as ``scores_`` for two classes).
        n = y2.size
        noise = fit.noise_rate_upper
        budget = int(np.floor((noise + self.max_clean_rate * (1.0 - noise)) * n))
        within = np.zeros(n, dtype=bool)
        within[np.argsort(-_margin_scores(fit.tempered, y2), kind="stable")[:budget]] = True
        self.proba_ = proba
        self.scores_ = scores
        self.suspect_ = (scores > self.margin) & within
        self.suggested_labels_ = np.where(self.suspect_, _best_other(proba, y2), y2)
        return self

    def score(self, X: np.ndarray | None = None, y: np.ndarray | None = None) -> np.ndarray:
        """Suspicion score per row of the fitted data (``X``, ``y`` must be the fitted data or None).

        Raises:
            NotFittedError: ``fit`` was not called.
        """
        _check_fitted(self)
        if y is not None and len(y) != len(self.scores_):
            raise InputError("score() scores the fitted rows; pass the same X and y as to fit(), or none")
        return np.asarray(self.scores_)

    def detect(self, X: np.ndarray | None = None, y: np.ndarray | None = None) -> np.ndarray:
        """Boolean mask of suspect rows of the fitted data (score above ``margin`` and within the cap).

        Raises:
            NotFittedError: ``fit`` was not called.
        """
        self.score(X, y)
        return np.asarray(self.suspect_).copy()


_TEMPERATURES = np.geomspace(0.3, 1.0, 8)
"""Temperatures the noise-aware calibration tries (probabilities are raised to 1/T)."""


class NoiseFit(NamedTuple):
    """Result of ``noise_calibration``."""

    tempered: np.ndarray
    """The probabilities raised to ``1 / temperature``, renormalised."""
    temperature: float
    noise_rate: float
    """Estimated share of rows whose label is not their true class."""
    label_correct: np.ndarray
    """Per row, the posterior probability that its label is its true class."""
    noise_rate_upper: float
    """The largest noise rate among the temperatures within one log-likelihood unit of the best."""


def noise_calibration(proba: np.ndarray, y: np.ndarray, *, n_iter: int = 50) -> NoiseFit:
    """Fit a temperature and a label-noise transition matrix to out-of-sample probabilities of noisy labels.

    The true class of a row follows the tempered probabilities ``p ** (1 / T)`` (renormalised); its
    observed label is class ``j`` with probability ``M[true, j]``. For each temperature, expectation-
    maximisation fits ``M`` (a class-pair matrix, so one-way flips such as "a relabelled b" are modelled
    as well as random ones); the temperature of the highest likelihood wins. A plain temperature fit on
    noisy labels would flatten the probabilities to explain the flipped rows; the mixture leaves those to
    ``M``. The noise rate is the mean posterior probability that a row's label is not its true class.

    ``T`` stays within [0.3, 1]: an average of calibrated models is at worst underconfident, so ``T <= 1``;
    and with few rows between the classes the likelihood is flat in ``T`` (the lower bound keeps it from
    running off to a hard 0/1 split).

    Args:
        proba: out-of-sample class probabilities, one row per sample.
        y: integer labels, codes into the columns of ``proba``.
        n_iter: expectation-maximisation steps per temperature.

    Returns:
        The tempered probabilities, the temperature, the estimated noise rate, per row the posterior
        probability that the label is right, and the upper end of the noise rate over the temperatures
        the likelihood cannot tell apart (within one unit of the best).
    """
    n, k = proba.shape
    logp = np.log(np.clip(proba, 1e-12, 1.0))
    rows = np.arange(n)
    best: tuple[float, np.ndarray, float, np.ndarray] | None = None
    noise_by_loglik: list[tuple[float, float]] = []
    for t in _TEMPERATURES:
        z = logp / t
        z -= z.max(axis=1, keepdims=True)
        q = np.exp(z)
        q /= q.sum(axis=1, keepdims=True)
        trans = np.full((k, k), 0.02 / max(k - 1, 1))
        np.fill_diagonal(trans, 0.98)
        for _ in range(n_iter):
            joint = q * trans[:, y].T  # joint[i, c] = P(true c) * P(label y_i | true c)
            like = joint.sum(axis=1)
            post = joint / like[:, None]
            counts = np.stack([post[y == j].sum(axis=0) for j in range(k)], axis=1) + 1e-3
            trans = counts / counts.sum(axis=1, keepdims=True)
        loglik = float(np.log(like).sum())
        correct = post[rows, y]
        noise_by_loglik.append((loglik, float(1.0 - correct.mean())))
        if best is None or loglik > best[0]:
            best = (loglik, q, float(t), correct)
    assert best is not None
    loglik, q, t, correct = best
    upper = max(noise for ll, noise in noise_by_loglik if ll >= loglik - 1.0)
    return NoiseFit(q, t, float(1.0 - correct.mean()), correct, upper)


def _best_other(proba: np.ndarray, y: np.ndarray) -> np.ndarray:
    other = proba.copy()
    other[np.arange(y.size), y] = -1.0
    return np.asarray(other.argmax(axis=1))


def _margin_scores(proba: np.ndarray, y: np.ndarray) -> np.ndarray:
    own = proba[np.arange(y.size), y]
    other = proba.copy()
    other[np.arange(y.size), y] = -1.0
    return np.asarray(other.max(axis=1) - own)


def _check_fitted(obj: object) -> None:
    if not hasattr(obj, "scores_"):
        raise NotFittedError(f"{type(obj).__name__} is not fitted; call fit(X, y) first")


def _check_xy(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim < 2 or X.shape[0] == 0:
        raise InputError(f"X must have shape (samples, features...); got {X.shape}")
    X = X.reshape(X.shape[0], -1).astype(np.float64, copy=False)
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise InputError(f"y must be 1-D with one label per row of X; got {y.shape} for X {X.shape}")
    if not np.all(np.isfinite(X)):
        raise InputError("X contains NaN or infinite values")
    if y.dtype.kind not in "iu" or (y.size and y.min() < 0):
        _, y = np.unique(y, return_inverse=True)
    return X, y.astype(np.int64)
