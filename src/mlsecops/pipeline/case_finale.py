"""The lifecycle's last act: an alert, the playbook, an automatic rollback, and the trail verified.

It follows the e-commerce case in the same workspace (``mlsecops demo --case all``). A retrained
recommender (v2, stronger regularisation) is signed, gated, approved and promoted over v1. The guard
serves ``recommender@production`` with a containment playbook: on an extraction alert, block the
principal and roll production back to the previous signed version (the thief has been collecting
v2's answers; v1 is the last version it has not mapped). A second thief queries it; the alert fires,
the thief gets 403, production is v1 again and the guard, which follows the stage, serves v1 to the
benign client without a refused request. ``mlsecops incidents show`` and ``mlsecops registry history``
tell what happened, and ``mlsecops audit verify`` checks the whole hash-chained trail of every case.

Then the way to the dashboard and to every pipeline run's report.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mlsecops.core.errors import InputError
from mlsecops.pipeline._demo_people import admin_key_file
from mlsecops.pipeline._live import cli, cli_json, guard, infer_body, show_incidents, until_blocked
from mlsecops.pipeline._shop import ItemStats, fit_recommender
from mlsecops.pipeline.case_ecommerce import MODEL, SHOP_GUARD, release_model, shop_people
from mlsecops.pipeline.history import list_runs
from mlsecops.registry import Registry, authenticate
from mlsecops.store import Workspace

__all__ = ["run_finale"]

THIEF_QUERIES = 400
BENIGN_QUERIES = 80
UI_PORT = 8090

POLICY = (
    "# The last act's guard: a model thief is blocked and production goes back to the previous signed version.\n"
    + SHOP_GUARD
    + """\
playbooks:
  - name: contain-and-roll-back
    kind: extraction
    min_severity: high
    actions:
      - {{action: block, params: {{for_s: 86400}}}}
      - {{action: rollback}}
