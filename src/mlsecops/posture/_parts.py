"""The parts of a posture, one function each, computed from a ``Snapshot`` and stored report metrics.

Nothing is recomputed: each part reads what the registry, the recorded pipeline runs, the lineage
graph, the alert store and the decision log already hold, and says where it read it. A pipeline stage
judges a part by its policy: a failed rule on the stage fails the part, a stage that could not run or
was refused fails it, and otherwise the stage's worst finding decides (critical: fail, high or
medium: warn).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from mlsecops.core.severity import utcnow
from mlsecops.core.taxonomy import classify
from mlsecops.posture._model import STATUS_SCORE, FindingRef, PartPosture, Status
from mlsecops.posture._snapshot import OPEN_ALERT, OPEN_INCIDENT, RunFact, Snapshot, StageFact, VersionFact

__all__ = ["PART_CHECKS", "WEIGHTS", "Bodies", "build_parts", "wanted_reports"]

Bodies = Mapping[int, tuple[dict[str, Any], list[dict[str, Any]]]]

WEIGHTS: dict[str, int] = {
    "scan": 3,
    "signature": 2,
    "bom": 1,
    "data": 2,
    "robustness": 2,
    "privacy": 2,
    "fairness": 2,
    "drift": 2,
    "alerts": 3,
    "gate": 3,
    "approvals": 1,
}
"""Weight of each part in the score: what can run code or was caught in production weighs most."""

PART_CHECKS: dict[str, frozenset[str]] = {
    "scan": frozenset({"artifact.scan"}),
    "signature": frozenset({"sign.verify"}),
    "data": frozenset({"data.check", "data.poison"}),
    "robustness": frozenset(
        {
            "assess.robustness",
            "assess.pgd",
            "assess.fgsm",
            "assess.apgd",
            "assess.square",
            "assess.hopskipjump",
            "assess.patch",
            "assess.certify",
            "harden.adversarial_training",
        }
    ),
    "privacy": frozenset({"assess.privacy", "harden.dp_training"}),
    "fairness": frozenset({"assess.fairness", "harden.fairness", "assess.explain_integrity"}),
}
"""The checks whose stages a part reads."""

DRIFT_KINDS = frozenset({"drift", "performance"})
"""Alert kinds the drift part reads (the alerts part reads the others)."""
MAX_FINDINGS = 5
"""Findings shown per part (worst first)."""
MAX_EVIDENCE = 12
"""Named numbers kept per part."""
_SEV_RANK = {"critical": 4, "high": 3, "medium": 2, "low": 1, "info": 0}
_STATUS_RANK = {"ok": 0, "warn": 1, "fail": 2}
_HEADLINE: dict[str, tuple[str, ...]] = {
    "data": ("violations", "drifted_columns", "suspect_share", "label_issues", "backdoor_rows", "outliers"),
    "robustness": ("clean_accuracy", "robust_accuracy@", "certified_accuracy@"),
    "privacy": ("membership_auc", "membership_advantage", "dp_epsilon", "leakage_auc"),
    "fairness": (
        "demographic_parity_difference",
        "equalized_odds_difference",
        "equal_opportunity_difference",
        "demographic_parity_difference_after",
        "scaffold_flagged",
    ),
}
_REMEDY = {
    "scan": "do not load it; re-export the model in a format that cannot run code (safetensors, ONNX)",
    "signature": "sign the stored files with a trusted key (`mlsecops sign`) and register the bundle",
    "data": "quarantine the suspect rows and retrain on the trusted data",
    "robustness": "harden it (adversarial training) and re-run the attack and certification stages",
    "privacy": "train with differential privacy (`mlsecops harden dp-train`) or coarsen the outputs",
    "fairness": "mitigate (`mlsecops harden fairness`) and re-run the fairness audit",
    "gate": "fix what the failed rules name and run the pipeline again over this version",
}


def _worst(statuses: Iterable[Status]) -> Status:
    worst: Status = "ok"
    for s in statuses:
        if _STATUS_RANK.get(s, 0) > _STATUS_RANK[worst]:
            worst = s
    return worst


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _fmt(value: float) -> str:
    return f"{value:.3g}"


def _candidates(v: VersionFact, snap: Snapshot) -> list[int]:
    """The attached gate run first, then the runs that read this version's bytes, newest first."""
    ids = [v.gate_run_id] if v.gate_run_id is not None and v.gate_run_id in snap.runs else []
    return ids + [r for r in snap.runs_of.get(v.id, []) if r not in ids]


