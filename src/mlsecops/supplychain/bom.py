"""CycloneDX 1.6 ML-BOM for a model: the model, its model card, files, datasets, scan and signature.

``build_bom(path, ...)`` returns the BOM as a JSON-able dict:

- ``metadata.component``: a ``machine-learning-model`` component named after the model, with a SHA-256
  over its file digests, and a ``modelCard`` (approach, task, architecture, datasets, inputs, outputs,
  quantitative analysis, considerations) built from a model-card file and from what the registry knows
  (the ``context``: lineage datasets, metrics of the attached policy-gate run, scan verdict);
- ``components``: every file of the model (``file`` components with SHA-256 hashes) and every dataset
  (``data`` components, referenced from ``modelCard.modelParameters.datasets``);
- the signature (a model-signing bundle) as an ``attestation`` external reference with its hash and key
  hint, and the scan verdict as ``mlsecops:*`` properties.

``cyclonedx-python-lib`` has no model for the model card yet, so the document is written here as plain
data; ``validate_bom`` then checks the whole document against the CycloneDX 1.6 JSON schema that
package ships (the ``bom`` extra).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mlsecops._version import __version__
from mlsecops.core.errors import ConfigError, InputError
from mlsecops.core.findings import utcnow
from mlsecops.core.inputs import load_yaml
from mlsecops.supplychain import signing

__all__ = ["APPROACHES", "CARD_KEYS", "MAX_CARD_BYTES", "build_bom", "validate_bom"]

APPROACHES = ("supervised", "unsupervised", "reinforcement-learning", "semi-supervised", "self-supervised")
_CONSIDERATION_LISTS = {
    "users": "users",
    "use_cases": "useCases",
    "technical_limitations": "technicalLimitations",
    "performance_tradeoffs": "performanceTradeoffs",
}
MAX_FILE_COMPONENTS = 10_000


MAX_CARD_BYTES = 1 << 20
"""Largest model-card file read (1 MiB)."""
CARD_KEYS = (
    "approach",
    "architecture",
    "architecture_family",
    "considerations",
    "datasets",
    "description",
    "inputs",
    "metrics",
    "outputs",
    "task",
)
"""Keys a model card may hold; anything else is refused (a typo would otherwise vanish from the BOM)."""
_CONSIDERATION_KEYS = (*_CONSIDERATION_LISTS, "ethical_considerations")
_PRIVACY_FACTS = (
    "mechanism",
    "epsilon",
    "delta",
    "accountant",
    "noise_multiplier",
    "max_grad_norm",
    "sample_rate",
    "epochs",
    "initialisation",
    "pretrained_on",
)
"""Differential-privacy facts from the lineage (``context["privacy"]``) written as BOM properties."""


def _load_card(card: Path | None) -> dict[str, Any]:
    if card is None:
        return {}
    # The one bounded YAML reader (JSON is YAML too): regular files only, size, depth and aliases bounded.
    data, _ = load_yaml(card, what="model card", max_bytes=MAX_CARD_BYTES)
    if not isinstance(data, dict):
        raise ConfigError(f"the model card {card} must be a mapping (approach, task, datasets, ...)")
    _known_keys(data, CARD_KEYS, "model card")
    for key in ("approach", "task", "architecture_family", "architecture", "description"):
        value = data.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, str | int | float)):
            raise ConfigError(f"model card: {key} must be a string; got {type(value).__name__}")
    metrics = data.get("metrics")
    if metrics is not None and (
        not isinstance(metrics, dict) or not all(isinstance(k, str) for k in metrics)
    ):
        raise ConfigError("model card: metrics must be a mapping of metric name to value")
    return data


def _known_keys(raw: Mapping[Any, Any], allowed: tuple[str, ...], what: str) -> None:
    unknown = sorted(str(k) for k in raw if k not in allowed)
    if unknown:
        raise ConfigError(f"{what}: unknown key(s) {unknown}; allowed: {', '.join(sorted(allowed))}")


def _strings(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise ConfigError(f"model card: {what} must be a string or a list of strings")


def _considerations(raw: Any) -> dict[str, Any]:
    if not raw:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError("model card: considerations must be a mapping")
    _known_keys(raw, _CONSIDERATION_KEYS, "model card: considerations")
    out: dict[str, Any] = {}
    for key, target in _CONSIDERATION_LISTS.items():
        if key in raw:
            out[target] = _strings(raw[key], f"considerations.{key}")
    ethical = raw.get("ethical_considerations") or []
    if ethical:
        if not isinstance(ethical, list):
            raise ConfigError("model card: considerations.ethical_considerations must be a list")
        out["ethicalConsiderations"] = [_ethical(e) for e in ethical]
    return out


def _ethical(entry: Any) -> dict[str, str]:
    """One ethical consideration: a string, or ``{name, mitigation}`` with string values."""
    if isinstance(entry, str):
        return {"name": entry}
    if isinstance(entry, dict) and isinstance(entry.get("name"), str):
        _known_keys(entry, ("mitigation", "name"), "model card: an ethical consideration")
        mitigation = entry.get("mitigation")
        if mitigation is None:
            return {"name": entry["name"]}
        if isinstance(mitigation, str):
            return {"name": entry["name"], "mitigationStrategy": mitigation}
    raise ConfigError(
        "model card: each ethical consideration must be a string or {name: ..., mitigation: ...} of strings"
    )


def _metrics(card: Mapping[str, Any], context: Mapping[str, Any]) -> list[dict[str, Any]]:
    merged: dict[str, Any] = {}
    merged.update(context.get("metrics", {}) or {})
    merged.update(card.get("metrics", {}) or {})
    out = []
    for name, value in sorted(merged.items()):
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ConfigError(f"metric {name!r} must be a number or a string")
        out.append({"type": str(name), "value": str(value)})
    return out


def _file_components(path: Path, files: list[tuple[str, str, int]]) -> tuple[list[dict[str, Any]], str, int]:
    """File components from ``(name, sha256, size)`` (``"."`` for a single file, shown by its name)."""
    named = sorted(((path.name if n == "." else n), sha, size) for n, sha, size in files)
    canon = json.dumps([[n, sha] for n, sha, _ in named], separators=(",", ":"))
    components = [
        {
            "type": "file",
            "bom-ref": f"file:{name}",
            "name": name,
            "hashes": [{"alg": "SHA-256", "content": sha}],
            "properties": [{"name": "mlsecops:size", "value": str(size)}],
        }
        for name, sha, size in named[:MAX_FILE_COMPONENTS]
    ]
    return components, hashlib.sha256(canon.encode()).hexdigest(), sum(s for _, _, s in named)


def _check_version(info: Mapping[str, Any], files: list[tuple[str, str, int]], path: Path) -> None:
    """Refuse a BOM that would describe ``path`` with a registry version's facts about other bytes."""
    expected = info.get("digest")
    if not expected:
        return
    actual = signing.tree_digest((n, sha) for n, sha, _ in files)
    if actual != expected:
        raise InputError(
            f"{path} is not {info.get('name')}@{info.get('version')}: its files' digest {actual[:12]}... "
            f"differs from the registered {str(expected)[:12]}...; describe the registered files"
        )


