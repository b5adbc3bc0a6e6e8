"""A per-request screen for single adversarial inputs, from the randomized-smoothing machinery.

An adversarial input crafted offline (PGD, APGD) and sent once leaves no query pattern for
:mod:`mlsecops.monitor.query_attacks` to see. What it often leaves is fragility: it sits just past the
model's decision boundary, so the model's answer on noisy copies of it differs from its answer on the
input itself. The screen asks the question randomized smoothing (Cohen et al. 2019,
:mod:`mlsecops.assess.certify`) asks: sample the model under Gaussian noise ``N(0, sigma^2 I)``,
take the class it returns most often (the smoothed prediction), and bound that class's share from
below (Clopper-Pearson at level ``alpha``). A row is flagged when

- the smoothed prediction **disagrees** with the model's own prediction on the row, or
- the smoothed classifier **abstains**: the lower bound on the top class's share is not above 1/2.

``screen(model, x)`` does this for a batch; :class:`AdversarialInputScreen` runs it as a runtime
detector on the guard's observations, off the request path, and raises one ``adversarial_input``
alert per request with flagged rows.

What it guarantees and what it does not: it is a heuristic filter, not a certificate. With few
samples it flags clean inputs near the boundary too (the false-positive rate is measured, not
assumed), and an attacker who knows the screen can craft inputs that are robust under the same noise
(expectation over transformation): such inputs pass it, at the price of a larger perturbation. The
benchmark (``benchmarks/results/monitor-query-attacks.md``) reports detection, false positives and
that adaptive attack. It works best for models trained with Gaussian noise of the same ``sigma``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlsecops.core.errors import ConfigError, InputError
from mlsecops.core.severity import Severity
from mlsecops.models.interface import ModelAdapter, check_inputs
from mlsecops.monitor.interface import Alert, Observation

__all__ = [
    "ALPHA",
    "SAMPLES",
    "SIGMA",
    "AdversarialInputScreen",
    "ScreenDecisions",
    "screen",
]

SIGMA = 0.25
"""Noise standard deviation, in the model's input units: the default of ``mlsecops certify``. Use the
sigma the model was trained (and certified) with."""

SAMPLES = 32
"""Noisy copies per row. Each costs one forward pass row; 32 keeps a row's screen at the price of a
small batch, and a unanimous vote still gives a lower bound of 0.91 on the top share."""

ALPHA = 0.05
"""Level of the Clopper-Pearson lower bound on the top class's share. A screen, not a certificate
(``certify`` uses 0.001): at 0.05, 22 of 32 votes are needed not to abstain."""

MAX_NOISY_BATCH = 8_192
"""Noisy rows per forward pass: bounds the screen's memory for large requests and large inputs."""

MAX_EVIDENCE_ROWS = 16
"""Flagged rows described in an alert's evidence (the count covers all of them)."""

_SEVERITIES = ("info", "low", "medium", "high", "critical")


@dataclass(frozen=True)
class ScreenDecisions:
    """Per-row outcome of :func:`screen`."""

    flagged: np.ndarray
    """Rows the screen flags (disagreement or abstention)."""
    base: np.ndarray
    """The model's class on each row itself."""
    smoothed: np.ndarray
    """The class the model returns most often under noise."""
    top_share: np.ndarray
    """Share of the noisy copies that voted for ``smoothed``."""
    p_lower: np.ndarray
    """Clopper-Pearson lower bound on that share at level ``alpha``."""
    disagree: np.ndarray
    """Rows whose smoothed class differs from the base class."""
    abstain: np.ndarray
    """Rows where ``p_lower`` is not above 1/2."""

    def reasons(self) -> list[str]:
        """Per row: ``disagree``, ``abstain``, ``disagree+abstain`` or ``""``."""
        out = []
        for d, a in zip(self.disagree.tolist(), self.abstain.tolist(), strict=True):
            out.append("+".join(r for r, on in (("disagree", d), ("abstain", a)) if on))
        return out


