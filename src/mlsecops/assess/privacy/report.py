"""The privacy audit as a ``Report``: metrics for policies, findings, ROC curves, defences, probes.

Policy metrics (``assess.privacy``): ``membership_auc``, ``membership_advantage``,
``membership_tpr@0.01`` and ``membership_tpr@0.001`` are the highest over the attacks run (the
strongest attack on each measure: an audit reports the worst case), and each attack's own as
``membership_auc@<attack>``, ``membership_advantage@<attack>``, ``membership_tpr@0.01@<attack>``...;
defences add ``membership_tpr@0.01@defence:<name>``; probes add ``attribute_gain`` (attribute
inference accuracy beyond its baseline) and ``reconstruction_similarity``.

Findings: one per attack whose TPR at low FPR is clearly above the FPR (the lower end of its interval),
severity by how far (MITRE ATLAS AML.T0024.000, infer training data membership); one when the members
look less like training data than the non-members (the files may be swapped); one per defence that does
not reduce leakage; one for attribute inference beyond the baseline (AML.T0024.001, invert model).
Records appear by index only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlsecops.assess.privacy._metrics import FPR_TARGETS, AttackMetrics, tpr_key
from mlsecops.assess.privacy.audit import PrivacyAudit, strongest
from mlsecops.assess.privacy.defences import DefenceResult
from mlsecops.core.findings import Figure, Finding, Report, Severity, utcnow
from mlsecops.report.plots import line_chart

__all__ = ["HIGH_TPR_RATIO", "LEAK_TPR_RATIO", "METRICS", "privacy_report"]

METRICS = ("membership_*", "attribute_gain", "attribute_*", "reconstruction_similarity")
"""Metric patterns ``assess.privacy`` declares."""
LEAK_TPR_RATIO = 2.0
"""An attack leaks when the lower end of its TPR interval at an FPR is at least this multiple of it
(of the smallest FPR the non-members can resolve, ``1/n``, when that is larger)."""
HIGH_TPR_RATIO = 10.0
"""... and leaks badly (high severity) from this multiple."""
AVERAGE_AUC = 0.55
"""AUC whose interval's lower end above it is reported as average-case leakage (low severity)."""
MIRROR_AUC = 0.45
"""The loss attack's AUC below which (upper interval end) the members look like the unseen records."""
_ATLAS_MEMBERSHIP = "AML.T0024.000"
_ATLAS_INVERSION = "AML.T0024.001"


def _metrics(audit: PrivacyAudit, defences: Sequence[DefenceResult]) -> dict[str, float]:
    out: dict[str, float] = {}
    for a in audit.attacks:
        out[f"membership_auc@{a.attack}"] = round(a.auc, 6)
        out[f"membership_advantage@{a.attack}"] = round(a.advantage, 6)
        for f in FPR_TARGETS:
            out[f"membership_{tpr_key(f)}@{a.attack}"] = round(a.tpr[f], 6)
    out["membership_auc"] = round(max(a.auc for a in audit.attacks), 6)
    out["membership_advantage"] = round(max(a.advantage for a in audit.attacks), 6)
    for f in FPR_TARGETS:
        out[f"membership_{tpr_key(f)}"] = round(max(a.tpr[f] for a in audit.attacks), 6)
    for d in defences:
        for f in FPR_TARGETS:
            out[f"membership_{tpr_key(f)}@defence:{d.defence.name}"] = round(
                max(a.tpr[f] for a in d.attacks), 6
            )
    return out


def _leak_finding(a: AttackMetrics, subject: str, kind: str) -> Finding | None:
    # with fewer than 1/f non-members the FPR cannot be resolved down to f: compare with the resolution
    ratios = {f: a.tpr_ci[f][0] / max(f, a.fpr_resolution) for f in FPR_TARGETS}
    worst = max(ratios.values())
    if worst < LEAK_TPR_RATIO:
        return _average_case(a, subject, kind)
    sev = Severity.HIGH if worst >= HIGH_TPR_RATIO else Severity.MEDIUM
    f1 = 0.01
    return Finding(
        check=kind,
        severity=sev,
        title=f"{a.attack} membership inference finds {a.tpr[f1]:.1%} of training records at 1% false positives",
        detail=(
            f"AUC {a.auc:.3f} [{a.auc_ci[0]:.3f}, {a.auc_ci[1]:.3f}], advantage {a.advantage:.3f}; TPR at 0.1% FPR "
            f"{a.tpr[0.001]:.3f} [{a.tpr_ci[0.001][0]:.3f}, {a.tpr_ci[0.001][1]:.3f}], at 1% FPR {a.tpr[f1]:.3f} "
            f"[{a.tpr_ci[f1][0]:.3f}, {a.tpr_ci[f1][1]:.3f}] (95% Clopper-Pearson); a random guess gets TPR = FPR"
        ),
        artifact=subject,
        location={"attack": a.attack},
        evidence={
            "most_exposed_members": list(a.exposed),
            **{tpr_key(f): round(a.tpr[f], 6) for f in FPR_TARGETS},
        },
        remediation="train with differential privacy (mlsecops harden dp-train), regularise (weight decay, "
        "early stopping), or serve labels only and rate-limit queries; re-audit afterwards",
        atlas=_ATLAS_MEMBERSHIP,
    )


