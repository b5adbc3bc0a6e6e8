"""Posture of model versions for the dashboard, cached by the newest audit event a page depends on.

The scores come from ``mlsecops.posture`` (``all_postures``, ``model_posture``, ``trends``). Every state
change in a workspace writes an audit event, so the newest event moves whenever a posture can: the
cache is keyed by the newest event that is not a dashboard session event (``_verify.state_seq``:
log-ins change no posture) and never serves a posture older than that event. When the posture
package is not installed the pages say so and show the registry's own facts.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlsecops.store import Workspace
from mlsecops.web._verify import state_seq

__all__ = ["FIRST_WAIT_S", "MAX_CACHED_CHARTS", "PostureCache", "Postures", "posture_available"]

_log = logging.getLogger("mlsecops.web")

FIRST_WAIT_S = 30.0
"""Longest a page waits for the very first computation of every posture (later pages never wait)."""
MAX_CACHED_CHARTS = 256
"""Trend chart sets kept (model x resolution)."""


def posture_available() -> bool:
    """Whether ``mlsecops.posture`` is installed and offers ``all_postures`` and ``model_posture``."""
    if importlib.util.find_spec("mlsecops.posture") is None:
        return False
    try:
        module = importlib.import_module("mlsecops.posture")
    except ImportError:
        return False
    return all(hasattr(module, name) for name in ("all_postures", "model_posture", "trends"))


def _as_dict(p: Any) -> dict[str, Any]:
    out = p.to_dict() if hasattr(p, "to_dict") else p
    return dict(out) if isinstance(out, Mapping) else {}


@dataclass(frozen=True)
class Postures:
    """Every version's posture as of one audit head position."""

    by_version: dict[tuple[str, int], dict[str, Any]]
    as_of: int
    """The audit head position they were computed at."""
    head: int
    """The head position now; larger than ``as_of`` while a refresh runs."""

    @property
    def stale(self) -> bool:
        """Whether events were recorded since (a refresh is running)."""
        return self.as_of != self.head


class PostureCache:
    """``all_postures`` keyed by (model, version), refreshed off the request path when the head moves.

    Computing every posture reads every version's evidence (about a second for 200 versions), so a
    page never waits for it once a first result exists: it gets the last result, labelled with the
    event it is as of, while one background thread computes the new one (stale-while-revalidate).
    Only the very first call waits; ``warm()`` starts that at application start.
    """

    def __init__(self, ws: Workspace) -> None:
        self._ws = ws
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)
        self._result: tuple[int, dict[tuple[str, int], dict[str, Any]]] | None = None
        self._running = False
        self._charts: dict[tuple[str, int], tuple[int, list[tuple[str, str]]]] = {}

    def warm(self, *, wait: bool = False) -> None:
        """Compute every posture now: in the background, or with ``wait`` in this thread (the app's
        start-up does, so the server reports ready with the cache filled and no first page waits).
        """
        if not posture_available():
            return
        head = state_seq(self._ws)
        if not wait:
            self._refresh_async(head)
            return
        with self._lock:
            if self._running:
                self._done.wait_for(lambda: not self._running, timeout=FIRST_WAIT_S)
                return
            self._running = True
        self._compute(head)

    @property
    def computed_at(self) -> int | None:
        """The audit head position of the newest result, or None before the first one."""
        with self._lock:
            return None if self._result is None else self._result[0]

    def _compute(self, head: int) -> None:
        found: dict[tuple[str, int], dict[str, Any]] = {}
        try:
            from mlsecops import posture

            for p in posture.all_postures(self._ws):
                doc = _as_dict(p)
                try:
                    found[(str(doc["model"]), int(doc["version"]))] = doc
                except (KeyError, TypeError, ValueError):
                    continue
        except Exception as err:  # keep serving the last result; the next page load retries
            _log.warning("computing postures failed: %s: %s", type(err).__name__, err)
            with self._lock:
                self._running = False
                self._done.notify_all()
            return
        with self._lock:
            if self._result is None or head >= self._result[0]:
                self._result = (head, found)
            self._running = False
            self._done.notify_all()

    def _refresh_async(self, head: int) -> None:
        with self._lock:
            if self._running:
                return
            self._running = True
        threading.Thread(target=self._compute, args=(head,), name="ui-postures", daemon=True).start()

    def all(self) -> Postures:
        """Every version's posture: current, or the last result while a refresh runs (empty without
        the posture package).
        """
        if not posture_available():
            return Postures({}, 0, 0)
        head = state_seq(self._ws)
        with self._lock:
            result = self._result
        if result is None:
            self._refresh_async(head)
            with self._lock:
                self._done.wait_for(
                    lambda: self._result is not None or not self._running, timeout=FIRST_WAIT_S
                )
                result = self._result
            if result is None:
                return Postures({}, 0, head)
        if result[0] != head:
            self._refresh_async(head)
        return Postures(result[1], result[0], head)

    def one(self, name: str, version: int) -> dict[str, Any] | None:
        """One version's posture, always current (from the cache when it is), or None without the package."""
        if not posture_available():
            return None
        head = state_seq(self._ws)
        with self._lock:
            result = self._result
        if result is not None and result[0] == head and (name, version) in result[1]:
            return result[1][(name, version)]
        from mlsecops import posture

        return _as_dict(posture.model_posture(self._ws, name, version))

    def trends(self, name: str, *, bucket_s: int) -> dict[str, Any] | None:
        """``posture.trends`` of a model (posture per version and runtime signals), or None."""
        if not posture_available():
            return None
        from mlsecops import posture

        data: dict[str, Any] = posture.trends(self._ws, name, bucket_s=bucket_s)
        return data

    def charts(self, name: str, *, bucket_s: int) -> list[tuple[str, str]] | None:
        """``(title, SVG)`` of each trend chart (``posture.charts``), or None without the package.

        Kept per model and bucket until the audit head moves (a few hundred ms to compute).
        """
        if not posture_available():
            return None
        head = state_seq(self._ws)
        key = (name, bucket_s)
        with self._lock:
            hit = self._charts.get(key)
        if hit is not None and hit[0] == head:
            return hit[1]
        data = self.trends(name, bucket_s=bucket_s)
        if data is None:
            return None
        from mlsecops import posture

        drawn = [(f.title, f.content) for f in posture.charts(data)]
        with self._lock:
            self._charts[key] = (head, drawn)
            while len(self._charts) > MAX_CACHED_CHARTS:
                self._charts.pop(next(iter(self._charts)))
        return drawn