def _stages_for(v: VersionFact, snap: Snapshot, part: str) -> tuple[RunFact, list[StageFact]] | None:
    """The first run (gate run, then newest over the same bytes) with stages of ``part``'s checks."""
    key = (v.id, part)
    if key in snap.memo:
        found: tuple[RunFact, list[StageFact]] | None = snap.memo[key]
        return found
    checks = PART_CHECKS[part]
    found = None
    for run_id in _candidates(v, snap):
        run = snap.runs[run_id]
        stages = [st for st in run.stages if st.kind in checks]
        if stages:
            found = (run, stages)
            break
    snap.memo[key] = found
    return found


def wanted_reports(snap: Snapshot) -> set[int]:
    """Ids of the stored stage reports whose metrics and findings the postures will show."""
    ids: set[int] = set()
    for v in snap.versions:
        for part in PART_CHECKS:
            found = _stages_for(v, snap, part)
            if found is not None:
                ids.update(st.report_id for st in found[1])
    return ids


def _rules(run: RunFact, stage: str) -> list[Any]:
    """The run's rule results about ``stage`` (rules read ``"<stage>: ..."`` or ``"all stages: ..."``)."""
    return run.rules_by_stage.get(stage, []) + run.rules_by_stage.get("all stages", [])


def _stage_status(run: RunFact, st: StageFact) -> tuple[Status, list[str]]:
    """A stage's status and the reasons, read from its rules, verdict and worst finding."""
    if st.status is None:
        st.status = _judge_stage(run, st)
    status: tuple[Status, list[str]] = st.status
    return status


def _judge_stage(run: RunFact, st: StageFact) -> tuple[Status, list[str]]:
    failed = [g for g in _rules(run, st.stage) if not g.get("passed")]
    if failed:
        return "fail", [f"rule {g['rule']} failed (observed {g.get('observed')})" for g in failed]
    if st.verdict in ("error", "refused"):
        return "fail", [f"stage {st.stage} {'could not run' if st.verdict == 'error' else 'was refused'}"]
    sev = st.max_severity
    if sev == "critical":
        return "fail", [f"stage {st.stage}'s worst finding is critical"]
    if sev in ("high", "medium"):
        return "warn", [f"stage {st.stage}'s worst finding is {sev}"]
    return "ok", []


def _finding_refs(findings: Iterable[Any], remedy: str) -> list[FindingRef]:
    shown = sorted(
        (f for f in findings if isinstance(f, Mapping) and _SEV_RANK.get(str(f.get("severity")), 0) >= 1),
        key=lambda f: -_SEV_RANK.get(str(f.get("severity")), 0),
    )
    out: list[FindingRef] = []
    titles: set[str] = set()
    for f in shown:
        title = str(f.get("title", ""))
        if title in titles:
            continue
        titles.add(title)
        atlas, owasp = classify(
            str(f.get("check", "")), atlas=f.get("atlas") if isinstance(f.get("atlas"), str) else None
        )
        out.append(
            FindingRef(title, str(f.get("severity")), atlas, owasp, str(f.get("remediation") or remedy))
        )
        if len(out) >= MAX_FINDINGS:
            break
    return out


def _rule_refs(run: RunFact, stages: Sequence[StageFact], remedy: str) -> list[FindingRef]:
    out = []
    for st in stages:
        atlas, owasp = classify(st.kind)
        for g in _rules(run, st.stage):
            if not g.get("passed"):
                out.append(
                    FindingRef(
                        f"gate rule failed: {g['rule']} (observed {g.get('observed')})",
                        "high",
                        atlas,
                        owasp,
                        remedy,
                    )
                )
    return out


