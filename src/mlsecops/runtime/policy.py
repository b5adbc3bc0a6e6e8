"""The guard policy (``guard.yaml``): what the runtime guard enforces, section by section.

Every section has secure defaults, so ``mlsecops serve MODEL`` without ``--policy`` authenticates
(workspace API keys), authorises (a grant or a role that may infer), rate-limits, validates inputs
against the model's schema and logs sampled decisions. Unknown keys are refused everywhere (a typo in a
security policy must not silently disable a control). The file is read with the bounded YAML reader.

Sections and their owners (one module each):
    ``server``     request size and time limits, workers          -> runtime/app.py
    ``auth``       API keys, JWT (JWKS file or OIDC issuer keys)   -> runtime/auth.py
    ``limits``     token bucket and daily query budget            -> runtime/limits.py
    ``validation`` schema and data-profile checks, enforce/observe -> runtime/validation.py
    ``outputs``    output hardening per model                     -> runtime/hardening.py
    ``logging``    decision log sampling, raw inputs, retention   -> runtime/decisions.py
    ``monitor``    detectors run off the request path              -> monitor/ (issue 14)
    ``playbooks``  automated response on alerts                    -> runtime/response.py
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlsecops.core.errors import ConfigError
from mlsecops.core.inputs import load_yaml
from mlsecops.report._safe import visible

__all__ = [
    "AuthPolicy",
    "ExplainLogging",
    "GroupLogging",
    "GuardPolicy",
    "JwtPolicy",
    "LimitsPolicy",
    "LoggingPolicy",
    "MonitorPolicy",
    "OutputPolicy",
    "Playbook",
    "PlaybookAction",
    "ServerPolicy",
    "ValidationPolicy",
    "load_policy",
]

MAX_POLICY_BYTES = 1 << 20
"""A guard policy is a page of YAML; a megabyte is a hostile or mistaken file."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerPolicy(_Strict):
    """Limits of the HTTP layer."""

    max_body_bytes: int = Field(default=4 << 20, ge=1024, le=1 << 30)
    """Largest request body accepted; larger bodies get 413 before they are read in full."""
    request_timeout_s: float = Field(default=30.0, gt=0, le=3600)
    """Whole-request deadline (reading the body included): slow clients get 408."""
    model_timeout_s: float = Field(default=30.0, gt=0, le=3600)
    """Longest a model may take to answer one request before 504."""
    metrics: Literal["operators", "public"] = "operators"
    """Who may read ``/metrics``: ``operators`` (an authenticated principal whose role is not
    ``client``: viewer, deployer, approver or admin) or ``public`` (anyone who reaches the port; for a
    scraper behind a network policy). Per-principal counters name who calls which model."""


class JwtPolicy(_Strict):
    """JSON Web Tokens signed by an identity provider (RS256/ES256 only; never HS*, never ``none``)."""

    jwks_file: Path | None = None
    """Local JWKS file with the issuer's public keys."""
    issuer: str | None = None
    """Expected ``iss``; with ``oidc_discovery`` the issuer's keys are fetched (loopback only in tests)."""
    audience: str | None = None
    """Expected ``aud``; required when JWTs are enabled."""
    algorithms: tuple[Literal["RS256", "ES256"], ...] = ("RS256", "ES256")
    oidc_discovery: bool = False
    principal_claim: str = "sub"
    """Claim naming the principal; grants and budgets are keyed by ``jwt:<value>``."""
    role_claim: str = "role"
    leeway_s: float = Field(default=30.0, ge=0, le=600)


class AuthPolicy(_Strict):
    """Who may call: deny by default."""

    api_keys: bool = True
    """Accept the workspace's API keys (``Authorization: Bearer <key>``)."""
    jwt: JwtPolicy | None = None
    anonymous: bool = False
    """Allow unauthenticated calls (for a local demo only; the server warns at start)."""


