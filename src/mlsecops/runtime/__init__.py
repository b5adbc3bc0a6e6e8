"""The runtime guard in front of deployed models, and the automated response to what it detects.

``create_app(ServeConfig(...))`` builds the guard (a FastAPI app speaking KServe's Open Inference
Protocol v2); ``mlsecops serve`` runs it under uvicorn. The request path: ``auth`` (API keys, JWTs,
grants), ``controls`` (block, throttle, label-only), ``limits`` (token bucket, daily budget),
``protocol`` (strict decoding), ``validation`` (schema and training profile), the model,
``hardening`` (what callers see). Off the request path: ``decisions`` (the decision log), ``hook``
(the detectors of ``mlsecops.monitor``), ``response`` (playbooks, incidents, quarantine).
See docs/runtime-guard.md and docs/runtime-hook.md.

>>> from mlsecops.runtime import GuardPolicy
>>> GuardPolicy().auth.anonymous
False
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlsecops.core._lazy import lazy_attributes as _lazy_attributes
from mlsecops.runtime.errors import GuardError
from mlsecops.runtime.policy import GuardPolicy, load_policy

if TYPE_CHECKING:
    from mlsecops.runtime.app import ServeConfig, create_app
    from mlsecops.runtime.auth import Authenticator, Principal
    from mlsecops.runtime.decisions import DecisionLog, export_jsonl
    from mlsecops.runtime.hardening import harden, utility_cost
    from mlsecops.runtime.hook import DetectorHook
    from mlsecops.runtime.incidents import Incident, get_incident, list_incidents
    from mlsecops.runtime.limits import Limiter
    from mlsecops.runtime.response import ResponseEngine
    from mlsecops.runtime.validation import InputValidator

# FastAPI, uvicorn and the detectors load on first use (PEP 562): the policy schema and the errors are
# what most callers (the CLI's --dry-run, tests, pipelines) need.
_LAZY = {
    "ServeConfig": "mlsecops.runtime.app",
    "create_app": "mlsecops.runtime.app",
    "Authenticator": "mlsecops.runtime.auth",
    "Principal": "mlsecops.runtime.auth",
    "DecisionLog": "mlsecops.runtime.decisions",
    "export_jsonl": "mlsecops.runtime.decisions",
    "harden": "mlsecops.runtime.hardening",
    "utility_cost": "mlsecops.runtime.hardening",
    "DetectorHook": "mlsecops.runtime.hook",
    "Incident": "mlsecops.runtime.incidents",
    "get_incident": "mlsecops.runtime.incidents",
    "list_incidents": "mlsecops.runtime.incidents",
    "Limiter": "mlsecops.runtime.limits",
    "ResponseEngine": "mlsecops.runtime.response",
    "InputValidator": "mlsecops.runtime.validation",
}

__all__ = [
    "Authenticator",
    "DecisionLog",
    "DetectorHook",
    "GuardError",
    "GuardPolicy",
    "Incident",
    "InputValidator",
    "Limiter",
    "Principal",
    "ResponseEngine",
    "ServeConfig",
    "create_app",
    "export_jsonl",
    "get_incident",
    "harden",
    "list_incidents",
    "load_policy",
    "utility_cost",
]

__getattr__, __dir__ = _lazy_attributes(__name__, _LAZY, __all__)
