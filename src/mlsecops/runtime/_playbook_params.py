"""The parameters of each playbook action, checked when the response engine starts.

A guard policy's ``playbooks`` give each action a free-form ``params`` mapping (``runtime.policy``);
here each action's parameters are a strict model, so an unknown key or a bad value is a
``ConfigError`` naming the playbook and the action when the guard starts, never a surprise during
an incident.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlsecops.core.errors import ConfigError
from mlsecops.report._safe import visible
from mlsecops.runtime.policy import Playbook, PlaybookAction

__all__ = [
    "MAX_RETRAIN_S",
    "BlockParams",
    "LabelOnlyParams",
    "Params",
    "QuarantineParams",
    "RetrainParams",
    "RevokeKeyParams",
    "RollbackParams",
    "ThrottleParams",
    "alert_kinds",
    "check_kind",
    "parse_params",
]


@functools.cache
def alert_kinds() -> frozenset[str]:
    """Kinds of alert the detectors raise: each detector's name, and ``performance`` (from ``drift``)."""
    from mlsecops.monitor.detectors import DETECTORS  # numpy: loaded when a policy is checked, not before

    return frozenset(DETECTORS) | {"performance"}


FAILED_KIND = "response.failed"
"""Kind of the alert a failed action raises (never answered by a playbook: no loops)."""

MAX_RETRAIN_S = 24 * 3600.0
"""Longest a retraining pipeline may run before it is killed."""


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BlockParams(Params):
    for_s: float | None = Field(default=None, gt=0, le=10 * 365 * 86400)
    """Lift the block after this many seconds (None: until unblocked)."""
    reason: str = ""


class ThrottleParams(BlockParams):
    requests_per_second: float = Field(default=1.0, gt=0, le=1e6)
    burst: int = Field(default=1, ge=1, le=10**9)


class LabelOnlyParams(Params):
    reason: str = ""


class RevokeKeyParams(Params):
    pass


class RollbackParams(Params):
    model: str | None = None
    """Registry model to roll back (default: the alert's model)."""
    cooldown_s: float = Field(default=3600.0, ge=0, le=30 * 86400)
    """After a playbook rolled this model back, alerts within this many seconds do not roll it back
    again. The registry rolls back to the version that last held production, so a second rollback
    would put back the very version the first one took out: alerts from many accounts must not flip
    production back and forth (0: every alert rolls back)."""


class QuarantineParams(Params):
    scope: Literal["principal", "source"] = "principal"
    source: str | None = None
    """The source to quarantine (``scope: source``); default: the alert evidence's ``source``."""
    lookback_s: float | None = Field(default=None, gt=0)
    """Quarantine from this long before the alert's first observation (None: everything logged)."""
    for_s: float | None = Field(default=None, gt=0)
    """End the range this long after the alert (None: open-ended)."""
    all_models: bool = False


class RetrainParams(Params):
    pipeline: Path
    timeout_s: float = Field(default=3600.0, gt=0, le=MAX_RETRAIN_S)


_PARAMS: dict[str, type[Params]] = {
    "throttle": ThrottleParams,
    "block": BlockParams,
    "label_only": LabelOnlyParams,
    "revoke_key": RevokeKeyParams,
    "rollback": RollbackParams,
    "quarantine": QuarantineParams,
    "retrain": RetrainParams,
}


def parse_params(playbook: Playbook, action: PlaybookAction) -> Params:
    try:
        return _PARAMS[action.action].model_validate(action.params)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "params"
        raise ConfigError(
            f"playbook {playbook.name!r}, action {action.action}: {visible(where)}: {visible(first['msg'])}"
        ) from None


def check_kind(playbook: Playbook) -> None:
    """Refuse a playbook whose ``kind`` no detector raises: a typo would silently disable the response.

    Raises:
        ConfigError: an unknown kind, or ``response.failed`` (never answered by a playbook).
    """
    if playbook.kind == FAILED_KIND:
        raise ConfigError(
            f"playbook {playbook.name!r}: {FAILED_KIND} alerts are never answered by playbooks (no loops); "
            "subscribe a webhook to alert.raised to hear of them"
        )
    if playbook.kind not in alert_kinds():
        raise ConfigError(
            f"playbook {playbook.name!r}: no detector raises alerts of kind {playbook.kind!r}; "
            f"expected one of {', '.join(sorted(alert_kinds()))}"
        )
