"""Errors of the request path, each with its HTTP status and a stable machine-readable code.

The guard app turns any :class:`GuardError` into ``{"error": {"code": ..., "message": ..., "field": ...}}``
with the status and headers given here; nothing else of the exception (no traceback, no input echo
beyond a bounded, sanitised field name) reaches the client.
"""

from __future__ import annotations

__all__ = [
    "BadRequest",
    "Forbidden",
    "GuardError",
    "InvalidInput",
    "ModelFailed",
    "ModelNotFound",
    "NotMonitored",
    "PayloadTooLarge",
    "RateLimited",
    "RequestTimeout",
    "Unauthenticated",
    "Unavailable",
]


class GuardError(Exception):
    """A refusal or failure of one request; ``status`` and ``code`` go to the client."""

    status: int = 500
    code: str = "internal"

    def __init__(
        self, message: str, *, field: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.headers = headers or {}

    def body(self) -> dict[str, object]:
        """The JSON error body."""
        error: dict[str, object] = {"code": self.code, "message": self.message}
        if self.field is not None:
            error["field"] = self.field
        return {"error": error}


class BadRequest(GuardError):
    """Malformed request: not JSON, wrong content type, not the protocol's shape."""

    status, code = 400, "bad_request"


class Unauthenticated(GuardError):
    """No credentials, or credentials that are not valid (unknown, revoked, expired, bad signature)."""

    status, code = 401, "unauthenticated"

    def __init__(self, message: str = "valid credentials required") -> None:
        super().__init__(message, headers={"WWW-Authenticate": 'Bearer realm="mlsecops"'})


class Forbidden(GuardError):
    """Authenticated, but not granted this model (or blocked)."""

    status, code = 403, "forbidden"


class ModelNotFound(GuardError):
    """Unknown model name or version."""

    status, code = 404, "not_found"


class RequestTimeout(GuardError):
    """The client did not send the whole request in time."""

    status, code = 408, "request_timeout"


class NotMonitored(GuardError):
    """Feedback for a guard whose policy runs no detector that takes labels."""

    status, code = 409, "not_monitored"


class PayloadTooLarge(GuardError):
    """Body over the policy's ``server.max_body_bytes``."""

    status, code = 413, "payload_too_large"


class InvalidInput(GuardError):
    """The inputs fail the model's schema or data profile; ``field`` names the offending input."""

    status, code = 422, "invalid_input"


class RateLimited(GuardError):
    """Token bucket empty or daily budget spent; ``Retry-After`` says when to come back."""

    status, code = 429, "rate_limited"

    def __init__(self, message: str, *, retry_after: float, reason: str) -> None:
        super().__init__(message, headers={"Retry-After": str(max(1, int(retry_after + 0.999)))})
        self.retry_after = retry_after
        self.reason = reason


class ModelFailed(GuardError):
    """The model raised or timed out while answering."""

    status, code = 500, "model_failed"


class Unavailable(GuardError):
    """A dependency is down (the workspace database, the upstream server); try again later."""

    status, code = 503, "unavailable"
