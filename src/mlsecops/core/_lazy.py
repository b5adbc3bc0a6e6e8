"""Lazy imports: package attributes (PEP 562) and optional libraries with an install hint.

``lazy_attributes``: a package names what it exports, the modules load on first use.
``require`` / ``missing_dependency``: a missing optional library (torch, pyarrow...) becomes one
``MissingDependencyError`` line naming the extra that installs it, ``pip install "mlsecops[torch]"``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import Any

from mlsecops.core.errors import InputError

__all__ = ["OPTIONAL_EXTRAS", "MissingDependencyError", "lazy_attributes", "missing_dependency", "require"]


def lazy_attributes(
    package: str, where: Mapping[str, str], exported: Sequence[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package``: ``where`` maps a name to the module defining it.

    Args:
        package: the package's ``__name__``.
        where: attribute name -> dotted module that defines it.
        exported: the package's ``__all__``.
    """
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(exported)

    return __getattr__, __dir__


# Optional libraries and the extra that installs each (``pip install "mlsecops[EXTRA]"``). The CLI maps
# a ModuleNotFoundError of one of these to a one-line hint; ``require`` raises the same hint up front.
# ``None``: optional but in no extra (installed by name).
OPTIONAL_EXTRAS: Mapping[str, str | None] = {
    "numpy": "ml",
    "scipy": "ml",
    "sklearn": "ml",
    "joblib": "ml",
    "torch": "torch",
    "torchvision": "torch",
    "opacus": "privacy",
    "tenseal": "he",
    "psycopg": "postgres",
    "ray": "ray",
    "blake3": "signing",
    "cyclonedx": "bom",
    "pyarrow": "data",
    "lz4": "scan",
    "onnxruntime": "onnx",
    "fastapi": "serve",
    "starlette": "serve",
    "uvicorn": "serve",
    "prometheus_client": "serve",
    "jwt": "serve",
    "skops": None,
}


class MissingDependencyError(InputError):
    """An optional library a command needs is not installed; the message names the extra to install."""

    def __init__(self, module: str, *, purpose: str = "") -> None:
        self.module = module
        self.extra = OPTIONAL_EXTRAS.get(module.split(".")[0])
        what = purpose or "this command"
        if self.extra is not None:
            hint = f'pip install "mlsecops[{self.extra}]"'
        else:
            hint = f"pip install {module.split('.')[0]}"
        super().__init__(f"{what} needs the optional package {module.split('.')[0]!r}, not installed: {hint}")


def missing_dependency(err: ImportError, *, purpose: str = "") -> MissingDependencyError | None:
    """The ``MissingDependencyError`` for ``err`` when it names a known optional library, else ``None``.

    Only a top-level optional module counts: a missing submodule of ours or of a base dependency is a
    bug, not a missing extra.
    """
    name = getattr(err, "name", None) or ""
    if isinstance(err, ModuleNotFoundError) and name.split(".")[0] in OPTIONAL_EXTRAS:
        return MissingDependencyError(name, purpose=purpose)
    return None


def require(module: str, *, purpose: str = "") -> ModuleType:
    """Import an optional library, or raise ``MissingDependencyError`` naming its extra.

    Raises:
        MissingDependencyError: the library is not installed.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        found = missing_dependency(err, purpose=purpose)
        if found is None:
            raise
        raise found from err
