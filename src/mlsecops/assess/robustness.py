"""The ``assess.robustness`` check: accuracy under evasion attacks, per attack and budget.

``evaluate_robustness`` is the library call: it runs each attack at each eps on the same examples and
returns an ``Evaluation``. ``robustness_report`` turns that into a ``Report`` with metrics
``clean_accuracy``, ``robust_accuracy@<attack>_<norm>_<eps>`` and ``attack_success@<attack>_<norm>_<eps>``,
a robustness-curve figure, the worst examples (as images for image data), and one finding per budget
at which the attack fooled the model (MITRE ATLAS AML.T0015, evade ML model).

The registered checks read the model and data from the target: ``paths`` = (model, data) or the options
``model`` and ``data``; other options: ``attack`` (name or list; default ``pgd`` for PyTorch models,
``square`` otherwise), ``eps`` (list or ``"0.05,0.1"``), ``norm``, ``steps``, ``restarts``,
``max_queries``, ``max_examples`` (default 1000), ``label``, feature ``lower``/``upper``,
``integer_features``, ``immutable_features``, ``output``, ``timeout``, ``weights``; ``executor``
(``inline``, ``process``, ``ray``), ``workers``, ``address`` and ``shard_rows`` shard the examples on an
engine (``mlsecops.assess._sharded``: the same report on every engine and worker count). A model file loads
only through the artifact scanner (``safe_load``): one it does not judge ``safe`` is refused unrun.
Every attack is also registered on its own (``assess.fgsm``, ``assess.pgd``...).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from mlsecops.assess._data import encode_labels, load_dataset, subsample
from mlsecops.assess._evasion import CleanAccuracy, evasion_finding, evasion_report, median_queries
from mlsecops.assess._figures import image_pairs_svg
from mlsecops.assess._options import MODEL_OPTIONS, load_target_model, model_and_data
from mlsecops.assess._sharded import DEFAULT_SHARD_ROWS, robustness_sharded, worker_model
from mlsecops.assess.attack import ATTACKS, AttackResult, make_attack
from mlsecops.assess.constraints import FeatureConstraints, parse_norm
from mlsecops.core.checks import CheckKind, ContractCases, Target, register
from mlsecops.core.findings import Figure, Finding, Report, Severity, utcnow
from mlsecops.core.redaction import redact
from mlsecops.core.target_executor import EXECUTOR_OPTIONS, executor_from_target
from mlsecops.models.interface import ModelAdapter, TorchNative, check_inputs
from mlsecops.report.plots import line_chart

__all__ = ["Evaluation", "RobustnessCheck", "evaluate_robustness", "metric_key", "robustness_report"]

_DEFAULT_EPS = {"linf": (0.05, 0.1, 0.2), "l2": (0.25, 0.5, 1.0)}
_METRICS = ("clean_accuracy", "robust_accuracy@*", "attack_success@*")


def metric_key(attack: str, norm: str, eps: float) -> str:
    """The metric suffix for one attack and budget, e.g. ``pgd_linf_0.1``."""
    return f"{attack}_{norm}_{eps:g}"


@dataclass(frozen=True)
class Evaluation(CleanAccuracy):
    """Results of several attacks and budgets on one set of examples."""

    x: np.ndarray
    y: np.ndarray
    clean_correct: np.ndarray
    results: tuple[AttackResult, ...] = ()
    constraints: FeatureConstraints = field(default_factory=FeatureConstraints)
    labels: Callable[[np.ndarray], np.ndarray] | None = None
    """The model's predicted labels for a batch, to caption the worst examples (none: captions without)."""


