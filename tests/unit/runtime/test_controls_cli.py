"""``mlsecops registry users add --role client``, ``grant``, ``revoke-grant``, ``grants``, ``block``,
``unblock`` and ``controls`` in-process: admin only, one-line errors, audit events."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

Cli = Callable[..., Any]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"MLSECOPS_HOME": str(tmp_path / ".mlsecops"), "MLSECOPS_API_KEY": ""}


def key_of(out: str) -> str:
    return [line for line in out.splitlines() if line.startswith("mlsk_")][-1]


@pytest.fixture
def keys(cli: Cli, env: dict[str, str]) -> dict[str, str]:
    assert cli("init", env=env).code == 0
    r = cli("registry", "users", "add", "root", "--role", "admin", env=env)
    assert r.code == 0, r.err
    root = key_of(r.out)
    r = cli("registry", "users", "add", "app", "--role", "client", env={**env, "MLSECOPS_API_KEY": root})
    assert r.code == 0, r.err
    return {"root": root, "app": key_of(r.out)}


def test_grants_from_the_cli(cli: Cli, env: dict[str, str], keys: dict[str, str]) -> None:
    admin = {**env, "MLSECOPS_API_KEY": keys["root"]}
    assert cli("registry", "grant", "fraud", "app", env=admin).code == 0
    r = cli("registry", "grant", "fraud", "app", env=admin)
    assert r.code == 0 and "already" in r.out
    assert cli("registry", "grant", "*", "jwt:svc-1", env=admin).code == 0
    r = cli("registry", "grants", "--format", "json", env=admin)
    assert r.code == 0
    assert [(g["model"], g["principal"]) for g in json.loads(r.out)] == [("*", "jwt:svc-1"), ("fraud", "app")]
    r = cli("registry", "grants", "--model", "churn", "--format", "json", env=admin)
    assert [g["principal"] for g in json.loads(r.out)] == ["jwt:svc-1"]
    assert cli("registry", "revoke-grant", "fraud", "app", env=admin).code == 0
    r = cli("registry", "revoke-grant", "fraud", "app", env=admin)
    assert r.code == 2 and "no grant" in r.err and "Traceback" not in r.err
    r = cli("registry", "grant", "fraud", "ghost", env=admin)
    assert r.code == 2 and "no user named 'ghost'" in r.err
    r = cli("registry", "grant", "fr aud", "app", env=admin)
    assert r.code == 2 and "model name" in r.err
    # The client may not grant itself anything, nor list grants.
    client = {**env, "MLSECOPS_API_KEY": keys["app"]}
    r = cli("registry", "grant", "churn", "app", env=client)
    assert r.code != 0 and "may not" in r.err
    assert cli("registry", "grants", env=client).code != 0
    r = cli("audit", "log", "--format", "json", env=admin)
    actions = [e["action"] for e in json.loads(r.out)]
    assert actions.count("registry.grant.add") == 2 and actions.count("registry.grant.revoke") == 1


def test_block_and_unblock_from_the_cli(cli: Cli, env: dict[str, str], keys: dict[str, str]) -> None:
    admin = {**env, "MLSECOPS_API_KEY": keys["root"]}
    r = cli("registry", "block", "app", "--reason", "stealing", "--for", "2h", env=admin)
    assert r.code == 0 and "blocked until" in r.out
    r = cli("registry", "controls", "--format", "json", env=admin)
    rows = json.loads(r.out)
    assert rows[0]["principal"] == "app" and rows[0]["blocked"] is True
    assert cli("registry", "unblock", "app", "--reason", "cleared", env=admin).code == 0
    r = cli("registry", "controls", "--format", "json", env=admin)
    assert json.loads(r.out)[0]["blocked"] is False
    for bad in (
        ["--for", "2 weeks"],
        ["--until", "2030-01-01T00:00"],
        ["--until", "soon"],
        ["--for", "1h", "--until", "2030-01-01T00:00:00+00:00"],
    ):
        r = cli("registry", "block", "app", "--reason", "x", *bad, env=admin)
        assert r.code == 2 and "Traceback" not in r.err, bad
    client = {**env, "MLSECOPS_API_KEY": keys["app"]}
    r = cli("registry", "unblock", "app", "--reason", "me", env=client)
    assert r.code == 1 and "needs the role admin" in r.err
    r = cli("registry", "block", "app", "--reason", "x", env={**env, "MLSECOPS_API_KEY": ""})
    assert r.code == 2 and "MLSECOPS_API_KEY" in r.err
    r = cli("audit", "log", "--format", "json", env=admin)
    actions = [e["action"] for e in json.loads(r.out)]
    assert actions.count("runtime.principal.block") == 1 and actions.count("runtime.principal.unblock") == 1
    assert keys["app"].split("_", 2)[2] not in r.out
