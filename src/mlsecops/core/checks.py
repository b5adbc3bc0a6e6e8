"""The check catalogue: every scanner, data check, attack, audit and detector registers here by a stable
dotted name, so that policies, the CLI and reports refer to checks the same way.

A check is any class with a no-argument constructor and ``run(target) -> Report``::

    @register("artifact.pickle", kind=CheckKind.SCANNER, summary="Static scan of pickle opcodes")
    class PickleScanner:
        def run(self, target: Target) -> Report: ...

The catalogue holds cheap metadata and the class; heavy imports happen inside ``run``. Registration
happens when the module defining the check is imported; ``load_builtin_checks`` imports every module of
the packages that hold checks (by name, so this module imports nothing above ``core``).

Every registered check passes one contract test (``tests/contract``). To take part, a check class
offers ``contract_cases(tmp_dir) -> ContractCases``: a valid target and a corrupt one.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import logging
import pkgutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from mlsecops.core.errors import ConfigError
from mlsecops.core.findings import Report

__all__ = [
    "CHECK_PACKAGES",
    "Check",
    "CheckKind",
    "CheckSpec",
    "ContractCases",
    "Target",
    "all_checks",
    "get_check",
    "load_builtin_checks",
    "register",
    "unavailable_checks",
    "unregister",
]

CHECK_PACKAGES = (
    "mlsecops.store",
    "mlsecops.supplychain",
    "mlsecops.data",
    "mlsecops.models",
    "mlsecops.assess",
    "mlsecops.harden",
    "mlsecops.monitor",
    "mlsecops.registry",
    "mlsecops.pipeline",
)
"""Packages whose modules may register checks; ``load_builtin_checks`` imports all their modules."""


class CheckKind(StrEnum):
    """What a check does; used to group the catalogue in the CLI and reports."""

    SCANNER = "scanner"
    DATA = "data"
    ATTACK = "attack"
    AUDIT = "audit"
    DETECTOR = "detector"
    CERTIFIER = "certifier"
    TRAINER = "trainer"
    SIGNING = "signing"
    REGISTRY = "registry"
    WORKSPACE = "workspace"

    def __str__(self) -> str:
        return self.value


class Target(BaseModel):
    """What a check runs on, and the context it runs in. Built at the edge (CLI, pipeline), passed down."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    paths: tuple[Path, ...] = ()
    """The artifacts, data sets or models the check looks at."""
    options: dict[str, JsonValue] = Field(default_factory=dict)
    """Check-specific named inputs and parameters (``baseline``, ``label``, ``eps``...)."""
    seed: int | None = None
    """Random seed; the same seed gives the same report."""
    home: Path | None = None
    """Workspace directory, for checks that read or write the store."""
    database_url: str | None = None
    """Database URL of the workspace, when it is not the workspace's own SQLite file."""
    actor: str = "cli"
    """Who runs the check, for the audit trail."""
    base_dir: Path | None = None
    """Directory that relative paths in ``options`` are relative to (the pipeline file's folder)."""

    def path_option(self, name: str) -> Path | None:
        """The option ``name`` as a path, resolved against ``base_dir``; ``None`` when not given.

        Raises:
            ConfigError: the option is present but not a string.
        """
        value = self.options.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise ConfigError(f"option {name!r} must be a path string; got {type(value).__name__}")
        path = Path(value).expanduser()
        if not path.is_absolute() and self.base_dir is not None:
            path = self.base_dir / path
        return path


@runtime_checkable
class Check(Protocol):
    """Anything with ``run(target) -> Report``."""

    def run(self, target: Target) -> Report:
        """Run the check on ``target`` and return its report."""
        ...


@dataclass(frozen=True)
class ContractCases:
    """Inputs for the shared contract test of one check."""

    valid: Target
    """A target on which the check runs and returns a Report."""
    corrupt: Target
    """A corrupt or hostile target: the check must return a Report with a finding, or raise InputError."""


