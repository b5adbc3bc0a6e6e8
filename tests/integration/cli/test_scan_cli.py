"""``mlsecops scan`` end to end (in-process): formats, exit codes, the JSON ``artifacts`` list."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

Cli = Callable[..., Any]

_SYSTEM = b"\x80\x02cos\nsystem\n\x8c\x02id\x85R."
_BENIGN = b"\x80\x02}\x8c\x01wK\x01s."


def _tree(root: Path) -> None:
    (root / "models").mkdir()
    (root / "models" / "good.pkl").write_bytes(_BENIGN)
    (root / "models" / "bad.bin").write_bytes(_SYSTEM)


def test_scan_json_lists_every_artifact(cli: Cli, tmp_path: Path) -> None:
    _tree(tmp_path)
    r = cli("scan", "models", "--format", "json", "--quiet")
    assert r.code == 1
    report = json.loads(r.out)
    arts = {Path(a["path"]).name: a for a in report["artifacts"]}
    assert arts["bad.bin"]["verdict"] == "malicious" and arts["bad.bin"]["format"] == "pickle"
    assert arts["bad.bin"]["findings"][0]["evidence"]["callable"] == "os.system"
    assert len(arts["bad.bin"]["sha256"]) == 64
    assert arts["good.pkl"]["verdict"] == "safe"
    assert report["verdict"] == "malicious"


def test_scan_exit_codes(cli: Cli, tmp_path: Path) -> None:
    _tree(tmp_path)
    assert cli("scan", "models/good.pkl", "-q").code == 0
    assert cli("scan", "models/bad.bin", "-q", "--fail-on", "never").code == 0
    assert cli("scan", "models/bad.bin", "-q", "--fail-on", "critical").code == 1
    missing = cli("scan", "nope.pt")
    assert missing.code == 2 and "nope.pt" in missing.err and "Traceback" not in missing.err
    assert cli("scan", "models", "--fail-on", "bogus").code == 2


def test_scan_sarif_and_html_to_file(cli: Cli, tmp_path: Path) -> None:
    _tree(tmp_path)
    assert cli("scan", "models", "-q", "-f", "sarif", "-o", "out.sarif").code == 1
    sarif = json.loads((tmp_path / "out.sarif").read_text())
    assert sarif["version"] == "2.1.0" and sarif["runs"][0]["results"]
    assert cli("scan", "models", "-q", "-f", "html", "-o", "out.html").code == 1
    assert "os.system" in (tmp_path / "out.html").read_text()
    text = cli("scan", "models", "-q")
    assert "malicious" in text.out and "bad.bin" in text.out


def test_json_fast_path_equals_the_report_renderer(cli: Cli, tmp_path: Path) -> None:
    """``scan -f json`` writes the scanner's document directly; it must equal the Report rendered as JSON."""
    from mlsecops.core.findings import REPORT_SCHEMA
    from mlsecops.report import Format, render
    from mlsecops.supplychain.scanner import scan_document, scan_paths, scan_report
    from mlsecops.supplychain.scanner._document import REPORT_SCHEMA as DOC_SCHEMA

    _tree(tmp_path)
    results = scan_paths([Path("models")], workers=1)  # the cli fixture runs in tmp_path
    doc = scan_document(results, subject="s")
    rendered = json.loads(render(scan_report(results, subject="s"), Format.JSON))
    for stamp in ("started", "finished"):
        doc.pop(stamp), rendered.pop(stamp)
    assert doc == rendered and DOC_SCHEMA == REPORT_SCHEMA
    fast = json.loads(
        cli("scan", "models", "-q", "-f", "json", "-o", "r.json").err and (tmp_path / "r.json").read_text()
    )
    assert fast["findings"] == rendered["findings"] and fast["counts"] == rendered["counts"]
    # severities are names everywhere, including inside the artifacts list
    assert {f["severity"] for a in fast["artifacts"] for f in a["findings"]} == {"critical"}
    assert (tmp_path / "r.json").stat().st_mode & 0o777 == 0o600


def test_json_scan_imports_no_cli_or_model_stack(tmp_path: Path) -> None:
    _tree(tmp_path)
    code = (
        "import sys; from mlsecops.cli import main; rc = main(['scan', sys.argv[1], '-q', '-f', 'json']);"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'typer', 'click', 'rich', 'pydantic', 'numpy'});"
        "print(rc, heavy, file=sys.stderr)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "models")], capture_output=True, text=True, timeout=60
    )
    assert out.stderr.strip().splitlines()[-1] == "1 []", out.stderr
    assert json.loads(out.stdout)["verdict"] == "malicious"


def test_scan_help_debug_and_bad_options(cli: Cli, tmp_path: Path) -> None:
    _tree(tmp_path)
    assert "--fail-on" in cli("scan", "--help").out
    assert "scan" in cli("--help").out
    assert cli("--debug", "scan", "models/good.pkl", "-q").code == 0
    for bad in (["--workers", "0"], ["--max-seconds", "x"], ["-f", "yaml"], ["--nope"]):
        r = cli("scan", "models", *bad)
        assert r.code == 2 and "Traceback" not in r.err and "usage:" in r.err.lower(), bad
