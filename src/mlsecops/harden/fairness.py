"""The ``harden.fairness`` check: mitigate group unfairness with fairlearn, write a new model, audit both.

Two methods, both fairlearn's:

- ``threshold``: ``ThresholdOptimizer`` post-processing on the model's scores (any model with
  probabilities: scikit-learn, PyTorch, ONNX). The model is not retrained; per group, a threshold
  rule (possibly a mix of two thresholds) replaces the 0.5 cut. At prediction time the rule needs
  each row's group: the written model takes the group's code as its last input (see
  ``mlsecops.models.fair``).
- ``reductions``: ``ExponentiatedGradient`` retrains the model (a scikit-learn estimator, cloned
  with its parameters) under the constraint and returns a weighted mixture of fitted copies. It needs
  the group only while training.

``constraint``: ``demographic_parity``, ``equalized_odds``, ``true_positive_rate_parity``,
``false_positive_rate_parity``; ``threshold`` also takes ``true_negative_rate_parity`` and
``false_negative_rate_parity``, ``reductions`` also ``error_rate_parity``.

The mitigated model is a ``.fair.json`` manifest plus member files beside it (the original model's
bytes for ``threshold``; pickles of scikit-learn estimators for ``reductions``), each pinned by
SHA-256 and loaded only through the artifact scanner (``load_model`` routes ``*.fair.json``). The
report states the audit before and after on data the mitigation never saw (``test_data``, else a
held-out 30 % of the training set: ``val_fraction``), the accuracy cost, and the output; with a
workspace, the lineage from the original file to the manifest (a ``fairness_mitigated`` edge, each
node with its audit event). fairlearn's randomised decisions are made deterministic per row (a keyed
hash of the row replaces the random draw; rates hold over many rows).
"""

from __future__ import annotations

import hashlib
import pickle
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlsecops.assess._fairness_inputs import Prepared, predict, prepare
from mlsecops.assess.fairness import DEFAULT_MIN_GROUP_SIZE, FairnessAudit, audit_fairness, fairness_report
from mlsecops.core.checks import CheckKind, ContractCases, Target, register
from mlsecops.core.errors import InputError
from mlsecops.core.findings import Finding, Report, Severity, utcnow
from mlsecops.core.redaction import redact
from mlsecops.models.fair import (
    FAIR_SUFFIX,
    FairModel,
    GroupRule,
    group_keys,
    load_fair_model,
    write_fair_model,
)
from mlsecops.models.interface import ModelAdapter

__all__ = ["COMPARED", "FairnessMitigationCheck", "Mitigation", "mitigate", "sample_weight_name"]

THRESHOLD_CONSTRAINTS = (
    "demographic_parity",
    "equalized_odds",
    "true_positive_rate_parity",
    "false_positive_rate_parity",
    "true_negative_rate_parity",
    "false_negative_rate_parity",
)
REDUCTION_CONSTRAINTS = (
    "demographic_parity",
    "equalized_odds",
    "true_positive_rate_parity",
    "false_positive_rate_parity",
    "error_rate_parity",
)
COMPARED = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "equal_opportunity_difference",
    "accuracy",
)
"""Audit metrics reported before and after (``<name>_before``, ``<name>_after``)."""
DEFAULT_VAL_FRACTION = 0.3
"""Share of the training set held out for the before/after audit when no ``test_data`` is given."""
MAX_ACCURACY_COST = 0.05
"""An accuracy drop above this is a finding: the fairness gain was bought dearly."""
_CONSTRAINT_FOR_METRIC = {
    "demographic_parity": "demographic_parity_difference",
    "equalized_odds": "equalized_odds_difference",
    "true_positive_rate_parity": "equal_opportunity_difference",
}


@dataclass(frozen=True)
class Mitigation:
    """A fitted mitigation, ready to write."""

    method: str
    constraint: str
    groups: list[str] | None
    rules: list[GroupRule] | None
    members: list[tuple[Any, float]]
    """``(estimator or None for the original model, weight)``."""


def _scores(model: ModelAdapter) -> Any:
    """The adapter as the prefit scikit-learn estimator fairlearn's ThresholdOptimizer scores with."""
    from sklearn.base import BaseEstimator, ClassifierMixin

    class Scores(ClassifierMixin, BaseEstimator):  # type: ignore[misc]  # sklearn is untyped
        def __init__(self, adapter: ModelAdapter | None = None) -> None:
            self.adapter = adapter

        def fit(self, x: Any, y: Any, **kwargs: Any) -> Any:
            return self

        def __sklearn_is_fitted__(self) -> bool:
            return True

        def predict_proba(self, x: Any) -> np.ndarray:
            assert self.adapter is not None
            return predict(self.adapter, np.asarray(x, dtype=np.float32))

    return Scores(model)


