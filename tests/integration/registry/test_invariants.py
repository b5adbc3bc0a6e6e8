"""Registry invariants under real concurrency, on SQLite and PostgreSQL (issue 11, items 6 and 12).

Threads, each with its own workspace connection, start together behind a barrier. Compare-and-set
changes have exactly one winner and the others a ``ConflictError``; locked changes all apply, one after
the other; either way a stage or alias has at most one open holder, which a database constraint
enforces even against a writer that skips the code's checks. Two first-admin bootstraps: one wins.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from mlsecops.core.errors import ConflictError, PermissionDenied, WorkspaceError
from mlsecops.registry import Registry, Role, authenticate, create_api_key, create_user
from mlsecops.registry._tables import ApiKey, Assignment, User
from mlsecops.store import Workspace, audit

from .conftest import World  # noqa: TID252 - pytest's importlib mode needs the sibling conftest's class

THREADS = 6
"""Concurrent clients per race: enough to interleave on both databases, few enough for 2 cores."""


def _race(ws: Workspace, calls: list[Callable[[Workspace], Any]]) -> list[Any]:
    """Run each call in its own thread with its own connection, released together by a barrier."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        own = Workspace.open(ws.home, ws.url, actor="test")
        try:
            barrier.wait(timeout=60)
            results[i] = calls[i](own)
        except Exception as err:
            results[i] = err
        finally:
            own.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    assert not any(t.is_alive() for t in threads), "a racing call hung"
    return results


def _open_holders(ws: Workspace, slot: str) -> list[int]:
    with ws.session(readonly=True) as s:
        return list(
            s.execute(
                select(Assignment.version_id).where(Assignment.slot == slot, Assignment.ended.is_(None))
            ).scalars()
        )


def _versions(world: World, n: int) -> list[int]:
    dep = world.regs["deployer"]
    return [dep.register("fraud", world.model(f"v{i}", bytes([i + 1]))).version for i in range(n)]


def test_concurrent_alias_changes_leave_one_holder(world: World) -> None:
    versions = _versions(world, THREADS)
    key = world.keys["deployer"]

    def alias_to(v: int) -> Callable[[Workspace], Any]:
        return lambda ws: Registry(ws, authenticate(ws, key)).set_alias("fraud", "champion", v)

    results = _race(world.ws, [alias_to(v) for v in versions])
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors  # locked, not compare-and-set: every change applies, one after the other
    holders = _open_holders(world.ws, "alias:champion")
    assert len(holders) == 1
    champion = world.regs["viewer"].show("fraud@champion").version
    history = [h for h in world.regs["viewer"].history("fraud") if h.slot == "alias:champion"]
    assert len(history) == THREADS and [h.version for h in history if h.ended is None] == [champion]
    # each change saw the one before it: in audit order, "previous" is the version set by the one before
    with world.ws.session(readonly=True) as s:
        events = [(e.subject, json.loads(e.details)) for e in audit.iter_events(s, action="registry.alias")]
    assert len(events) == THREADS and events[0][1]["previous"] is None
    for (subject, _), (_, details) in itertools.pairwise(events):
        assert details["previous"] == int(subject.split("@")[1])


def test_concurrent_alias_compare_and_set_exactly_one_wins(world: World) -> None:
    versions = _versions(world, THREADS)
    key = world.keys["deployer"]
    expected = world.regs["deployer"].generation("fraud")

    def alias_to(v: int) -> Callable[[Workspace], Any]:
        return lambda ws: Registry(ws, authenticate(ws, key)).set_alias(
            "fraud", "champion", v, expected_generation=expected
        )

    results = _race(world.ws, [alias_to(v) for v in versions])
    wins = [i for i, r in enumerate(results) if not isinstance(r, BaseException)]
    conflicts = [r for r in results if isinstance(r, ConflictError)]
    assert len(wins) == 1 and len(conflicts) == THREADS - 1, results
    assert "changed while you were acting" in str(conflicts[0])
    assert _open_holders(world.ws, "alias:champion") == [_version_id(world, versions[wins[0]])]
    assert world.regs["viewer"].show("fraud@champion").version == versions[wins[0]]


