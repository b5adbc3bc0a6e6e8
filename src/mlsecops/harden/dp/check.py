"""The ``harden.dp_training`` check: train a PyTorch model with DP-SGD, write it, test its leakage.

Reads a PyTorch model (a ``.pt2`` program or ``python:module:attr`` with optional ``weights``; a
TorchScript file is refused, Opacus cannot hook it) and a training set, holds out a validation split
(or takes ``test_data``), trains a copy with differential privacy to the target ``epsilon`` (see
``mlsecops.harden.dp.training``), writes it as a new ``.pt2`` file (never over the original), and
reports test accuracy, the (epsilon, delta) spent by the accountant, and the membership leakage measured
on the new model (members: the training rows; non-members: the held-out rows) tested against the
claimed epsilon (``mlsecops.harden.dp.leakage``). With a workspace, the new file is a lineage node
carrying the privacy facts (``differential_privacy``: epsilon, delta, accountant, noise multiplier,
clip, sampling rate, steps), linked from the original model (``dp_trained``) and from the training data
(``trained_on``); ``mlsecops registry register --trained-on model_file:NAME@VERSION`` (or ``dp-train
--register``) puts it in a registered version's lineage and ML-BOM.

Options: ``epsilon`` (required), ``delta`` (1e-5), ``epochs``, ``clip``, ``batch_size``, ``lr``
(defaults in ``mlsecops.harden.dp.training``), ``optimizer`` (adam), ``accountant`` (prv),
``lower``/``upper`` (public feature bounds: inputs are mapped to [-1, 1] by a fixed first layer),
``val_fraction`` (0.2), ``test_data``, ``output`` (default ``<model>.dp.pt2``), ``leakage_check``
(true), ``fine_tune`` (false: every weight is drawn afresh first), ``label``, ``weights``,
``public_data`` (a file of public rows, same format and ``label`` as the data: pre-train on it without
noise first; recorded in the privacy facts and linked ``pretrained_on`` in the lineage),
``public_epochs`` (30) and ``dp_layers`` (train only the last N layers privately, freeze the rest).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mlsecops.assess._data import encode_labels, load_dataset
from mlsecops.assess._options import model_and_data, tiny_contract_model
from mlsecops.core.checks import CheckKind, ContractCases, Target, register
from mlsecops.core.errors import InputError
from mlsecops.core.findings import Finding, Report, Severity, utcnow
from mlsecops.core.redaction import redact
from mlsecops.harden.dp.leakage import LeakageCheck, leakage_check, membership_scores
from mlsecops.harden.dp.training import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_CLIP,
    DEFAULT_DELTA,
    DEFAULT_EPOCHS,
    DEFAULT_LR,
    DEFAULT_PUBLIC_EPOCHS,
    DpTrainingResult,
    PublicData,
    dp_train,
)
from mlsecops.models.interface import check_inputs
from mlsecops.models.loading import load_model
from mlsecops.models.pytorch import TorchModel

__all__ = ["DpTrainingCheck", "record_dp_lineage"]

CHECK = "harden.dp_training"
AUDIT_ATTACKS = ("loss", "confidence")
"""Membership attacks run on the trained model: the audit's reference-free ones (no extra training)."""
EPSILON_SLACK = 1e-3
"""Relative slack on the spent epsilon before it counts as over the target (accountant rounding)."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def record_dp_lineage(
    home: Path,
    database_url: str | None,
    *,
    parent: str,
    data: Path,
    child: Path,
    actor: str,
    facts: dict[str, Any],
    public_data: Path | None = None,
) -> str:
    """Record ``child`` as trained privately from model ``parent`` on ``data``, with audit events.

    Returns:
        the child's lineage reference ``model_file:NAME@VERSION`` (for ``--trained-on``).
    """
    from mlsecops.store import Workspace, lineage

    ws = Workspace.open(home, database_url, actor=actor)
    try:
        with ws.session() as s:
            c_digest = _sha256(child)
            c = lineage.add_node(
                s,
                kind="model_file",
                name=child.name,
                version=c_digest[:16],
                digest=c_digest,
                attributes={"differential_privacy": facts},
                actor=actor,
            )
            ppath = Path(parent)
            if not parent.startswith("python:") and ppath.is_file():
                p_digest = _sha256(ppath)
                p = lineage.add_node(
                    s, kind="model_file", name=ppath.name, version=p_digest[:16], digest=p_digest, actor=actor
                )
            else:
                p = lineage.add_node(s, kind="model_code", name=redact(parent), actor=actor)
            lineage.link(s, p, c, "dp_trained", actor=actor)
            for source, relation in ((data, "trained_on"), (public_data, "pretrained_on")):
                if source is not None and source.is_file():
                    digest = _sha256(source)
                    node = lineage.add_node(
                        s, kind="dataset", name=source.name, version=digest[:12], digest=digest, actor=actor
                    )
                    lineage.link(s, node, c, relation, actor=actor)
    finally:
        ws.close()
    return f"model_file:{child.name}@{c_digest[:16]}"


@register(
    CHECK,
    kind=CheckKind.TRAINER,
    summary="differentially private training (DP-SGD, Opacus) with a measured-leakage check",
    metrics=(
        "test_accuracy",
        "dp_epsilon",
        "dp_delta",
        "dp_noise_multiplier",
        "leakage_auc",
        "leakage_advantage",
        "leakage_empirical_epsilon",
    ),
    options=(
        "model",
        "data",
        "label",
        "weights",
        "epsilon",
        "delta",
        "epochs",
        "clip",
        "batch_size",
        "lr",
        "optimizer",
        "accountant",
        "lower",
        "upper",
        "val_fraction",
        "test_data",
        "output",
        "leakage_check",
        "fine_tune",
        "public_data",
        "public_epochs",
        "dp_layers",
    ),
)
class DpTrainingCheck:
    """Differentially private training as a check (see the module docstring for options).

    Args:
        progress: called as ``(step, done, total)`` after each epoch.
    """

    def __init__(self, *, progress: Callable[[str, int, int], None] | None = None) -> None:
        self.progress = progress

    def run(self, target: Target) -> Report:
        """Train privately, write the new model, and report utility, privacy spent and leakage.

        Raises:
            InputError: missing model or data, a model that is not PyTorch, bad options, or a model
                that cannot be made private (``PrivacyUnsupportedError``).
        """
        started = utcnow()
        model_ref, data_ref = model_and_data(target, "DP training needs", data="a training set")
        epsilon = target.opt_float("epsilon", None, lo=0.0)
        if epsilon is None or not epsilon > 0:
            raise InputError("DP training needs the target epsilon (> 0), e.g. epsilon: 3")
        x, raw_y = load_dataset(data_ref, label=target.opt_str("label"))
        weights = target.opt_str("weights")
        model = load_model(model_ref, input_shape=tuple(x.shape[1:]), weights=weights)
        if not isinstance(model, TorchModel):
            raise InputError(
                f"DP training needs a PyTorch model (.pt2 or python:module:Class); {model_ref} is "
                f"{type(model).__name__}"
            )
        x = check_inputs(x, model.input_shape, what="data")
        y = encode_labels(raw_y, None)
        seed = int(target.seed or 0)
        x_fit, y_fit, x_eval, y_eval, evaluation = self._split(target, x, y, model, data_ref, seed)
        bounds = _bounds(target)
        epochs = target.opt_int("epochs", DEFAULT_EPOCHS, lo=1)
        public_ref = target.opt_str("public_data")
        public = None
        if public_ref is not None:
            px, raw_py = load_dataset(public_ref, label=target.opt_str("label"))
            public = PublicData(
                px,
                encode_labels(raw_py, None),
                source=f"{Path(public_ref).name} (sha256 {_sha256(Path(public_ref))[:16]})",
                epochs=target.opt_int("public_epochs", DEFAULT_PUBLIC_EPOCHS, lo=1),
            )
        dp_layers = target.opt_int("dp_layers", 0, lo=0) or None
        result = dp_train(
            model.module,
            x_fit,
            y_fit,
            epsilon=epsilon,
            delta=target.opt_float("delta", DEFAULT_DELTA, lo=0.0, hi=1.0),
            epochs=epochs,
            clip=target.opt_float("clip", DEFAULT_CLIP, lo=0.0),
            batch_size=target.opt_int("batch_size", DEFAULT_BATCH_SIZE, lo=1),
            lr=target.opt_float("lr", DEFAULT_LR, lo=0.0),
            optimizer=target.opt_choice("optimizer", ("adam", "sgd"), "adam"),
            accountant=target.opt_choice("accountant", ("prv", "rdp", "gdp"), "prv"),
            n_classes=model.n_classes,
            input_range=bounds,
            seed=seed,
            fine_tune=target.opt_bool("fine_tune", False),
            public_data=public,
            dp_layers=dp_layers,
            progress=self.progress,
        )
        trained = TorchModel(result.module, input_shape=model.input_shape, n_classes=model.n_classes)
        pred = trained.predict_proba(x_eval).argmax(axis=1)
        accuracy = float(np.mean(pred == y_eval)) if len(y_eval) else float("nan")
        leak = None
        if target.opt_bool("leakage_check", True):
            leak = _leakage(trained, (x_fit, y_fit), (x_eval, y_eval), result, seed)
        out = Path(target.opt_str("output") or _default_output(model_ref))
        if not model_ref.startswith("python:") and out.resolve() == Path(model_ref).resolve():
            raise InputError("the private model must not overwrite the original; choose another output")
        trained.save(out, fmt="torch-export")
        lineage_ref = None
        if target.home is not None:
            lineage_ref = record_dp_lineage(
                target.home,
                target.database_url,
                parent=model_ref,
                data=Path(data_ref),
                child=out,
                actor=target.actor,
                facts=result.facts(),
                public_data=Path(public_ref) if public_ref is not None else None,
            )
        metrics = {
            "test_accuracy": accuracy,
            "dp_epsilon": result.epsilon,
            "dp_delta": result.delta,
            "dp_noise_multiplier": result.noise_multiplier,
        }
        if leak is not None:
            metrics |= {
                "leakage_auc": leak.auc,
                "leakage_advantage": leak.advantage,
                "leakage_empirical_epsilon": leak.empirical_epsilon,
            }
        findings = _findings(result, leak, str(out))
        return Report(
            subject=redact(model_ref),
            kind=CHECK,
            started=started,
            finished=utcnow(),
            findings=tuple(findings),
            metrics=metrics,
            verdict="leak_exceeds_epsilon" if leak is not None and not leak.consistent else "private",
            data={
                "output": str(out),
                "privacy": result.facts(),
                "history": result.history,
                "evaluation": evaluation,
                "leakage": leak.to_json() if leak is not None else None,
                "lineage": lineage_ref,
            },
        )

    @staticmethod
    def _split(
        target: Target, x: np.ndarray, y: np.ndarray, model: TorchModel, data_ref: str, seed: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Training rows, evaluation rows (never trained on) and what the evaluation is."""
        test_ref = target.opt_str("test_data")
        if test_ref is not None:
            x_test, raw_test = load_dataset(test_ref, label=target.opt_str("label"))
            x_eval = check_inputs(x_test, model.input_shape, what="test data")
            return x, y, x_eval, encode_labels(raw_test, None), {"on": "test_data", "rows": len(x_eval)}
        order = np.random.default_rng(seed).permutation(len(x))
        n_val = max(1, round(len(x) * target.opt_float("val_fraction", 0.2, lo=0.0, hi=1.0)))
        val, train = order[:n_val], order[n_val:]
        if len(train) < 2:
            raise InputError("too few training rows left after the validation split; lower val_fraction")
        evaluation = {"on": "held-out validation split", "rows": len(val)}
        return x[train], y[train], x[val], y[val], evaluation

    @classmethod
    def contract_cases(cls, tmp_dir: Any) -> ContractCases:
        """A tiny random PyTorch model with data, and a corrupt data file."""
        model_path, data_path = tiny_contract_model(tmp_dir)
        bad = tmp_dir / "corrupt.npz"
        bad.write_bytes(b"not an archive")
        opts = {
            "epsilon": 2.0,
            "delta": 1e-3,
            "epochs": 1,
            "batch_size": 8,
            "accountant": "rdp",
            "output": str(tmp_dir / "private.pt2"),
        }
        return ContractCases(
            valid=Target(paths=(model_path, data_path), options=opts, seed=1),
            corrupt=Target(paths=(model_path, bad), options=opts, seed=1),
        )


