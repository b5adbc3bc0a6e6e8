"""``mlsecops posture``: JSON schema, the text table at 80 columns, one-line errors."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from tests.unit.posture.conftest import World, make_world

from mlsecops.store import Workspace


@dataclass
class Shared:
    """One workspace every CLI test reads."""

    world: World
    v1: int
    v2: int
    then: str
    """A moment while v1 held production (v2 holds it now)."""


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    """Two versions of ``fraud``, v1 then v2 in production (the tests only read it)."""
    tmp = tmp_path_factory.mktemp("posture-cli")
    ws = Workspace.init(tmp / ".mlsecops", f"sqlite:///{tmp / 'ws.db'}", actor="test")
    world = make_world(ws, tmp)
    v1 = world.clean_version("fraud", seed=1)
    world.regs["admin"].promote("fraud", v1, to="production")
    then = dt.datetime.now(dt.UTC).isoformat()
    v2 = world.clean_version("fraud", seed=2)
    world.regs["admin"].promote("fraud", v2, to="production")
    try:
        yield Shared(world, v1, v2, then)
    finally:
        ws.close()


PART_KEYS = {"name", "status", "score", "weight", "summary", "evidence", "source", "findings"}
TOP_KEYS = {
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


def _env(world: World) -> dict[str, str]:
    return {"MLSECOPS_HOME": str(world.ws.home), "MLSECOPS_DATABASE_URL": world.ws.url}


def test_json_of_one_version_has_the_documented_shape(shared: Shared, cli: Callable[..., object]) -> None:
    world, version = shared.world, shared.v2
    got = cli("posture", "fraud@production", "--format", "json", env=_env(world))
    assert got.code == 0, got.err  # type: ignore[attr-defined]
    doc = json.loads(got.out)  # type: ignore[attr-defined]
    assert set(doc) == TOP_KEYS and doc["version"] == version and doc["aliases"] == ["production"]
    assert doc["grade"] in ("good", "fair", "poor", "unknown")
    for part in doc["parts"]:
        assert set(part) == PART_KEYS
        assert part["status"] in ("ok", "warn", "fail", "missing")
        for f in part["findings"]:
            assert set(f) == {"title", "severity", "atlas", "owasp", "remediation"}


def test_listing_and_text_fit_80_columns(
    shared: Shared, cli: Callable[..., object], monkeypatch: pytest.MonkeyPatch
) -> None:
    world = shared.world
    everything = cli("posture", "-f", "json", env=_env(world))
    assert [(p["model"], p["version"]) for p in json.loads(everything.out)] == [("fraud", 1), ("fraud", 2)]  # type: ignore[attr-defined]
    from mlsecops.cli import _common

    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setattr(_common, "_consoles", {})  # consoles read the width when made
    text = cli("posture", "fraud@1", env=_env(world))
    assert text.code == 0  # type: ignore[attr-defined]
    lines = text.out.splitlines()  # type: ignore[attr-defined]
    assert max(len(line) for line in lines) <= 80
    assert "fraud@1" in lines[0] and "missing:" in text.out  # type: ignore[attr-defined]


def test_past_time_shows_what_held_production_then(shared: Shared, cli: Callable[..., object]) -> None:
    world, v1, v2, then = shared.world, shared.v1, shared.v2, shared.then
    now = json.loads(cli("posture", "fraud@production", "-f", "json", env=_env(world)).out)  # type: ignore[attr-defined]
    past = json.loads(cli("posture", "fraud@production", "--at", then, "-f", "json", env=_env(world)).out)  # type: ignore[attr-defined]
    assert (now["version"], past["version"]) == (v2, v1)


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("nope@1", "no registered model named 'nope'"),
        ("fraud@9", "fraud has no version 9"),
        ("fraud@staging", "no version in 'staging'"),
        ("bad name!", "model name 'bad name!'"),
        ("fraud@champion", "no version in 'champion'"),
    ],
)
def test_bad_reference_exits_2_with_one_line(
    shared: Shared, cli: Callable[..., object], ref: str, message: str
) -> None:
    got = cli("posture", ref, env=_env(shared.world))
    assert got.code == 2  # type: ignore[attr-defined]
    assert message in got.err and len(got.err.strip().splitlines()) == 1  # type: ignore[attr-defined]
    assert "Traceback" not in got.err  # type: ignore[attr-defined]


def test_bad_time_exits_2(shared: Shared, cli: Callable[..., object]) -> None:
    got = cli("posture", "fraud", "--at", "last tuesday", env=_env(shared.world))
    assert got.code == 2 and "ISO 8601" in got.err  # type: ignore[attr-defined]