def _moment(constraint: str) -> Any:
    from fairlearn import reductions as red

    return {
        "demographic_parity": red.DemographicParity,
        "equalized_odds": red.EqualizedOdds,
        "true_positive_rate_parity": red.TruePositiveRateParity,
        "false_positive_rate_parity": red.FalsePositiveRateParity,
        "error_rate_parity": red.ErrorRateParity,
    }[constraint]()


def sample_weight_name(estimator: Any) -> str:
    """The fit parameter that carries sample weights: a Pipeline routes them to its last step."""
    steps = getattr(estimator, "steps", None)
    if isinstance(steps, list) and steps and isinstance(steps[-1], tuple):
        return f"{steps[-1][0]}__sample_weight"
    return "sample_weight"


def mitigate(
    model: ModelAdapter,
    x: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    *,
    method: str,
    constraint: str,
    max_iter: int = 50,
    eps: float = 0.01,
) -> Mitigation:
    """Fit fairlearn's mitigation on training rows ``x``, 0/1 labels ``y`` and group names ``groups``.

    Raises:
        InputError: an unknown method or constraint, a model that cannot be used by the method.
    """
    try:
        import fairlearn  # noqa: F401
    except ImportError as err:
        raise InputError("harden fairness needs fairlearn: pip install 'mlsecops[fairness]'") from err
    names = [str(g) for g in groups]
    if len(set(names)) < 2:
        raise InputError("mitigation needs at least two groups in the training data")
    if method == "threshold":
        if constraint not in THRESHOLD_CONSTRAINTS:
            raise InputError(f"constraint must be one of {', '.join(THRESHOLD_CONSTRAINTS)} for threshold")
        from fairlearn.postprocessing import ThresholdOptimizer

        opt = ThresholdOptimizer(
            estimator=_scores(model),
            constraints=constraint,
            objective="accuracy_score",
            prefit=True,
            predict_method="predict_proba",
        )
        opt.fit(x, y, sensitive_features=np.asarray(names, dtype=object))
        table = opt.interpolated_thresholder_.interpolation_dict
        keys = sorted(str(k) for k in table)
        rules = []
        for key in keys:
            b = table[key]
            rules.append(
                GroupRule(
                    p0=float(b.p0),
                    op0=b.operation0.operator,
                    t0=float(b.operation0.threshold),
                    p1=float(b.p1),
                    op1=b.operation1.operator,
                    t1=float(b.operation1.threshold),
                    p_ignore=float(b.get("p_ignore", 0.0)),
                    constant=float(b.get("prediction_constant", 0.0)),
                )
            )
        return Mitigation(method, constraint, keys, rules, [(None, 1.0)])
    if method != "reductions":
        raise InputError(f"method must be threshold or reductions; got {method!r}")
    if constraint not in REDUCTION_CONSTRAINTS:
        raise InputError(f"constraint must be one of {', '.join(REDUCTION_CONSTRAINTS)} for reductions")
    estimator = getattr(model, "estimator", None)
    if estimator is None:
        raise InputError(
            "reductions retrain the model: it must be a scikit-learn estimator (use --method threshold)"
        )
    from fairlearn.reductions import ExponentiatedGradient
    from sklearn.base import clone

    eg = ExponentiatedGradient(
        clone(estimator),
        constraints=_moment(constraint),
        eps=eps,
        max_iter=max_iter,
        sample_weight_name=sample_weight_name(estimator),
    )
    eg.fit(x, y, sensitive_features=np.asarray(names, dtype=object))
    members = [(eg.predictors_[t], float(w)) for t, w in eg.weights_.items() if float(w) > 0]
    return Mitigation(method, constraint, None, None, members)


def _write(mit: Mitigation, prep: Prepared, out: Path, model_ref: str, seed: int) -> FairModel:
    """Write member files and the manifest at ``out``; return the loaded mitigated model."""
    stem = out.name[: -len(FAIR_SUFFIX)]
    files: list[tuple[Path, float, str]] = []
    for i, (est, weight) in enumerate(mit.members):
        if est is None:  # the original model's own bytes, scanned again when loaded
            src = Path(model_ref)
            if not src.is_file():
                raise InputError("threshold mitigation writes a copy of the model file; give a model file")
            dst = out.with_name(f"{stem}.base{''.join(src.suffixes[-1:])}")
            shutil.copyfile(src, dst)
            files.append((dst, weight, "score"))
        else:
            dst = out.with_name(f"{stem}.member{i}.pkl")
            dst.write_bytes(pickle.dumps(est, protocol=4))
            files.append((dst, weight, "label"))
    write_fair_model(
        out,
        method=mit.method,
        constraint=mit.constraint,
        member_files=files,
        base_features=prep.features if not isinstance(prep.model, FairModel) else prep.model.base_features,
        sensitive=prep.sensitive,
        classes=prep.classes,
        groups=mit.groups,
        rules=mit.rules,
        coin_key=_coin_key(model_ref, seed),
    )
    return load_fair_model(out)