class LimitsPolicy(_Strict):
    """Per-principal rate limit (token bucket) and daily query budget per model."""

    requests_per_second: float = Field(default=50.0, gt=0)
    burst: int = Field(default=100, ge=1)
    daily_budget: int | None = Field(default=10_000, ge=1)
    """Rows a principal may query per model per UTC day; None: unlimited."""
    per_model: dict[str, dict[str, float | int | None]] = Field(default_factory=dict)
    """Overrides of the three values above by model name."""


class ValidationPolicy(_Strict):
    """Input checks against the model's schema and, when available, its training-data profile."""

    mode: Literal["enforce", "observe"] = "enforce"
    """``enforce``: reject with 422; ``observe``: accept, flag and log."""
    profile: Path | None = None
    """A ``mlsecops data profile`` JSON; default: the one linked in the model's lineage, if any."""
    range_slack: float = Field(default=0.0, ge=0)
    """Allowed excess over the profile's [min, max], as a fraction of the range."""
    lineage_profile: bool = True
    """Without ``profile``, use the data profile linked in the model version's lineage (False: schema only)."""


class OutputPolicy(_Strict):
    """Output hardening: what callers see of the model's answer."""

    mode: Literal["probabilities", "top_k", "label"] = "probabilities"
    top_k: int = Field(default=1, ge=1)
    decimals: int | None = Field(default=None, ge=0, le=12)
    """Round probabilities to this many decimals (None: full precision)."""
    noise: float | None = Field(default=None, gt=0, le=1)
    """Laplace noise of this scale on the confidences before they are shown (None: none). The label
    stays the model's argmax; top-k classes are those of the noisy confidences. Fresh noise per answer:
    a caller who repeats a query averages it away (``assess privacy`` measures what it buys)."""


class ExplainLogging(_Strict):
    """Local explanations of sampled decisions, computed by the decision log's writer (off the request path)."""

    sample_rate: float = Field(default=0.1, ge=0, le=1)
    """Share of the logged decisions explained."""
    method: Literal["auto", "linear", "occlusion"] = "auto"
    """``linear``: exact contributions ``coef * (x - mean)`` of a linear model; ``occlusion``: the change
    of the explained class's probability when one feature is set to its mean (one batched model call per
    row); ``auto``: linear when the model is linear, else occlusion."""
    top_k: int = Field(default=5, ge=1, le=50)
    """Features kept per explained row (the largest contributions in absolute value)."""
    max_rows: int = Field(default=8, ge=1, le=1000)
    """Rows explained per request (the first ones): bounds the writer's work per request."""


class GroupLogging(_Strict):
    """The sensitive group recorded with each logged decision (for fairness audits of live traffic)."""

    columns: tuple[int, ...] = Field(min_length=1, max_length=8)
    """Input feature indices holding the group (for example sex and age band)."""
    names: tuple[str, ...] = ()
    """A name per column for the group labels (``sex=1``); default ``f<index>``."""


class LoggingPolicy(_Strict):
    """The decision log (replayable by ``mlsecops monitor replay``) and access logs."""

    sample_rate: float = Field(default=1.0, ge=0, le=1)
    raw_inputs: bool = False
    """Keep raw inputs in the decision log (needed to replay detectors); otherwise digests only."""
    retention_days: float = Field(default=30.0, gt=0)
    explain: ExplainLogging | None = None
    """Explain sampled decisions (stored with the decision, never the inputs themselves)."""
    group: GroupLogging | None = None
    """Record each decision's group (and its predicted class), and log labels sent as feedback."""
    feature_names: tuple[str, ...] = ()
    """Names of the model's input features in explanations (default: the data profile's column names,
    else ``f<index>``)."""


class MonitorPolicy(_Strict):
    """Detectors fed off the request path (issue 14); options per detector name."""

    enabled: bool = True
    queue_size: int = Field(default=10_000, ge=1)
    """Observations waiting for the detectors; when full, new ones are dropped and counted."""
    detectors: dict[str, dict[str, Any]] = Field(default_factory=dict)
    holdout: Path | None = None
    """Rows the model was not trained on (a validation split: CSV, Parquet or .npz): the extraction
    detector ranks answer margins against the model's answers on them (active-learning thieves)."""


