"""Every registered check and every alert kind a detector can raise maps to ATLAS or OWASP ids."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mlsecops.core import taxonomy
from mlsecops.core.checks import all_checks, load_builtin_checks

SRC = Path(__file__).resolve().parents[3] / "src" / "mlsecops"


def _alert_kinds() -> set[str]:
    """Alert kinds as the monitor and runtime code raise them: ``Alert(kind="...")`` and detector
    classes' ``name = "..."`` (their alerts use ``kind=self.name``), and ``*_KIND = "..."`` constants.
    """
    kinds: set[str] = set()
    for path in [*(SRC / "monitor").glob("*.py"), *(SRC / "runtime").glob("*.py")]:
        text = path.read_text(encoding="utf-8")
        for block in re.finditer(r"Alert\(\s*kind=\"([a-z_.]+)\"", text):
            kinds.add(block.group(1))
        if "kind=self.name" in text:
            kinds.update(re.findall(r"^    name = \"([a-z_.]+)\"", text, re.MULTILINE))
        # dotted constants only: ``HARD_KIND = "hard"`` names a simulated client, not an alert
        kinds.update(re.findall(r"^[A-Z_]*_KIND = \"([a-z_]+\.[a-z_.]+)\"", text, re.MULTILINE))
    return kinds


def test_alert_kinds_found_in_source() -> None:
    kinds = _alert_kinds()
    # the detectors the guard runs today; the scan must find at least these or it scans nothing
    assert {"extraction", "query_attack", "adversarial_input", "drift", "performance", "fairness"} <= kinds


def test_every_registered_check_maps() -> None:
    load_builtin_checks()
    names = [spec.name for spec in all_checks()]
    assert len(names) >= 20
    for name in names:
        atlas, owasp = taxonomy.classify(name)
        assert atlas or owasp, f"check {name} maps to no ATLAS or OWASP entry in core/taxonomy.py"


@pytest.mark.parametrize("kind", sorted(_alert_kinds()))
def test_every_alert_kind_maps_or_is_operational(kind: str) -> None:
    atlas, owasp = taxonomy.classify(kind)
    assert atlas or owasp or kind in taxonomy.OPERATIONAL_KINDS, f"alert kind {kind} maps to nothing"


def test_every_id_is_a_known_entry() -> None:
    for name in taxonomy.mapped_names():
        atlas, owasp = taxonomy.classify(name)
        assert all(i in taxonomy.ATLAS for i in atlas), name
        assert all(i in taxonomy.OWASP for i in owasp), name
    assert sorted(taxonomy.OWASP) == [f"ML{i:02d}" for i in range(1, 11)]


def test_finding_checks_fall_under_their_family() -> None:
    assert taxonomy.classify("artifact.pickle") == taxonomy.classify("artifact.scan")
    assert taxonomy.classify("data.check.bias")[1] == ("ML02",)
    assert taxonomy.classify("no.such.thing") == ((), ())
    atlas, _ = taxonomy.classify("artifact.pickle", atlas="AML.T0018")
    assert atlas[0] == "AML.T0018"


def test_extraction_is_model_theft() -> None:
    atlas, owasp = taxonomy.classify("extraction")
    assert "AML.T0024.002" in atlas and owasp == ("ML05",)
    assert [t.name for t in taxonomy.describe(owasp)] == ["Model Theft"]
