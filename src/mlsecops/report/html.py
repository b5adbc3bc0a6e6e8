"""HTML renderer: one self-contained file (inline CSS, figures embedded as data URIs, no scripts).

Figures are embedded as ``<img>`` data URIs rather than inline SVG, so a figure can never run script in
the reader's browser; every text is escaped by Jinja's autoescape, and control characters, bidi
overrides and bytes that are not UTF-8 (file names) are shown as backslash escapes (``_safe.visible``),
so the page is valid UTF-8 and reads as its bytes say.
"""

from __future__ import annotations

import base64
import json

from jinja2 import Environment, select_autoescape

from mlsecops.core.findings import Figure, Report, Severity
from mlsecops.report._safe import visible

__all__ = ["HtmlRenderer"]

_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mlsecops report: {{ r.subject }}</title>
<style>
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{font-size:1.4rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%;font-size:.9rem}th,td{border:1px solid #ddd;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#f5f5f5}.sev{font-weight:bold;border-radius:3px;padding:0 .4rem}
.critical{background:#b00020;color:#fff}.high{color:#b00020}.medium{color:#b36b00}.low{color:#0b6e99}.info{color:#777}
.summary span{margin-right:1.2rem}.ok{color:#1b7a1b;font-weight:bold}code,pre{font-size:.85rem}
pre{background:#f7f7f7;padding:.6rem;overflow:auto;max-height:30rem}figure{margin:1rem 0}figcaption{font-weight:bold}
</style></head><body>
<h1>mlsecops report</h1>
<div class="summary">
<span><b>subject</b> {{ r.subject }}</span><span><b>check</b> {{ r.kind }}</span>
<span><b>verdict</b> {{ r.verdict or "-" }}</span>
<span><b>worst</b> {% if top is none %}<span class="ok">none</span>{% else %}<span class="sev {{ top }}">{{ top }}</span>{% endif %}</span>
<span><b>started</b> {{ r.started.isoformat() }}</span><span><b>finished</b> {{ r.finished.isoformat() }}</span>
<span><b>mlsecops</b> {{ r.tool_version }}</span>
</div>
<p>{% for name, n in counts.items() %}<span class="sev {{ name }}">{{ name }}: {{ n }}</span> {% endfor %}</p>
{% for t in tables %}<h2>{{ t.title }}</h2>
<table><tr>{% for c in t.columns %}<th>{{ c }}</th>{% endfor %}</tr>
{% for row in t.rows %}<tr>{% for c in t.columns %}{% set v = row.get(c) %}<td>{% if v is sameas true %}<span class="ok">yes</span>{% elif v is sameas false %}<span class="sev critical">no</span>{% elif v is none %}{% else %}{{ v }}{% endif %}</td>{% endfor %}</tr>{% endfor %}</table>
{% if t.more %}<p>{{ t.more }} more row(s) in the JSON report.</p>{% endif %}{% endfor %}
{% if figures %}<h2>Figures</h2>{% for f in figures %}
<figure><figcaption>{{ f.title }}</figcaption><img alt="{{ f.title }}" src="{{ f.uri }}"></figure>{% endfor %}{% endif %}
{% if r.metrics %}<h2>Metrics</h2><table><tr><th>metric</th><th>value</th></tr>
{% for k, v in r.metrics.items() %}<tr><td><code>{{ k }}</code></td><td>{{ "%.4g"|format(v) }}</td></tr>{% endfor %}</table>{% endif %}
<h2>Findings ({{ r.findings|length }})</h2>
{% if not findings %}<p class="ok">No findings.</p>{% else %}
<table><tr><th>severity</th><th>check</th><th>finding</th><th>artifact</th><th>where</th><th>ATLAS</th><th>remediation</th></tr>
{% for f in findings %}<tr><td><span class="sev {{ f.severity }}">{{ f.severity }}</span></td><td><code>{{ f.check }}</code></td>
<td><b>{{ f.title }}</b>{% if f.detail %}<br>{{ f.detail }}{% endif %}{% if f.evidence %}<details><summary>evidence</summary><pre>{{ f.evidence|tojson(indent=2) }}</pre></details>{% endif %}</td>
<td>{{ f.artifact or "" }}</td><td>{% for k, v in f.location.items() %}{{ k }}={{ v }}<br>{% endfor %}</td>
<td>{{ f.atlas or "" }}</td><td>{{ f.remediation }}</td></tr>{% endfor %}</table>{% endif %}
{% for key, value in blobs.items() %}<h2>{{ key }}</h2><details><summary>{{ key }} (JSON)</summary><pre>{{ value }}</pre></details>{% endfor %}
</body></html>
"""


_MAX_ROWS = 500


def _table(key: str, value: object) -> dict[str, object] | None:
    """A list of flat objects (gate rules, stages, artifacts, suspect rows) as a table, else None."""
    if not isinstance(value, list) or not value or not all(isinstance(v, dict) for v in value):
        return None
    columns: list[str] = []
    for row in value:
        for k, v in row.items():
            if k not in columns and not isinstance(v, dict | list):
                columns.append(k)
    if not columns:
        return None
    return {
        "title": key.replace("_", " "),
        "columns": columns,
        "rows": value[:_MAX_ROWS],
        "more": max(0, len(value) - _MAX_ROWS),
    }


def _uri(figure: Figure) -> str:
    if figure.media_type == "image/svg+xml":
        payload = base64.b64encode(figure.content.encode("utf-8")).decode("ascii")
    else:
        payload = figure.content
    return f"data:{figure.media_type};base64,{payload}"


class HtmlRenderer:
    """Renders a report as one self-contained HTML page."""

    def __init__(self) -> None:
        self._env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
        # evidence readable as written (é, 中文); tojson still escapes <, >, & and ' for HTML
        self._env.policies["json.dumps_kwargs"] = {"sort_keys": True, "ensure_ascii": False}
        self._template = self._env.from_string(_TEMPLATE)

    def render(self, report: Report) -> str:
        """Return the HTML page."""
        top = report.max_severity
        page = self._template.render(
            r=report,
            top=None if top is None else str(top),
            counts=report.counts(),
            findings=sorted(report.findings, key=lambda f: -int(f.severity)),
            figures=[{"title": f.title, "uri": _uri(f)} for f in report.figures],
            tables=[t for k, v in report.data.items() if (t := _table(k, v)) is not None],
            blobs={k: json.dumps(v, indent=2, ensure_ascii=False)[:200_000] for k, v in report.data.items()},
            severities=[str(s) for s in Severity],
        )
        return visible(page, keep_newlines=True)
