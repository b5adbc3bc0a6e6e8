"""Imports point downward only: a test walks every module's imports and fails on an upward one.

Layers (higher number = higher layer); a package may import its own layer's siblings only where the
architecture says so (``runtime`` may use ``registry`` and ``monitor``), never a higher layer.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "mlsecops"

LAYER = {
    "core": 0,
    "_version": 0,
    "report": 1,
    "store": 1,
    "supplychain": 2,
    "data": 2,
    "models": 2,
    "assess": 3,
    "harden": 3,
    "monitor": 3,
    "pipeline": 4,
    "registry": 4,
    "runtime": 5,
    "posture": 6,
    "cli": 7,
    "web": 7,
}
# Same-layer imports that the design allows (importer -> imported).
ALLOWED_SIDEWAYS = {
    ("report", "store"),
    ("store", "report"),
    ("supplychain", "models"),
    ("data", "models"),
    ("models", "supplychain"),
    ("assess", "harden"),
    ("harden", "assess"),
    ("monitor", "assess"),
    ("pipeline", "registry"),
    ("registry", "pipeline"),
    ("cli", "web"),
    ("web", "cli"),
}


def _package_of(module_path: Path) -> str:
    rel = module_path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py")


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
    return [(line, name) for line, name in out if name == "mlsecops" or name.startswith("mlsecops.")]


def _modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if p.parent != SRC or p.name != "__init__.py")


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_down(path: Path) -> None:
    own = _package_of(path)
    assert own in LAYER, f"package {own!r} has no layer in tests/unit/test_layers.py; add it"
    for line, name in _imports(path):
        parts = name.split(".")
        if len(parts) < 2:
            continue
        other = parts[1]
        if other == own or other == "_version":
            continue
        assert other in LAYER, f"{path.name}:{line} imports unknown package mlsecops.{other}"
        up = LAYER[other] > LAYER[own]
        sideways = LAYER[other] == LAYER[own] and (own, other) not in ALLOWED_SIDEWAYS
        assert not up, (
            f"{path.relative_to(SRC)}:{line} imports {name}: {own} may not import the higher layer {other}"
        )
        assert not sideways, (
            f"{path.relative_to(SRC)}:{line} imports {name}: {own} -> {other} is not an allowed sideways import"
        )


def test_core_imports_nothing_heavy() -> None:
    heavy = {"torch", "sqlalchemy", "alembic", "sklearn", "scipy", "rich", "typer", "jinja2", "onnx", "ray"}
    for path in (SRC / "core").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for n in names:
                if path.name == "_ray.py" and n == "ray" and node.col_offset > 0:
                    continue  # the ray engine imports Ray inside a function, when its first job runs
                assert n.split(".")[0] not in heavy, f"core/{path.name} imports heavy {n}"