class PlaybookAction(_Strict):
    """One action of a playbook."""

    action: Literal["throttle", "block", "revoke_key", "label_only", "rollback", "quarantine", "retrain"]
    params: dict[str, Any] = Field(default_factory=dict)

    def resolved(self, base: Path) -> PlaybookAction:
        """The action with a relative ``retrain`` pipeline path resolved against ``base``."""
        pipeline = self.params.get("pipeline")
        if self.action != "retrain" or not isinstance(pipeline, str) or Path(pipeline).is_absolute():
            return self
        return self.model_copy(update={"params": {**self.params, "pipeline": str(base / pipeline)}})


class Playbook(_Strict):
    """On an alert of ``kind`` at ``min_severity`` or above, run ``actions`` in order."""

    name: str
    kind: str
    min_severity: Literal["info", "low", "medium", "high", "critical"] = "high"
    actions: tuple[PlaybookAction, ...]


class GuardPolicy(_Strict):
    """The whole guard policy; ``outputs`` has a default and per-model overrides."""

    version: Literal[1] = 1
    server: ServerPolicy = ServerPolicy()
    auth: AuthPolicy = AuthPolicy()
    limits: LimitsPolicy = LimitsPolicy()
    validation: ValidationPolicy = ValidationPolicy()
    outputs: OutputPolicy = OutputPolicy()
    model_outputs: dict[str, OutputPolicy] = Field(default_factory=dict)
    logging: LoggingPolicy = LoggingPolicy()
    monitor: MonitorPolicy = MonitorPolicy()
    playbooks: tuple[Playbook, ...] = ()

    def output_policy(self, model: str) -> OutputPolicy:
        """The output hardening for ``model``."""
        return self.model_outputs.get(model, self.outputs)


def load_policy(path: str | Path | None) -> GuardPolicy:
    """Read a guard policy file (None: the defaults).

    Raises:
        InputError: unreadable, too large, not UTF-8, or over the YAML limits.
        ConfigError: not valid YAML, or a value or key the schema refuses (named in one line).
    """
    if path is None:
        return GuardPolicy()
    data, _raw = load_yaml(path, what="guard policy", max_bytes=MAX_POLICY_BYTES)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"guard policy {path}: expected a mapping at the top level")
    try:
        policy = GuardPolicy.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        # keys come from the file: a key holding a newline must not break the one-line error
        raise ConfigError(f"guard policy {path}: {visible(where)}: {visible(first['msg'])}") from None
    base = Path(path).resolve().parent
    return _resolve_paths(policy, base)


def _resolve_paths(policy: GuardPolicy, base: Path) -> GuardPolicy:
    """Relative paths in the policy resolve against the policy file's folder."""

    def fix(p: Path | None) -> Path | None:
        return None if p is None or p.is_absolute() else base / p

    updates: dict[str, Any] = {}
    if policy.validation.profile is not None and not policy.validation.profile.is_absolute():
        updates["validation"] = policy.validation.model_copy(
            update={"profile": fix(policy.validation.profile)}
        )
    if policy.monitor.holdout is not None and not policy.monitor.holdout.is_absolute():
        updates["monitor"] = policy.monitor.model_copy(update={"holdout": fix(policy.monitor.holdout)})
    jwt = policy.auth.jwt
    if jwt is not None and jwt.jwks_file is not None and not jwt.jwks_file.is_absolute():
        updates["auth"] = policy.auth.model_copy(
            update={"jwt": jwt.model_copy(update={"jwks_file": fix(jwt.jwks_file)})}
        )
    if policy.playbooks:  # a retrain's pipeline file, like the paths above
        updates["playbooks"] = tuple(
            pb.model_copy(update={"actions": tuple(a.resolved(base) for a in pb.actions)})
            for pb in policy.playbooks
        )
    return policy.model_copy(update=updates) if updates else policy
