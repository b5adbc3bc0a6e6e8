"""How a model's posture and its runtime signals changed over time, as plain series to chart.

``trends(ws, name)`` returns:

Every series is a list of ``[unix_seconds, value]`` pairs, grouped in mappings of series name to
points (one chart per group):

- ``posture``: ``{"v3": [[t, score], ...]}``: each version's score recomputed as of each moment its
  evidence changed (registration, a run over its bytes finishing, a gate attached, an approval, an
  alert raised or resolved), from the same stored facts as ``model_posture`` (``_snapshot.as_of``).
- ``traffic``: ``requests`` and ``accepted`` per time bucket (``runtime_decisions``; ``t`` is the
  bucket's start); ``rejections``: per reason (``rejected:<reason>``); ``alerts_opened``: per kind
  (``monitor_alerts.first_seen``).
- ``drift``: ``p_value`` of each drift alert's latest window.

``charts(trends)`` draws them with ``mlsecops.report.plots`` (our own SVG).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import func, select

from mlsecops.monitor._alert_tables import AlertRow
from mlsecops.posture._parts import wanted_reports
from mlsecops.posture._posture import attach_times, postures_from
from mlsecops.posture._snapshot import as_of, load, stage_bodies
from mlsecops.posture.history import parse_time
from mlsecops.runtime._decision_tables import DecisionRecord
from mlsecops.store import Workspace

if TYPE_CHECKING:
    from mlsecops.core.findings import Figure

__all__ = ["MAX_BUCKETS", "charts", "trends"]

MAX_BUCKETS = 2000
"""Most buckets a series holds; a longer span widens the bucket (the result says which it used)."""


def _unix(iso: str) -> float:
    return dt.datetime.fromisoformat(iso).timestamp()


def _posture_series(ws: Workspace, name: str, since: str | None) -> dict[str, list[list[float]]]:
    snap = load(ws, models=[name])
    if not snap.versions:
        return {}
    found = attach_times(ws, snap)
    attached = {v.id: found.get(v.id, "~") for v in snap.versions}
    bodies = stage_bodies(ws, wanted_reports(snap))
    moments: dict[int, set[str]] = defaultdict(set)
    for v in snap.versions:
        moments[v.id].add(v.created)
        moments[v.id].update(snap.runs[r].finished for r in snap.runs_of.get(v.id, []))
        if attached[v.id] != "~":
            moments[v.id].add(attached[v.id])
        moments[v.id].update(a[3] for a in snap.approvals.get(v.id, []))
        for a in snap.alerts_of.get(v.id, []):
            moments[v.id].add(a.first_seen)
            if a.resolved_at:
                moments[v.id].add(a.resolved_at)
    series: dict[str, list[list[float]]] = {}
    for v in snap.versions:
        points = []
        for moment in sorted(moments[v.id]):
            if since is not None and moment < since:
                continue
            past = as_of(snap, moment, attached)
            got = postures_from(past, bodies, only=[v.id])
            if got and got[0].score is not None:
                points.append([round(_unix(moment), 3), float(got[0].score)])
        series[f"v{v.version}"] = points
    return series


def trends(
    ws: Workspace, name: str, *, bucket_s: int = 3600, since: dt.datetime | str | None = None
) -> dict[str, Any]:
    """Posture per version over time and runtime signals per time bucket for model ``name``.

    Args:
        ws: the workspace.
        name: the model.
        bucket_s: bucket width in seconds (widened so that at most ``MAX_BUCKETS`` buckets are made).
        since: only what happened from this moment on (naive: UTC).

    Raises:
        InputError: ``since`` is not a time.
    """
    start = parse_time(since) if since is not None else None
    start_us = int(_unix(start) * 1_000_000) if start is not None else None
    bucket_s = max(1, int(bucket_s))
    with ws.session(readonly=True) as s:
        span = select(func.min(DecisionRecord.ts_us), func.max(DecisionRecord.ts_us)).where(
            DecisionRecord.model == name
        )
        if start_us is not None:
            span = span.where(DecisionRecord.ts_us >= start_us)
        lo, hi = cast("tuple[int | None, int | None]", tuple(s.execute(span).one()))
        alert_q = select(AlertRow.kind, AlertRow.first_seen, AlertRow.last_seen, AlertRow.evidence).where(
            AlertRow.model == name
        )
        if start is not None:
            alert_q = alert_q.where(AlertRow.first_seen >= start)
        alerts = s.execute(alert_q).all()
        times = [int(_unix(a[1])) for a in alerts]
        lows = [t for t in ([lo // 1_000_000] if lo is not None else []) + times]
        highs = [t for t in ([hi // 1_000_000] if hi is not None else []) + times]
        counts: list[tuple[int, str, int]] = []
        if lows:
            first, last = min(lows), max(highs)
            while (last - first) // bucket_s + 1 > MAX_BUCKETS:
                bucket_s *= 2
            first -= first % bucket_s
            width_us = bucket_s * 1_000_000
            b = DecisionRecord.ts_us // width_us  # integer division on both databases
            q = (
                select(b, DecisionRecord.decision, func.count())
                .where(DecisionRecord.model == name)
                .group_by(b, DecisionRecord.decision)
            )
            if start_us is not None:
                q = q.where(DecisionRecord.ts_us >= start_us)
            counts = [(int(k) * bucket_s, str(d), int(n)) for k, d, n in s.execute(q).all()]
            n_buckets = (last - first) // bucket_s + 1
        else:
            first, n_buckets = 0, 0
    buckets = [first + i * bucket_s for i in range(n_buckets)]
    index = {t: i for i, t in enumerate(buckets)}
    requests = [0] * n_buckets
    accepted = [0] * n_buckets
    rejections: dict[str, list[int]] = defaultdict(lambda: [0] * n_buckets)
    for t, decision, n in counts:
        i = index.get(t)
        if i is None:
            continue
        requests[i] += n
        if decision == "accepted":
            accepted[i] += n
        else:
            rejections[decision.partition(":")[2] or decision][i] += n
    opened: dict[str, list[int]] = defaultdict(lambda: [0] * n_buckets)
    drift: list[list[float]] = []
    for (kind, _first, last_seen, evidence), t in zip(alerts, times, strict=True):
        i = index.get(t - t % bucket_s)
        if i is not None:
            opened[kind][i] += 1
        if kind == "drift":
            try:
                ev = json.loads(evidence or "{}")
            except ValueError:
                ev = {}
            p = ev.get("p_value") if isinstance(ev, dict) else None
            if isinstance(p, int | float):
                drift.append([round(_unix(last_seen), 3), float(p)])

    def pairs(values: list[int]) -> list[list[float]]:
        return [[float(t), float(n)] for t, n in zip(buckets, values, strict=True)]

    return {
        "model": name,
        "bucket_s": bucket_s,
        "since": start,
        "posture": _posture_series(ws, name, start),
        "traffic": {"requests": pairs(requests), "accepted": pairs(accepted)},
        "rejections": {reason: pairs(v) for reason, v in sorted(rejections.items())},
        "alerts_opened": {kind: pairs(v) for kind, v in sorted(opened.items())},
        "drift": {"p_value": sorted(drift)},
    }


def charts(data: dict[str, Any]) -> list[Figure]:
    """The trends as SVG charts: posture per version, traffic, rejections, alerts, drift p-values."""
    from mlsecops.report.plots import line_chart

    # x axes in hours since the first point: Unix seconds make unreadable ticks
    groups = [(k, data[k]) for k in ("posture", "traffic", "rejections", "alerts_opened", "drift")]
    xs = [p[0] for _, group in groups for pts in group.values() for p in pts]
    origin = min(xs) if xs else 0.0
    titles = {
        "posture": "posture score by version",
        "traffic": f"requests per {data['bucket_s']} s",
        "rejections": f"rejections per {data['bucket_s']} s, by reason",
        "alerts_opened": f"alerts opened per {data['bucket_s']} s, by kind",
        "drift": "drift p-value of each drift alert",
    }
    figs = []
    for key, group in groups:
        series = {name: [((t - origin) / 3600.0, y) for t, y in pts] for name, pts in group.items() if pts}
        if series:
            figs.append(
                line_chart(
                    f"{data['model']}: {titles[key]}",
                    series,
                    xlabel="hours since the first point",
                    ylabel="score" if key == "posture" else "",
                    ylim=(0.0, 100.0) if key == "posture" else None,
                )
            )
    return figs