def evaluate_robustness(
    model: ModelAdapter,
    x: np.ndarray,
    y: np.ndarray,
    *,
    attacks: Sequence[tuple[str, Mapping[str, Any]]],
    eps: Sequence[float],
    constraints: FeatureConstraints | None = None,
    seed: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
) -> Evaluation:
    """Run each attack at each budget on the same examples.

    Args:
        model: the model under test.
        x: clean inputs.
        y: integer labels.
        attacks: ``(name, parameters)`` pairs, e.g. ``[("pgd", {"norm": "linf", "steps": 50})]``.
        eps: budgets, in each attack's norm.
        constraints: feature domain; defaults to the data's global range.
        seed: random seed shared by every attack.
        progress: called as ``("<attack> eps=<eps>", done, total)`` as each attack and budget starts
            and once at the end (``total`` = attacks x budgets).

    Raises:
        InputError: bad data, unknown attack or parameters, or a white-box attack on a black-box model.
    """
    arr = check_inputs(x, model.input_shape, what="data")
    cons = constraints if constraints is not None else FeatureConstraints.from_data(arr)
    results: list[AttackResult] = []
    clean: np.ndarray | None = None
    total, done = len(attacks) * len(eps), 0
    for name, params in attacks:
        attack = make_attack(name, **dict(params))
        for e in eps:
            if progress is not None:
                progress(f"{name} eps={float(e):g}", done, total)
            done += 1
            res = attack.generate(model, arr, y, eps=float(e), constraints=cons, seed=seed)
            clean = res.clean_correct if clean is None else clean
            results.append(res)
    if progress is not None:
        progress("done", done, total)
    if clean is None:
        clean = model.predict_proba(arr).argmax(axis=1) == np.asarray(y)
    return Evaluation(
        x=arr,
        y=np.asarray(y),
        clean_correct=clean,
        results=tuple(results),
        constraints=cons,
        labels=lambda batch: np.asarray(model.predict_proba(batch)).argmax(axis=1),
    )


def robustness_report(
    evaluation: Evaluation,
    *,
    subject: str,
    kind: str = "assess.robustness",
    started: Any = None,
    n_worst: int = 6,
) -> Report:
    """Turn an evaluation into a report: metrics, curve, worst examples, findings."""
    ev = evaluation
    metrics: dict[str, float] = {"clean_accuracy": round(ev.clean_accuracy, 6)}
    findings: list[Finding] = []
    series: dict[str, list[tuple[float, float]]] = {}
    rows: list[dict[str, Any]] = []
    for r in ev.results:
        key = metric_key(r.attack, r.norm, r.eps)
        metrics[f"robust_accuracy@{key}"] = round(r.robust_accuracy, 6)
        metrics[f"attack_success@{key}"] = round(r.success_rate, 6)
        series.setdefault(f"{r.attack} ({r.norm})", [(0.0, ev.clean_accuracy)]).append(
            (r.eps, r.robust_accuracy)
        )
        row = {
            "attack": r.attack,
            "norm": r.norm,
            "eps": r.eps,
            "robust_accuracy": r.robust_accuracy,
            "attack_success": r.success_rate,
            "median_queries": median_queries(r),
        }
        rows.append(row)
        if (r.fooled & r.clean_correct).any():
            ratio = r.robust_accuracy / ev.clean_accuracy if ev.clean_accuracy else 0.0
            sev = Severity.HIGH if ratio < 0.5 else Severity.MEDIUM if ratio < 0.8 else Severity.LOW
            findings.append(
                evasion_finding(
                    kind=kind,
                    subject=subject,
                    severity=sev,
                    title=f"{r.attack} ({r.norm}, eps={r.eps:g}) fools the model on {r.success_rate:.0%} of "
                    "correctly classified inputs",
                    detail=f"accuracy drops from {ev.clean_accuracy:.3f} to {r.robust_accuracy:.3f} under a "
                    f"{r.norm} perturbation of at most {r.eps:g}",
                    location={"attack": r.attack, "norm": r.norm, "eps": f"{r.eps:g}"},
                    evidence={k: v for k, v in row.items() if k not in ("attack", "norm", "eps")},
                    remediation=", or put an adversarial-input detector in front of it",
                )
            )
    figures = []
    if series:
        norms = sorted({r.norm for r in ev.results})
        figures.append(
            line_chart(
                "Robustness curve: accuracy under attack vs budget",
                series,
                xlabel=f"eps ({', '.join(norms)})",
                ylabel="accuracy",
                ylim=(0.0, 1.0),
            )
        )
    worst, fig = _worst_examples(ev, n_worst)
    if fig is not None:
        figures.append(fig)
    return evasion_report(
        subject=subject,
        kind=kind,
        started=started,
        findings=findings,
        metrics=metrics,
        data={"robustness": rows, "worst_examples": worst, "n_examples": len(ev.y)},
        figures=figures,
    )


