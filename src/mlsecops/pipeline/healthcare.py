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

``private_healthcare_case(folder)`` then shows the privacy side on a neural screening model (a PyTorch
MLP on the same features, scaled by fixed public clinical bounds): a non-private one
(``assets/models/screening.mlp.pt2``) and one trained with DP-SGD to epsilon ``PRIVACY_EPSILON``
(``mlsecops harden dp-train``, Opacus; ``screening.mlp.dp.pt2``, its privacy facts in the lineage),
both trained on the first ``PRIVATE_ROWS`` training records, then the membership-inference audit of each
(``mlsecops assess privacy``'s ``audit_privacy``: the loss attack and LiRA with reference models
trained through the executor). Members and non-members are both drawn from ``train.csv`` so the
audit compares records with the same (biased) recording. Reports go to ``privacy/``.

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
    "private_healthcare_case",
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
PRIVACY_EPSILON = 3.0
"""Target epsilon of the DP-trained screening model (delta 1e-5)."""
PRIVATE_ROWS = 400
"""Training records the neural models learn from (the first rows of ``train.csv``)."""
AUDIT_ROWS = 200
"""Members and non-members the privacy audit scores (each)."""
AUDIT_REFERENCES = 4
"""Reference models LiRA trains per audit (each audited record is IN half of them)."""
PUBLIC_BOUNDS = {
    "age": (40.0, 110.0),
    "creatinine": (0.0, 12.0),
    "kappa": (0.0, 25.0),
    "lambda": (0.0, 30.0),
    "flc_grp": (1.0, 10.0),
    "mgus": (0.0, 1.0),
    "female": (0.0, 1.0),
}
"""Fixed clinical ranges the neural models' inputs are scaled by (never statistics of the records)."""
_MLP_WIDTH, _MLP_EPOCHS, _MLP_LR, _MLP_BATCH = 128, 60, 1e-2, 32
"""The non-private MLP's recipe (also the reference models'): wide and trained long enough to fit."""
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


def _scaled(frame: Any) -> Any:
    """``FEATURES`` mapped to [0, 1] by ``PUBLIC_BOUNDS`` (clipped), with ``death``."""
    out = frame[[*FEATURES, "death"]].astype(float).copy()
    for name, (lo, hi) in PUBLIC_BOUNDS.items():
        out[name] = (out[name].clip(lo, hi) - lo) / (hi - lo)
    out["death"] = frame["death"].astype(int)
    return out


def _mlp(width: int) -> Any:
    import torch

    n = len(FEATURES)
    return torch.nn.Sequential(
        torch.nn.Linear(n, width),
        torch.nn.ReLU(),
        torch.nn.Linear(width, width),
        torch.nn.ReLU(),
        torch.nn.Linear(width, 2),
    )