def _metrics(stages: Sequence[StageFact], bodies: Bodies, part: str) -> tuple[dict[str, float], str]:
    """The stages' numbers, headline metrics first (``stage/metric`` when several stages report), and
    the headline metrics as a phrase (``robust_accuracy@pgd_linf_0.05 0.61, ...``).
    """
    many = len(stages) > 1
    heads = _HEADLINE.get(part, ())
    ranked: list[tuple[int, str, float, str]] = []
    for st in stages:
        for name, value in bodies.get(st.report_id, ({}, []))[0].items():
            n = _num(value)
            if n is None:
                continue
            rank = len(heads)
            for i, h in enumerate(heads):
                if name.startswith(h):
                    rank = i
                    break
            ranked.append((rank, f"{st.stage}/{name}" if many else name, n, name))
    ranked.sort()
    kept = ranked[:MAX_EVIDENCE]
    phrase = ", ".join(f"{bare} {_fmt(n)}" for rank, _, n, bare in kept if rank < len(heads))
    return {key: n for _, key, n, _ in kept}, phrase


def _from_stages(part: str, v: VersionFact, snap: Snapshot, bodies: Bodies, missing: str) -> PartPosture:
    """A part judged by the pipeline stages of the checks it reads (``PART_CHECKS``)."""
    weight = WEIGHTS[part]
    found = _stages_for(v, snap, part)
    if found is None:
        return PartPosture(part, "missing", None, weight, missing, {}, "")
    run, stages = found
    judged = [_stage_status(run, st) for st in stages]
    status = _worst(s for s, _ in judged)
    reasons = [r for _, rs in judged for r in rs]
    values, head = _metrics(stages, bodies, part)
    refs = _rule_refs(run, stages, _REMEDY[part])
    refs += _finding_refs((f for st in stages for f in bodies.get(st.report_id, ({}, []))[1]), _REMEDY[part])
    names = ", ".join(st.stage for st in stages)
    source = f"run {run.id} stage{'s' if len(stages) > 1 else ''} {names}"
    if status == "ok":
        summary = f"run {run.id} ({run.pipeline}) judged it in {names} and found nothing above low"
    else:
        summary = f"run {run.id} ({run.pipeline}): " + "; ".join(reasons[:3])
    summary += f"; measured: {head}." if head else "."
    return PartPosture(
        part, status, STATUS_SCORE[status], weight, summary, values, source, tuple(refs[:MAX_FINDINGS])
    )


def scan_part(v: VersionFact, snap: Snapshot, bodies: Bodies) -> PartPosture:
    """The registry's scan at registration, and the newest scan stage of a run over the same bytes."""
    verdict = v.scan_verdict
    status: Status = "ok" if verdict == "safe" else "warn" if verdict == "suspicious" else "fail"
    counts = v.scan_summary.get("counts", {}) if isinstance(v.scan_summary.get("counts"), dict) else {}
    evidence: dict[str, Any] = {k: int(n) for k, n in counts.items() if isinstance(n, int) and n}
    refs = _finding_refs(v.scan_summary.get("top") or [], _REMEDY["scan"])
    summary = f"the registry's scan of the stored files judged it {verdict}"
    source = "registry"
    found = _stages_for(v, snap, "scan")
    if found is not None:
        run, stages = found
        for st in stages:
            st_status, reasons = _stage_status(run, st)
            if st.verdict in ("malicious", "error"):
                st_status = "fail"
            if _STATUS_RANK[st_status] > _STATUS_RANK[status]:
                status = st_status
                summary = f"run {run.id} stage {st.stage} judged the same bytes {st.verdict}" + (
                    f" ({reasons[0]})" if reasons else ""
                )
                source = f"registry; run {run.id} stage {st.stage}"
                refs = _finding_refs(bodies.get(st.report_id, ({}, []))[1], _REMEDY["scan"]) + refs
            elif status == "ok":
                source = f"registry; run {run.id} stage {st.stage}"
                summary += f", and run {run.id} stage {st.stage} judged the same bytes {st.verdict}"
    if status == "ok" and not refs:
        summary += ": no finding above low"
    return PartPosture(
        "scan",
        status,
        STATUS_SCORE[status],
        WEIGHTS["scan"],
        summary + ".",
        evidence,
        source,
        tuple(refs[:MAX_FINDINGS]),
    )


