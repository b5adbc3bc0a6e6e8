"""Errors raised on purpose by mlsecops.

An error means "could not run" (the CLI prints its one-line message and exits 2); a finding means "ran
and found" (exit 1 when the policy fails). Every error carries its user-facing text: what was expected,
what came, and how to change it.

The tree::

    MlsecopsError
     ├── InputError            corrupt file, wrong shape, hostile archive, missing path
     ├── ConfigError           unknown stage or check, bad pipeline file, policy naming an unknown metric
     ├── WorkspaceError        missing or corrupt workspace
     │    └── SchemaTooNewError  database written by a newer mlsecops
     ├── VerificationError     signature, digest or audit-chain mismatch
     ├── PermissionDenied      the actor could not be identified, or may not act
     │    └── GovernanceRefusal  a rule refused it: role, unmet production bar, four eyes (exit 1)
     ├── ConflictError         a concurrent change won; retry against the new state
     └── NotFittedError        an analysis used before ``fit`` (also ValueError, AttributeError)
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "ConflictError",
    "GovernanceRefusal",
    "InputError",
    "MlsecopsError",
    "NotFittedError",
    "PermissionDenied",
    "SchemaTooNewError",
    "VerificationError",
    "WorkspaceError",
]


class MlsecopsError(Exception):
    """Base of every error mlsecops raises on purpose.

    Subclasses keep the message to one line that a user can act on; the CLI prints it and exits 2.
    """

    exit_code: int = 2

    def diagnostics(self) -> str:
        """Return the one-line, user-facing text of this error."""
        text = str(self) or type(self).__name__
        return " ".join(text.split())


class InputError(MlsecopsError):
    """An input could not be used: corrupt or truncated file, wrong shape, hostile archive, missing path."""


class ConfigError(MlsecopsError):
    """A configuration is wrong: unknown stage or check, malformed pipeline, unknown metric in a policy."""


class WorkspaceError(MlsecopsError):
    """The workspace is missing, corrupt or unreachable."""


class SchemaTooNewError(WorkspaceError):
    """The workspace database was written by a newer mlsecops; upgrade mlsecops to open it."""


class VerificationError(MlsecopsError):
    """A security verification failed: signature, digest or audit-chain mismatch.

    A verdict, not a bad argument: checks turn it into a critical finding.
    """


class PermissionDenied(MlsecopsError):
    """The actor could not be identified (wrong or revoked key), or may not act."""


class GovernanceRefusal(PermissionDenied):
    """A governance rule refused the action: the role, an unmet production requirement, four eyes.

    A verdict of policy, like a failed gate, so the CLI exits 1; an unknown or revoked key stays a
    ``PermissionDenied`` (exit 2: the command could not run as anyone).
    """

    exit_code = 1


class ConflictError(MlsecopsError):
    """A concurrent change won the race; the caller should re-read the state and decide again."""


class NotFittedError(MlsecopsError, ValueError, AttributeError):
    """An analysis was used before ``fit`` learned its state."""