def _version_id(world: World, version: int) -> int:
    from mlsecops.registry._tables import ModelVersion, RegisteredModel

    with world.ws.session(readonly=True) as s:
        return int(
            s.execute(
                select(ModelVersion.id)
                .join(RegisteredModel, RegisteredModel.id == ModelVersion.model_id)
                .where(RegisteredModel.name == "fraud", ModelVersion.version == version)
            ).scalar_one()
        )


def test_alias_changes_racing_archive_keep_archived_versions_out(world: World) -> None:
    versions = _versions(world, 2)
    key = world.keys["deployer"]
    results = _race(
        world.ws,
        [
            lambda ws: Registry(ws, authenticate(ws, key)).set_alias("fraud", "champion", versions[0]),
            lambda ws: Registry(ws, authenticate(ws, key)).archive("fraud", versions[0]),
        ],
    )
    assert not [r for r in results if isinstance(r, BaseException) and not _is_archived_refusal(r)], results
    info = world.regs["viewer"].versions("fraud")[0]
    assert info.archived and info.aliases == ()  # whichever ran first, an archived version holds nothing


def _is_archived_refusal(err: BaseException) -> bool:
    return "archived" in str(err)


def test_database_refuses_a_second_open_holder(world: World) -> None:
    """The constraint itself: a writer that skips the registry's checks still cannot add a holder."""
    v1, v2 = _versions(world, 2)
    world.regs["deployer"].set_alias("fraud", "champion", v1)
    with world.ws.session(readonly=True) as s:
        first = s.execute(select(Assignment).where(Assignment.slot == "alias:champion")).scalar_one()
        model_id = first.model_id
    with pytest.raises(WorkspaceError), world.ws.session() as s:
        s.add(
            Assignment(
                model_id=model_id,
                slot="alias:champion",
                version_id=_version_id(world, v2),
                started="2026-01-01T00:00:00",
                started_by="intruder",
                reason="alias",
            )
        )
        s.flush()
    # the benign twin: once the old holding has ended, a new one may start
    world.regs["deployer"].set_alias("fraud", "champion", v2)
    assert _open_holders(world.ws, "alias:champion") == [_version_id(world, v2)]


def test_concurrent_first_admin_bootstraps_one_wins(workspace: Workspace) -> None:
    results = _race(
        workspace,
        [lambda ws, i=i: create_user(ws, f"admin{i}", Role.ADMIN, actor=None) for i in range(THREADS)],
    )
    wins = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, ConflictError | PermissionDenied)]
    assert len(wins) == 1 and len(refused) == THREADS - 1, results
    with workspace.session(readonly=True) as s:
        assert s.execute(select(func.count()).select_from(User)).scalar_one() == 1
        assert [e.action for e in audit.iter_events(s, action="registry.user.create")] == [
            "registry.user.create"
        ]


def test_concurrent_bootstrap_keys_one_wins(workspace: Workspace) -> None:
    create_user(workspace, "root", Role.ADMIN, actor=None)
    results = _race(workspace, [lambda ws: create_api_key(ws, "root", actor=None) for _ in range(THREADS)])
    keys = [r for r in results if isinstance(r, str)]
    refused = [r for r in results if isinstance(r, ConflictError | PermissionDenied)]
    assert len(keys) == 1 and len(refused) == THREADS - 1, results
    with workspace.session(readonly=True) as s:
        assert s.execute(select(func.count()).select_from(ApiKey)).scalar_one() == 1
    assert authenticate(workspace, keys[0]).role is Role.ADMIN
    # the benign twin: the admin creates more keys and users as usual
    admin = authenticate(workspace, keys[0])
    create_user(workspace, "second", Role.ADMIN, actor=admin)
    assert create_api_key(workspace, "second", actor=admin).startswith("mlsk_")
