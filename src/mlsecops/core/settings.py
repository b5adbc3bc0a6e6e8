"""Settings read from the environment at the edge (CLI, web, runtime) and passed down as values.

``MLSECOPS_HOME`` is the workspace directory (default ``./.mlsecops``); ``MLSECOPS_DATABASE_URL`` points
the store at another database, for example ``postgresql+psycopg://user@host/db``, instead of the
workspace's own SQLite file. Library code never reads the environment itself.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Where the workspace lives and how to reach its database."""

    model_config = SettingsConfigDict(env_prefix="MLSECOPS_", frozen=True, extra="ignore")

    home: Path = Field(default_factory=lambda: Path.cwd() / ".mlsecops")
    """Workspace directory: database (SQLite default), ``artifacts/``, ``keys/``."""
    database_url: SecretStr | None = None
    """SQLAlchemy URL of the database; ``None`` means the workspace's SQLite file. Secret: may hold a password."""
    actor: str = Field(default="cli")
    """Name written to the audit trail for actions of this process (``MLSECOPS_ACTOR``)."""

    def workspace_exists(self) -> bool:
        """Whether a workspace is here to record in: the home directory, with its SQLite file or a
        configured database URL. The one rule for commands that use a workspace when there is one.
        """
        return self.home.is_dir() and (self.database_url is not None or (self.home / "mlsecops.db").is_file())

    def resolved_database_url(self) -> str:
        """The database URL to use: the configured one, or the workspace's SQLite file."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite:///{(self.home / 'mlsecops.db').resolve()}"
