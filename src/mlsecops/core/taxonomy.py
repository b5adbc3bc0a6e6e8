"""Our check names and alert kinds mapped to MITRE ATLAS techniques and the OWASP Machine Learning
Security Top 10 (2023 edition).

A posture part, a finding or an alert is shown with the threats it is evidence about: ``classify(name)``
takes a registered check name (``artifact.scan``), a finding's check (``artifact.pickle`` falls under
``artifact.``), an alert kind (``extraction``) or a runtime event (``runtime.budget_exhausted``) and
returns ``(atlas ids, owasp ids)``. ``ATLAS`` and ``OWASP`` give each id its name and a one-line
description, for tooltips and reports.

Only technique ids we are sure of are listed; a mapping says what the check gives evidence about (a
robustness attack measures exposure to evasion, AML.T0015 / ML01), not that the technique happened.
Alert kinds that describe our own machinery rather than a threat (a playbook that failed) map to
nothing and are named in ``OPERATIONAL_KINDS``.

>>> classify("extraction")
(('AML.T0024.002', 'AML.T0040'), ('ML05',))
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "ATLAS",
    "OPERATIONAL_KINDS",
    "OWASP",
    "Technique",
    "classify",
    "describe",
    "mapped_names",
]


@dataclass(frozen=True)
class Technique:
    """One entry of a taxonomy."""

    id: str
    """``AML.T0010`` (ATLAS) or ``ML06`` (OWASP ML Top 10)."""
    name: str
    description: str
    """One line."""


def _table(*entries: tuple[str, str, str]) -> dict[str, Technique]:
    return {i: Technique(i, n, d) for i, n, d in entries}


ATLAS: dict[str, Technique] = _table(
    (
        "AML.T0010",
        "ML Supply Chain Compromise",
        "An adversary compromises a part of the ML supply chain: software, data, or the model artifact.",
    ),
    (
        "AML.T0011",
        "User Execution",
        "An adversary relies on a user running or loading something malicious.",
    ),
    (
        "AML.T0011.000",
        "Unsafe ML Artifacts",
        "A model file that runs code when it is loaded (pickle and similar formats).",
    ),
    (
        "AML.T0015",
        "Evade ML Model",
        "Inputs crafted so that the model misclassifies them while looking normal.",
    ),
    (
        "AML.T0018",
        "Backdoor ML Model",
        "A hidden trigger planted in the model that makes it misbehave on chosen inputs.",
    ),
    (
        "AML.T0019",
        "Publish Poisoned Datasets",
        "Poisoned data published where victims collect their training data.",
    ),
    (
        "AML.T0020",
        "Poison Training Data",
        "Training data altered or injected so that the trained model is biased or backdoored.",
    ),
    (
        "AML.T0024",
        "Exfiltration via ML Inference API",
        "Information about the model or its training data extracted through its inference API.",
    ),
    (
        "AML.T0024.000",
        "Infer Training Data Membership",
        "Telling from the model's answers whether a record was in its training data.",
    ),
    (
        "AML.T0024.001",
        "Invert ML Model",
        "Reconstructing training data or sensitive attributes from the model's answers.",
    ),
    (
        "AML.T0024.002",
        "Extract ML Model",
        "Copying the model's behaviour into a substitute by querying its API.",
    ),
    (
        "AML.T0029",
        "Denial of ML Service",
        "Flooding the model's service with requests so that legitimate users are not served.",
    ),
    (
        "AML.T0031",
        "Erode ML Model Integrity",
        "Degrading the model's performance over time, e.g. through the data it sees in production.",
    ),
    (
        "AML.T0034",
        "Cost Harvesting",
        "Sending useless queries that run up the cost of serving the model.",
    ),
    (
        "AML.T0040",
        "ML Model Inference API Access",
        "Using legitimate access to the model's inference API to stage an attack.",
    ),
    (
        "AML.T0043",
        "Craft Adversarial Data",
        "Optimising inputs so that they cause a chosen model error.",
    ),
    (
        "AML.T0043.000",
        "White-Box Optimization",
        "Adversarial inputs computed with full access to the model (gradients).",
    ),
    (
        "AML.T0043.001",
        "Black-Box Optimization",
        "Adversarial inputs found by querying the model's answers only.",
    ),
    (
        "AML.T0048",
        "External Harms",
        "Harm to users, groups or society from the model's decisions (e.g. unfair outcomes).",
    ),
)
"""MITRE ATLAS techniques that our checks and alerts give evidence about."""

OWASP: dict[str, Technique] = _table(
    ("ML01", "Input Manipulation Attack", "Inputs altered so that the model makes the wrong decision."),
    ("ML02", "Data Poisoning Attack", "Training data manipulated so that the model learns the wrong thing."),
    ("ML03", "Model Inversion Attack", "Sensitive training data reconstructed from the model."),
    ("ML04", "Membership Inference Attack", "Learning whether a record was in the training data."),
    ("ML05", "Model Theft", "The model copied or extracted by an unauthorised party."),
    (
        "ML06",
        "AI Supply Chain Attacks",
        "Compromised models, libraries or data that the ML system depends on.",
    ),
    (
        "ML07",
        "Transfer Learning Attack",
        "A pre-trained model poisoned so that fine-tuned models inherit it.",
    ),
    ("ML08", "Model Skewing", "The data a model learns from in use skewed so that its outcomes drift."),
    ("ML09", "Output Integrity Attack", "The model's output altered between the model and its consumer."),
    ("ML10", "Model Poisoning", "The model's parameters altered so that it behaves as the attacker wants."),
)
"""The OWASP Machine Learning Security Top 10, 2023 edition."""

_SUPPLY = (("AML.T0011.000", "AML.T0010"), ("ML06",))
_TAMPER = (("AML.T0010",), ("ML06", "ML10"))
_POISON = (("AML.T0020", "AML.T0018"), ("ML02",))
_WHITEBOX = (("AML.T0043.000", "AML.T0015"), ("ML01",))
_BLACKBOX = (("AML.T0043.001", "AML.T0015"), ("ML01",))
_EVASION = (("AML.T0043", "AML.T0015"), ("ML01",))
_PRIVACY = (("AML.T0024.000", "AML.T0024.001"), ("ML04", "ML03"))
_FAIRNESS = (("AML.T0048",), ("ML08",))
_DRIFT = (("AML.T0031",), ("ML08",))

_MAP: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # registered checks (core/checks.py)
    "artifact.scan": _SUPPLY,
    "registry.register": _SUPPLY,
    "sign.model": _TAMPER,
    "sign.verify": _TAMPER,
    "workspace.artifacts": _TAMPER,
    # a trail edited after the fact can hide a swapped model or a forged approval
    "audit.verify": (("AML.T0010",), ("ML06",)),
    "data.check": (("AML.T0020",), ("ML02",)),
    "data.poison": _POISON,
    "assess.fgsm": _WHITEBOX,
    "assess.pgd": _WHITEBOX,
    "assess.apgd": _WHITEBOX,
    "assess.robustness": _EVASION,
    "assess.patch": _EVASION,  # a printable patch (sticker) confined to a small region
    "assess.square": _BLACKBOX,
    "assess.hopskipjump": _BLACKBOX,
    "assess.certify": (("AML.T0015",), ("ML01",)),
    "harden.adversarial_training": (("AML.T0015",), ("ML01",)),
    "assess.privacy": _PRIVACY,
    "harden.dp_training": _PRIVACY,
    "assess.fairness": _FAIRNESS,
    "harden.fairness": _FAIRNESS,
    "monitor.fairness": _FAIRNESS,
    # explanations hiding a sensitive feature (scaffolding) conceal unfair outcomes from an audit
    "assess.explain": _FAIRNESS,
    "assess.explain_integrity": _FAIRNESS,
    "monitor.drift": _DRIFT,
    # alert kinds (monitor detectors)
    "extraction": (("AML.T0024.002", "AML.T0040"), ("ML05",)),
    "query_attack": (("AML.T0043.001", "AML.T0015", "AML.T0040"), ("ML01",)),
    "adversarial_input": (("AML.T0015", "AML.T0043"), ("ML01",)),
    "drift": _DRIFT,
    "performance": _DRIFT,
    "fairness": _FAIRNESS,
    # runtime events and rejection reasons
    "runtime.budget_exhausted": (("AML.T0034", "AML.T0029"), ()),
    "rate_limit": (("AML.T0029",), ()),
    "budget": (("AML.T0034", "AML.T0029"), ()),
    # pipeline findings: a stage refused because an earlier scan did not judge its artifact safe
    "pipeline.unsafe_artifact": _SUPPLY,
}

# Families of finding checks: a finding of the scanner is ``artifact.<format>``, of the data checks
# ``data.check.<part>``; the longest prefix decides.
_PREFIXES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "artifact.": _SUPPLY,
    "sign.": _TAMPER,
    "data.check.": (("AML.T0020",), ("ML02",)),
    "data.poison.": _POISON,
    "assess.privacy.": _PRIVACY,
    "assess.fairness.": _FAIRNESS,
    "monitor.drift.": _DRIFT,
}

OPERATIONAL_KINDS = frozenset({"response.failed", "monitor.replay", "pipeline.stage_error"})
"""Kinds about our own machinery (a failed playbook, a replay summary, a stage that crashed), not a
threat: they map to nothing."""


def classify(name: str, *, atlas: str | None = None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """ATLAS and OWASP ids for a check name, finding check, alert kind or runtime event.

    Args:
        name: e.g. ``artifact.scan``, ``artifact.pickle``, ``extraction``, ``rate_limit``.
        atlas: a finding's own ``atlas`` id, put first when given and known.

    Returns:
        ``(atlas_ids, owasp_ids)``, both empty for an unknown or operational name.
    """
    found = _MAP.get(name)
    if found is None:
        best = max((p for p in _PREFIXES if name.startswith(p)), key=len, default=None)
        found = _PREFIXES[best] if best is not None else ((), ())
    ids, owasp = found
    if atlas and atlas in ATLAS and atlas not in ids:
        ids = (atlas, *ids)
    return ids, owasp


def describe(ids: Iterable[str]) -> list[Technique]:
    """The entries of ATLAS or OWASP ids (unknown ids are left out)."""
    return [t for i in ids if (t := ATLAS.get(i) or OWASP.get(i)) is not None]


def mapped_names() -> frozenset[str]:
    """Every name with an explicit mapping (checks, alert kinds, runtime events)."""
    return frozenset(_MAP)