def _average_case(a: AttackMetrics, subject: str, kind: str) -> Finding | None:
    """Leakage on average (AUC clearly above chance) that identifies no record confidently."""
    if a.auc_ci[0] < AVERAGE_AUC:
        return None
    return Finding(
        check=kind,
        severity=Severity.LOW,
        title=f"{a.attack} membership inference beats chance on average (AUC {a.auc:.3f}) but identifies no "
        "record confidently at low FPR",
        detail=f"AUC {a.auc:.3f} [{a.auc_ci[0]:.3f}, {a.auc_ci[1]:.3f}], advantage {a.advantage:.3f}; TPR at 1% FPR "
        f"{a.tpr[0.01]:.3f} [{a.tpr_ci[0.01][0]:.3f}, {a.tpr_ci[0.01][1]:.3f}]",
        artifact=subject,
        location={"attack": a.attack},
        evidence={"auc": round(a.auc, 6), "advantage": round(a.advantage, 6)},
        remediation="stronger attacks (reference models) may find more; regularise or train with DP",
        atlas=_ATLAS_MEMBERSHIP,
    )


def privacy_report(
    audit: PrivacyAudit,
    *,
    subject: str,
    defences: Sequence[DefenceResult] = (),
    probes: dict[str, Any] | None = None,
    figures: Sequence[Figure] = (),
    kind: str = "assess.privacy",
    started: Any = None,
) -> Report:
    """Turn an audit (and optional defence results and probes) into a report."""
    findings: list[Finding] = []
    for a in audit.attacks:
        found = _leak_finding(a, subject, kind)
        if found is not None:
            findings.append(found)
    base = next((a for a in audit.attacks if a.attack in ("loss", "label_only")), None)
    if base is not None and base.auc_ci[1] < MIRROR_AUC:
        findings.append(
            Finding(
                check=kind,
                severity=Severity.LOW,
                title="the members look less like training data than the non-members: are the files swapped?",
                detail=f"the {base.attack} attack's AUC is {base.auc:.3f} [{base.auc_ci[0]:.3f}, {base.auc_ci[1]:.3f}], "
                "below chance; the non-members are fitted better than the members",
                artifact=subject,
                remediation="check which file holds the training records",
            )
        )
    for d in defences:
        if not d.reduces_leakage:
            best = strongest(d.attacks)
            findings.append(
                Finding(
                    check=kind,
                    severity=Severity.INFO,
                    title=f"output defence {d.defence.name} does not reduce membership leakage",
                    detail=f"the {best.attack} attack still finds {best.tpr[0.01]:.1%} of training records at 1% FPR "
                    f"on the defended answers (accuracy {d.accuracy_before:.3f} -> {d.accuracy_after:.3f})",
                    artifact=subject,
                    location={"defence": d.defence.name},
                    remediation="answers that keep the label still leak through label-only attacks; "
                    "combine with differential privacy or query budgets",
                )
            )
    probes = probes or {}
    attr = probes.get("attribute_inference")
    if isinstance(attr, dict) and attr.get("gain_ci", [0.0])[0] > 0:
        findings.append(
            Finding(
                check=kind,
                severity=Severity.MEDIUM,
                title=f"the model's outputs reveal the sensitive attribute {attr['sensitive']!r}",
                detail=f"predicted with accuracy {attr['accuracy_with_model']:.3f} from the other features and the "
                f"model's outputs against {attr['accuracy_baseline']:.3f} without the model (gain "
                f"{attr['gain']:.3f}, 95% CI {attr['gain_ci'][0]:.3f} to {attr['gain_ci'][1]:.3f})",
                artifact=subject,
                location={"feature": str(attr["sensitive"])},
                remediation="drop or coarsen the attribute, harden the outputs (label only), or train with DP",
                atlas=_ATLAS_INVERSION,
            )
        )
    metrics = _metrics(audit, defences)
    if isinstance(attr, dict):
        metrics["attribute_gain"] = round(float(attr["gain"]), 6)
    rec = probes.get("reconstruction")
    if isinstance(rec, dict) and "mean_similarity" in rec:
        metrics["reconstruction_similarity"] = round(float(rec["mean_similarity"]), 6)
    best = strongest(audit.attacks)
    series = {a.attack: [(f, t) for f, t in a.roc] for a in audit.attacks}
    floor = min(a.fpr_resolution for a in audit.attacks)
    series["chance"] = [(floor, floor), (1.0, 1.0)]
    figs = [
        line_chart(
            "Membership inference ROC (log-log)",
            series,
            xlabel="false positive rate",
            ylabel="true positive rate",
            ylim=(floor, 1.0),
            log=True,
        ),
        *figures,
    ]
    data: dict[str, Any] = {
        "privacy": {
            "members": audit.n_members,
            "non_members": audit.n_non_members,
            "references": audit.n_references,
            "label_only_model": audit.label_only,
            "accuracy": {k: round(v, 6) for k, v in audit.accuracy.items()},
            "strongest_attack": best.attack,
            "interval": "TPR: 95% Clopper-Pearson; AUC: 95% stratified bootstrap",
            "attacks": [a.to_json() for a in audit.attacks],
            "defences": [d.to_json() for d in defences],
            "notes": list(audit.notes),
            **probes,
        }
    }
    leaking = any(f.atlas == _ATLAS_MEMBERSHIP for f in findings)
    return Report(
        subject=subject,
        kind=kind,
        started=started or utcnow(),
        finished=utcnow(),
        findings=tuple(findings),
        metrics=metrics,
        verdict="leaking" if leaking else "no measurable leakage",
        data=data,
        figures=tuple(figs),
    )