def _datasets(card: Mapping[str, Any], context: Mapping[str, Any]) -> list[dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for d in context.get("datasets", []) or []:
        ref = f"dataset:{d['name']}@{d.get('version') or ''}"
        comp: dict[str, Any] = {
            "type": "data",
            "bom-ref": ref,
            "name": str(d["name"]),
            "data": [
                {"type": "dataset", "name": str(d["name"]), "description": "from the mlsecops lineage graph"}
            ],
        }
        if d.get("version"):
            comp["version"] = str(d["version"])
        if d.get("digest"):
            comp["hashes"] = [{"alg": "SHA-256", "content": str(d["digest"])}]
        found[ref] = comp
    for name in _strings(card.get("datasets"), "datasets"):
        ref = f"dataset:{name}@"
        if not any(c["name"] == name for c in found.values()):
            found[ref] = {
                "type": "data",
                "bom-ref": ref,
                "name": name,
                "data": [{"type": "dataset", "name": name}],
            }
    return list(found.values())


def _signature(sig: Path | None) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    if sig is None or not sig.is_file():
        return [], [{"name": "mlsecops:signature", "value": "none"}]
    data = signing.load_bundle_file(sig)
    bundle = signing.read_bundle(data)
    ref = {
        "type": "attestation",
        "url": sig.name,
        "comment": "OpenSSF model-signing bundle (Sigstore bundle, DSSE envelope, in-toto statement); "
        "verify with `mlsecops verify` or `model_signing verify key`",
        "hashes": [{"alg": "SHA-256", "content": hashlib.sha256(data).hexdigest()}],
    }
    props = [
        {"name": "mlsecops:signature", "value": "model-signing"},
        {"name": "mlsecops:signature:predicate_type", "value": signing.PREDICATE_TYPE},
    ]
    if bundle.key_hint:
        props.append({"name": "mlsecops:signature:key_hint", "value": bundle.key_hint})
    return [ref], props


def build_bom(
    path: Path,
    *,
    name: str | None = None,
    card: Path | None = None,
    signature: Path | None = None,
    context: Mapping[str, Any] | None = None,
    scan: Callable[[Path], Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Build the CycloneDX 1.6 ML-BOM of the model at ``path``.

    Every file is read once. With ``scan``, the model is first copied into a private snapshot (each file
    hashed while copied) and ``scan`` judges that copy, so the verdict in the BOM and the hashes in the
    BOM are about the same bytes whatever happens to ``path`` meanwhile. With a registry ``version`` in
    ``context``, the files must be that version's (same digest), or the BOM is refused.

    Args:
        path: model file or directory.
        name: model name (default: the registry version's, else the path's name).
        card: model-card file (YAML or JSON): ``approach``, ``task``, ``architecture_family``,
            ``architecture``, ``datasets``, ``inputs``, ``outputs``, ``metrics``, ``considerations``.
        signature: model-signing bundle (default ``<path>.sig`` when present).
        context: what the registry knows: ``version`` (a ``VersionInfo`` JSON), ``datasets`` (lineage
            nodes), ``metrics`` (from the attached policy-gate run), ``privacy`` (differential-privacy
            facts of the lineage, as properties ``mlsecops:privacy:*``); or just ``scan`` (a scan summary:
            ``verdict`` and ``counts``) for a model outside the registry.
        scan: judges a model path and returns its scan summary (``verdict``, ``counts``); run on the
            snapshot, and its result replaces ``context["scan"]``.

    Raises:
        InputError: the model or a file cannot be read, or it is not the registry version of ``context``.
        ConfigError: the model card is malformed.
    """
    ctx = dict(context or {})
    info = ctx.get("version") or {}
    meta = _load_card(card)
    ignore = (signing.default_signature_path(path), *([signature] if signature is not None else []))
    if scan is not None:
        with signing.snapshot(path, extra_ignore=ignore) as snap:
            ctx["scan"] = dict(scan(snap.path))
            contents = list(snap.files)
    else:
        contents = signing.content_files(path, extra_ignore=ignore)
    _check_version(info, contents, path)
    files, digest, size = _file_components(path, contents)
    model_name = name or info.get("name") or path.resolve().name
    approach = meta.get("approach")
    if approach is not None and approach not in APPROACHES:
        raise ConfigError(f"model card: approach must be one of {', '.join(APPROACHES)}; got {approach!r}")
    datasets = _datasets(meta, ctx)
    params: dict[str, Any] = {}
    if approach:
        params["approach"] = {"type": approach}
    for key, target in (
        ("task", "task"),
        ("architecture_family", "architectureFamily"),
        ("architecture", "modelArchitecture"),
    ):
        if meta.get(key):
            params[target] = str(meta[key])
    if datasets:
        params["datasets"] = [{"ref": d["bom-ref"]} for d in datasets]
    for key in ("inputs", "outputs"):
        formats = _strings(meta.get(key), key)
        if formats:
            params[key] = [{"format": f} for f in formats]
    model_card: dict[str, Any] = {"bom-ref": "model-card"}
    if params:
        model_card["modelParameters"] = params
    metrics = _metrics(meta, ctx)
    if metrics:
        model_card["quantitativeAnalysis"] = {"performanceMetrics": metrics}
    considerations = _considerations(meta.get("considerations"))
    if considerations:
        model_card["considerations"] = considerations
    sig_refs, sig_props = _signature(signature or signing.default_signature_path(path))
    props = [{"name": "mlsecops:size", "value": str(size)}, *sig_props]
    summary = info.get("scan") or ctx.get("scan") or {}
    if info:
        props += [
            {"name": "mlsecops:registry:version", "value": str(info.get("version"))},
            {"name": "mlsecops:signature:trusted_key", "value": str(info.get("signed_by") or "none")},
        ]
    if summary:
        props.append(
            {"name": "mlsecops:scan:verdict", "value": str(summary.get("verdict", info.get("scan_verdict")))}
        )
        for sev, count in (summary.get("counts") or {}).items():
            props.append({"name": f"mlsecops:scan:{sev}", "value": str(count)})
    for facts in ctx.get("privacy", []) or []:  # how it was trained with differential privacy
        props += [
            {"name": f"mlsecops:privacy:{key}", "value": str(facts[key])}
            for key in _PRIVACY_FACTS
            if facts.get(key) is not None
        ]
    component: dict[str, Any] = {
        "type": "machine-learning-model",
        "bom-ref": "model",
        "name": str(model_name),
        "hashes": [{"alg": "SHA-256", "content": digest}],
        "modelCard": model_card,
        "properties": props,
    }
    if info.get("version") is not None:
        component["version"] = str(info["version"])
    if meta.get("description"):
        component["description"] = str(meta["description"])
    if sig_refs:
        component["externalReferences"] = sig_refs
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": f"urn:uuid:{uuid.uuid4()}",
        "version": 1,
        "metadata": {
            "timestamp": utcnow().isoformat(timespec="seconds"),
            "tools": {"components": [{"type": "application", "name": "mlsecops", "version": __version__}]},
            "component": component,
        },
        "components": [*files, *datasets],
        "dependencies": [
            {"ref": "model", "dependsOn": [f["bom-ref"] for f in files] + [d["bom-ref"] for d in datasets]}
        ],
    }


def validate_bom(document: Mapping[str, Any]) -> None:
    """Validate against the CycloneDX 1.6 JSON schema shipped by ``cyclonedx-python-lib``.

    Raises:
        ConfigError: the ``bom`` extra is not installed.
        InputError: the document does not conform (the first error is named).
    """
    try:
        from cyclonedx.schema import SchemaVersion
        from cyclonedx.validation.json import JsonValidator
    except ImportError:
        raise ConfigError(
            "validating an ML-BOM needs cyclonedx-python-lib: pip install 'mlsecops[bom]'"
        ) from None
    error = JsonValidator(SchemaVersion.V1_6).validate_str(json.dumps(document))
    if error is not None:
        raise InputError(f"the ML-BOM does not conform to CycloneDX 1.6: {str(error)[:300]}")
