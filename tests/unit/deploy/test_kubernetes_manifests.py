"""The Kubernetes manifests in deploy/kubernetes: valid against the API's schemas (kubernetes-validate,
strict: an unknown field is an error), and hardened as the docs promise: non-root, read-only root
filesystem, no privilege escalation, all capabilities dropped, resource limits, probes on the guard's
health routes, pinned images, and a guard policy that our own parser accepts.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="the test extra installs it")

DEPLOY = Path(__file__).resolve().parents[3] / "deploy" / "kubernetes"
K8S_VERSION = "1.30.0"
"""The oldest Kubernetes release the manifests promise to work on."""


def _documents() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted(DEPLOY.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for n, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if doc:
                yield f"{path.name}#{n}:{doc['kind']}", doc


DOCS = dict(_documents())


def _pod_specs() -> Iterator[tuple[str, dict[str, Any]]]:
    for name, doc in DOCS.items():
        if doc["kind"] in ("Deployment", "StatefulSet"):
            yield name, doc["spec"]["template"]["spec"]


def test_there_is_something_to_check() -> None:
    kinds = {doc["kind"] for doc in DOCS.values()}
    assert {"Deployment", "StatefulSet", "Service", "ConfigMap", "NetworkPolicy"} <= kinds


@pytest.mark.parametrize("name", sorted(DOCS))
def test_every_manifest_validates_against_the_kubernetes_schema(name: str) -> None:
    kubernetes_validate.validate(DOCS[name], K8S_VERSION, strict=True)


def test_a_schema_violation_is_caught() -> None:
    """The twin: the validator used above does reject a wrong manifest."""
    doc = yaml.safe_load((DEPLOY / "guard-deployment.yaml").read_text())
    doc["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    doc = yaml.safe_load((DEPLOY / "guard-deployment.yaml").read_text())
    doc["spec"]["template"]["spec"]["containers"][0]["securityContxt"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


@pytest.mark.parametrize("name", sorted(n for n, _ in _pod_specs()))
def test_workloads_are_hardened(name: str) -> None:
    spec = dict(_pod_specs())[name]
    pod = spec["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] > 0
    assert pod["seccompProfile"]["type"] == "RuntimeDefault"
    assert spec["automountServiceAccountToken"] is False
    for c in spec["containers"]:
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert {"cpu", "memory"} <= set(c["resources"]["limits"])
        assert {"cpu", "memory"} <= set(c["resources"]["requests"])
        assert "readinessProbe" in c and "livenessProbe" in c
        image = c["image"]
        assert ":" in image and not image.endswith(":latest")
        for env in c.get("env", []):  # secrets only by reference
            if any(word in env["name"].lower() for word in ("password", "url", "key", "token")):
                assert "valueFrom" in env and "value" not in env, env["name"]


def test_guard_probes_use_the_guard_health_routes_and_its_policy_parses(tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    from mlsecops.runtime.policy import load_policy

    deployment = next(d for d in DOCS.values() if d["kind"] == "Deployment")
    guard = deployment["spec"]["template"]["spec"]["containers"][0]
    assert guard["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert guard["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert guard["args"][0] == "serve" and "--policy" in guard["args"]
    config = next(d for d in DOCS.values() if d["kind"] == "ConfigMap")
    policy = tmp_path / "guard.yaml"
    policy.write_text(config["data"]["guard.yaml"])
    parsed = load_policy(policy)
    assert parsed.auth.anonymous is False and parsed.logging.raw_inputs is False


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    assert listed == {p.name for p in DEPLOY.glob("*.yaml")} - {"kustomization.yaml"}
