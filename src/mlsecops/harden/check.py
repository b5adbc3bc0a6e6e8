"""The ``harden.adversarial_training`` check: harden a PyTorch model, write it, measure before and after.

Reads a PyTorch model (a ``.pt2`` program, a TorchScript file, or ``python:module:attr``) and a training
set, holds out a validation split, trains adversarially (``method`` ``pgd`` or ``trades``), writes the
hardened model as a new file (never over the original), and reports clean and PGD robust accuracy on
data the training never saw, before and after: the held-out validation split, or ``test_data`` when
given (then the whole training set trains). The report's ``evaluation`` says which, and how many rows. Model files load only through the artifact scanner
(``safe_load``); one it does not judge ``safe`` is refused before any of its code runs. The hardened
model is a ``.pt2`` program, except that a TorchScript model stays TorchScript (torch.export cannot
read it); a ``.pt2`` program keeps the mode it was exported in, so its dropout and batch-norm
statistics stay frozen while its weights train. With a workspace, the new file's lineage to the
original is recorded (two ``model_file`` nodes and an ``adversarially_trained`` edge, each with its
audit event).

Options: ``method`` (pgd), ``eps`` (0.1), ``norm`` (linf), ``epochs`` (10), ``steps`` (7), ``lr`` (3e-3),
``batch_size`` (128), ``beta`` (6, TRADES), ``val_fraction`` (0.2), ``output`` (default
``<model>.hardened.pt2`` beside the model, ``.hardened.pt`` for TorchScript; the suffix picks the
format), ``eval_steps`` (40), ``label``, ``weights``, ``test_data`` (a separate evaluation set, same
label column).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mlsecops.assess._data import encode_labels, load_dataset
from mlsecops.assess._options import model_and_data, tiny_contract_model
from mlsecops.assess.attack import make_attack
from mlsecops.assess.constraints import FeatureConstraints, parse_norm
from mlsecops.core.checks import CheckKind, ContractCases, Target, register
from mlsecops.core.errors import InputError
from mlsecops.core.findings import Finding, Report, Severity, utcnow
from mlsecops.core.redaction import redact
from mlsecops.harden.adversarial_training import adversarial_train
from mlsecops.models.interface import check_inputs
from mlsecops.models.loading import load_model
from mlsecops.models.pytorch import TorchModel

__all__ = ["AdversarialTrainingCheck", "record_lineage"]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def record_lineage(
    home: Path, database_url: str | None, parent: Path, child: Path, *, actor: str, attributes: dict[str, Any]
) -> None:
    """Record ``child`` as produced from ``parent`` by adversarial training, with audit events."""
    from mlsecops.store import Workspace, lineage

    ws = Workspace.open(home, database_url, actor=actor)
    try:
        with ws.session() as s:
            p_digest, c_digest = _sha256(parent), _sha256(child)
            p = lineage.add_node(
                s, kind="model_file", name=parent.name, version=p_digest[:16], digest=p_digest, actor=actor
            )
            c = lineage.add_node(
                s,
                kind="model_file",
                name=child.name,
                version=c_digest[:16],
                digest=c_digest,
                attributes=attributes,
                actor=actor,
            )
            lineage.link(s, p, c, "adversarially_trained", actor=actor)
    finally:
        ws.close()


@register(
    "harden.adversarial_training",
    kind=CheckKind.TRAINER,
    summary="PGD or TRADES adversarial training of a PyTorch model, with before/after robustness",
    metrics=("clean_accuracy_*", "robust_accuracy_*"),
    options=(
        "model",
        "data",
        "label",
        "weights",
        "method",
        "eps",
        "norm",
        "epochs",
        "steps",
        "lr",
        "batch_size",
        "beta",
        "val_fraction",
        "output",
        "eval_steps",
        "test_data",
        "lower",
        "upper",
        "integer_features",
        "immutable_features",
    ),
)
class AdversarialTrainingCheck:
    """Adversarial training as a check (see the module docstring for options).

    Args:
        progress: called as ``(step, done, total)``: the attack before, each epoch, the attack after.
    """

    def __init__(self, *, progress: Callable[[str, int, int], None] | None = None) -> None:
        self.progress = progress

    def _step(self, step: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(step, done, total)

    def run(self, target: Target) -> Report:
        """Train, write the new model, and report before/after metrics.

        Raises:
            InputError: missing model or data, a model that is not PyTorch, bad options.
        """
        started = utcnow()
        model_ref, data_ref = model_and_data(target, "adversarial training needs", data="a training set")
        x, raw_y = load_dataset(data_ref, label=target.opt_str("label"))
        weights = target.opt_str("weights")
        model = load_model(model_ref, input_shape=tuple(x.shape[1:]), weights=weights)
        if not isinstance(model, TorchModel):
            raise InputError(
                f"adversarial training needs a PyTorch model; {model_ref} is {type(model).__name__}"
            )
        x = check_inputs(x, model.input_shape, what="data")
        y = encode_labels(raw_y, None)
        seed = int(target.seed or 0)
        eps = (target.opt_float_list("eps", lo=0.0) or [0.1])[0]
        norm = parse_norm(target.opt_str("norm", "linf"))
        method = target.opt_choice("method", ("pgd", "trades"), "pgd")
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(x))
        test_ref = target.opt_str("test_data")
        if test_ref is not None:  # evaluate on a separate set; train on every training row
            x_test, raw_test = load_dataset(test_ref, label=target.opt_str("label"))
            x_eval, y_eval = (
                check_inputs(x_test, model.input_shape, what="test data"),
                encode_labels(raw_test, None),
            )
            x_fit, y_fit = x, y
            evaluation = {"on": "test_data", "source": test_ref, "rows": len(x_eval)}
        else:
            n_val = max(1, round(len(x) * target.opt_float("val_fraction", 0.2, lo=0.0, hi=1.0)))
            val, train = order[:n_val], order[n_val:]
            x_eval, y_eval, x_fit, y_fit = x[val], y[val], x[train], y[train]
            evaluation = {"on": "held-out validation split", "source": data_ref, "rows": len(val)}
        if len(x_fit) == 0:
            raise InputError("no training rows left after the validation split; lower val_fraction")
        cons = FeatureConstraints.from_target(target, x)
        steps, eval_steps = target.opt_int("steps", 7, lo=1), target.opt_int("eval_steps", 40, lo=1)
        lr, batch_size = target.opt_float("lr", 3e-3), target.opt_int("batch_size", 128, lo=1)
        beta = target.opt_float("beta", 6.0)
        output = target.opt_str("output")
        attack = make_attack("pgd", norm=norm, steps=eval_steps, restarts=1)
        epochs = target.opt_int("epochs", 10, lo=1)
        self._step("attack before", 0, epochs + 2)
        before = attack.generate(model, x_eval, y_eval, eps=eps, constraints=cons, seed=seed)
        # a fresh load to train (deep copies of TorchScript modules do not give leaf parameters)
        fresh = load_model(model_ref, input_shape=model.input_shape, weights=weights)
        assert isinstance(fresh, TorchModel)
        module = fresh.module
        for param in module.parameters():
            param.requires_grad_(True)
        result = adversarial_train(
            module,
            x_fit,
            y_fit,
            method=method,  # type: ignore[arg-type]  # one of the two, checked by opt_choice
            eps=eps,
            norm=norm,
            epochs=epochs,
            steps=steps,
            lr=lr,
            batch_size=batch_size,
            beta=beta,
            constraints=cons,
            seed=seed,
            progress=lambda step, done, _: self._step(step, 1 + done, epochs + 2),
        )
        hardened = TorchModel(module, input_shape=model.input_shape, n_classes=model.n_classes)
        after = attack.generate(hardened, x_eval, y_eval, eps=eps, constraints=cons, seed=seed)
        self._step("attack after", epochs + 2, epochs + 2)
        out = Path(output or _default_output(model_ref, scripted=_is_scripted(module)))
        if out.resolve() == Path(model_ref).resolve():
            raise InputError("the hardened model must not overwrite the original; choose another output")
        hardened.save(out)
        key = f"pgd_{norm}_{eps:g}"
        metrics = {
            "clean_accuracy_before": before.clean_accuracy,
            "clean_accuracy_after": after.clean_accuracy,
            f"robust_accuracy_before@{key}": before.robust_accuracy,
            f"robust_accuracy_after@{key}": after.robust_accuracy,
        }
        lineage_recorded = False
        if target.home is not None and Path(model_ref).is_file():
            record_lineage(
                target.home,
                target.database_url,
                Path(model_ref),
                out,
                actor=target.actor,
                attributes={"method": result.method, "eps": eps, "norm": norm, "epochs": result.epochs},
            )
            lineage_recorded = True
        findings = []
        if after.clean_accuracy < before.clean_accuracy - 0.05:
            findings.append(
                Finding(
                    check="harden.adversarial_training",
                    severity=Severity.MEDIUM,
                    title=f"hardening cost {before.clean_accuracy - after.clean_accuracy:.1%} clean accuracy",
                    detail="the hardened model is more robust but noticeably less accurate on clean inputs",
                    artifact=str(out),
                    remediation="train longer, lower eps, or use TRADES with a smaller beta",
                )
            )
        if after.robust_accuracy <= before.robust_accuracy:
            findings.append(
                Finding(
                    check="harden.adversarial_training",
                    severity=Severity.HIGH,
                    title="adversarial training did not improve robust accuracy",
                    detail=f"robust accuracy {before.robust_accuracy:.3f} -> {after.robust_accuracy:.3f} at eps={eps:g}",
                    artifact=str(out),
                    remediation="train for more epochs or with more PGD steps",
                )
            )
        return Report(
            subject=redact(model_ref),
            kind="harden.adversarial_training",
            started=started,
            finished=utcnow(),
            findings=tuple(findings),
            metrics=metrics,
            verdict="hardened" if not findings else "weak",
            data={
                "output": str(out),
                "method": result.method,
                "history": result.history,
                "evaluation": evaluation,
                "lineage_recorded": lineage_recorded,
            },
        )

    @classmethod
    def contract_cases(cls, tmp_dir: Any) -> ContractCases:
        """A tiny random PyTorch model with data, and a corrupt data file."""
        model_path, data_path = tiny_contract_model(tmp_dir)
        bad = tmp_dir / "corrupt.npz"
        bad.write_bytes(b"not an archive")
        opts = {"epochs": 1, "steps": 2, "eval_steps": 3, "output": str(tmp_dir / "hardened.pt2")}
        return ContractCases(
            valid=Target(paths=(model_path, data_path), options=opts, seed=1),
            corrupt=Target(paths=(model_path, bad), options=opts, seed=1),
        )


def _is_scripted(module: Any) -> bool:
    import torch

    return isinstance(module, torch.jit.ScriptModule)


def _default_output(model_ref: str, *, scripted: bool) -> Path:
    """``<model>.hardened.pt2`` beside the model; ``.pt`` (TorchScript) only for a TorchScript model."""
    suffix = ".hardened.pt" if scripted else ".hardened.pt2"
    if model_ref.startswith("python:"):
        return Path.cwd() / (model_ref.rsplit(":", 1)[-1] + suffix)
    p = Path(model_ref)
    return p.with_name(p.stem + suffix)
