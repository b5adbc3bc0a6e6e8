"""Renderers: every Report in every format (terminal text, JSON, SARIF 2.1.0, self-contained HTML).

>>> from mlsecops.core import Report
>>> from mlsecops.report import Format, render
>>> render(Report(subject="m.pkl", kind="artifact.scan"), Format.JSON).startswith("{")
True
"""

from __future__ import annotations

from typing import assert_never

from mlsecops.core.findings import Report
from mlsecops.report.html import HtmlRenderer
from mlsecops.report.interface import Format, Renderer
from mlsecops.report.json import JsonRenderer, report_from_dict, report_to_dict
from mlsecops.report.plots import bar_chart, line_chart
from mlsecops.report.sarif import SarifRenderer, report_to_sarif
from mlsecops.report.text import TextRenderer, report_renderable

__all__ = [
    "Format",
    "HtmlRenderer",
    "JsonRenderer",
    "Renderer",
    "SarifRenderer",
    "TextRenderer",
    "bar_chart",
    "line_chart",
    "render",
    "renderer_for",
    "report_from_dict",
    "report_renderable",
    "report_to_dict",
    "report_to_sarif",
]


def renderer_for(fmt: Format, *, color: bool = False) -> Renderer:
    """The renderer of one format."""
    match fmt:
        case Format.TEXT:
            return TextRenderer(color=color)
        case Format.JSON:
            return JsonRenderer()
        case Format.SARIF:
            return SarifRenderer()
        case Format.HTML:
            return HtmlRenderer()
        case _:
            assert_never(fmt)


def render(report: Report, fmt: Format | str, *, color: bool = False) -> str:
    """Render ``report`` in format ``fmt``."""
    return renderer_for(Format(fmt), color=color).render(report)
