"""Real data with sensitive columns (scikit-lego's Toronto arrests, 5,226 rows: colour, sex) and models
trained on it, once per session.

``biased`` is a logistic regression that sees the ``black`` column, trained on a biased sample: three
quarters of the released Black arrestees dropped from its training rows, as a collection process that
under-records them would. ``fair`` sees neither colour nor sex and trains on the full training split.
Both are audited on the same held-out rows (``test.csv``), which carry the real release rates.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from tests._deps import require

FEATURES_FAIR = ["year", "age", "employed", "citizen", "checks"]
FEATURES_BIASED = [*FEATURES_FAIR, "black"]


@dataclass(frozen=True)
class ArrestsCase:
    folder: Path
    train_csv: Path
    test_csv: Path
    biased: Path
    fair: Path
    train: object  # pandas DataFrame
    test: object


@pytest.fixture(scope="session")
def arrests(tmp_path_factory: pytest.TempPathFactory) -> ArrestsCase:
    require("sklego", "test")
    from sklearn.linear_model import LogisticRegression
    from sklego.datasets import load_arrests

    df = load_arrests(as_frame=True)
    df = df.assign(
        released=(df.released == "Yes").astype(int),
        black=(df.colour == "Black").astype(int),
        employed=(df.employed == "Yes").astype(int),
        citizen=(df.citizen == "Yes").astype(int),
    )[["released", "colour", "sex", "year", "age", "employed", "citizen", "checks", "black"]]
    rng = np.random.default_rng(0)
    order = rng.permutation(len(df))
    train, test = df.iloc[order[:3500]].reset_index(drop=True), df.iloc[order[3500:]].reset_index(drop=True)
    drop = (train.black == 1) & (train.released == 1) & (rng.random(len(train)) < 0.75)
    biased_train = train[~drop]
    folder = tmp_path_factory.mktemp("arrests")
    biased = LogisticRegression(max_iter=2000).fit(biased_train[FEATURES_BIASED], biased_train.released)
    fair = LogisticRegression(max_iter=2000).fit(train[FEATURES_FAIR], train.released)
    (folder / "biased.pkl").write_bytes(pickle.dumps(biased, protocol=4))
    (folder / "fair.pkl").write_bytes(pickle.dumps(fair, protocol=4))
    train.to_csv(folder / "train.csv", index=False)
    test.to_csv(folder / "test.csv", index=False)
    return ArrestsCase(
        folder,
        folder / "train.csv",
        folder / "test.csv",
        folder / "biased.pkl",
        folder / "fair.pkl",
        train,
        test,
    )
