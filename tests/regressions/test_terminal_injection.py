"""Hostile text never reaches the terminal raw, and names that are not UTF-8 never stop a report
(issue 11.16, 11.17).

Planted: OSC 52 (rewrite the clipboard), CSI 2J (clear the screen), a bare C1 CSI, BEL, a bidi
override, and rich markup (``[bold red]``) in file names, CSV headers, error messages and audit events.
Asserted: the output holds none of them raw (colour codes rich adds itself are removed first), the
markup is printed as text, and plain UTF-8 names (é, 中文) are shown as they are.
"""

from __future__ import annotations

import json
import os
import pickle
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

Cli = Callable[..., Any]

OSC52 = "clip\x1b]52;c;cm0gLXJmIH4=\x07"
CLEAR = "cls\x1b[2J\x9b2J"
BIDI = "rtl\u202egnp"
MARKUP = "[bold red]boom"  # no "/": it goes into file names
BENIGN = "modèle-中文"
RAW = ("\x1b]", "\x1b[2J", "\x07", "\x9b", "\u202e")
_SGR = re.compile(r"\x1b\[[0-9;]*m")  # the colours rich draws itself


@pytest.fixture
def colour(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Rich consoles that believe they draw on a colour terminal (built afresh for the test)."""
    from mlsecops.cli import _common

    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setattr(_common, "_consoles", {})
    yield


def _clean(text: str) -> str:
    """``text`` without rich's own colour codes; must hold no other control sequence."""
    return _SGR.sub("", text)


def _assert_safe(text: str) -> None:
    rest = _clean(text)
    for raw in RAW:
        assert raw not in rest, (raw, rest[:2000])
    assert "\x1b" not in rest, rest[:2000]


def _pickles(folder: Path, names: list[str]) -> None:
    folder.mkdir()
    for name in names:
        (folder / f"{name}.pkl").write_bytes(pickle.dumps({"a": 1}))


def test_scan_table_and_report_show_hostile_names_as_text(cli: Cli, tmp_path: Path, colour: None) -> None:
    _pickles(tmp_path / "m", [OSC52, CLEAR, BIDI, MARKUP, BENIGN])
    r = cli("scan", "m", "-q")
    assert r.code == 0, r.err
    _assert_safe(r.out + r.err)
    out = _clean(r.out)
    assert MARKUP in out  # printed, not interpreted
    assert "\\x1b]52" in out and "\\u202e" in out  # shown as escapes
    assert f"{BENIGN}.pkl" in out  # benign twin: as is


def test_error_lines_quote_hostile_input_safely(cli: Cli, colour: None) -> None:
    r = cli("scan", f"{CLEAR}{MARKUP}.pkl", "-q")
    assert r.code == 2
    _assert_safe(r.err)
    assert MARKUP in r.err
    usage = cli("audit", "log", "--limit", CLEAR)  # click's own usage error quotes the value
    assert usage.code == 2
    _assert_safe(usage.err)


def test_csv_headers_in_profile_and_check(cli: Cli, tmp_path: Path, colour: None) -> None:
    header = f"{OSC52},{CLEAR},{MARKUP},{BENIGN},label"
    rows = "\n".join(f"{i},{i % 3},{i * 2},{i % 5},{i % 2}" for i in range(50))
    (tmp_path / "d.csv").write_text(f"{header}\n{rows}\n", encoding="utf-8")
    r = cli("data", "profile", "d.csv", "--label", "label", "-f", "text")
    assert r.code == 0, r.err
    _assert_safe(r.out + r.err)
    assert MARKUP in _clean(r.out) and BENIGN in r.out
    (tmp_path / "e.csv").write_text(f"other{CLEAR},label\n1,0\n", encoding="utf-8")
    assert cli("data", "profile", "d.csv", "--label", "label", "-o", "base.json").code == 0
    bad = cli("data", "check", "e.csv", "--baseline", "base.json", "--fail-on", "never")
    assert bad.code == 0, bad.err
    assert "\\x1b[2J" in bad.out  # the new column is named, as an escape
    _assert_safe(bad.out + bad.err)


def test_audit_log_shows_hostile_events_as_text(cli: Cli, tmp_path: Path, colour: None) -> None:
    assert cli("init").code == 0
    (tmp_path / "d.csv").write_text("a,label\n1,0\n2,1\n", encoding="utf-8")
    r = cli("data", "register", "d.csv", "--name", f"{OSC52}{MARKUP}")
    _assert_safe(r.out + r.err)
    log = cli("audit", "log")
    assert log.code == 0, log.err
    _assert_safe(log.out)
    if r.code == 0:  # a registry that refuses the name is fine too; one that takes it shows it safely
        assert MARKUP in _clean(log.out)


# --------------------------------------------------------------------- names that are not UTF-8


@pytest.fixture
def not_utf8(tmp_path: Path) -> Path:
    folder = tmp_path / "m"
    folder.mkdir()
    name = os.fsdecode(b"bad\xff\xfe.pkl")
    (folder / name).write_bytes(b"cos\nsystem\n(S'echo hi'\ntR.")  # a finding names the file
    (folder / "fine.pkl").write_bytes(pickle.dumps({"a": 1}))
    return folder


@pytest.mark.parametrize("suffix", ["txt", "json", "sarif", "html"])
def test_not_utf8_name_is_reported_in_every_format(cli: Cli, not_utf8: Path, suffix: str) -> None:
    out = not_utf8.parent / f"report.{suffix}"
    r = cli("scan", "m", "-q", "-o", str(out))
    assert r.code == 1, r.err  # the malicious file is found; the odd name does not stop the report
    assert "internal error" not in r.err
    text = out.read_bytes().decode("utf-8")  # valid UTF-8
    assert "bad\\xff\\xfe" in text.replace("\\\\", "\\") or "bad%FF%FE" in text
    if suffix in ("json", "sarif"):
        json.loads(text)


def test_not_utf8_name_on_the_terminal(cli: Cli, not_utf8: Path) -> None:
    r = cli("scan", "m", "-q")
    assert r.code == 1 and "internal error" not in r.err
    assert "bad\\xff\\xfe" in r.out and "\udcff" not in r.out
