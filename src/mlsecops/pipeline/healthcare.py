"""The healthcare case study: a mortality-risk screening model trained on biased records, blocked, mitigated.

Data: scikit-survival's copy of the serum free light chain study (Dispenzieri et al., Mayo Clinic
Proceedings 2012; 7,874 residents of Olmsted County, Minnesota), which ships inside the
``scikit-survival`` wheel (extra ``mlsecops[healthcare]``): age, serum creatinine, the kappa and lambda
light chains, their decile group, MGUS diagnosis, sex, and death during follow-up. Nothing is downloaded.

The flaw planted is one the literature documents for women's cardiovascular and haematological risk:
in the training hospital's records most women's deaths were never recorded (``UNDER_RECORDED``), so a
model trained on them learns that women are at low risk and misses most women who will die. The
validation and test sets carry the verified outcomes.

``build_healthcare_case(folder)`` writes:

- ``assets/data/train.csv`` (4,000 rows, women's deaths under-recorded), ``validation.csv`` (1,900
  rows) and ``test.csv`` (the rest), numeric columns and the label ``death``; ``female`` is 1 for women;
- ``assets/models/screening.pkl``: a scikit-learn gradient-boosting classifier trained on ``train.csv``;
- ``pipeline-blocked.yaml``: scan, explain, explanation integrity and the fairness audit of that model,
  gated on equal opportunity: the gate blocks it (exit 1);
- ``pipeline.yaml``: the same gate on ``assets/models/screening.fair.json``, the model that
  ``mitigate_healthcare_case`` (``mlsecops harden fairness``: fairlearn's ``ThresholdOptimizer``, equal
  true-positive rates, fitted on ``validation.csv``) writes: it passes.

Both pipeline files ship in this package (``healthcare_*.yaml``) and in ``examples/healthcare/``.
"""

from __future__ import annotations

import pickle
import shutil
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from mlsecops.core.checks import Target, get_check
from mlsecops.core.errors import InputError
from mlsecops.core.findings import Report

__all__ = [
    "HEALTHCARE_PIPELINES",
    "UNDER_RECORDED",
    "build_healthcare_case",
    "flchain_frame",
    "mitigate_healthcare_case",
]

HEALTHCARE_PIPELINES = {
    "pipeline-blocked.yaml": "healthcare_blocked.yaml",
    "pipeline.yaml": "healthcare.yaml",
}
"""Pipeline files written into the case folder, and the package resources they are copied from."""
UNDER_RECORDED = 0.6
"""Share of women's deaths missing from the training records (recorded as survival)."""
FEATURES = ("age", "creatinine", "kappa", "lambda", "flc_grp", "mgus", "female")
"""The model's inputs, in order (the CSV columns before ``death``)."""
_SPLITS = (4000, 1900)
_SEED = 0


def flchain_frame(datasets: ModuleType | None = None) -> Any:
    """The flchain study as a numeric pandas DataFrame: ``FEATURES`` and ``death`` (0/1).

    Missing creatinine values (17%) are filled with the median; the cause of death (``chapter``, known
    only after the outcome) and the sampling year are left out.

    Raises:
        InputError: scikit-survival is not installed.
    """
    if datasets is None:
        try:
            import sksurv.datasets
        except ImportError as err:
            raise InputError(
                "the healthcare case reads data shipped with scikit-survival: pip install 'mlsecops[healthcare]'"
            ) from err
    import pandas as pd

    source = datasets if datasets is not None else sksurv.datasets
    x, outcome = source.load_flchain()
    frame = pd.DataFrame(
        {
            "age": x["age"].astype(float),
            "creatinine": x["creatinine"].astype(float),
            "kappa": x["kappa"].astype(float),
            "lambda": x["lambda"].astype(float),
            "flc_grp": x["flc.grp"].astype(int),
            "mgus": (x["mgus"] == "yes").astype(int),
            "female": (x["sex"] == "F").astype(int),
        }
    )
    frame["creatinine"] = frame["creatinine"].fillna(frame["creatinine"].median())
    frame["death"] = np.asarray(outcome["death"], dtype=int)
    return frame


def build_healthcare_case(folder: Path) -> Path:
    """Write the case's data, model and pipelines into ``folder``; return the blocked pipeline's path.

    Raises:
        InputError: scikit-survival is missing.
    """
    from sklearn.ensemble import GradientBoostingClassifier

    frame = flchain_frame()
    rng = np.random.default_rng(_SEED)
    frame = frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)
    n_train, n_val = _SPLITS
    train = frame.iloc[:n_train].copy()
    validation, test = frame.iloc[n_train : n_train + n_val], frame.iloc[n_train + n_val :]
    lost = (train["female"] == 1) & (train["death"] == 1) & (rng.random(len(train)) < UNDER_RECORDED)
    train.loc[lost, "death"] = 0
    data_dir = folder / "assets" / "data"
    model_dir = folder / "assets" / "models"
    data_dir.mkdir(parents=True, exist_ok=True)
    model_dir.mkdir(parents=True, exist_ok=True)
    for name, part in (("train", train), ("validation", validation), ("test", test)):
        part.to_csv(data_dir / f"{name}.csv", index=False, float_format="%.4f")
    model = GradientBoostingClassifier(random_state=_SEED).fit(train[list(FEATURES)], train["death"])
    (model_dir / "screening.pkl").write_bytes(pickle.dumps(model, protocol=5))
    for out, resource in HEALTHCARE_PIPELINES.items():
        with resources.as_file(resources.files("mlsecops.pipeline") / resource) as src:
            shutil.copyfile(src, folder / out)
    return folder / "pipeline-blocked.yaml"


def mitigate_healthcare_case(
    folder: Path, *, home: Path | None = None, database_url: str | None = None, actor: str = "demo"
) -> Report:
    """Run ``harden.fairness`` on the case's model: group thresholds equalising true-positive rates.

    Writes ``assets/models/screening.fair.json`` (and its member files); with a workspace, records the
    lineage. Returns the mitigation's report (audit before and after, accuracy cost).
    """
    assets = folder.resolve() / "assets"
    options: dict[str, Any] = {
        "model": str(assets / "models" / "screening.pkl"),
        "data": str(assets / "data" / "validation.csv"),
        "test_data": str(assets / "data" / "test.csv"),
        "label": "death",
        "sensitive": "female",
        "method": "threshold",
        "constraint": "true_positive_rate_parity",
        "output": str(assets / "models" / "screening.fair.json"),
        "bootstrap": 0,
    }
    target = Target(options=options, seed=_SEED, home=home, database_url=database_url, actor=actor)
    return get_check("harden.fairness").create().run(target)
