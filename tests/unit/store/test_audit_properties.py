"""Property-based tests (hypothesis) of the audit chain (issue 19 item 4).

Properties: any sequence of appends, whatever the actors, actions, subjects and JSON details (unicode,
nesting, numbers), verifies; after any single edit of any column of any event, or the deletion of any
event but the last, verification fails and names that event; the canonical JSON that is hashed does
not depend on key order.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from mlsecops.store import Workspace, audit

pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
_json: Any = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=12,
)
_event = st.fixed_dictionaries(
    {
        "actor": _text.filter(bool),
        "action": st.from_regex(r"[a-z]{1,8}(\.[a-z]{1,8}){0,2}", fullmatch=True),
        "subject": _text,
        "details": st.dictionaries(_text, _json, max_size=4),
    }
)
_SETTINGS = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


_counter = iter(range(10**9))


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One initialised workspace, copied for each example (creating the schema is the slow part)."""
    home = tmp_path_factory.mktemp("audit-template") / "ws"
    Workspace.init(home, actor="test").close()
    return home


def _fresh(template: Path, tmp_path: Path) -> Workspace:
    home = tmp_path / f"ws{next(_counter)}"
    shutil.copytree(template, home)
    return Workspace.open(home, actor="test")


@_SETTINGS
@given(events=st.lists(_event, min_size=1, max_size=8))
def test_any_sequence_of_appends_verifies(
    template: Path, tmp_path: Path, events: list[dict[str, Any]]
) -> None:
    ws = _fresh(template, tmp_path)
    try:
        with ws.session() as s:
            for e in events:
                audit.append(s, **e)
        with ws.session(readonly=True) as s:
            status = audit.verify(s)
        assert status.ok, status.reason
        assert status.events == len(events) + 1
    finally:
        ws.close()


@_SETTINGS
@given(
    events=st.lists(_event, min_size=2, max_size=6),
    data=st.data(),
)
def test_any_single_edit_is_caught_at_that_event(
    template: Path, tmp_path: Path, events: list[dict[str, Any]], data: st.DataObject
) -> None:
    ws = _fresh(template, tmp_path)
    try:
        with ws.session() as s:
            for e in events:
                audit.append(s, **e)
        last = len(events) + 1
        seq = data.draw(st.integers(2, last), label="seq")
        column = data.draw(st.sampled_from(["ts", "actor", "action", "subject", "details"]), label="column")
        with ws.engine.connect() as conn:
            old = conn.execute(
                text(f"SELECT {column} FROM audit_events WHERE seq = :s"), {"s": seq}
            ).scalar_one()
        new = data.draw(_text.filter(lambda v: v != old), label="new")
        if column == "details":
            new = json.dumps({"forged": new})
            if new == old:
                return
        with ws.engine.begin() as conn:
            conn.execute(text(f"UPDATE audit_events SET {column} = :v WHERE seq = :s"), {"v": new, "s": seq})
        with ws.session(readonly=True) as s:
            status = audit.verify(s)
        assert not status.ok and status.bad_seq == seq, (status, column)
    finally:
        ws.close()


@_SETTINGS
@given(events=st.lists(_event, min_size=2, max_size=6), data=st.data())
def test_deleting_any_event_but_the_last_is_caught(
    template: Path, tmp_path: Path, events: list[dict[str, Any]], data: st.DataObject
) -> None:
    ws = _fresh(template, tmp_path)
    try:
        with ws.session() as s:
            for e in events:
                audit.append(s, **e)
        seq = data.draw(st.integers(1, len(events)), label="seq")
        with ws.engine.begin() as conn:
            conn.execute(text("DELETE FROM audit_events WHERE seq = :s"), {"s": seq})
        with ws.session(readonly=True) as s:
            status = audit.verify(s)
        assert not status.ok and status.bad_seq is not None
    finally:
        ws.close()


@given(value=st.dictionaries(_text, _json, max_size=6))
def test_canonical_json_ignores_key_order(value: dict[str, Any]) -> None:
    shuffled = dict(reversed(list(value.items())))
    assert audit.canonical_json(value) == audit.canonical_json(shuffled)
    assert json.loads(audit.canonical_json(value)) == value
