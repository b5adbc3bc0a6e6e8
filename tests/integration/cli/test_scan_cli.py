"""``mlsecops scan`` end to end (in-process): formats, exit codes, the JSON ``artifacts`` list."""

from __future__ import annotations

import json
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
