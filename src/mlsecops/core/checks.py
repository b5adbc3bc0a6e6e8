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

Options: a check reads ``Target.options`` only through the typed readers on ``Target`` (``opt_str``,
``opt_int``, ``opt_float``, ``opt_bool``, ``opt_choice``, ``opt_list``, ``opt_float_list``,
``opt_int_list``, ``path_option``), so one YAML or CLI value means the same in every stage: ``"10"`` and ``10`` are the
integer 10, ``"0.1,0.2"``, ``[0.1, 0.2]`` and ``0.1`` are the same float list, ``3`` is the name ``"3"``.
A wrong value is a ``ConfigError`` naming the option, the type expected and the value given. A check
declares the keys it accepts (``register(..., options=(...))``); ``CheckSpec.check_options`` refuses
any other key, suggesting the closest allowed one: the pipeline loader calls it before any stage runs,
and ``register`` wraps the check's ``run`` so that every other caller (CLI, library) gets it too.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import importlib
import logging
import math
import pkgutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol, TypeVar, overload, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from mlsecops.core.errors import ConfigError
from mlsecops.core.findings import Report

__all__ = [
    "CHECK_PACKAGES",
    "MAX_OPTION_LIST",
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


MAX_OPTION_LIST = 10_000
"""Most items an option list (``eps``, ``detectors``...) may hold: bounds the work a hostile file buys."""


def _shown(value: object) -> str:
    """``value`` for an error message: its repr, cut to a readable length."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _bad(name: str, expected: str, value: object) -> ConfigError:
    return ConfigError(f"option {name!r} must be {expected}; got {_shown(value)} ({type(value).__name__})")


def _range(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f" in [{lo:g}, {hi:g}]"
    if lo is not None:
        return f" >= {lo:g}"
    return f" <= {hi:g}" if hi is not None else ""


def _check_range(
    name: str, number: float, given: object, expected: str, lo: float | None, hi: float | None
) -> None:
    if (lo is not None and number < lo) or (hi is not None and number > hi):
        raise _bad(name, expected + _range(lo, hi), given)


def _as_float(name: str, value: object, expected: str) -> float:
    """An int, float or numeric string as a finite float; booleans and anything else are refused."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _bad(name, expected, value)
    try:
        out = float(value.strip()) if isinstance(value, str) else float(value)
    except (ValueError, OverflowError):
        raise _bad(name, expected, value) from None
    if not math.isfinite(out):
        raise _bad(name, expected, value)
    return out


def _items(value: object) -> list[object]:
    """``"a,b"``, ``["a", "b"]`` or a single scalar as a list (empty items dropped)."""
    if isinstance(value, str):
        items: list[object] = [v.strip() for v in value.split(",")]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        items = [value]
    return [v for v in items if not (isinstance(v, str) and not v)]


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

    def _given(self, name: str) -> JsonValue:
        """The raw option, or ``None`` when absent, null or the empty string (all mean "not given")."""
        value = self.options.get(name)
        return None if value == "" else value

    @overload
    def opt_str(self, name: str, default: str) -> str: ...
    @overload
    def opt_str(self, name: str, default: None = None) -> str | None: ...
    def opt_str(self, name: str, default: str | None = None) -> str | None:
        """A name or text option; a number is taken as its text (``label: 3`` is the column ``"3"``).

        Raises:
            ConfigError: a boolean, list or mapping.
        """
        value = self._given(name)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise _bad(name, "a string", value)
        return value if isinstance(value, str) else str(value)

    @overload
    def opt_choice(self, name: str, choices: Sequence[str], default: str) -> str: ...
    @overload
    def opt_choice(self, name: str, choices: Sequence[str], default: None = None) -> str | None: ...
    def opt_choice(self, name: str, choices: Sequence[str], default: str | None = None) -> str | None:
        """A string option that must be one of ``choices``.

        Raises:
            ConfigError: any other value.
        """
        value = self.opt_str(name)
        if value is None:
            return default
        if value not in choices:
            raise _bad(name, "one of " + ", ".join(choices), value)
        return value

    @overload
    def opt_int(self, name: str, default: int, *, lo: int | None = None, hi: int | None = None) -> int: ...
    @overload
    def opt_int(
        self, name: str, default: None = None, *, lo: int | None = None, hi: int | None = None
    ) -> int | None: ...
    def opt_int(
        self, name: str, default: int | None = None, *, lo: int | None = None, hi: int | None = None
    ) -> int | None:
        """An integer option (``10``, ``10.0`` or ``"10"``), within ``[lo, hi]`` when given.

        Raises:
            ConfigError: not a whole number, a boolean, or out of range.
        """
        value = self._given(name)
        if value is None:
            return default
        expected = "an integer"
        number = _as_float(name, value, expected + _range(lo, hi))
        if not number.is_integer():
            raise _bad(name, expected, value)
        _check_range(name, number, value, expected, lo, hi)
        return int(number)

    @overload
    def opt_float(
        self, name: str, default: float, *, lo: float | None = None, hi: float | None = None
    ) -> float: ...
    @overload
    def opt_float(
        self, name: str, default: None = None, *, lo: float | None = None, hi: float | None = None
    ) -> float | None: ...
    def opt_float(
        self, name: str, default: float | None = None, *, lo: float | None = None, hi: float | None = None
    ) -> float | None:
        """A finite number option (``0.1`` or ``"0.1"``), within ``[lo, hi]`` when given.

        Raises:
            ConfigError: not a finite number, a boolean, or out of range.
        """
        value = self._given(name)
        if value is None:
            return default
        expected = "a number"
        number = _as_float(name, value, expected + _range(lo, hi))
        _check_range(name, number, value, expected, lo, hi)
        return number

    def opt_bool(self, name: str, default: bool = False) -> bool:
        """A yes/no option: ``true``/``false`` (YAML booleans, or those words as strings).

        Raises:
            ConfigError: any other value (``1``, ``"yes please"``...).
        """
        value = self._given(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise _bad(name, "true or false", value)

    def opt_list(self, name: str, *, lower: bool = False) -> list[str]:
        """A list of names: ``"a,b"``, ``["a", "b"]`` or ``"a"``; empty when not given.

        Raises:
            ConfigError: an item is not a string or number, or there are too many items.
        """
        value = self._given(name)
        if value is None:
            return []
        out = []
        for item in self._bounded(name, _items(value)):
            if isinstance(item, bool) or not isinstance(item, str | int | float):
                raise _bad(name, "a list of names", value)
            text = str(item).strip()
            if text:
                out.append(text.lower() if lower else text)
        return out

    def opt_float_list(self, name: str, *, lo: float | None = None, hi: float | None = None) -> list[float]:
        """A list of numbers: ``"0.1,0.2"``, ``[0.1, 0.2]``, ``0.1`` or ``"0.1"``; empty when not given.

        Raises:
            ConfigError: an item is not a finite number in ``[lo, hi]``, or there are too many items.
        """
        value = self._given(name)
        if value is None:
            return []
        expected = "numbers like 0.1,0.2" + _range(lo, hi)
        out = []
        for item in self._bounded(name, _items(value)):
            number = _as_float(name, item, expected)
            _check_range(name, number, item, expected, lo, hi)
            out.append(number)
        return out

    def opt_int_list(self, name: str, *, lo: int | None = None, hi: int | None = None) -> list[int]:
        """A list of whole numbers (``"0,3"``, ``[0, 3]``, ``3``); empty when not given.

        Raises:
            ConfigError: an item is not a whole number in ``[lo, hi]``, or there are too many items.
        """
        expected = "whole numbers like 0,3" + _range(lo, hi)
        out = []
        for number in self.opt_float_list(name, lo=lo, hi=hi):
            if not number.is_integer():
                raise _bad(name, expected, number)
            out.append(int(number))
        return out

    def _bounded(self, name: str, items: list[object]) -> list[object]:
        if len(items) > MAX_OPTION_LIST:
            raise ConfigError(f"option {name!r} holds {len(items)} items; at most {MAX_OPTION_LIST}")
        return items

    def path_option(self, name: str) -> Path | None:
        """The option ``name`` as a path, resolved against ``base_dir``; ``None`` when not given.

        Raises:
            ConfigError: the option is present but not a string.
        """
        value = self._given(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise _bad(name, "a path string", value)
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
    options: tuple[str, ...] | None = None
    """The option keys the check accepts; ``None`` (checks registered by tests) accepts any."""

    def check_options(self, options: Mapping[str, object], *, where: str = "") -> None:
        """Refuse option keys the check does not accept, naming the allowed ones and the closest.

        Raises:
            ConfigError: an unknown key.
        """
        if self.options is None:
            return
        unknown = sorted(str(k) for k in options if k not in self.options)
        if not unknown:
            return
        key = unknown[0]
        close = difflib.get_close_matches(key, self.options, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        allowed = ", ".join(sorted(self.options)) or "none"
        prefix = f"{where}: " if where else ""
        raise ConfigError(
            f"{prefix}check {self.name} has no option {key!r}.{hint} Allowed options: {allowed}"
        )

    def create(self) -> Check:
        """Instantiate the check."""
        return self.factory()

    def declares_metric(self, metric: str) -> bool:
        """Whether ``metric`` matches one of the metric patterns this check declares."""
        return any(fnmatch.fnmatchcase(metric, pattern) for pattern in self.metrics)


_log = logging.getLogger("mlsecops.checks")
# A library's messages go where its application sends them (the CLI's --debug, a server's logging
# config, pytest's caplog); without a handler they are not printed by logging's last resort.
logging.getLogger("mlsecops").addHandler(logging.NullHandler())
_CATALOGUE: dict[str, CheckSpec] = {}
_LOADED = False
_UNAVAILABLE: dict[str, str] = {}
"""Check modules that could not be imported: module name -> the missing third-party module."""
C = TypeVar("C")


def _valid_name(name: str) -> bool:
    parts = name.split(".")
    return len(parts) >= 2 and all(p and p.replace("_", "").isalnum() and p.islower() for p in parts)


_BY_CLASS: dict[type, CheckSpec] = {}
"""Check class -> its catalogue entry (a subclass registered under its own name has its own entry)."""
_VALIDATES = "__mlsecops_validates_options__"
_RUN = "run"


def _validating(run: Callable[..., Report], name: str) -> Callable[..., Report]:
    """``run`` preceded by the option-key check, so every caller (pipeline, CLI, library) gets it."""

    @functools.wraps(run)
    def run_checked(self: object, target: Target) -> Report:
        spec = _BY_CLASS.get(type(self)) or _CATALOGUE.get(name)
        if spec is not None:
            spec.check_options(target.options)
        return run(self, target)

    setattr(run_checked, _VALIDATES, True)
    return run_checked


def register(
    name: str,
    *,
    kind: CheckKind,
    summary: str,
    metrics: tuple[str, ...] = (),
    options: tuple[str, ...] | None = None,
) -> Callable[[type[C]], type[C]]:
    """Class decorator registering a check under a stable dotted name.

    ``options`` lists the option keys the check reads; pipelines and the CLI refuse any other.

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
        spec = CheckSpec(
            name=name,
            kind=kind,
            summary=summary,
            factory=cls,  # type: ignore[arg-type]  # a class with run() satisfies the Check protocol
            metrics=metrics,
            module=cls.__module__,
            options=options,
        )
        _CATALOGUE[name] = spec
        _BY_CLASS[cls] = spec
        run = getattr(cls, _RUN)
        if not getattr(run, _VALIDATES, False):
            setattr(cls, _RUN, _validating(run, name))
        return cls

    return decorate


def unregister(name: str) -> None:
    """Remove a check from the catalogue (tests use it to clean up after registering fakes)."""
    spec = _CATALOGUE.pop(name, None)
    if spec is not None:
        _BY_CLASS.pop(spec.factory, None)  # type: ignore[call-overload]  # the factory is the class


def _iter_modules(package: str) -> Iterator[str]:
    try:
        pkg = importlib.import_module(package)
    except ModuleNotFoundError as err:
        if err.name == package:
            return
        if err.name is None or err.name.split(".")[0] == "mlsecops":
            raise
        # the package itself needs an optional library (mlsecops.data needs numpy): none of its
        # checks can register, and get_check names the extra for any of them
        _UNAVAILABLE[package] = err.name
        _log.warning("checks in %s are unavailable: %s is not installed", package, err.name)
        return
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
        missing = _missing_for(name)
        if missing is not None:
            from mlsecops.core._lazy import MissingDependencyError

            raise MissingDependencyError(missing, purpose=f"the check {name!r}") from None
        close = difflib.get_close_matches(name, list(_CATALOGUE), n=3)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ConfigError(
            f"unknown check {name!r}.{hint} `mlsecops checks` lists the registered ones."
        ) from None


def _missing_for(name: str) -> str | None:
    """The missing library behind an unknown check name, when modules were skipped for one: the
    skipped module of the package the name points at (``data.poison`` -> ``mlsecops.data``), else
    any skipped module's (a name that matches nothing registered may live there).
    """
    package = f"mlsecops.{name.split('.')[0]}"
    skipped = sorted(_UNAVAILABLE.items())
    for module, lib in skipped:
        if module == package or module.startswith(f"{package}."):
            return lib
    return skipped[0][1] if skipped else None


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
