"""The renderer interface: one small protocol, one module per output format."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from mlsecops.core.findings import Report

__all__ = ["Format", "Renderer"]


class Format(StrEnum):
    """Output formats every reporting command accepts with ``--format``."""

    TEXT = "text"
    JSON = "json"
    SARIF = "sarif"
    HTML = "html"

    def __str__(self) -> str:
        return self.value


class Renderer(Protocol):
    """Turns one Report into the text of one output format."""

    def render(self, report: Report) -> str:
        """Return the rendered report."""
        ...
