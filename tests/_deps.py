"""``require(module, extra)``: import an optional test dependency, or skip visibly, or fail under CI.

``pytest.importorskip`` in a conftest silently drops every test below it when an extra is missing,
including the benign halves of detector tests. Here a missing extra skips with the extra to install,
and under CI (``CI=true``, where the project's own files install every extra) it fails instead: a
green CI run has run every test.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


def require(module: str, extra: str) -> ModuleType:
    """Import ``module``; skip (locally) or fail (under CI) naming ``mlsecops[extra]`` when it is missing."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        hint = f"{module} is not installed; pip install 'mlsecops[{extra}]' ({err})"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run every test: {hint}", pytrace=False)
        pytest.skip(hint, allow_module_level=True)
