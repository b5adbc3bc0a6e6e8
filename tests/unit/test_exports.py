"""Each package's ``__all__`` is honest: every name exists, and nothing public is left out."""

from __future__ import annotations

import importlib

import pytest

PACKAGES = [
    "mlsecops.core",
    "mlsecops.store",
    "mlsecops.report",
    "mlsecops.pipeline",
    "mlsecops.cli",
    "mlsecops.registry",
    "mlsecops.supplychain",
    "mlsecops.supplychain.signing",
    "mlsecops.supplychain.scanner",
    "mlsecops.data",
    "mlsecops.models",
    "mlsecops.assess",
    "mlsecops.harden",
    "mlsecops.monitor",
    "mlsecops.runtime",
    "mlsecops.posture",
    "mlsecops.web",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_names_exist_once(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    for attr in exported:
        assert hasattr(module, attr), f"{name}.__all__ names missing {attr}"
    assert len(set(exported)) == len(exported), f"{name}.__all__ repeats a name"


@pytest.mark.parametrize("name", PACKAGES)
def test_public_names_are_exported(name: str) -> None:
    module = importlib.import_module(name)
    public = {
        n
        for n, v in vars(module).items()
        if not n.startswith("_") and getattr(v, "__module__", "").startswith(name) and callable(v)
    }
    assert public <= set(module.__all__), (
        f"{name} defines public names missing from __all__: {public - set(module.__all__)}"
    )