"""
)


def run_finale(
    folder: Path, *, home: Path, actor: str, say: Callable[[str], None], shop: Path | None = None
) -> int:
    """Play the last act in ``folder`` after the e-commerce case played in ``shop`` (default
    ``folder.parent / "ecommerce"``) on the same workspace ``home``; 0 when it showed everything.

    Raises:
        InputError: the e-commerce case has not run in this workspace.
    """
    import pandas as pd

    folder = folder.resolve()
    shop = (shop or folder.parent / "ecommerce").resolve()
    clean_csv, features = shop / "quarantine" / "ratings.clean.csv", shop / "data" / "train-features.csv"
    profile = shop / "data" / "train-features.profile.json"
    if not (clean_csv.is_file() and features.is_file() and profile.is_file()):
        raise InputError(f"the last act follows the e-commerce case; {shop} has not got it (run --case all)")
    folder.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []

    say("1/4 a retrained recommender (v2) released over v1")
    clean = pd.read_csv(clean_csv)
    meta = pd.read_csv(shop / "data" / "catalogue.csv")
    stats = ItemStats.of(clean, meta)
    model = fit_recommender(stats, clean, c=0.05)
    with Workspace.init(home, actor=actor) as ws:
        _, keys, thief = shop_people(ws, "trudy", models=(MODEL,))
        deployer = Registry(ws, authenticate(ws, keys["deployer"]))
        before = deployer.show(f"{MODEL}@production").version
        key_path = home / "keys" / "shop-release.key"
        v2 = release_model(
            ws, shop, model, tag="retrained, stronger regularisation", registry=deployer,
            approver=Registry(ws, authenticate(ws, keys["approver"])), key_path=key_path, actor=actor, say=say,
        )  # fmt: skip

    say(f"2/4 the guard serves {MODEL}@production (v{v2}) with the playbook contain-and-roll-back")
    policy = folder / "guard.yaml"
    policy.write_text(POLICY.format(profile=profile))
    train_x = np.loadtxt(features, delimiter=",", skiprows=1)
    live = _attack(home, folder, policy, keys, thief, model, train_x, (before, v2), say)
    problems += live.pop("problems")

    say("3/4 what the trail says")
    history = cli_json(home, "registry", "history", MODEL, key=keys["deployer"])
    say("production of " + MODEL + ": " + " -> ".join(_slots(history)))
    verified = cli(home, "audit", "verify")
    say("$ mlsecops audit verify")
    for line in (verified.stdout + verified.stderr).rstrip().splitlines():
        say(line)
    if verified.returncode != 0:
        problems.append("the audit trail did not verify")
    live["audit_verified"] = verified.returncode == 0
    (folder / "summary.json").write_text(json.dumps(live, indent=2))

    say("4/4 where to look")
    with Workspace.open(home) as ws:
        runs = list_runs(ws, limit=200)
        key_file = admin_key_file(ws)
    say(f"dashboard: MLSECOPS_HOME={home} mlsecops ui --port {UI_PORT}")
    say(f"           then open http://127.0.0.1:{UI_PORT}/ and log in with the API key in {key_file}")
    for run in sorted(runs, key=lambda r: r.id):
        html = home / "reports" / f"run-{run.id}" / "report.html"
        verdict = "passed" if run.passed else "failed"
        say(f"report of run {run.id} ({run.pipeline}, gate {verdict}): {html}")
    for case in ("av", "ecommerce", "healthcare", "finale"):
        if (folder.parent / case).is_dir():
            say(
                f"the {case} case's files (data, models, pipelines, guard log, numbers): {folder.parent / case}"
            )
    for p in problems:
        say(f"not shown: {p}")
    return 0 if not problems else 1


def _slots(history: Any) -> list[str]:
    rows = history if isinstance(history, list) else history.get("history", [])
    return [f"v{r['version']}" for r in rows if r.get("slot") == "stage:production"]


def _attack(
    home: Path,
    folder: Path,
    policy: Path,
    keys: dict[str, str],
    thief_name: str,
    model: Any,
    train_x: np.ndarray,
    versions: tuple[int, int],
    say: Callable[[str], None],
) -> dict[str, Any]:
    import httpx

    from mlsecops.monitor._thieves import World, benign_stream, thief_stream

    v1, v2 = versions
    world = World("shop", train_x, model.predict(train_x), train_x, train_x, model)
    thief = thief_stream(world, "trnd", THIEF_QUERIES, seed=11)
    benign = benign_stream(world, "natural", BENIGN_QUERIES, seed=12)
    problems: list[str] = []
    codes: dict[str, list[int]] = {"alice": [], "thief": []}
    served: list[str] = []
    with (
        guard(home, f"{MODEL}@production", policy, folder / "guard.log") as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):

        def send(who: str, rows: np.ndarray) -> int:
            headers = {"Authorization": f"Bearer {keys[who]}"}
            r = client.post(f"/v2/models/{MODEL}/infer", json=infer_body(rows), headers=headers)
            codes[who].append(r.status_code)
            if who == "alice" and r.status_code == 200:
                served.append(str(r.json().get("model_version")))
            return r.status_code

        for _, rows in benign[: BENIGN_QUERIES // 2]:
            send("alice", rows)
        blocked_at = until_blocked(send, thief)
        for _, rows in benign[BENIGN_QUERIES // 2 :]:
            send("alice", rows)
        deadline = time.monotonic() + 90  # the guard follows the stage about once a second
        while str(v1) not in served[BENIGN_QUERIES // 2 :] and time.monotonic() < deadline:
            send("alice", benign[0][1])
            time.sleep(0.2)
    if blocked_at is None:
        problems.append("the thief was not blocked")
    else:
        say(f"the thief ({thief_name}) was blocked after {blocked_at} queries")
    rolled = str(v1) in served[BENIGN_QUERIES // 2 :]
    say(
        f"the benign client: {sum(c == 200 for c in codes['alice'])}/{len(codes['alice'])} answered; "
        f"served by v{served[0] if served else '?'} first, v{served[-1] if served else '?'} last"
    )
    if not rolled:
        problems.append(f"production did not go back to v{v1}")
    if any(c != 200 for c in codes["alice"]):
        problems.append("the benign client was refused")
    incidents = show_incidents(home, thief_name, say)
    if not incidents:
        problems.append("no incident was recorded")
    return {
        "blocked_after_queries": blocked_at,
        "rolled_back": {"from": v2, "to": v1, "served_last": served[-1] if served else None},
        "incidents": incidents,
        "problems": problems,
    }
