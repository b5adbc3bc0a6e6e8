"""``mlsecops data``: profile, check, poison (with quarantine recorded in the workspace), register."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mlsecops.data import generate_ratings


def _csv(path: Path, rng: np.random.Generator, n: int, shift: float = 0.0) -> Path:
    lines = ["a,b,label"] + [f"{x:.4f},{z:.4f},{int(x > shift)}" for x, z in rng.normal(shift, 1.0, (n, 2))]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_profile_then_check_exit_codes(cli: Callable[..., Any], tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    base, same, moved = (
        _csv(tmp_path / "b.csv", rng, 800),
        _csv(tmp_path / "s.csv", rng, 400),
        _csv(tmp_path / "m.csv", rng, 400, shift=1.5),
    )
    assert cli("data", "profile", str(base), "--label", "label", "-o", "base.json").code == 0
    assert cli("data", "check", str(same), "-b", "base.json", "--format", "json").code == 0
    res = cli("data", "check", str(moved), "-b", "base.json", "--format", "json")
    assert res.code == 1
    assert any("distribution shift" in f["title"] for f in json.loads(res.out)["findings"])


def test_bad_input_is_one_line_exit_2(cli: Callable[..., Any], tmp_path: Path) -> None:
    (tmp_path / "ragged.csv").write_text("a,b\n1,2\n3\n")
    res = cli("data", "poison", str(tmp_path / "ragged.csv"), "--label", "b")
    assert res.code == 2 and len(res.err.strip().splitlines()) == 1
    (tmp_path / "ok.csv").write_text("a,b\n1,2\n3,4\n")
    res = cli("data", "poison", str(tmp_path / "ok.csv"), "--label", "nope")
    assert res.code == 2 and "label column 'nope' not found" in res.err
    res = cli("data", "poison", str(tmp_path / "ok.csv"), "--label", "b", "--max-rows", "1")
    assert res.code == 2 and "more than 1 rows" in res.err and "--max-rows" in res.err


def test_poison_ratings_quarantine_and_register(cli: Callable[..., Any], tmp_path: Path) -> None:
    env = {"MLSECOPS_HOME": str(tmp_path / ".mlsecops"), "MLSECOPS_ACTOR": "carol"}
    assert cli("init", env=env).code == 0
    data = generate_ratings(n_users=1500, n_items=800, n_fake=120, seed=2)
    data.write_csv(tmp_path / "ratings.csv")
    res = cli("data", "poison", "ratings.csv", "--quarantine", "q", "--format", "json", env=env)
    assert res.code == 1
    report = json.loads(res.out)
    users = {a["user"] for a in report["suspect_accounts"]}
    assert len(users & set(data.fake_users.tolist())) >= 114
    assert (tmp_path / "q" / "ratings.suspect.csv").exists() and report["quarantine"]["suspect_sha256"]
    log = cli("audit", "log", "--action", "data.quarantine", "--format", "json", env=env)
    events = json.loads(log.out)
    assert len(events) == 1 and events[0]["actor"] == "carol"
    reg = cli("data", "register", "ratings.csv", "--name", "ratings", "--format", "json", env=env)
    assert reg.code == 0 and json.loads(reg.out)["version"] == "1"
    assert cli("data", "check", "ratings.csv", "-b", "ratings.csv", "--dataset", "ratings", env=env).code == 0
    with (tmp_path / "ratings.csv").open("a") as fh:
        fh.write("1,2,5,3\n")
    res = cli("data", "check", "ratings.csv", "-b", "q/ratings.clean.csv", "--dataset", "ratings", env=env)
    assert res.code == 1 and "without a new manifest" in res.out