def signature_part(v: VersionFact, snap: Snapshot, bodies: Bodies) -> PartPosture:
    """Whether the version came with a signature that verified with a key trusted now."""
    weight = WEIGHTS["signature"]
    atlas, owasp = classify("sign.verify")
    evidence: dict[str, Any] = {"signed": int(v.signed), "trusted_key": int(v.signed_by is not None)}
    revoked = snap.trusted.get(v.key_hint) if v.key_hint else None
    found = _stages_for(v, snap, "signature")
    if found is not None:
        run, stages = found
        bad = [st for st in stages if _stage_status(run, st)[0] == "fail"]
        if bad:
            refs = _finding_refs(bodies.get(bad[0].report_id, ({}, []))[1], _REMEDY["signature"])
            return PartPosture(
                "signature",
                "fail",
                0,
                weight,
                f"run {run.id} stage {bad[0].stage} could not verify a signature over the same bytes.",
                evidence,
                f"run {run.id} stage {bad[0].stage}",
                tuple(
                    refs
                    or [
                        FindingRef(
                            "signature does not verify", "critical", atlas, owasp, _REMEDY["signature"]
                        )
                    ]
                ),
            )
    if v.signed_by is not None and revoked is None:
        return PartPosture(
            "signature",
            "ok",
            100,
            weight,
            f"signed, and the signature verified at registration with trusted key {v.signed_by!r}, still trusted.",
            evidence,
            "registry",
        )
    if v.signed_by is not None:
        ref = FindingRef(
            f"signing key {v.signed_by!r} is no longer trusted", "high", atlas, owasp, _REMEDY["signature"]
        )
        return PartPosture(
            "signature",
            "fail",
            0,
            weight,
            f"signed with key {v.signed_by!r}, which was distrusted at {revoked}.",
            evidence,
            "registry",
            (ref,),
        )
    if v.signed:
        why = "an unknown key" if v.key_hint not in snap.trusted else "a key that is no longer trusted"
        ref = FindingRef("signature by an untrusted key", "medium", atlas, owasp, _REMEDY["signature"])
        return PartPosture(
            "signature",
            "warn",
            50,
            weight,
            f"signed, but by {why}: it cannot go to production.",
            evidence,
            "registry",
            (ref,),
        )
    ref = FindingRef("model is not signed", "medium", atlas, owasp, _REMEDY["signature"])
    return PartPosture(
        "signature",
        "warn",
        50,
        weight,
        "not signed: nothing proves these bytes are the ones that were built, and it cannot go to production.",
        evidence,
        "registry",
        (ref,),
    )


def bom_part(v: VersionFact, snap: Snapshot, bodies: Bodies) -> PartPosture:
    """How much an ML-BOM of this version can say: the share of five facts the workspace holds."""
    facts = {
        "files_with_digests": bool(v.files),
        "scan_record": bool(v.scan_verdict),
        "signature": v.signed,
        "training_data": snap.datasets.get(v.id, 0) > 0,
        "evaluation": bool(_candidates(v, snap)),
    }
    known = sum(facts.values())
    score = round(100 * known / len(facts))
    status: Status = "ok" if score >= 80 else "warn"
    lacking = [k.replace("_", " ") for k, ok in facts.items() if not ok]
    summary = f"an ML-BOM of it would list {known} of {len(facts)} facts" + (
        f"; it lacks: {', '.join(lacking)}." if lacking else "."
    )
    evidence: dict[str, Any] = {k: int(ok) for k, ok in facts.items()}
    evidence["datasets"] = snap.datasets.get(v.id, 0)
    return PartPosture("bom", status, score, WEIGHTS["bom"], summary, evidence, "registry; lineage")


def data_part(v: VersionFact, snap: Snapshot, bodies: Bodies) -> PartPosture:
    """Data validation and poisoning checks of a run over this version."""
    return _from_stages(
        "data",
        v,
        snap,
        bodies,
        "missing: no run over this version checked its data (add data.check and data.poison stages).",
    )


