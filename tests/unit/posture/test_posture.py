"""Postures from real registrations, real pipeline runs and stored alerts."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from tests.unit.posture.conftest import World

from mlsecops.core.errors import InputError
from mlsecops.core.severity import Severity
from mlsecops.monitor.alerts import AlertStore
from mlsecops.monitor.interface import Alert
from mlsecops.posture import all_postures, at_time, charts, model_posture, production_history, trends
from mlsecops.runtime.decisions import DecisionLog
from mlsecops.runtime.policy import LoggingPolicy

SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
"""Tests that add nothing on PostgreSQL (its JSON path runs in the two tests left on both)."""

PARTS = [
    "scan",
    "signature",
    "bom",
    "data",
    "robustness",
    "privacy",
    "fairness",
    "drift",
    "alerts",
    "gate",
    "approvals",
]


def test_clean_signed_gated_version_is_good_and_every_part_explained(world: World) -> None:
    version = world.clean_version("fraud")
    p = model_posture(world.ws, "fraud", version)
    assert [part.name for part in p.parts] == PARTS
    assert p.grade == "good" and p.score is not None and p.score >= 80
    status = {part.name: part.status for part in p.parts}
    for name in ("scan", "signature", "bom", "data", "alerts", "gate", "approvals"):
        assert status[name] == "ok", (name, p.part(name).summary)
    for part in p.parts:
        assert part.summary.endswith(".") and len(part.summary) > 20, part
        assert (part.score is None) == (part.status == "missing")
    assert "release" in p.part("signature").summary
    assert p.part("gate").source.startswith("run ")
    assert p.part("data").source.endswith("stage data")
    assert p.part("data").evidence["rows"] == 284  # read from the stored report (569 rows, every other one)
    assert p.part("bom").evidence["training_data"] == 1
    assert p.open_alerts == 0 and p.open_incidents == 0
    doc = p.to_dict()
    assert set(doc) == {
        "model",
        "version",
        "score",
        "grade",
        "aliases",
        "registered",
        "parts",
        "open_alerts",
        "open_incidents",
    }
    assert set(doc["parts"][0]) == {
        "name",
        "status",
        "score",
        "weight",
        "summary",
        "evidence",
        "source",
        "findings",
    }


@SQLITE
def test_missing_parts_say_missing_and_do_not_lower_the_score(world: World) -> None:
    version = world.clean_version("fraud")
    p = model_posture(world.ws, "fraud", version)
    for name in ("robustness", "privacy", "fairness", "drift"):
        part = p.part(name)
        assert part.status == "missing" and part.score is None
        assert part.summary.startswith("missing:"), part.summary
    known = [x for x in p.parts if x.score is not None]
    assert p.score == round(sum(x.score * x.weight for x in known) / sum(x.weight for x in known))  # type: ignore[operator]


def test_malicious_scan_failing_gate_and_extraction_alert_make_it_poor(world: World) -> None:
    good = world.clean_version("fraud")
    model = world.model("fraud-bad", 7, payload=True)  # the release folder carries a malicious pickle
    bad = world.regs["deployer"].register("fraud", model).version
    world.run(model)  # the scan stage reads the whole release folder and fails the gate
    world.regs["admin"].promote("fraud", good, to="production")
    AlertStore(world.ws).record(
        Alert(
            kind="extraction",
            principal="mallory",
            model="fraud",
            severity=Severity.HIGH,
            query_index=900,
            time=time.time(),
            evidence={"version": str(bad), "queries": 900},
        )
    )
    p = model_posture(world.ws, "fraud", bad)
    assert p.grade == "poor"
    assert p.part("scan").status == "fail"
    scan_ids = {i for f in p.part("scan").findings for i in f.atlas}
    assert "AML.T0011.000" in scan_ids
    assert any("ML06" in f.owasp for f in p.part("scan").findings)
    assert p.part("gate").status == "fail" and "scan: max_severity low" in p.part("gate").summary
    assert p.part("gate").findings[0].owasp == ("ML06",)
    alerts = p.part("alerts")
    assert alerts.status == "fail" and p.open_alerts == 1
    assert "AML.T0024.002" in alerts.findings[0].atlas and alerts.findings[0].owasp == ("ML05",)
    assert p.part("signature").status == "ok"  # what is fine stays fine
    # the good version is not blamed for the other version's alert or scan
    clean = model_posture(world.ws, "fraud", good)
    assert clean.grade == "good" and clean.open_alerts == 0
    assert clean.aliases == ("production",)


@SQLITE
def test_unsigned_unapproved_version_warns(world: World) -> None:
    model = world.model("plain", 3, sign=False)
    version = world.regs["deployer"].register("plain", model).version
    p = model_posture(world.ws, "plain", version)
    assert p.part("signature").status == "warn" and "not signed" in p.part("signature").summary
    assert p.part("approvals").status == "warn"
    assert p.part("gate").status == "missing"
    assert p.grade in ("fair", "poor") and p.grade != "good"


@SQLITE
def test_all_postures_lists_every_version(world: World) -> None:
    world.clean_version("a")
    world.clean_version("a", seed=1)
    world.clean_version("b")
    got = [(p.model, p.version) for p in all_postures(world.ws)]
    assert got == [("a", 1), ("a", 2), ("b", 1)]


@SQLITE
def test_unknown_model_or_version_is_an_input_error(world: World) -> None:
    world.clean_version("a")
    with pytest.raises(InputError, match="no registered model"):
        model_posture(world.ws, "nope", 1)
    with pytest.raises(InputError, match="no version 9"):
        model_posture(world.ws, "a", 9)


@SQLITE
def test_production_history_answers_a_past_time_after_promote_and_rollback(world: World) -> None:
    v1 = world.clean_version("fraud", seed=1)
    v2 = world.clean_version("fraud", seed=2)
    before = dt.datetime.now(dt.UTC)
    world.regs["admin"].promote("fraud", v1, to="production")
    during_v1 = dt.datetime.now(dt.UTC)
    world.regs["admin"].promote("fraud", v2, to="production")
    during_v2 = dt.datetime.now(dt.UTC)
    world.regs["admin"].rollback("fraud")
    assert at_time(world.ws, "fraud", before) == {}
    assert at_time(world.ws, "fraud", during_v1) == {"production": v1}
    assert at_time(world.ws, "fraud", during_v2.isoformat()) == {"production": v2}
    assert at_time(world.ws, "fraud", dt.datetime.now(dt.UTC)) == {"production": v1}
    history = [(h["alias"], h["version"], h["until"] is None) for h in production_history(world.ws, "fraud")]
    assert history == [("production", v1, False), ("production", v2, False), ("production", v1, True)]
    assert production_history(world.ws, "fraud")[0]["by"] == "root"
    with pytest.raises(InputError, match="ISO 8601"):
        at_time(world.ws, "fraud", "yesterday")


def test_trends_follow_the_posture_the_alerts_and_the_traffic(world: World) -> None:
    version = world.clean_version("fraud")
    world.regs["admin"].promote("fraud", version, to="production")
    start = (int(time.time()) // 60 - 3) * 60  # three whole minutes ago
    log = DecisionLog(world.ws, LoggingPolicy(sample_rate=1.0))
    for i, decision in enumerate(["accepted"] * 5 + ["rejected:rate_limit"] * 2):
        minute = 0 if i < 4 else 1  # four requests in the first minute, three in the second
        log.record(
            principal="bob",
            model="fraud",
            version=str(version),
            decision=decision,
            status=200 if decision == "accepted" else 429,
            latency_ms=1.0,
            time_s=start + 60 * minute + i,
        )
    log.close()
    before_alert = dt.datetime.now(dt.UTC)
    AlertStore(world.ws).record(
        Alert("extraction", "mallory", "fraud", Severity.HIGH, 10, time.time(), {"version": str(version)})
    )
    data = trends(world.ws, "fraud", bucket_s=60)
    series = data["posture"][f"v{version}"]
    assert len(series) >= 3 and series == sorted(series)
    assert series[-1][1] < max(y for _, y in series)  # the open alert lowered the latest score
    assert sum(n for _, n in data["alerts_opened"]["extraction"]) == 1
    requests = [(t, n) for t, n in data["traffic"]["requests"] if n]
    assert requests == [(float(start), 4.0), (float(start + 60), 3.0)]
    assert [(t, n) for t, n in data["rejections"]["rate_limit"] if n] == [(float(start + 60), 2.0)]
    assert len(charts(data)) >= 3 and all("<svg" in f.content for f in charts(data))
    # the same facts as they were before the alert: the alerts part was fine then
    then = model_posture(world.ws, "fraud", version, at=before_alert)
    assert (
        then.part("alerts").status == "ok"
        and model_posture(world.ws, "fraud", version).part("alerts").status == "fail"
    )
    assert then.part("drift").status == "ok"  # it held production, with no drift alert
    assert "requests in the last hour" in then.part("drift").summary


@SQLITE
def test_open_drift_alert_fails_the_drift_part_with_its_statistics(world: World) -> None:
    version = world.clean_version("fraud")
    world.regs["admin"].promote("fraud", version, to="production")
    store = AlertStore(world.ws)
    evidence = {"p_value": 1e-5, "columns": ["mean_radius", "mean_texture"], "window": "rows 1-5000"}
    rec = store.record(Alert("drift", "", "fraud", Severity.HIGH, 0, time.time(), evidence))
    drift = model_posture(world.ws, "fraud", version).part("drift")
    assert (
        drift.status == "fail"
        and drift.evidence["p_value"] == 1e-5
        and drift.evidence["drifted_columns"] == 2
    )
    assert drift.findings[0].owasp == ("ML08",) and "AML.T0031" in drift.findings[0].atlas
    store.resolve(rec.alert.id, actor="root", note="retrained")
    assert model_posture(world.ws, "fraud", version).part("drift").status == "ok"
