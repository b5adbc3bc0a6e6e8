"""The command table: each module registers exactly the commands ``_COMMANDS`` says, and a command
loads only its own module."""

from __future__ import annotations

import importlib
import subprocess
import sys

import typer

from mlsecops.cli.main import _COMMANDS


def _names(app: typer.Typer) -> set[str]:
    names = {c.name for c in app.registered_commands if c.name}
    names |= {g.name for g in app.registered_groups if g.name}
    return names


def test_each_module_registers_what_the_table_says() -> None:
    for module, declared in _COMMANDS.items():
        probe = typer.Typer()
        importlib.import_module(module).register(probe)
        assert _names(probe) == set(declared), f"{module} registers {_names(probe)}, table says {declared}"


def test_a_command_imports_only_its_module() -> None:
    code = (
        "import sys; from mlsecops.cli import main; main(['audit', '--help']);"
        "print(sorted(m for m in sys.modules if m.startswith('mlsecops.cli.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    loaded = out.stdout.strip().splitlines()[-1]
    assert "mlsecops.cli.audit" in loaded
    assert "mlsecops.cli.registry" not in loaded and "mlsecops.cli.robustness" not in loaded
