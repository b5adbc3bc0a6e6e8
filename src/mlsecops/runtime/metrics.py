"""Prometheus metrics of the guard (``GET /metrics``), with bounded label cardinality.

Every label takes values from a closed set: endpoints are route templates (never raw paths), status
codes and rejection reasons are the guard's own, models are the served ones. Principals are the only
open set: the first :data:`MAX_PRINCIPAL_LABELS` principals that reach :data:`PRINCIPAL_LABEL_AFTER`
requests (the heavy callers, which is where extraction and scraping show) get a label of their own;
everyone else is counted as ``other``. A label once given is kept, so counters stay monotonic.

Each app owns its own ``CollectorRegistry``; with several workers, each worker exports its own
counters (scrape each, or sum them in the query).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE", "MAX_PRINCIPAL_LABELS", "PRINCIPAL_LABEL_AFTER", "GuardMetrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
MAX_PRINCIPAL_LABELS = 50
"""Principals with a label of their own; the rest are ``other`` (bounds the series per counter)."""
PRINCIPAL_LABEL_AFTER = 10
"""Requests a principal makes before it may get its own label: one-off callers stay in ``other``."""
MAX_PRINCIPALS_TRACKED = 10_000
"""Principals whose request counts are kept to decide labels; beyond, new ones count as ``other``."""
OTHER = "other"

_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    10.0,
)


class GuardMetrics:
    """The guard's counters and histograms in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "mlsecops_guard_requests",
            "HTTP requests by endpoint and status code",
            ["endpoint", "code"],
            registry=r,
        )
        self.latency = Histogram(
            "mlsecops_guard_request_seconds",
            "Time from the request's arrival to the end of the response",
            ["endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.rejections = Counter(
            "mlsecops_guard_rejections", "Requests refused, by reason", ["reason"], registry=r
        )
        self.model_requests = Counter(
            "mlsecops_guard_model_requests",
            "Inference requests per model version, by outcome",
            ["model", "version", "outcome"],
            registry=r,
        )
        self.model_rows = Counter(
            "mlsecops_guard_model_rows", "Rows answered per model", ["model"], registry=r
        )
        self.principal_requests = Counter(
            "mlsecops_guard_principal_requests",
            f"Inference requests per principal (top {MAX_PRINCIPAL_LABELS}, the rest as 'other'), by outcome",
            ["principal", "outcome"],
            registry=r,
        )
        self.validation_flags = Counter(
            "mlsecops_guard_validation_flags",
            "Inputs flagged but accepted (observe mode)",
            ["model"],
            registry=r,
        )
        self.switches = Counter(
            "mlsecops_guard_model_switches", "Alias or stage switches to a new model version", registry=r
        )
        self.feedback_rows = Counter(
            "mlsecops_guard_feedback_rows", "Labelled rows received for the drift detector", registry=r
        )
        self.in_flight = Gauge("mlsecops_guard_in_flight", "Inference requests being answered", registry=r)
        self._counts: dict[str, int] = {}
        self._labelled: set[str] = set()
        self._lock = threading.Lock()

    def gauge_function(self, name: str, doc: str, fn: Callable[[], float]) -> None:
        """Export ``fn()`` as a gauge read at scrape time (e.g. the detector queue's drop count)."""
        Gauge(name, doc, registry=self.registry).set_function(fn)

    def principal_label(self, principal: str) -> str:
        """The label ``principal`` is counted under (its name, or ``other``)."""
        if principal in self._labelled:
            return principal
        with self._lock:
            count = self._counts.get(principal)
            if count is None:
                if len(self._counts) >= MAX_PRINCIPALS_TRACKED:
                    return OTHER
                count = 0
            count += 1
            self._counts[principal] = count
            if count >= PRINCIPAL_LABEL_AFTER and len(self._labelled) < MAX_PRINCIPAL_LABELS:
                self._labelled.add(principal)
                return principal
        return OTHER

    def render(self) -> bytes:
        """The exposition text."""
        return generate_latest(self.registry)