def _stratified(labels: np.ndarray, deaths: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted positions of ``AUDIT_ROWS`` rows, ``deaths`` of them with label 1."""
    pos, neg = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    if len(pos) < deaths or len(neg) < AUDIT_ROWS - deaths:
        raise InputError("too few training records for the privacy audit's balanced member sets")
    return np.sort(
        np.concatenate([rng.permutation(pos)[:deaths], rng.permutation(neg)[: AUDIT_ROWS - deaths]])
    )


def _xy(frame: Any) -> tuple[np.ndarray, np.ndarray]:
    return frame[list(FEATURES)].to_numpy(np.float32), frame["death"].to_numpy(np.int64)


def private_healthcare_case(
    folder: Path,
    *,
    home: Path | None = None,
    database_url: str | None = None,
    actor: str = "demo",
    epsilon: float = PRIVACY_EPSILON,
    references: int = AUDIT_REFERENCES,
    executor: str = "process",
) -> dict[str, Any]:
    """Train the neural screening model with and without DP and audit both for membership leakage.

    Needs ``build_healthcare_case(folder)`` first. Writes ``privacy/`` (the scaled training, test and
    audit sets; ``dp-train.json``, ``audit-non-private.json``, ``audit-dp.json``, ``summary.json``) and
    the two models under ``assets/models/``. With a workspace, the DP model's lineage carries epsilon.

    Returns:
        the summary: per model, accuracy on ``test.csv`` and the audit's AUC, advantage and TPR at 1%
        FPR (strongest attack), plus the privacy spent.

    Raises:
        InputError: the case is not built, or torch / Opacus are missing.
    """
    try:
        import opacus  # noqa: F401  # the DP training's engine
        import torch
    except ImportError as err:
        raise InputError(
            "the DP step of the healthcare case needs PyTorch and Opacus: pip install 'mlsecops[torch]'"
        ) from err

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small MLPs: more threads only contend for the cores (minutes, not seconds)
    try:
        return _private_case(folder, home, database_url, actor, epsilon, references, executor)
    finally:
        torch.set_num_threads(threads)


def _private_case(
    folder: Path,
    home: Path | None,
    database_url: str | None,
    actor: str,
    epsilon: float,
    references: int,
    executor: str,
) -> dict[str, Any]:
    import json

    import pandas as pd
    import torch

    from mlsecops.assess.privacy import audit_privacy, privacy_report
    from mlsecops.assess.privacy._reference import TorchRecipe, train_torch
    from mlsecops.core.executor import get_executor
    from mlsecops.models.loading import load_model
    from mlsecops.models.pytorch import TorchModel

    folder = folder.resolve()
    data = folder / "assets" / "data"
    if not (data / "train.csv").is_file():
        raise InputError(
            f"{folder} holds no healthcare case; build it first (mlsecops demo --case healthcare)"
        )
    out = folder / "privacy"
    out.mkdir(parents=True, exist_ok=True)
    train = _scaled(pd.read_csv(data / "train.csv"))
    test = _scaled(pd.read_csv(data / "test.csv"))
    cohort, rest = train.iloc[:PRIVATE_ROWS], train.iloc[PRIVATE_ROWS:]
    rng = np.random.default_rng(_SEED)
    # the same number of deaths on both sides: a gap in the label mix alone moves the loss attack's AUC
    deaths = round(AUDIT_ROWS * float(cohort["death"].mean()))
    members = cohort.iloc[_stratified(cohort["death"].to_numpy(), deaths, rng)]
    chosen = _stratified(rest["death"].to_numpy(), deaths, rng)
    non_members, pool = rest.iloc[chosen], rest.drop(rest.index[chosen])
    for name, part in (("train", cohort), ("test", test), ("members", members), ("non_members", non_members)):
        part.to_csv(out / f"{name}.csv", index=False, float_format="%.6f")

    torch.manual_seed(_SEED)
    module = _mlp(_MLP_WIDTH)
    x_fit, y_fit = _xy(cohort)
    train_torch(module, x_fit, y_fit, epochs=_MLP_EPOCHS, lr=_MLP_LR, batch_size=_MLP_BATCH, seed=_SEED)
    plain = TorchModel(module, input_shape=(len(FEATURES),), n_classes=2)
    models = folder / "assets" / "models"
    plain.save(models / "screening.mlp.pt2", fmt="torch-export")

    options: dict[str, Any] = {
        "model": str(models / "screening.mlp.pt2"),
        "data": str(out / "train.csv"),
        "test_data": str(out / "test.csv"),
        "label": "death",
        "epsilon": epsilon,
        "lower": 0.0,
        "upper": 1.0,
        "epochs": 30,
        "output": str(models / "screening.mlp.dp.pt2"),
    }
    target = Target(options=options, seed=_SEED, home=home, database_url=database_url, actor=actor)
    dp = get_check("harden.dp_training").create().run(target)
    (out / "dp-train.json").write_text(dp.model_dump_json(indent=2))
    private = load_model(str(models / "screening.mlp.dp.pt2"), input_shape=(len(FEATURES),))

    recipe = TorchRecipe(module=_mlp(_MLP_WIDTH), epochs=_MLP_EPOCHS, lr=_MLP_LR, batch_size=_MLP_BATCH)
    x_test, y_test = _xy(test)
    summary: dict[str, Any] = {
        "epsilon_target": epsilon,
        "epsilon_spent": dp.metrics["dp_epsilon"],
        "delta": dp.metrics["dp_delta"],
        "noise_multiplier": dp.metrics["dp_noise_multiplier"],
        "lineage": dp.data.get("lineage"),
        "training_rows": len(cohort),
        "audit_rows": AUDIT_ROWS,
        "references": references,
        "models": {},
    }
    for name, model in (("non-private", plain), ("dp", private)):
        audit = audit_privacy(
            model,
            _xy(members),
            _xy(non_members),
            reference=_xy(pool),
            attacks=("loss", "lira_online"),
            references=references,
            executor=get_executor(executor),
            learner=recipe,
            seed=_SEED,
        )
        report = privacy_report(
            audit, subject=f"screening.mlp{'.dp' if name == 'dp' else ''}.pt2", defences=()
        )
        (out / f"audit-{name}.json").write_text(report.model_dump_json(indent=2))
        accuracy = float(np.mean(model.predict_proba(x_test).argmax(axis=1) == y_test))
        summary["models"][name] = {
            "test_accuracy": accuracy,
            "membership_auc": report.metrics["membership_auc"],
            "membership_advantage": report.metrics["membership_advantage"],
            "membership_tpr@0.01": report.metrics["membership_tpr@0.01"],
            "per_attack": {
                a.attack: {"auc": a.auc, "advantage": a.advantage, "tpr@0.01": a.tpr[0.01]}
                for a in audit.attacks
            },
        }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