def robustness_part(v: VersionFact, snap: Snapshot, bodies: Bodies) -> PartPosture:
    """Evasion attacks and certification of a run over this version."""
    return _from_stages(
        "robustness",
        v,
        snap,
        bodies,
        "missing: no run over this version attacked or certified it (add assess.robustness or assess.certify).",
    )


def privacy_part(v: VersionFact, snap: Snapshot, bodies: Bodies) -> PartPosture:
    """The privacy audit of a run, or differential-privacy facts in the version's lineage."""
    part = _from_stages("privacy", v, snap, bodies, "")
    dp = snap.dp_facts.get(v.id, [])
    eps = [e for f in dp if (e := _num(f.get("epsilon", f.get("dp_epsilon")))) is not None]
    if part.status != "missing":
        if eps:
            return PartPosture(
                part.name,
                part.status,
                part.score,
                part.weight,
                part.summary[:-1] + f"; trained with differential privacy, epsilon {_fmt(min(eps))}.",
                {**part.evidence, "lineage_dp_epsilon": min(eps)},
                part.source + "; lineage",
                part.findings,
            )
        return part
    if eps:
        return PartPosture(
            "privacy",
            "ok",
            100,
            WEIGHTS["privacy"],
            f"no leakage audit ran, but its lineage records differential-privacy training with epsilon {_fmt(min(eps))}.",
            {"dp_epsilon": min(eps)},
            "lineage",
        )
    return PartPosture(
        "privacy",
        "missing",
        None,
        WEIGHTS["privacy"],
        "missing: no privacy audit (assess.privacy) ran over it and its lineage records no differential privacy.",
    )


def fairness_part(v: VersionFact, snap: Snapshot, bodies: Bodies) -> PartPosture:
    """The fairness audit (group disparities) of a run over this version."""
    return _from_stages(
        "fairness",
        v,
        snap,
        bodies,
        "missing: no run over this version audited fairness (add assess.fairness with a sensitive column).",
    )


def production_hours(v: VersionFact, snap: Snapshot) -> float:
    """Hours this version held the production stage, in total (until now while it holds it)."""
    now = utcnow().isoformat(timespec="microseconds")
    total = 0.0
    for slot, vid, started, ended, _ in snap.assignments.get(v.model_id, []):
        if vid == v.id and slot == "stage:production":
            end = ended or now
            total += (dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(started)).total_seconds()
    return round(total / 3600.0, 2)


def served_requests(v: VersionFact, snap: Snapshot) -> int:
    """Requests the decision log holds for this version in its last hour (by number or digest prefix)."""
    total = 0
    for (model, version), n in snap.served.items():
        if model == v.model and (
            version == str(v.version) or (len(version) >= 8 and v.digest.startswith(version))
        ):
            total += n
    return total