@dataclass(frozen=True)
class CheckSpec:
    """Catalogue entry: cheap metadata plus the class that implements the check."""

    name: str
    kind: CheckKind
    summary: str
    factory: Callable[[], Check]
    metrics: tuple[str, ...] = ()
    """Glob patterns of the metric names the check may report (``robust_accuracy@*``)."""
    module: str = field(default="")

    def create(self) -> Check:
        """Instantiate the check."""
        return self.factory()

    def declares_metric(self, metric: str) -> bool:
        """Whether ``metric`` matches one of the metric patterns this check declares."""
        return any(fnmatch.fnmatchcase(metric, pattern) for pattern in self.metrics)


_log = logging.getLogger("mlsecops.checks")
_CATALOGUE: dict[str, CheckSpec] = {}
_LOADED = False
_UNAVAILABLE: dict[str, str] = {}
"""Check modules that could not be imported: module name -> the missing third-party module."""
C = TypeVar("C")


def _valid_name(name: str) -> bool:
    parts = name.split(".")
    return len(parts) >= 2 and all(p and p.replace("_", "").isalnum() and p.islower() for p in parts)


def register(
    name: str, *, kind: CheckKind, summary: str, metrics: tuple[str, ...] = ()
) -> Callable[[type[C]], type[C]]:
    """Class decorator registering a check under a stable dotted name.

    Raises:
        ValueError: the name is not lowercase dotted, or is registered already.
    """

    def decorate(cls: type[C]) -> type[C]:
        if not _valid_name(name):
            raise ValueError(f"check names are lowercase and dotted, like 'artifact.pickle'; got {name!r}")
        if name in _CATALOGUE:
            raise ValueError(f"check {name!r} is registered already (by {_CATALOGUE[name].module})")
        if not callable(getattr(cls, "run", None)):
            raise ValueError(f"check {name!r}: {cls.__name__} has no run(target) method")
        _CATALOGUE[name] = CheckSpec(
            name=name,
            kind=kind,
            summary=summary,
            factory=cls,  # type: ignore[arg-type]  # a class with run() satisfies the Check protocol
            metrics=metrics,
            module=cls.__module__,
        )
        return cls

    return decorate


def unregister(name: str) -> None:
    """Remove a check from the catalogue (tests use it to clean up after registering fakes)."""
    _CATALOGUE.pop(name, None)


def _iter_modules(package: str) -> Iterator[str]:
    try:
        pkg = importlib.import_module(package)
    except ModuleNotFoundError as err:
        if err.name == package:
            return
        raise
    yield package
    paths = getattr(pkg, "__path__", None)
    if paths is None:
        return
    for info in pkgutil.walk_packages(paths, prefix=package + "."):
        leaf = info.name.rsplit(".", 1)[-1]
        # Migration scripts run only under Alembic, and __main__ modules only as programs.
        if ".migrations" in info.name or leaf == "__main__":
            continue
        yield info.name


def load_builtin_checks() -> None:
    """Import every module of the check packages so their ``@register`` decorators run. Idempotent."""
    global _LOADED
    if _LOADED:
        return
    for package in CHECK_PACKAGES:
        for module in _iter_modules(package):
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as err:
                # A module whose optional third-party dependency is absent registers nothing; the
                # rest of the catalogue still loads. Our own modules failing to import is a bug.
                if err.name is None or err.name.split(".")[0] == "mlsecops":
                    raise
                _UNAVAILABLE[module] = err.name
                _log.warning("checks in %s are unavailable: %s is not installed", module, err.name)
    _LOADED = True


def get_check(name: str) -> CheckSpec:
    """Look a check up by name.

    Raises:
        ConfigError: no check has that name (the message suggests close names).
    """
    load_builtin_checks()
    try:
        return _CATALOGUE[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_CATALOGUE), n=3)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ConfigError(
            f"unknown check {name!r}.{hint} `mlsecops checks` lists the registered ones."
        ) from None


def unavailable_checks() -> dict[str, str]:
    """Check modules skipped because an optional dependency is missing (module -> missing module).

    Check modules import their heavy libraries inside ``run``, so this is empty on every install; a
    module that lands here registers nothing, and ``mlsecops checks`` and the tests say so.
    """
    load_builtin_checks()
    return dict(_UNAVAILABLE)


def all_checks() -> list[CheckSpec]:
    """Every registered check, sorted by name."""
    load_builtin_checks()
    return [_CATALOGUE[n] for n in sorted(_CATALOGUE)]
