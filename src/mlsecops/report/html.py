"""HTML renderer: one self-contained file (inline CSS, figures embedded as data URIs, no scripts).

Written for a reader: a verdict banner that reconciles the gate (or the check's own conclusion) with
the worst finding in one sentence; for a pipeline, one section per stage naming its inputs (path and
content digest), the policy rules that judge it, its metrics, findings and figures; findings grouped by
check and remediation, the remediation shown once per group with a count; numbers formatted for people
(``humanize``: bytes in KiB/MiB, shares as percentages, three significant digits, separators, times).

Security: figures are embedded as ``<img>`` data URIs rather than inline SVG, so a figure can never run
script in the reader's browser; there is no script at all and nothing is loaded from elsewhere (the page
renders under ``default-src 'none'; style-src 'unsafe-inline'; img-src data:``); every text is escaped
by Jinja's autoescape, and control characters, bidi overrides and bytes that are not UTF-8 (file names)
are shown as backslash escapes (``_safe.visible``), so the page is valid UTF-8 and reads as its bytes say.

``render_fragment`` gives the same report as one ``<div class="mlsr">`` with its own scoped style, for
a page that embeds it (the dashboard).
"""

from __future__ import annotations

import base64
import json

from jinja2 import Environment, select_autoescape
from markupsafe import Markup

from mlsecops.core.findings import Figure, Report, Severity
from mlsecops.report import _readable, humanize
from mlsecops.report._safe import visible

__all__ = ["REPORT_CSS", "HtmlRenderer", "render_fragment"]

REPORT_CSS = """
.mlsr{font-family:system-ui,-apple-system,Segoe UI,sans-serif;color:#222;line-height:1.4}
.mlsr h1{font-size:1.4rem;margin:.2rem 0 .6rem}.mlsr h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
.mlsr h3{font-size:1rem;margin:1.2rem 0 .4rem}
.mlsr table{border-collapse:collapse;width:100%;font-size:.9rem;margin:.3rem 0}
.mlsr th,.mlsr td{border:1px solid #ddd;padding:.3rem .5rem;text-align:left;vertical-align:top}
.mlsr th{background:#f5f5f5}.mlsr td{overflow-wrap:anywhere}.mlsr td.when,.mlsr td.hex{white-space:nowrap}
.mlsr td.hex{font-family:ui-monospace,monospace;font-size:.85rem}.mlsr td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.mlsr .sev{font-weight:bold;border-radius:3px;padding:0 .4rem;white-space:nowrap}
.mlsr .critical{background:#b00020;color:#fff}.mlsr .high{color:#b00020}.mlsr .medium{color:#9a5b00}
.mlsr .low{color:#0b6e99}.mlsr .info{color:#666}.mlsr .ok{color:#1b7a1b;font-weight:bold}
.mlsr .verdict{border-left:.5rem solid;padding:.7rem 1rem;margin:.6rem 0 1rem;font-size:1.08rem;border-radius:3px}
.mlsr .verdict.ok{border-color:#1b7a1b;background:#eef8ee;color:#222;font-weight:normal}
.mlsr .verdict.warn{border-color:#c77800;background:#fff6e5}.mlsr .verdict.bad{border-color:#b00020;background:#fdecee}
.mlsr .meta{color:#555;font-size:.9rem}.mlsr .meta span{margin-right:1.2rem}
.mlsr .pills span{margin-right:.5rem}.mlsr .dim{color:#777}
.mlsr code,.mlsr pre{font-size:.85rem}.mlsr pre{background:#f7f7f7;padding:.6rem;overflow:auto;max-height:30rem}
.mlsr figure{margin:1rem 0}.mlsr figcaption{font-weight:bold;margin-bottom:.3rem}.mlsr img{max-width:100%}
.mlsr .group{border:1px solid #ddd;border-radius:4px;padding:.5rem .8rem;margin:.7rem 0}
.mlsr .group .fix{background:#f3f6fb;padding:.3rem .6rem;border-radius:3px;margin:.4rem 0}
.mlsr .stage{margin-top:1.5rem}.mlsr .cols{display:grid;grid-template-columns:1fr 1fr;gap:0 2rem}
.mlsr table.metrics{width:auto;min-width:40%}.mlsr ul.inputs{margin:.2rem 0;padding-left:1.2rem}
"""