def drift_part(v: VersionFact, snap: Snapshot, bodies: Bodies) -> PartPosture:
    """Drift and performance alerts raised while this version served its model."""
    weight = WEIGHTS["drift"]
    alerts = [a for a in snap.alerts_of.get(v.id, []) if a.kind in DRIFT_KINDS]
    served = served_requests(v, snap)
    hours = production_hours(v, snap)
    evidence: dict[str, Any] = {
        "requests_last_hour": served,
        "production_hours": hours,
        "drift_alerts": len(alerts),
    }
    if not alerts:
        if served == 0 and hours == 0:
            return PartPosture(
                "drift",
                "missing",
                None,
                weight,
                "missing: it never held production and logged no request in the last hour, so its inputs "
                "were never compared with its training data.",
                evidence,
                "registry_assignments; runtime_decisions",
            )
        return PartPosture(
            "drift",
            "ok",
            100,
            weight,
            f"no drift or performance alert while it served ({hours:g} h in production, {served} "
            "logged requests in the last hour).",
            evidence,
            "monitor_alerts; runtime_decisions",
        )
    open_ = [a for a in alerts if a.status in OPEN_ALERT]
    latest = max(alerts, key=lambda a: a.first_seen)
    p = _num(latest.evidence.get("p_value"))
    if p is not None:
        evidence["p_value"] = p
    cols = latest.evidence.get("columns")
    if isinstance(cols, list | dict):
        evidence["drifted_columns"] = len(cols)
    evidence["open_drift_alerts"] = len(open_)
    refs = [
        FindingRef(
            f"{a.kind} alert ({a.status}) since {a.first_seen[:19]}",
            a.severity,
            *classify(a.kind),
            "compare recent inputs with the training data; retrain or roll back",
        )
        for a in sorted(alerts, key=lambda a: -_SEV_RANK.get(a.severity, 0))[:MAX_FINDINGS]
    ]
    if not open_:
        return PartPosture(
            "drift",
            "ok",
            100,
            weight,
            f"{len(alerts)} drift alert(s) were raised and all are resolved.",
            evidence,
            "monitor_alerts",
            tuple(refs),
        )
    worst = max(_SEV_RANK.get(a.severity, 0) for a in open_)
    status: Status = "fail" if worst >= _SEV_RANK["high"] else "warn"
    detail = f" (p-value {_fmt(p)})" if p is not None else ""
    return PartPosture(
        "drift",
        status,
        STATUS_SCORE[status],
        weight,
        f"{len(open_)} open {latest.kind} alert(s){detail}: its inputs or accuracy moved away from training.",
        evidence,
        "monitor_alerts",
        tuple(refs),
    )


def alerts_part(v: VersionFact, snap: Snapshot, bodies: Bodies) -> PartPosture:
    """Open security alerts (extraction, query attacks, adversarial inputs...) and incidents."""
    weight = WEIGHTS["alerts"]
    alerts = [a for a in snap.alerts_of.get(v.id, []) if a.kind not in DRIFT_KINDS]
    open_ = [a for a in alerts if a.status in OPEN_ALERT]
    incidents = snap.incidents_of.get(v.id, [])
    open_inc = [i for i in incidents if i[1] in OPEN_INCIDENT]
    evidence = {
        "open_alerts": len(open_),
        "alerts": len(alerts),
        "incidents": len(incidents),
        "open_incidents": len(open_inc),
    }
    refs = [
        FindingRef(
            f"open {a.kind} alert, raised {a.count} time(s) since {a.first_seen[:19]}",
            a.severity,
            *classify(a.kind),
            "investigate the principal; a playbook can block it or revoke its key",
        )
        for a in sorted(open_, key=lambda a: -_SEV_RANK.get(a.severity, 0))[:MAX_FINDINGS]
    ]
    if not open_ and not open_inc:
        summary = "no open alert or incident" + (
            f" ({len(alerts)} alert(s) resolved)." if alerts else " was raised while it served."
        )
        return PartPosture(
            "alerts", "ok", 100, weight, summary, evidence, "monitor_alerts; response_incidents"
        )
    worst = max((_SEV_RANK.get(a.severity, 0) for a in open_), default=0)
    status: Status = "fail" if worst >= _SEV_RANK["high"] or open_inc else "warn"
    kinds = sorted({a.kind for a in open_})
    summary = f"{len(open_)} open alert(s)" + (f" ({', '.join(kinds)})" if kinds else "")
    if open_inc:
        summary += f" and {len(open_inc)} incident(s) not completed"
    return PartPosture(
        "alerts",
        status,
        STATUS_SCORE[status],
        weight,
        summary + ".",
        evidence,
        "monitor_alerts; response_incidents",
        tuple(refs),
    )


