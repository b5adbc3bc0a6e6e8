"""Certification by randomized smoothing (Cohen, Rosenfeld and Kolter 2019), and the ``assess.certify`` check.

The smoothed classifier ``g(x)`` predicts the class the model returns most often under Gaussian noise
``N(0, sigma^2 I)``. ``certify`` guesses the top class from ``n0`` noisy samples, counts how often it
wins among ``n`` fresh samples, and bounds its probability from below with the exact one-sided
Clopper-Pearson bound at level ``alpha``. If that bound ``p`` exceeds 1/2, ``g`` provably returns the
same class for every perturbation of L2 norm below ``sigma * Phi^-1(p)``; otherwise it abstains.
``certified_accuracy@r`` is the share of examples certified correct at radius ``r`` or more.

Works with any adapter (only labels of noisy inputs are needed); with a PyTorch model the noise is
drawn and evaluated in torch, in large batches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlsecops.assess._data import encode_labels, load_dataset, subsample
from mlsecops.assess._options import MODEL_OPTIONS, load_target_model, model_and_data, tiny_contract_model
from mlsecops.assess._sharded import DEFAULT_SHARD_ROWS, certify_sharded, worker_model
from mlsecops.assess.attack import score_function
from mlsecops.core.checks import CheckKind, ContractCases, Target, register
from mlsecops.core.errors import InputError
from mlsecops.core.findings import Finding, Report, Severity, utcnow
from mlsecops.core.redaction import redact
from mlsecops.core.target_executor import EXECUTOR_OPTIONS, executor_from_target
from mlsecops.models.interface import ModelAdapter, TorchNative, check_inputs, check_labels
from mlsecops.report.plots import line_chart

__all__ = ["Certification", "CertifyCheck", "certification_report", "certify", "clopper_pearson_lower"]

ABSTAIN = -1


def clopper_pearson_lower(successes: np.ndarray, n: int, alpha: float) -> np.ndarray:
    """Exact one-sided lower confidence bound of a binomial proportion (level ``1 - alpha``)."""
    from scipy.stats import beta

    k = np.asarray(successes, dtype=np.float64)
    out = np.zeros_like(k)
    pos = k > 0
    out[pos] = beta.ppf(alpha, k[pos], n - k[pos] + 1)
    return out


@dataclass(frozen=True)
class Certification:
    """Per-example outcome of randomized-smoothing certification."""

    prediction: np.ndarray
    """Class of the smoothed classifier, or -1 where it abstains."""
    radius: np.ndarray
    """Certified L2 radius (0 where abstaining)."""
    p_lower: np.ndarray
    """Lower confidence bound on the top class's probability under noise."""
    labels: np.ndarray
    sigma: float
    n: int
    alpha: float

    @property
    def abstain_rate(self) -> float:
        """Share of examples where the smoothed classifier abstains."""
        return float((self.prediction == ABSTAIN).mean()) if self.prediction.size else 0.0

    def certified_accuracy(self, radius: float) -> float:
        """Share of examples certified correct with a radius of at least ``radius``."""
        ok = (self.prediction == self.labels) & (self.radius >= radius)
        return float(ok.mean()) if ok.size else 0.0


