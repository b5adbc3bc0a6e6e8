"""The one interface between the guard (or a replayed log) and the runtime detectors.

The guard hands every served request/response pair to the detectors as an :class:`Observation`, off the
request path (``mlsecops.runtime.hook``); ``mlsecops monitor replay`` builds the same observations from a
decision log. A detector keeps bounded state per principal, returns the :class:`Alert` s an observation
raises, and can save and restore its state, so the same code runs online and offline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from mlsecops.core.severity import Severity

__all__ = ["Alert", "Detector", "Observation"]


@dataclass(frozen=True, slots=True)
class Observation:
    """One request of one principal to one model, with the model's answer.

    Attributes:
        time: Unix seconds (float) when the request arrived.
        principal: Stable identity of the caller (user name or JWT subject), never a key or token.
        model: Served model name.
        version: Model version that answered (registry version number or digest prefix), "" if unknown.
        inputs: The request's rows, shape ``(n, ...)`` as the model received them (float64 or as sent).
        outputs: The model's full output for those rows (class probabilities, ``(n, n_classes)``),
            before output hardening; None when not available (an upstream server, a rejected request).
        query_index: The principal's 1-based request count for this model, assigned by the producer.
        accepted: False when the request path rejected it (validation, rate limit); detectors may still
            count rejected queries.
        source: Where the data came from (a stream or tenant label), "" if none.
    """

    time: float
    principal: str
    model: str
    inputs: np.ndarray
    outputs: np.ndarray | None = None
    version: str = ""
    query_index: int = 0
    accepted: bool = True
    source: str = ""


@dataclass(frozen=True, slots=True)
class Alert:
    """What a detector raises: JSON-ready, and the unit that alerts storage and playbooks consume.

    Attributes:
        kind: Stable dotted name, e.g. ``extraction``, ``query_attack``, ``drift``, ``adversarial_input``.
        principal: The principal it concerns ("" for model-wide alerts such as drift).
        model: Model name.
        severity: How bad; playbooks match on kind and minimum severity.
        query_index: The principal's 1-based request count when raised (0 for model-wide alerts).
        time: Unix seconds of the observation that raised it.
        evidence: Small JSON-ready dict: the statistics and thresholds that decided it.
    """

    kind: str
    principal: str
    model: str
    severity: Severity
    query_index: int
    time: float
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The alert as the replay report and the alert store write it."""
        return {
            "kind": self.kind,
            "principal": self.principal,
            "model": self.model,
            "severity": str(self.severity),
            "query_index": self.query_index,
            "time": self.time,
            "evidence": self.evidence,
        }


@runtime_checkable
class Detector(Protocol):
    """A runtime detector: consumes observations in time order, raises alerts.

    Implementations keep bounded memory per principal (and a bound on the number of principals
    tracked), are not thread-safe (one consumer thread calls them), and never raise on odd input:
    they skip what they cannot use.
    """

    name: str

    def observe(self, observation: Observation) -> list[Alert]:
        """Feed one observation; return the alerts it raises (usually none)."""
        ...

    def state(self) -> dict[str, Any]:
        """JSON-ready state that :meth:`restore` accepts (for restarts and replay checkpoints)."""
        ...

    def restore(self, state: dict[str, Any]) -> None:
        """Replace the state with one :meth:`state` returned."""
        ...