def _coin_key(model_ref: str, seed: int) -> bytes:
    """The per-row hash key: fixed by the seed and the model's bytes, so a run can be reproduced."""
    h = hashlib.blake2b(f"mlsecops-fair-coin:{seed}:".encode(), digest_size=16)
    src = Path(model_ref)
    h.update(src.read_bytes() if src.is_file() else model_ref.encode())
    return h.digest()


def _record_lineage(target: Target, parent: Path, child: Path, attributes: dict[str, Any]) -> None:
    from mlsecops.store import Workspace, lineage

    def digest(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()

    assert target.home is not None
    ws = Workspace.open(target.home, target.database_url, actor=target.actor)
    try:
        with ws.session() as s:
            pd_, cd_ = digest(parent), digest(child)
            p = lineage.add_node(
                s, kind="model_file", name=parent.name, version=pd_[:16], digest=pd_, actor=target.actor
            )
            c = lineage.add_node(
                s,
                kind="model_file",
                name=child.name,
                version=cd_[:16],
                digest=cd_,
                attributes=attributes,
                actor=target.actor,
            )
            lineage.link(s, p, c, "fairness_mitigated", actor=target.actor)
    finally:
        ws.close()


def _split(prep: Prepared, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(len(prep.y))
    n_val = max(1, round(len(order) * fraction))
    if n_val >= len(order):
        raise InputError("no training rows left after the held-out split; lower val_fraction")
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _audit(model: ModelAdapter, prep: Prepared, rows: np.ndarray, target: Target, seed: int) -> FairnessAudit:
    x = prep.x[rows] if not isinstance(model, FairModel) else _fair_inputs(model, prep, rows)
    pred = predict(model, x).argmax(axis=1)
    sens = {c: prep.table[c][rows] for c in prep.sensitive}
    return audit_fairness(
        prep.y[rows],
        pred,
        sens,
        min_group_size=target.opt_int("min_group_size", DEFAULT_MIN_GROUP_SIZE, lo=1),
        n_boot=target.opt_int("bootstrap", 200, lo=0, hi=100_000),
        seed=seed,
    )


def _fair_inputs(model: FairModel, prep: Prepared, rows: np.ndarray) -> np.ndarray:
    from mlsecops.assess._fairness_inputs import model_matrix

    sub = {k: v[rows] for k, v in prep.table.items()}
    return model.encode_inputs(model_matrix(sub, model.base_features, prep.path), sub)


@register(
    "harden.fairness",
    kind=CheckKind.TRAINER,
    summary="Fairness mitigation (fairlearn ThresholdOptimizer or ExponentiatedGradient) with before/after audit",
    metrics=(*(f"{m}_{when}" for m in COMPARED for when in ("before", "after")), "accuracy_cost"),
    options=(
        "model",
        "data",
        "label",
        "sensitive",
        "features",
        "method",
        "constraint",
        "output",
        "test_data",
        "val_fraction",
        "min_group_size",
        "bootstrap",
        "max_iter",
        "eps",
        "timeout",
        "weights",
    ),
)
class FairnessMitigationCheck:
    """Fairness mitigation as a check (see the module docstring for the options).

    Args:
        progress: called as ``(step, done, total)``: fit, write, audit.
    """

    def __init__(self, *, progress: Callable[[str, int, int], None] | None = None) -> None:
        self.progress = progress

    def _step(self, step: str, done: int) -> None:
        if self.progress is not None:
            self.progress(step, done, 3)

    def run(self, target: Target) -> Report:
        """Fit the mitigation, write the new model, audit before and after.

        Raises:
            InputError: bad model, data or options; fairlearn missing.
        """
        started = utcnow()
        seed = int(target.seed or 0)
        method = target.opt_choice("method", ("threshold", "reductions"), "threshold")
        constraint = target.opt_str("constraint", "demographic_parity")
        train = prepare(target)
        model_ref = train.model_ref
        test_ref = target.opt_str("test_data")
        if test_ref is not None:
            test = prepare(target, data=test_ref, model=train.model)
            fit_rows, eval_rows = np.arange(len(train.y)), np.arange(len(test.y))
            evaluation = {"on": "test_data", "source": redact(test_ref), "rows": len(test.y)}
        else:
            fraction = target.opt_float("val_fraction", DEFAULT_VAL_FRACTION, lo=0.05, hi=0.9)
            fit_rows, eval_rows = _split(train, fraction, seed)
            test = train
            evaluation = {"on": "held-out split of data", "source": redact(model_ref), "rows": len(eval_rows)}
        if isinstance(train.model, FairModel):
            raise InputError("the model is already mitigated; mitigate the original model")
        self._step("fit", 0)
        groups = group_keys([train.table[c][fit_rows] for c in train.sensitive])
        mit = mitigate(
            train.model,
            train.x[fit_rows],
            train.y[fit_rows],
            groups,
            method=method,
            constraint=constraint,
            max_iter=target.opt_int("max_iter", 50, lo=1, hi=1000),
            eps=target.opt_float("eps", 0.01, lo=0.0, hi=1.0),
        )
        out = Path(target.opt_str("output") or _default_output(model_ref))
        if not out.name.endswith(FAIR_SUFFIX):
            raise InputError(f"the mitigated model is a manifest named *{FAIR_SUFFIX}; got {out.name}")
        if Path(model_ref).is_file() and out.resolve() == Path(model_ref).resolve():
            raise InputError("the mitigated model must not overwrite the original; choose another output")
        self._step("write", 1)
        fair = _write(mit, train, out, model_ref, seed)
        self._step("audit", 2)
        before = _audit(train.model, test, eval_rows, target, seed)
        after = _audit(fair, test, eval_rows, target, seed)
        self._step("done", 3)
        lineage_recorded = False
        if target.home is not None and Path(model_ref).is_file():
            _record_lineage(target, Path(model_ref), out, {"method": method, "constraint": constraint})
            lineage_recorded = True
        return self._report(model_ref, out, mit, before, after, evaluation, lineage_recorded, started)

    def _report(
        self,
        model_ref: str,
        out: Path,
        mit: Mitigation,
        before: FairnessAudit,
        after: FairnessAudit,
        evaluation: dict[str, Any],
        lineage_recorded: bool,
        started: Any,
    ) -> Report:
        metrics: dict[str, float] = {}
        for audit, when in ((before, "before"), (after, "after")):
            for name in COMPARED:
                metrics[f"{name}_{when}"] = round(audit.intersection.aggregates[name], 6)
        cost = before.accuracy - after.accuracy
        metrics["accuracy_cost"] = round(cost, 6)
        target_metric = _CONSTRAINT_FOR_METRIC.get(mit.constraint, "demographic_parity_difference")
        findings = []
        b, a = metrics[f"{target_metric}_before"], metrics[f"{target_metric}_after"]
        if not a < b:
            findings.append(
                Finding(
                    check="harden.fairness",
                    severity=Severity.HIGH,
                    title=f"mitigation did not reduce {target_metric.replace('_', ' ')} ({b:.3f} -> {a:.3f})",
                    detail="on the evaluation rows the mitigated model is no fairer by the constrained metric",
                    artifact=str(out),
                    remediation="try the other method or constraint, or more training data for the small groups",
                )
            )
        if cost > MAX_ACCURACY_COST:
            findings.append(
                Finding(
                    check="harden.fairness",
                    severity=Severity.MEDIUM,
                    title=f"mitigation cost {cost:.1%} accuracy",
                    detail=f"accuracy {before.accuracy:.3f} -> {after.accuracy:.3f} on the evaluation rows",
                    artifact=str(out),
                    remediation="check whether the disparity comes from biased labels or missing features",
                )
            )
        before_r = fairness_report(before, subject=redact(model_ref))
        after_r = fairness_report(after, subject=str(out))
        return Report(
            subject=redact(model_ref),
            kind="harden.fairness",
            started=started,
            finished=utcnow(),
            findings=tuple(findings),
            metrics=metrics,
            verdict="mitigated" if not findings else "weak",
            data={
                "output": str(out),
                "method": mit.method,
                "constraint": mit.constraint,
                "members": len(mit.members),
                "groups": mit.groups,
                "sensitive_input": "group code appended as the last input column"
                if mit.groups is not None
                else "none at prediction time",
                "evaluation": evaluation,
                "before": before_r.data["fairness"],
                "after": after_r.data["fairness"],
                "lineage_recorded": lineage_recorded,
            },
            figures=after_r.figures,
        )

    @classmethod
    def contract_cases(cls, tmp_dir: Any) -> ContractCases:
        """The audit's contract model and data, mitigated by thresholds; a corrupt data file."""
        from mlsecops.assess.fairness import FairnessCheck

        cases = FairnessCheck.contract_cases(tmp_dir)
        opts: dict[str, Any] = {
            "sensitive": "group",
            "label": "label",
            "bootstrap": 0,
            "output": str(Path(tmp_dir) / "mitigated.fair.json"),
        }
        return ContractCases(
            valid=Target(paths=cases.valid.paths, options=opts, seed=1),
            corrupt=Target(paths=cases.corrupt.paths, options=opts, seed=1),
        )


def _default_output(model_ref: str) -> Path:
    if model_ref.startswith("python:"):
        return Path.cwd() / (model_ref.rsplit(":", 1)[-1] + FAIR_SUFFIX)
    p = Path(model_ref)
    return p.with_name(p.name.split(".")[0] + FAIR_SUFFIX)
