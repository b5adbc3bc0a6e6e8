"""The detector factory: the guard policy's ``monitor.detectors`` section -> configured detectors.

One table maps each detector name to the module and class that implement it; modules are imported
only when their detector is asked for, so a missing one fails with a clear ``ConfigError`` naming it.
Options are checked against the class's keyword parameters before anything is built: an unknown
option (a typo in a security policy) is refused, never ignored.

>>> from mlsecops.runtime.policy import MonitorPolicy                     # doctest: +SKIP
>>> build_detectors(MonitorPolicy(detectors={"extraction": {"max_principals": 1000}}),
...                 model=adapter, baseline=profile_dict, model_name="iris")  # doctest: +SKIP

With no detector named, the default set runs: ``extraction``, ``query_attack`` and ``drift`` when a
baseline is given, else ``query_attack`` alone (extraction and drift measure traffic against the
training profile; without it they would have nothing calibrated to compare with). The per-request
``adversarial_input`` screen costs several model calls per row and is opt-in.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlsecops.core.errors import ConfigError, InputError, MlsecopsError
from mlsecops.monitor.interface import Detector

__all__ = ["DEFAULT_DETECTORS", "DETECTORS", "DetectorSpec", "build_detectors", "model_probabilities"]

_log = logging.getLogger("mlsecops.monitor")


@dataclass(frozen=True)
class DetectorSpec:
    """Where a detector lives, and what it needs."""

    module: str
    cls: str
    needs_baseline: bool = False
    """Calibrated on the training profile: refused (named) or left out of the defaults without one."""


DETECTORS: Mapping[str, DetectorSpec] = {
    "extraction": DetectorSpec("mlsecops.monitor.extraction", "ExtractionDetector", needs_baseline=True),
    "query_attack": DetectorSpec("mlsecops.monitor.query_attacks", "QueryAttackDetector"),
    "adversarial_input": DetectorSpec("mlsecops.monitor.adversarial_screen", "AdversarialInputScreen"),
    "drift": DetectorSpec("mlsecops.monitor.drift", "DriftDetector", needs_baseline=True),
    "fairness": DetectorSpec("mlsecops.monitor.fairness", "FairnessMonitor"),
}
"""Detector name (as in ``guard.yaml``'s ``monitor.detectors``) -> implementation."""

DEFAULT_DETECTORS = ("extraction", "query_attack", "drift")
"""Run when the policy names none (those needing a baseline only with one)."""

_CONTEXT = ("model_name", "baseline", "model")
"""Keyword parameters the factory fills itself (never from the policy's options)."""


def _class(name: str, spec: DetectorSpec) -> type[Any]:
    try:
        module = importlib.import_module(spec.module)
    except ModuleNotFoundError as err:
        if err.name != spec.module:
            raise
        raise ConfigError(f"detector {name!r}: its module {spec.module} is not installed") from None
    cls = getattr(module, spec.cls, None)
    if cls is None:
        raise ConfigError(f"detector {name!r}: {spec.module} has no {spec.cls}")
    return cls  # type: ignore[no-any-return]


def _check_options(name: str, cls: type[Any], options: Mapping[str, Any]) -> None:
    params = inspect.signature(cls.__init__).parameters
    if any(v.kind is v.VAR_KEYWORD for v in params.values()):
        return  # the class takes **options and checks them itself (refusing unknown ones)
    allowed = sorted(
        p
        for p, v in params.items()
        if p not in ("self", *_CONTEXT) and v.kind in (v.KEYWORD_ONLY, v.POSITIONAL_OR_KEYWORD)
    )
    for key in options:
        if key not in allowed:
            raise ConfigError(
                f"monitor.detectors.{name}: unknown option {key!r}; expected one of {', '.join(allowed)}"
            )


def model_probabilities(model: Any, x: np.ndarray, *, batch: int = 1_024) -> np.ndarray | None:
    """The model's class probabilities on ``x`` in batches, or None when ``model`` cannot predict."""
    predict: Callable[[np.ndarray], Any] | None = getattr(model, "predict_proba", None)
    if predict is None:
        return None
    parts = [np.asarray(predict(x[i : i + batch]), dtype=np.float64) for i in range(0, len(x), batch)]
    return np.concatenate(parts) if parts else None


def _model_name(model: Any, model_name: str | None) -> str:
    if model_name is not None:
        return model_name
    if isinstance(model, Mapping) and isinstance(model.get("name"), str):
        return str(model["name"])
    return "model"


def _build_extraction(
    cls: type[Any], options: dict[str, Any], model: Any, baseline: dict[str, Any], holdout: Any
) -> Any:
    from mlsecops.monitor.extraction import reference_bounds, reference_rows

    shape = getattr(model, "input_shape", None)
    if isinstance(model, Mapping):
        shape = model.get("input_shape")
    features = int(np.prod(shape)) if shape else None
    x = reference_rows(baseline, features)
    if features is not None and x.shape[1] != features:
        raise InputError(f"baseline: {x.shape[1]} feature columns, the model takes {features}")
    bounds = reference_bounds(baseline, x.shape[1])
    det = cls(**options)
    proba = model_probabilities(model, x)
    holdout_proba = None
    if holdout is not None:
        rows = np.asarray(holdout, dtype=np.float64).reshape(len(holdout), -1)
        if rows.shape[1] != x.shape[1]:
            raise InputError(f"holdout data: {rows.shape[1]} features, the model takes {x.shape[1]}")
        holdout_proba = model_probabilities(model, rows)
    return det.fit(
        x,
        proba,
        lo=None if bounds is None else bounds[0],
        hi=None if bounds is None else bounds[1],
        holdout_proba=holdout_proba,
    )


def load_holdout(path: str | Path) -> np.ndarray:
    """Held-out rows (data the model was not trained on: a validation split) from a CSV, Parquet or
    ``.npz`` file; a ``label`` column or ``y`` array is ignored.

    Raises:
        InputError: the file cannot be read.
    """
    from mlsecops.data import read_labelled

    x, _, _ = read_labelled(Path(path), label=None, default_labels=("label", "y", "target"))
    return np.asarray(x, dtype=np.float64).reshape(len(x), -1)


def build_detectors(
    policy: Any,
    model: Any = None,
    *,
    baseline: dict[str, Any] | None = None,
    model_name: str | None = None,
    holdout: Any = None,
) -> list[Detector]:
    """Build the detectors a monitor policy names, configured and calibrated.

    Args:
        policy: the guard policy's ``monitor`` section (``MonitorPolicy``; ``detectors``: name -> options).
        model: the served model: an adapter with ``predict_proba`` (calibrates output-side signals) or
            the guard's model info dict (``name``, ``n_classes``, ``input_shape``).
        baseline: the training profile (``mlsecops data profile`` JSON as a dict) or ``{"X": rows}``.
        model_name: the model's name as observations carry it (default: from ``model``).
        holdout: rows the model was not trained on (default: the policy's ``holdout`` file, if any);
            with a model that answers, the extraction detector ranks each principal's answer margins
            against the model's answers on them (the signal that catches active-learning thieves).

    Returns:
        The detectors, in the policy's order (or the default set's).

    Raises:
        ConfigError: an unknown detector or option, a detector whose module is missing, a detector
            needing a baseline without one, or an option value out of range.
        InputError: a baseline that cannot calibrate the detector (too few rows, NaN).
    """
    if not getattr(policy, "enabled", True):
        return []
    named: Mapping[str, Any] = getattr(policy, "detectors", {}) or {}
    chosen: list[tuple[str, dict[str, Any]]]
    if named:
        chosen = []
        for name, options in named.items():
            if name not in DETECTORS:
                raise ConfigError(
                    f"monitor.detectors: unknown detector {name!r}; expected one of {', '.join(DETECTORS)}"
                )
            if options is not None and not isinstance(options, Mapping):
                raise ConfigError(f"monitor.detectors.{name}: options must be a mapping")
            if DETECTORS[name].needs_baseline and baseline is None:
                raise ConfigError(
                    f"detector {name!r} needs the model's training profile (a baseline); none was given"
                )
            chosen.append((name, dict(options or {})))
    else:
        chosen = [
            (n, {}) for n in DEFAULT_DETECTORS if baseline is not None or not DETECTORS[n].needs_baseline
        ]
    name_of_model = _model_name(model, model_name)
    if holdout is None and getattr(policy, "holdout", None) is not None:
        holdout = load_holdout(policy.holdout)
    if not callable(getattr(model, "predict_proba", None)):
        holdout = None  # answers are needed to rank margins; the guard's info dict has none
    out: list[Detector] = []
    for name, options in chosen:
        spec = DETECTORS[name]
        try:
            cls = _class(name, spec)
        except ConfigError as err:
            if named:
                raise
            _log.warning("default detector left out: %s", err)
            continue
        _check_options(name, cls, options)
        if name == "extraction":
            assert baseline is not None  # needs_baseline, checked above
            out.append(_build_extraction(cls, options, model, baseline, holdout))  # errors always surface
            continue
        params = inspect.signature(cls.__init__).parameters
        adapter = model if callable(getattr(model, "predict_proba", None)) else None
        context = {"model_name": name_of_model, "baseline": baseline, "model": adapter}
        kwargs = {k: v for k, v in context.items() if k in params}
        try:
            out.append(cls(**kwargs, **options))
        except TypeError as err:
            raise ConfigError(f"monitor.detectors.{name}: {err}") from None
        except MlsecopsError as err:
            if named:
                raise
            # A default detector that cannot use this baseline (e.g. drift needs a profile, not a data
            # file) is left out with a warning; naming it in the policy makes the same error fatal.
            _log.warning("default detector %s left out: %s", name, str(err).splitlines()[0])
    return out