def certify(
    model: ModelAdapter,
    x: np.ndarray,
    y: np.ndarray,
    *,
    sigma: float = 0.25,
    n: int = 1000,
    n0: int = 100,
    alpha: float = 0.001,
    batch_size: int = 20000,
    seed: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
) -> Certification:
    """Certify each example of ``x`` by randomized smoothing.

    Args:
        model: any adapter; the base classifier (ideally trained with Gaussian noise of the same sigma).
        x: inputs.
        y: integer labels.
        sigma: noise standard deviation.
        n: noisy samples for the estimate.
        n0: samples to pick the top class.
        alpha: failure probability of the certificate.
        batch_size: noisy inputs per forward pass.
        seed: random seed.
        progress: called as ``(step, done, total)`` after each group of examples, over both passes
            (``done`` and ``total`` count examples: ``2 * len(x)``).

    Raises:
        InputError: bad inputs or parameters.
    """
    import torch
    from scipy.stats import norm

    if not sigma > 0 or n < 1 or n0 < 1 or not 0 < alpha < 1:
        raise InputError(
            f"need sigma > 0, n >= 1, n0 >= 1 and 0 < alpha < 1; got {sigma}, {n}, {n0}, {alpha}"
        )
    arr = check_inputs(x, model.input_shape)
    labels = check_labels(y, len(arr), model.n_classes)
    scores = score_function(model)
    device = model.device if isinstance(model, TorchNative) else torch.device("cpu")
    gen = torch.Generator().manual_seed(int(seed))
    xt = torch.from_numpy(arr).to(device)
    total = 2 * len(arr)

    def tick(step: str, offset: int) -> Callable[[int], None]:
        return lambda done: progress(step, offset + done, total) if progress is not None else None

    counts0 = _counts(scores, xt, n0, sigma, model.n_classes, batch_size, gen, tick("choose class", 0))
    top = counts0.argmax(dim=1)
    counts = _counts(scores, xt, n, sigma, model.n_classes, batch_size, gen, tick("estimate", len(arr)))
    k = counts.gather(1, top[:, None]).squeeze(1).cpu().numpy()
    p_lower = clopper_pearson_lower(k, n, alpha)
    certified = p_lower > 0.5
    radius = np.where(certified, sigma * norm.ppf(np.clip(p_lower, 0.5, 1 - 1e-16)), 0.0)
    prediction = np.where(certified, top.cpu().numpy(), ABSTAIN)
    return Certification(prediction, radius, p_lower, labels, float(sigma), int(n), float(alpha))


