"""Renderers: every Report in every format (terminal text, JSON, SARIF 2.1.0, self-contained HTML).

>>> from mlsecops.core import Report
>>> from mlsecops.report import Format, render
>>> render(Report(subject="m.pkl", kind="artifact.scan"), Format.JSON).startswith("{")
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, assert_never

from mlsecops.core._lazy import lazy_attributes as _lazy_attributes
from mlsecops.report.interface import Format, Renderer

if TYPE_CHECKING:
    from mlsecops.core.findings import Report
    from mlsecops.report.html import HtmlRenderer, render_fragment
    from mlsecops.report.json import JsonRenderer, report_from_dict, report_to_dict
    from mlsecops.report.plots import bar_chart, line_chart
    from mlsecops.report.sarif import SarifRenderer, report_to_sarif
    from mlsecops.report.text import TextRenderer, report_renderable

# Renderers load on first use (PEP 562): jinja2 and rich cost start-up time a JSON-only command never needs.
_LAZY = {
    "HtmlRenderer": "mlsecops.report.html",
    "render_fragment": "mlsecops.report.html",
    "JsonRenderer": "mlsecops.report.json",
    "report_from_dict": "mlsecops.report.json",
    "report_to_dict": "mlsecops.report.json",
    "bar_chart": "mlsecops.report.plots",
    "line_chart": "mlsecops.report.plots",
    "SarifRenderer": "mlsecops.report.sarif",
    "report_to_sarif": "mlsecops.report.sarif",
    "TextRenderer": "mlsecops.report.text",
    "report_renderable": "mlsecops.report.text",
}


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
    "render_fragment",
    "renderer_for",
    "report_from_dict",
    "report_renderable",
    "report_to_dict",
    "report_to_sarif",
]

__getattr__, __dir__ = _lazy_attributes(__name__, _LAZY, __all__)


def renderer_for(fmt: Format, *, color: bool = False) -> Renderer:
    """The renderer of one format."""
    match fmt:
        case Format.TEXT:
            from mlsecops.report.text import TextRenderer

            return TextRenderer(color=color)
        case Format.JSON:
            from mlsecops.report.json import JsonRenderer

            return JsonRenderer()
        case Format.SARIF:
            from mlsecops.report.sarif import SarifRenderer

            return SarifRenderer()
        case Format.HTML:
            from mlsecops.report.html import HtmlRenderer

            return HtmlRenderer()
        case _:
            assert_never(fmt)


def render(report: Report, fmt: Format | str, *, color: bool = False) -> str:
    """Render ``report`` in format ``fmt``."""
    return renderer_for(Format(fmt), color=color).render(report)
