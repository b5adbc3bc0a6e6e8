"""Posture of model versions for the dashboard, cached by the audit head position.

The scores come from ``mlsecops.posture`` (``all_postures``, ``model_posture``, ``trends``). Every state
change in a workspace writes an audit event, so the head position changes whenever a posture can:
the cache is keyed by it and never serves a posture older than the newest event. When the posture
package is not installed the pages say so and show the registry's own facts.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Mapping
from typing import Any

from mlsecops.store import Workspace
from mlsecops.web._verify import head_seq

__all__ = ["PostureCache", "posture_available"]


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


class PostureCache:
    """``all_postures`` keyed by (model, version), recomputed when the audit head moved."""

    def __init__(self, ws: Workspace) -> None:
        self._ws = ws
        self._lock = threading.Lock()
        self._head = -1
        self._all: dict[tuple[str, int], dict[str, Any]] = {}

    def all(self) -> dict[tuple[str, int], dict[str, Any]]:
        """Every version's posture (empty without the posture package)."""
        if not posture_available():
            return {}
        head = head_seq(self._ws)
        with self._lock:
            if head == self._head:
                return self._all
        from mlsecops import posture

        found = {}
        for p in posture.all_postures(self._ws):
            doc = _as_dict(p)
            try:
                found[(str(doc["model"]), int(doc["version"]))] = doc
            except (KeyError, TypeError, ValueError):
                continue
        with self._lock:
            self._head, self._all = head, found
        return found

    def one(self, name: str, version: int) -> dict[str, Any] | None:
        """One version's posture (from the cache when current), or None without the package."""
        if not posture_available():
            return None
        cached = self.all().get((name, version))
        if cached is not None:
            return cached
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
        """``(title, SVG)`` of each trend chart (``posture.charts``), or None without the package."""
        data = self.trends(name, bucket_s=bucket_s)
        if data is None:
            return None
        from mlsecops import posture

        return [(f.title, f.content) for f in posture.charts(data)]