def _bounds(target: Target) -> tuple[float, float] | None:
    lo, hi = target.opt_float("lower", None), target.opt_float("upper", None)
    if (lo is None) != (hi is None):
        raise InputError("give both lower and upper (the features' public bounds), or neither")
    return None if lo is None or hi is None else (lo, hi)


def _leakage(
    model: TorchModel,
    members: tuple[np.ndarray, np.ndarray],
    non_members: tuple[np.ndarray, np.ndarray],
    result: DpTrainingResult,
    seed: int,
) -> LeakageCheck | None:
    """Membership leakage on balanced sets (as many members as held-out rows), or None if too few."""
    n = min(len(members[0]), len(non_members[0]))
    if n < 4:
        return None
    pick = np.random.default_rng(seed).permutation(len(members[0]))[:n]
    chosen = (members[0][pick], members[1][pick])
    try:  # the privacy audit's reference-free attacks (loss, confidence), the same code `assess privacy` runs
        from mlsecops.assess.privacy import audit_privacy

        audit = audit_privacy(model, chosen, non_members, attacks=AUDIT_ATTACKS, seed=seed)
        scores, member = audit.scores, audit.member
    except InputError:  # e.g. identical rows on both sides: the audit refuses, the plain scores still test
        scores, member = membership_scores(model, chosen, non_members)
    return leakage_check(scores, member, epsilon=result.epsilon, delta=result.delta, seed=seed)


