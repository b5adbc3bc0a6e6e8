"""The shared base of the scanner parts: the collected hits, the limits and the recursion entry point.

``ArtifactScanner`` (``_engine.py``) combines ``ContainerScanning`` (``_containers.py``) and
``PickleScanning`` (``_sequences.py``); both call back into ``scan`` for nested content.
"""

from __future__ import annotations

from mlsecops.supplychain.scanner._io import Stream
from mlsecops.supplychain.scanner._types import Budget, Hit, ScanLimits

__all__ = ["ScannerBase"]


class ScannerBase:
    """State of one artifact scan, shared by the scanner parts."""

    def __init__(self, limits: ScanLimits, budget: Budget) -> None:
        self.limits = limits
        self.budget = budget
        self.hits: list[Hit] = []
        self.formats: dict[str, str] = {}
        self.entries = 0

    def add(self, hit: Hit) -> None:
        """Record a hit."""
        self.hits.append(hit)

    def scan(self, s: Stream, entry: str, depth: int, *, hint: str = "") -> str:
        """Scan the stream ``s`` (the content of ``entry``) and return the format name."""
        raise NotImplementedError