def _worst_examples(ev: Evaluation, n: int) -> tuple[list[Any], Figure | None]:
    """The successful adversarial examples found at the smallest budget, most confidently wrong first."""
    cands = [r for r in ev.results if (r.fooled & r.clean_correct).any()]
    if not cands:
        return [], None
    best = min(cands, key=lambda r: (r.eps, r.robust_accuracy))
    idx = np.nonzero(best.fooled & best.clean_correct)[0]
    diff = (best.x_adv[idx] - ev.x[idx]).reshape(len(idx), -1)
    size = np.abs(diff).max(axis=1) if best.norm == "linf" else np.linalg.norm(diff, axis=1)
    order = idx[np.argsort(size, kind="stable")][:n]
    out: list[Any] = []
    pairs = []
    predicted = None  # the model's labels: the clean inputs, then their adversarial twins, in one batch
    if ev.labels is not None:
        predicted = ev.labels(np.concatenate([ev.x[order], best.x_adv[order]])).reshape(2, len(order))
    for k, i in enumerate(order):
        d = (best.x_adv[i] - ev.x[i]).ravel()
        top = np.argsort(-np.abs(d), kind="stable")[:5]
        entry = {
            "index": int(i),
            "attack": best.attack,
            "norm": best.norm,
            "eps": best.eps,
            "true": int(ev.y[i]),
            "distance": float(np.abs(d).max() if best.norm == "linf" else np.linalg.norm(d)),
            "changed_features": {str(int(j)): float(d[j]) for j in top if d[j] != 0},
        }
        caption = f"#{i} true {ev.y[i]}"
        if predicted is not None:
            entry["clean_prediction"], entry["adversarial_prediction"] = (int(p) for p in predicted[:, k])
            caption += f": clean {predicted[0, k]}, adversarial {predicted[1, k]}"
        out.append(entry)
        pairs.append((ev.x[i], best.x_adv[i], f"{caption} ({best.norm} d={entry['distance']:.3f})"))
    fig = None
    shape = ev.x.shape[1:]
    if len(shape) >= 2:
        lo, hi, _, _ = ev.constraints.arrays(int(np.prod(shape)))
        fig = Figure(
            title=f"Worst examples ({best.attack}, {best.norm}, eps={best.eps:g}): original | adversarial",
            content=image_pairs_svg(pairs, lower=float(lo.min()), upper=float(hi.max())),
        )
    return out, fig


class RobustnessCheck:
    """Accuracy under evasion attacks at several budgets (``assess.robustness``).

    Args:
        progress: called as ``(step, done, total)`` per attack and budget (a UI draws a bar from it).
    """

    fixed_attack: ClassVar[str | None] = None
    check_name: ClassVar[str] = "assess.robustness"

    def __init__(self, *, progress: Callable[[str, int, int], None] | None = None) -> None:
        self.progress = progress

    def run(self, target: Target) -> Report:
        """Load model and data from the target, attack, and report.

        Raises:
            InputError: missing or malformed model, data or options.
        """
        started = utcnow()
        seed = int(target.seed or 0)
        model, x, y, subject = _load_inputs(target)
        idx = subsample(len(x), target.opt_int("max_examples", 1000, lo=1), seed)
        x, y = x[idx], y[idx]
        cons = FeatureConstraints.from_target(target, x)
        names = [self.fixed_attack] if self.fixed_attack else target.opt_list("attack", lower=True)
        if not names:
            names = ["pgd" if isinstance(model, TorchNative) else "square"]
        norm = parse_norm(target.opt_str("norm", "linf"))
        eps = target.opt_float_list("eps", lo=0.0) or list(_DEFAULT_EPS[norm])
        attacks = [(n, _attack_params(n, target, norm)) for n in names]
        executor = executor_from_target(target, self.progress)
        if executor is None:
            ev = evaluate_robustness(
                model, x, y, attacks=attacks, eps=eps, constraints=cons, seed=seed, progress=self.progress
            )
        else:
            ref, options = worker_model(target)
            ev = robustness_sharded(
                executor,
                model,
                ref,
                options,
                x,
                y,
                attacks=attacks,
                eps=eps,
                constraints=cons,
                seed=seed,
                shard_rows=target.opt_int("shard_rows", DEFAULT_SHARD_ROWS, lo=1),
            )
        return robustness_report(ev, subject=subject, kind=self.check_name, started=started)

    @classmethod
    def contract_cases(cls, tmp_dir: Any) -> ContractCases:
        """A tiny random PyTorch model with data, and a corrupt data file."""
        from mlsecops.assess._options import tiny_contract_model

        model_path, data_path = tiny_contract_model(tmp_dir)
        bad = tmp_dir / "corrupt.npz"
        bad.write_bytes(b"PK\x03\x04 this is not a real archive")
        opts = {"eps": [0.1], "steps": 5, "max_queries": 50, "max_examples": 20}
        return ContractCases(
            valid=Target(paths=(model_path, data_path), options=opts, seed=1),
            corrupt=Target(paths=(model_path, bad), options=opts, seed=1),
        )