def _counts(
    scores: Any,
    x: Any,
    n: int,
    sigma: float,
    n_classes: int,
    batch_size: int,
    gen: Any,
    done: Callable[[int], None] | None = None,
) -> Any:
    """Per example, how often each class wins under ``n`` noisy copies (``done(examples)`` after each group)."""
    import torch

    counts = torch.zeros((len(x), n_classes), dtype=torch.long, device=x.device)
    per_batch = max(1, batch_size // max(1, n))
    for start in range(0, len(x), per_batch):
        xb = x[start : start + per_batch]
        reps = xb.repeat_interleave(n, dim=0)
        for s in range(0, len(reps), batch_size):
            chunk = reps[s : s + batch_size]
            noise = torch.randn(chunk.shape, generator=gen).to(x.device) * sigma
            pred = scores(chunk + noise).argmax(dim=1)
            owner = torch.arange(s, s + len(chunk), device=x.device) // n
            counts[start : start + len(xb)].index_put_((owner, pred), torch.ones_like(pred), accumulate=True)
        if done is not None:
            done(start + len(xb))
    return counts


@register(
    "assess.certify",
    kind=CheckKind.CERTIFIER,
    summary="Certified L2 robustness by randomized smoothing (Clopper-Pearson bound, abstentions)",
    metrics=("certified_accuracy@*", "abstain_rate", "smoothed_accuracy"),
    options=(
        *MODEL_OPTIONS,
        "sigma",
        "n",
        "n0",
        "alpha",
        "radii",
        "max_examples",
        *EXECUTOR_OPTIONS,
        "shard_rows",
    ),
)
class CertifyCheck:
    """Certified accuracy at chosen L2 radii (``assess.certify``; the ``certify`` pipeline stage).

    Options: ``sigma`` (0.25), ``n`` (1000), ``n0`` (100), ``alpha`` (0.001), ``radii`` (``0.25,0.5``),
    ``max_examples`` (500), ``label``, ``output``, ``timeout``; ``executor``, ``workers``, ``address``
    and ``shard_rows`` shard the examples on an engine (the same report on every engine).
    ``paths`` = (model, data).

    Args:
        progress: called as ``(step, done, total)`` while certifying (a UI draws a bar from it).
    """

    def __init__(self, *, progress: Callable[[str, int, int], None] | None = None) -> None:
        self.progress = progress

    def run(self, target: Target) -> Report:
        """Certify the data set and report certified accuracy per radius."""
        started = utcnow()
        model_ref, data_ref = model_and_data(target, "certification needs")
        x, raw_y = load_dataset(data_ref, label=target.opt_str("label"))
        model = load_target_model(target, model_ref, x)
        y = encode_labels(raw_y, getattr(model, "classes", None))
        seed = int(target.seed or 0)
        idx = subsample(len(x), target.opt_int("max_examples", 500, lo=1), seed)
        radii = target.opt_float_list("radii", lo=0.0) or [0.25, 0.5]
        sigma = target.opt_float("sigma", 0.25)
        n = target.opt_int("n", 1000, lo=1)
        n0 = target.opt_int("n0", 100, lo=1)
        alpha = target.opt_float("alpha", 0.001, lo=0.0, hi=1.0)
        executor = executor_from_target(target, self.progress)
        if executor is None:
            cert = certify(
                model, x[idx], y[idx], sigma=sigma, n=n, n0=n0, alpha=alpha, seed=seed, progress=self.progress
            )
        else:
            if not sigma > 0 or not 0 < alpha < 1:  # refused here, before any worker starts
                certify(model, x[idx][:1], y[idx][:1], sigma=sigma, n=n, n0=n0, alpha=alpha)
            ref, options = worker_model(target)
            cert = certify_sharded(
                executor,
                ref,
                options,
                x[idx],
                y[idx],
                sigma=sigma,
                n=n,
                n0=n0,
                alpha=alpha,
                seed=seed,
                shard_rows=target.opt_int("shard_rows", DEFAULT_SHARD_ROWS, lo=1),
            )
        return certification_report(cert, radii, subject=redact(str(model_ref)), started=started)

    @classmethod
    def contract_cases(cls, tmp_dir: Any) -> ContractCases:
        """A tiny random PyTorch model with data, and a corrupt data file."""
        return _contract_cases(tmp_dir)


def certification_report(
    cert: Certification, radii: Sequence[float], *, subject: str, started: Any = None
) -> Report:
    """Metrics, a certified-accuracy curve and a finding per radius where few examples are certified."""
    metrics = {f"certified_accuracy@{r:g}": round(cert.certified_accuracy(r), 6) for r in radii}
    metrics["abstain_rate"] = round(cert.abstain_rate, 6)
    metrics["smoothed_accuracy"] = round(cert.certified_accuracy(0.0), 6)
    top = max([*radii, float(cert.radius.max()) if cert.radius.size else 0.0])
    grid = np.linspace(0, max(top, 1e-6), 26)
    curve = line_chart(
        "Certified accuracy vs L2 radius (randomized smoothing)",
        {f"sigma={cert.sigma:g}": [(float(r), cert.certified_accuracy(float(r))) for r in grid]},
        xlabel="L2 radius",
        ylabel="certified accuracy",
        ylim=(0.0, 1.0),
    )
    findings = []
    clean = metrics["smoothed_accuracy"]
    for r in radii:
        acc = metrics[f"certified_accuracy@{r:g}"]
        if clean and acc < 0.5 * clean:
            findings.append(
                Finding(
                    check="assess.certify",
                    severity=Severity.MEDIUM if acc > 0 else Severity.HIGH,
                    title=f"only {acc:.0%} of inputs are certified robust at L2 radius {r:g}",
                    detail=f"sigma={cert.sigma:g}, n={cert.n}, alpha={cert.alpha:g}; smoothed accuracy "
                    f"{clean:.3f}, abstained on {cert.abstain_rate:.0%}",
                    artifact=subject,
                    location={"radius": f"{r:g}"},
                    evidence={"certified_accuracy": acc, "smoothed_accuracy": clean},
                    remediation="train with Gaussian noise of the same sigma, or adversarially, and certify again",
                    atlas="AML.T0015",
                )
            )
    return Report(
        subject=subject,
        kind="assess.certify",
        started=started or utcnow(),
        finished=utcnow(),
        findings=tuple(findings),
        metrics=metrics,
        verdict="certified" if not findings else "weak",
        data={
            "certification": {
                "sigma": cert.sigma,
                "n": cert.n,
                "alpha": cert.alpha,
                "examples": len(cert.labels),
                "median_radius": float(np.median(cert.radius)) if cert.radius.size else 0.0,
            }
        },
        figures=(curve,),
    )


def _contract_cases(tmp_dir: Any) -> ContractCases:
    model_path, data_path = tiny_contract_model(tmp_dir)
    bad = tmp_dir / "corrupt.npz"
    bad.write_bytes(b"\x00\x01 not numpy")
    opts = {"n": 100, "n0": 20, "max_examples": 10}
    return ContractCases(
        valid=Target(paths=(model_path, data_path), options=opts, seed=1),
        corrupt=Target(paths=(model_path, bad), options=opts, seed=1),
    )