_TEMPLATE = """{%- macro sev(s) -%}{% if s %}<span class="sev {{ s }}">{{ s }}</span>{% else %}<span class="ok">none</span>{% endif %}{%- endmacro -%}
{%- macro yesno(v) -%}{% if v is sameas true %}<span class="ok">yes</span>{% elif v is sameas false %}<span class="sev critical">no</span>{% elif v is none %}{% else %}{{ v }}{% endif %}{%- endmacro -%}
{%- macro metrics_table(rows) -%}
<table class="metrics"><tr><th>metric</th><th>value</th></tr>
{% for name, text, raw in rows %}<tr><td><code>{{ name }}</code></td><td class="num" title="{{ raw }}">{{ text }}</td></tr>{% endfor %}</table>
{%- endmacro -%}
{%- macro rules_table(rules) -%}
<table><tr><th>rule</th><th>passed</th><th>observed</th></tr>
{% for g in rules %}<tr><td><code>{{ g.rule }}</code></td><td>{{ yesno(g.passed) }}</td><td>{{ observed(g) }}</td></tr>{% endfor %}</table>
{%- endmacro -%}
{%- macro groups_block(groups) -%}
{% for g in groups %}<div class="group"><div>{{ sev(g.severity) }} <b>{{ g.headline }}</b>
<span class="dim">&middot; {{ g.count }} finding{{ "" if g.count == 1 else "s" }} &middot; <code>{{ g.check }}</code>{% if g.atlas %} &middot; ATLAS {{ g.atlas }}{% endif %}{% if g.artifact %} &middot; in {{ g.artifact }}{% endif %}</span></div>
{% if g.remediation %}<div class="fix"><b>Remediation:</b> {{ g.remediation }}</div>{% endif %}
<table><tr><th>severity</th><th>finding</th><th>where</th></tr>
{% for f in g.items %}<tr><td>{{ sev(f.severity|string) }}</td><td>{% if g.count > 1 or f.title != g.headline %}{{ f.title }}{% endif %}{% if f.detail %}{% if g.count > 1 or f.title != g.headline %}<br>{% endif %}<span class="dim">{{ f.detail }}</span>{% endif %}{% if f.evidence %}<details><summary>evidence</summary><pre>{{ f.evidence|tojson(indent=2) }}</pre></details>{% endif %}</td>
<td>{% if f.artifact and not g.artifact %}{{ f.artifact }}<br>{% endif %}{% for k, v in f.location.items() %}{{ k }} {{ num(v) }}{% if not loop.last %}, {% endif %}{% endfor %}</td></tr>{% endfor %}</table>
{% if g.count > g.items|length %}<p class="dim">{{ g.count - g.items|length }} more in the JSON report.</p>{% endif %}</div>{% endfor %}
{%- endmacro -%}
{%- macro figures_block(figs) -%}
{% for f in figs %}<figure><figcaption>{{ f.title }}</figcaption><img alt="{{ f.title }}" src="{{ uri(f) }}"></figure>{% endfor %}
{%- endmacro -%}
<div class="mlsr">
<h1>mlsecops report: {{ r.subject }}</h1>
<div class="verdict {{ v.tone }}"><b>{{ v.headline }}:</b> {{ v.sentence }}</div>
<div class="meta"><span><b>check</b> {{ r.kind }}</span><span><b>verdict</b> {{ r.verdict or "-" }}</span>
<span><b>worst</b> {{ sev(top) }}</span><span><b>started</b> {{ when(r.started) }}</span>{% if took %}<span><b>took</b> {{ took }}</span>{% endif %}
<span><b>mlsecops</b> {{ r.tool_version }}</span></div>
{% if r.findings or r.verdict or r.metrics %}<p class="pills">{% for name, n in counts.items() %}<span class="sev {{ name }}">{{ name }}: {{ n }}</span>{% endfor %}</p>{% endif %}
{% if rules is not none %}<h2>Policy gate</h2>{{ rules_table(rules) }}{% endif %}
{% if stages is not none %}
<h2>Stages</h2>
<table><tr><th>stage</th><th>check</th><th>verdict</th><th>worst</th><th>findings</th><th>gate</th></tr>
{% for s in stages %}<tr><td><a href="#stage-{{ loop.index }}">{{ s.name }}</a></td><td><code>{{ s.check }}</code></td><td>{{ s.verdict }}</td><td>{{ sev(s.worst) }}</td><td class="num">{{ s.count }}</td>
<td>{% if not s.rules %}<span class="dim">not judged</span>{% elif s.rules|selectattr("passed", "sameas", false)|list %}<span class="sev critical">failed</span>{% else %}<span class="ok">passed</span>{% endif %}</td></tr>{% endfor %}</table>
{% for s in stages %}<section class="stage" id="stage-{{ loop.index }}">
<h2>Stage {{ s.name }} <span class="dim">&middot; <code>{{ s.check }}</code> &middot; {{ s.verdict }}</span></h2>
{% if s.error %}<p class="sev high">could not run: {{ s.error }}</p>{% endif %}
<div class="cols"><div><h3>Inputs</h3>{% if s.inputs is none %}<p class="dim">not recorded in this report</p>{% elif not s.inputs %}<p class="dim">none: the stage reads the workspace</p>{% else %}
<ul class="inputs">{% for i in s.inputs %}<li><code>{{ i.path }}</code>{% if i.digest %} <span class="dim" title="{{ i.digest }}">{{ short(i.digest) }}</span>{% endif %}</li>{% endfor %}</ul>{% endif %}
<h3>Policy</h3>{% if s.rules %}<ul class="inputs">{% for g in s.rules %}<li>{{ yesno(g.passed) }} <code>{{ g.rule }}</code> <span class="dim">observed {{ observed(g) }}</span></li>{% endfor %}</ul>{% else %}<p class="dim">no rule judges this stage</p>{% endif %}</div>
<div>{% if s.metrics %}<h3>Metrics</h3>{{ metrics_table(s.metrics) }}{% endif %}</div></div>
<h3>Findings ({{ s.count }})</h3>{% if s.groups %}{{ groups_block(s.groups) }}{% elif s.count %}<p class="dim">listed with all the findings below</p>{% else %}<p class="ok">No findings.</p>{% endif %}
{{ figures_block(s.figures) }}
</section>{% endfor %}
{% if orphan_groups %}<h2>Findings ({{ r.findings|length }})</h2>{{ groups_block(orphan_groups) }}{% endif %}
{% if orphan_figures %}<h2>Figures</h2>{{ figures_block(orphan_figures) }}{% endif %}
{% else %}
{% if metrics %}<h2>Metrics</h2>{{ metrics_table(metrics) }}{% endif %}
{% if r.findings or r.verdict or r.metrics %}<h2>Findings ({{ r.findings|length }})</h2>{% if groups %}{{ groups_block(groups) }}{% else %}<p class="ok">No findings.</p>{% endif %}{% endif %}
{% if r.figures %}<h2>Figures</h2>{{ figures_block(r.figures) }}{% endif %}
{% endif %}
{% for t in tables %}<h2>{{ t.title }}</h2>
<table><tr>{% for c in t.columns %}<th>{{ c }}</th>{% endfor %}</tr>
{% for row in t.rows %}<tr>{% for v, cls, full in row %}<td{% if cls %} class="{{ cls }}"{% endif %}{% if full %} title="{{ full }}"{% endif %}>{{ yesno(v) }}</td>{% endfor %}</tr>{% endfor %}</table>
{% if t.more %}<p>{{ t.more }} more row(s) in the JSON report.</p>{% endif %}{% endfor %}
{% if blobs %}<h2>Raw data</h2>{% for key, value in blobs.items() %}<details><summary>{{ key }} (JSON)</summary><pre>{{ value }}</pre></details>{% endfor %}{% endif %}
</div>"""

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mlsecops report: {{ r.subject }}</title>
<style>body{margin:2rem auto;max-width:1100px;padding:0 1rem}{{ css }}</style></head><body>
{{ body }}
</body></html>
"""

_PIPELINE_KEYS = frozenset({"stages", "gate"})


def _uri(figure: Figure) -> str:
    if figure.media_type == "image/svg+xml":
        payload = base64.b64encode(figure.content.encode("utf-8")).decode("ascii")
    else:  # PNG content is base64 already; keep only base64 characters, so nothing leaves the attribute
        payload = "".join(c for c in figure.content if c.isalnum() or c in "+/=")
    media = figure.media_type if figure.media_type in ("image/svg+xml", "image/png") else "image/png"
    return f"data:{media};base64,{payload}"


def _num(value: object) -> str:
    return humanize.integer(value) if isinstance(value, int) and not isinstance(value, bool) else str(value)


class HtmlRenderer:
    """Renders a report as one self-contained HTML page.

    Args:
        fail_on: the severity at which the caller fails (a CLI's ``--fail-on``); the verdict sentence of
            a report without a policy gate then says whether the findings reach it.
    """

    def __init__(self, *, fail_on: Severity | None = None) -> None:
        self.fail_on = fail_on
        self._env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
        # evidence readable as written (é, 中文); tojson still escapes <, >, & and ' for HTML
        self._env.policies["json.dumps_kwargs"] = {"sort_keys": True, "ensure_ascii": False}
        self._env.globals.update(
            uri=_uri,
            num=_num,
            observed=_readable.observed,
            when=humanize.timestamp,
            short=lambda d: str(d).split(":")[-1][:12],
        )
        self._body = self._env.from_string(_TEMPLATE)
        self._page = self._env.from_string(_PAGE)

    def fragment(self, report: Report) -> str:
        """The report as one ``<div class="mlsr">`` (style it with ``REPORT_CSS``), escaped like the page."""
        stages = _readable.stages(report)
        placed = sum(len(s.figures) for s in stages or [])
        placed_all = sum(g.count for s in stages or [] for g in s.groups) == len(report.findings)
        top = report.max_severity
        body = self._body.render(
            r=report,
            v=_readable.verdict(report, fail_on=self.fail_on),
            top=None if top is None else str(top),
            took=humanize.duration(seconds)
            if (seconds := (report.finished - report.started).total_seconds()) >= 1e-3
            else "",
            counts=report.counts(),
            stages=stages,
            rules=_readable.gate_rules(report),
            orphan_figures=report.figures[placed:] if stages is not None else (),
            orphan_groups=_readable.group_findings(report.findings)
            if stages is not None and not placed_all
            else [],
            metrics=[(k, humanize.metric(k, v), v) for k, v in report.metrics.items()],
            groups=_readable.group_findings(report.findings),
            tables=[
                t
                for k, v in report.data.items()
                if not (stages is not None and k in _PIPELINE_KEYS)
                and not (k == "gate" and _readable.gate_rules(report) is not None)
                and (t := _readable.table(k, v)) is not None
            ],
            blobs={k: json.dumps(v, indent=2, ensure_ascii=False)[:200_000] for k, v in report.data.items()},
        )
        return visible(body, keep_newlines=True)

    def render(self, report: Report) -> str:
        """Return the HTML page."""
        body = Markup(self.fragment(report))  # rendered with autoescape: every input text is escaped
        return visible(self._page.render(r=report, css=REPORT_CSS, body=body), keep_newlines=True)


def render_fragment(report: Report, *, fail_on: Severity | None = None) -> str:
    """The report as an HTML fragment for a page that embeds it, with ``REPORT_CSS`` as its own style
    (``<style>`` inside the fragment; allowed by ``style-src 'unsafe-inline'``).
    """
    return f"<style>{REPORT_CSS}</style>" + HtmlRenderer(fail_on=fail_on).fragment(report)
