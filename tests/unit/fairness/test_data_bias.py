"""Data-side bias checks in `data check` / `data profile`: a biased sample is caught, a fair one is not."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mlsecops.core.checks import Target
from mlsecops.core.errors import InputError
from mlsecops.core.findings import Severity
from mlsecops.data._bias import parse_reference_groups
from mlsecops.data.checks import DataValidationCheck


@pytest.fixture(scope="module")
def frames(arrests, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bias")
    df = arrests.train.drop(columns=["black"])
    rng = np.random.default_rng(1)
    df.to_csv(folder / "population.csv", index=False)
    df.sample(frac=0.5, random_state=2).to_csv(folder / "clean.csv", index=False)
    # the biased sample: released Black arrestees under-recorded, age often missing for Black rows,
    # and a "district" column that gives colour away (90 % of rows)
    drop = (df.colour == "Black") & (df.released == 1) & (rng.random(len(df)) < 0.6)
    biased = df[~drop].copy()
    biased.loc[(biased.colour == "Black") & (rng.random(len(biased)) < 0.3), "age"] = np.nan
    honest = rng.random(len(biased)) < 0.9
    biased["district"] = np.where(
        honest, (biased.colour == "Black").astype(int) * 10, rng.integers(0, 11, len(biased))
    )
    biased.to_csv(folder / "biased.csv", index=False)
    return {
        "population": folder / "population.csv",
        "clean": folder / "clean.csv",
        "biased": folder / "biased.csv",
    }


def _check(data: Path, baseline: Path, **opts) -> tuple:
    options = {"baseline": str(baseline), "label": "released", "sensitive": "colour", **opts}
    report = DataValidationCheck().run(Target(paths=(data,), options=options, seed=0))
    return report, [f for f in report.findings if f.check == "data.check.bias"]


def test_biased_sample_is_caught(frames) -> None:
    report, found = _check(frames["biased"], frames["population"])
    titles = " | ".join(f.title for f in found)
    assert "group Black of colour is under-represented" in titles
    assert any("rate of group Black" in f.title and f.severity == Severity.HIGH for f in found), titles
    assert any(f.title.startswith("column age is missing") for f in found), titles
    proxy = [f for f in found if f.title.startswith("column district predicts colour")]
    assert proxy and proxy[0].evidence["auc"] >= 0.9
    assert report.metrics["bias_issues"] == len(found)
    assert not any(f.location.get("column") in ("year", "checks") and "predicts" in f.title for f in found)


def test_clean_sample_is_not_flagged(frames) -> None:
    report, found = _check(frames["clean"], frames["population"])
    assert found == [], [f.title for f in found]
    assert report.metrics["bias_issues"] == 0


def test_without_reference_the_label_gap_and_small_groups_are_reported(frames, tmp_path: Path) -> None:
    import pandas as pd

    df = pd.read_csv(frames["population"])
    df.loc[df.index[:12], "colour"] = "Other"  # a group of 12 rows
    df.to_csv(tmp_path / "small.csv", index=False)
    _, found = _check(
        tmp_path / "small.csv",
        tmp_path / "small.csv",
        reference_groups="colour=White:0.5,Black:0.3,Asian:0.2",
    )
    titles = " | ".join(f.title for f in found)
    assert "fewer than 30 rows" in titles
    assert "group Asian of colour is absent" in titles
    assert "group Black of colour is under-represented" not in titles  # 24.6 % >= 0.8 x 30 %


def test_profile_carries_the_bias_statistics(frames, cli) -> None:
    res = cli(
        "data",
        "profile",
        str(frames["biased"]),
        "--label",
        "released",
        "--sensitive",
        "colour,sex",
        "-f",
        "json",
    )
    assert res.code == 0, res.err
    bias = json.loads(res.out)["bias"]
    assert bias["sensitive"] == ["colour", "sex"]
    names = [c["column"] for c in bias["columns"]]
    assert names == ["colour", "sex", "colour, sex"]
    colour = bias["columns"][0]
    assert colour["groups"]["Black"]["nulls"]["age"] > 0
    assert colour["proxies"]["district"]["auc"] >= 0.9
    assert colour["groups"]["White"]["labels"]["1"] > 0


def test_cli_check_with_sensitive(frames, cli) -> None:
    res = cli(
        "data",
        "check",
        str(frames["biased"]),
        "--baseline",
        str(frames["population"]),
        "--label",
        "released",
        "--sensitive",
        "colour",
        "-f",
        "json",
    )
    assert res.code == 1
    assert json.loads(res.out)["metrics"]["bias_issues"] >= 4


def test_bad_input(frames) -> None:
    with pytest.raises(InputError, match="sensitive column"):
        _check(frames["clean"], frames["population"], sensitive="race")
    with pytest.raises(InputError, match="COL=GROUP:SHARE"):
        parse_reference_groups("White:0.5")
    with pytest.raises(InputError, match="positive share"):
        parse_reference_groups("colour=White:-1")
    assert parse_reference_groups("sex=F:1,M:3") == {"sex": {"F": 0.25, "M": 0.75}}