def gate_part(v: VersionFact, snap: Snapshot, bodies: Bodies) -> PartPosture:
    """The attached policy-gate run, or the newest run over this version's bytes."""
    weight = WEIGHTS["gate"]
    covering = snap.runs_of.get(v.id, [])
    attached = snap.runs.get(v.gate_run_id) if v.gate_run_id is not None else None
    newest = snap.runs[covering[0]] if covering else None

    def failed(run: RunFact) -> list[Any]:
        return [g for g in run.gate if isinstance(g, dict) and not g.get("passed")]

    def refs(run: RunFact) -> tuple[FindingRef, ...]:
        kinds = {st.stage: st.kind for st in run.stages}
        out = []
        for g in failed(run)[:MAX_FINDINGS]:
            stage = str(g.get("rule", "")).split(":", 1)[0]
            atlas, owasp = classify(kinds.get(stage, ""))
            out.append(
                FindingRef(
                    f"gate rule failed: {g['rule']} (observed {g.get('observed')})",
                    "high",
                    atlas,
                    owasp,
                    _REMEDY["gate"],
                )
            )
        return tuple(out)

    if attached is None and newest is None:
        return PartPosture(
            "gate",
            "missing",
            None,
            weight,
            "missing: no pipeline run evaluated this version's bytes; run one over it and attach it "
            "(`mlsecops registry attach-gate`).",
        )
    run = attached or newest
    assert run is not None
    evidence = {
        "run_id": run.id,
        "rules": len(run.gate),
        "failed_rules": len(failed(run)),
        "runs_over_it": len(covering),
    }
    if not run.passed:
        names = "; ".join(str(g["rule"]) for g in failed(run)[:3])
        return PartPosture(
            "gate",
            "fail",
            0,
            weight,
            f"run {run.id} ({run.pipeline}) over it failed its gate: {names}.",
            evidence,
            f"run {run.id}",
            refs(run),
        )
    if attached is None:
        return PartPosture(
            "gate",
            "warn",
            50,
            weight,
            f"run {run.id} ({run.pipeline}) over it passed, but no run is attached as its gate report.",
            evidence,
            f"run {run.id}",
        )
    later = next(
        (
            snap.runs[r]
            for r in covering
            if snap.runs[r].finished > attached.finished and not snap.runs[r].passed
        ),
        None,
    )
    if later is not None:
        return PartPosture(
            "gate",
            "warn",
            50,
            weight,
            f"attached gate run {attached.id} passed, but the newer run {later.id} over the same bytes failed.",
            {**evidence, "newer_failed_run": later.id},
            f"run {attached.id}; run {later.id}",
            refs(later),
        )
    return PartPosture(
        "gate",
        "ok",
        100,
        weight,
        f"attached gate run {attached.id} ({attached.pipeline}) passed its {len(attached.gate)} rule(s).",
        evidence,
        f"run {attached.id}",
    )


def approvals_part(v: VersionFact, snap: Snapshot, bodies: Bodies) -> PartPosture:
    """Approvals by approvers (or admins) other than the registrant, enabled now."""
    weight = WEIGHTS["approvals"]
    rows = snap.approvals.get(v.id, [])
    valid = [u for u, role, off, _ in rows if role in ("approver", "admin") and not off and u != v.created_by]
    evidence = {"approvals": len(rows), "valid_approvals": len(valid)}
    if valid:
        return PartPosture(
            "approvals",
            "ok",
            100,
            weight,
            f"approved by {', '.join(valid)} (not its registrant).",
            evidence,
            "registry",
        )
    summary = (
        f"{len(rows)} approval(s), none by an enabled approver other than its registrant."
        if rows
        else "nobody has approved it for production yet."
    )
    return PartPosture("approvals", "warn", 50, weight, summary, evidence, "registry")


PARTS: tuple[Callable[[VersionFact, Snapshot, Bodies], PartPosture], ...] = (
    scan_part,
    signature_part,
    bom_part,
    data_part,
    robustness_part,
    privacy_part,
    fairness_part,
    drift_part,
    alerts_part,
    gate_part,
    approvals_part,
)


def build_parts(v: VersionFact, snap: Snapshot, bodies: Bodies) -> tuple[tuple[PartPosture, ...], int, int]:
    """Every part of ``v`` and its open alert and incident counts."""
    parts = tuple(fn(v, snap, bodies) for fn in PARTS)
    open_alerts = sum(1 for a in snap.alerts_of.get(v.id, []) if a.status in OPEN_ALERT)
    open_incidents = sum(1 for _, st, _ in snap.incidents_of.get(v.id, []) if st in OPEN_INCIDENT)
    return parts, open_alerts, open_incidents