def _findings(result: DpTrainingResult, leak: LeakageCheck | None, out: str) -> list[Finding]:
    findings = []
    if leak is not None and not leak.consistent:
        findings.append(
            Finding(
                check=CHECK,
                severity=Severity.HIGH,
                title=f"measured leakage contradicts epsilon={result.epsilon:.3g}",
                detail=(
                    f"the {leak.attack} membership attack proves epsilon >= {leak.empirical_epsilon:.3g} "
                    f"(TPR {leak.test_tpr:.3f} at FPR {leak.test_fpr:.3f} on held-out rows, "
                    f"{int(100 * 0.95)}% confidence), above the claimed {result.epsilon:.3g}: the "
                    "guarantee does not hold for this model"
                ),
                artifact=out,
                atlas="AML.T0024.000",
                evidence=leak.to_json(),
                remediation=(
                    "check that the held-out rows are not also training rows and that this is the model "
                    "that was trained; do not release it with this epsilon"
                ),
            )
        )
    if result.epsilon > result.target_epsilon * (1 + EPSILON_SLACK):
        findings.append(
            Finding(
                check=CHECK,
                severity=Severity.MEDIUM,
                title=f"spent epsilon {result.epsilon:.3g} is above the target {result.target_epsilon:g}",
                detail=f"the {result.accountant} accountant reports more privacy loss than was asked",
                artifact=out,
                remediation="train for fewer epochs or with a smaller batch",
            )
        )
    for note in result.notes:
        if note.startswith("replaced"):
            findings.append(
                Finding(
                    check=CHECK,
                    severity=Severity.INFO,
                    title="layer replaced for private training",
                    detail=note,
                    artifact=out,
                    remediation="the new model's architecture differs here; evaluate it before release",
                )
            )
    return findings


def _default_output(model_ref: str) -> Path:
    """``<model>.dp.pt2`` beside the model, or in the working directory for ``python:`` models."""
    if model_ref.startswith("python:"):
        return Path.cwd() / (model_ref.rsplit(":", 1)[-1] + ".dp.pt2")
    p = Path(model_ref)
    return p.with_name(p.stem + ".dp.pt2")