def screen(
    model: ModelAdapter,
    x: Any,
    *,
    sigma: float = SIGMA,
    samples: int = SAMPLES,
    alpha: float = ALPHA,
    base: np.ndarray | None = None,
    rng: np.random.Generator | None = None,
    seed: int = 0,
) -> ScreenDecisions:
    """Screen a batch: flag rows whose prediction under Gaussian noise disagrees or is uncertain.

    Args:
        model: Any adapter (a PyTorch one is read from its logits, without gradients).
        x: Inputs, ``(n, *model.input_shape)`` (flat rows are reshaped when the sizes agree).
        sigma: Noise standard deviation in input units (``SIGMA``).
        samples: Noisy copies per row (``SAMPLES``).
        alpha: Level of the lower bound on the top class's share (``ALPHA``).
        base: The model's classes on ``x`` when already known (saves one pass).
        rng: Random generator for the noise (default: one seeded with ``seed``).
        seed: Seed when ``rng`` is not given.

    Returns:
        The per-row decisions.

    Raises:
        InputError: bad inputs or parameters.
    """
    from mlsecops.assess.attack import numpy_score_function
    from mlsecops.assess.certify import clopper_pearson_lower

    _check(sigma, samples, alpha)
    arr = check_inputs(x, model.input_shape)
    n = len(arr)
    scores = numpy_score_function(model)
    gen = rng if rng is not None else np.random.default_rng(seed)
    if base is None:
        base_cls = scores(arr).argmax(axis=1) if n else np.zeros(0, dtype=np.int64)
    else:
        base_cls = np.asarray(base, dtype=np.int64).reshape(-1)
        if len(base_cls) != n:
            raise InputError(f"base classes: expected {n}, got {len(base_cls)}")
    counts = np.zeros((n, model.n_classes), dtype=np.int64)
    per_pass = max(1, MAX_NOISY_BATCH // samples)
    for start in range(0, n, per_pass):
        chunk = arr[start : start + per_pass]
        reps = np.repeat(chunk, samples, axis=0)
        noisy = (reps + gen.standard_normal(reps.shape, dtype=np.float32) * np.float32(sigma)).astype(
            np.float32
        )
        votes = scores(noisy).argmax(axis=1).reshape(len(chunk), samples)
        for c in range(model.n_classes):
            counts[start : start + len(chunk), c] = (votes == c).sum(axis=1)
    smoothed = counts.argmax(axis=1) if n else np.zeros(0, dtype=np.int64)
    top = counts[np.arange(n), smoothed] if n else np.zeros(0, dtype=np.int64)
    p_lower = clopper_pearson_lower(top, samples, alpha)
    disagree = smoothed != base_cls
    abstain = p_lower <= 0.5
    return ScreenDecisions(
        flagged=disagree | abstain,
        base=base_cls,
        smoothed=smoothed,
        top_share=top / samples,
        p_lower=p_lower,
        disagree=disagree,
        abstain=abstain,
    )


def _check(sigma: object, samples: object, alpha: object) -> None:
    if not (_num(sigma) and sigma > 0):  # type: ignore[operator]  # _num proved it is a number
        raise InputError(f"adversarial screen: sigma must be a number > 0, got {sigma!r}")
    if not (isinstance(samples, int) and not isinstance(samples, bool) and 1 <= samples <= 10_000):
        raise InputError(f"adversarial screen: samples must be an integer in 1..10000, got {samples!r}")
    if not (_num(alpha) and 0 < alpha < 1):  # type: ignore[operator]
        raise InputError(f"adversarial screen: alpha must be in (0, 1), got {alpha!r}")


class AdversarialInputScreen:
    """The screen as a runtime detector: one ``adversarial_input`` alert per request with flagged rows.

    Stateless per principal (a single input is judged on its own), so its memory is constant; its cost
    is ``samples`` forward passes per row, which is why it runs off the request path.

    Args:
        model_name: The served model's name (alerts name it).
        model: The model adapter to sample (the same model the guard serves).
        baseline: Unused (accepted so every detector is built the same way).
        sigma: Noise standard deviation in input units (``SIGMA``).
        samples: Noisy copies per row (``SAMPLES``).
        alpha: Level of the lower bound on the top class's share (``ALPHA``).
        severity: Severity of the alert (``medium``: a flagged input is a suspicion, not a proof).
        seed: Seed of the noise generator.

    Raises:
        ConfigError: an option out of its range, or no model.
    """

    name = "adversarial_input"

    def __init__(
        self,
        *,
        model_name: str,
        model: ModelAdapter | None = None,
        baseline: dict[str, Any] | None = None,
        sigma: float = SIGMA,
        samples: int = SAMPLES,
        alpha: float = ALPHA,
        severity: str = "medium",
        seed: int = 0,
    ) -> None:
        self.model_name = model_name
        self.model = model
        self.sigma = sigma
        self.samples = samples
        self.alpha = alpha
        self.severity = severity
        self.seed = seed
        if model is None or not hasattr(model, "predict_proba"):
            raise ConfigError(
                "adversarial_input detector: needs the served model (an adapter with predict_proba)"
            )
        try:
            _check(sigma, samples, alpha)
        except InputError as err:
            raise ConfigError(str(err).replace("adversarial screen", "adversarial_input detector")) from None
        if severity not in _SEVERITIES:
            raise ConfigError(
                f"adversarial_input detector: severity must be one of {', '.join(_SEVERITIES)}, got {severity!r}"
            )
        if not _int(seed):
            raise ConfigError(f"adversarial_input detector: seed must be an integer, got {seed!r}")
        self._rng = np.random.default_rng(seed)
        self.screened_rows_ = 0
        self.flagged_rows_ = 0
        self.skipped_rows_ = 0
        self.alerts_ = 0

    def observe(self, observation: Observation) -> list[Alert]:
        """Screen the observation's rows; return one alert when any is flagged."""
        assert self.model is not None
        try:
            arr = check_inputs(observation.inputs, self.model.input_shape)
        except InputError:
            self.skipped_rows_ += _count(observation.inputs)
            return []
        if len(arr) == 0:
            return []
        base = _base_classes(observation.outputs, len(arr), self.model.n_classes)
        try:
            dec = screen(
                self.model,
                arr,
                sigma=self.sigma,
                samples=self.samples,
                alpha=self.alpha,
                base=base,
                rng=self._rng,
            )
        except InputError:  # the model answered badly (ModelError): skip, never raise
            self.skipped_rows_ += len(arr)
            return []
        self.screened_rows_ += len(arr)
        rows = np.flatnonzero(dec.flagged)
        if len(rows) == 0:
            return []
        self.flagged_rows_ += len(rows)
        self.alerts_ += 1
        reasons = dec.reasons()
        return [
            Alert(
                kind=self.name,
                principal=str(observation.principal),
                model=self.model_name,
                severity=Severity.parse(self.severity),
                query_index=int(observation.query_index),
                time=float(observation.time),
                evidence={
                    "flagged_rows": len(rows),
                    "rows": len(arr),
                    "sigma": self.sigma,
                    "samples": self.samples,
                    "alpha": self.alpha,
                    "atlas": "AML.T0015",
                    "examples": [
                        {
                            "row": int(i),
                            "reason": reasons[i],
                            "base_class": int(dec.base[i]),
                            "smoothed_class": int(dec.smoothed[i]),
                            "top_share": round(float(dec.top_share[i]), 4),
                            "p_lower": round(float(dec.p_lower[i]), 4),
                        }
                        for i in rows[:MAX_EVIDENCE_ROWS]
                    ],
                },
            )
        ]

    def state(self) -> dict[str, Any]:
        """Counters only: the screen keeps no per-principal state."""
        return {
            "screened_rows": self.screened_rows_,
            "flagged_rows": self.flagged_rows_,
            "skipped_rows": self.skipped_rows_,
            "alerts": self.alerts_,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Restore the counters :meth:`state` returned.

        Raises:
            InputError: the state is not this detector's.
        """
        try:
            values = [int(state[k]) for k in ("screened_rows", "flagged_rows", "skipped_rows", "alerts")]
        except (KeyError, TypeError, ValueError) as err:
            raise InputError(
                f"adversarial_input detector: state does not fit this detector ({err})"
            ) from None
        self.screened_rows_, self.flagged_rows_, self.skipped_rows_, self.alerts_ = values

    def metrics(self) -> dict[str, float]:
        """Counters for reports."""
        return {k: float(v) for k, v in self.state().items()}


def _base_classes(outputs: np.ndarray | None, n: int, n_classes: int) -> np.ndarray | None:
    """The model's classes from the observation's outputs when they are usable probabilities."""
    if outputs is None:
        return None
    try:
        out = np.asarray(outputs, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if out.shape != (n, n_classes) or not np.isfinite(out).all():
        return None
    return np.asarray(out.argmax(axis=1), dtype=np.int64)


def _count(inputs: Any) -> int:
    try:
        return max(1, len(inputs))
    except TypeError:
        return 1


def _int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _num(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