def _load_inputs(target: Target) -> tuple[ModelAdapter, np.ndarray, np.ndarray, str]:
    model_ref, data_ref = model_and_data(target, "robustness checks need")
    x, raw_y = load_dataset(data_ref, label=target.opt_str("label"))
    model = load_target_model(target, model_ref, x)
    y = encode_labels(raw_y, getattr(model, "classes", None))
    return model, check_inputs(x, model.input_shape, what="data"), y, redact(model_ref)


_ATTACK_INT_OPTIONS = ("steps", "restarts", "max_queries", "batch_size")
"""Attack parameters read from the options (whole numbers >= 1), passed to attacks that take them."""
_OPTIONS = (
    *MODEL_OPTIONS,
    "attack",
    "eps",
    "norm",
    *_ATTACK_INT_OPTIONS,
    "loss",
    "max_examples",
    "lower",
    "upper",
    "integer_features",
    "immutable_features",
    *EXECUTOR_OPTIONS,
    "shard_rows",
)


def _attack_params(name: str, target: Target, norm: str) -> dict[str, Any]:
    cls = ATTACKS.get(name)
    if cls is None:
        make_attack(name)  # raises the helpful unknown-attack error after loading the catalogue
        cls = ATTACKS[name]
    accepted = set(inspect.signature(cls.__init__).parameters)
    params: dict[str, Any] = {"norm": norm}
    for key in _ATTACK_INT_OPTIONS:
        value = target.opt_int(key, lo=1)
        if value is not None:
            params[key] = value
    loss = target.opt_str("loss")
    if loss is not None:
        params["loss"] = loss
    return {k: v for k, v in params.items() if k in accepted}


def _make_attack_check(attack: str) -> type[RobustnessCheck]:
    name = f"assess.{attack}"
    cls = type(
        f"{attack.capitalize()}Check",
        (RobustnessCheck,),
        {
            "fixed_attack": attack,
            "check_name": name,
            "__doc__": f"Accuracy under the {attack} attack at several budgets (``{name}``).",
        },
    )
    return register(
        name,
        kind=CheckKind.ATTACK,
        summary=f"Robust accuracy under the {attack} evasion attack",
        metrics=_METRICS,
        options=tuple(k for k in _OPTIONS if k != "attack"),
    )(cls)


register(
    "assess.robustness",
    kind=CheckKind.ATTACK,
    summary="Accuracy under evasion attacks at several budgets, with curve and worst examples",
    metrics=_METRICS,
    options=_OPTIONS,
)(RobustnessCheck)
FgsmCheck = _make_attack_check("fgsm")
PgdCheck = _make_attack_check("pgd")
ApgdCheck = _make_attack_check("apgd")
SquareCheck = _make_attack_check("square")
HopSkipJumpCheck = _make_attack_check("hopskipjump")
