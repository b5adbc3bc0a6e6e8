"""What the evasion attacks and their reports share.

For the gradient attacks (``whitebox``, ``apgd``, ``patch``), in torch: ``loss_grad`` (one forward and
backward pass), ``per_row`` (a per-example value shaped to broadcast over a batch), ``EarlyStop`` (per
example, the point kept, whether it fools the model, and the passes spent) and ``pgd_descend`` (gradient
steps that settle each example at its first fooling point). For the checks that report an attack
evaluation (``robustness``, ``patch``): ``CleanAccuracy``, ``median_queries``, ``evasion_finding`` and
``evasion_report``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from mlsecops.assess._losses import attack_loss
from mlsecops.assess.attack import AttackResult, BatchOutcome, check_logits
from mlsecops.core.findings import Figure, Finding, Report, utcnow
from mlsecops.models.interface import TorchNative

if TYPE_CHECKING:
    import torch

__all__ = [
    "HARDEN",
    "CleanAccuracy",
    "EarlyStop",
    "LossGrad",
    "evasion_finding",
    "evasion_report",
    "loss_grad",
    "median_queries",
    "per_row",
    "pgd_descend",
]

HARDEN = "harden the model (mlsecops harden adversarial-training), certify it (mlsecops certify)"
"""The start of every evasion finding's remediation."""


class LossGrad(NamedTuple):
    """One forward and backward pass at a batch of points."""

    values: torch.Tensor
    """Per-example loss (detached)."""
    grad: torch.Tensor
    """Gradient of the summed loss with respect to the inputs."""
    logits: torch.Tensor
    """The model's logits (detached)."""


def loss_grad(model: TorchNative, x: torch.Tensor, y: torch.Tensor, loss: str) -> LossGrad:
    """The per-example ``loss`` at ``x``, its gradient and the logits, from one forward and backward pass."""
    import torch

    x = x.detach().requires_grad_(True)
    logits = model.logits(x)
    values = attack_loss(loss, logits, y)
    (grad,) = torch.autograd.grad(values.sum(), x)
    return LossGrad(values.detach(), grad, logits.detach())


def per_row(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``values`` (one per example) viewed so they broadcast over a batch shaped like ``like``."""
    return values.view(-1, *([1] * (like.ndim - 1)))


class EarlyStop:
    """What a gradient attack keeps per example of its batch while it runs.

    ``best`` holds the point kept for each example (the original until one is kept), ``fooled`` whether
    that point fools the model (an example fooled is attacked no further), ``queries`` the passes spent
    on it (on the CPU).
    """

    def __init__(self, x0: torch.Tensor, *, spent: int = 0) -> None:
        import torch

        self.best = x0.clone()
        self.fooled = torch.zeros(len(x0), dtype=torch.bool, device=x0.device)
        self.queries = torch.full((len(x0),), spent, dtype=torch.long)

    def standing(self) -> torch.Tensor:
        """Indices of the examples not fooled yet."""
        return (~self.fooled).nonzero().flatten()

    def keep(
        self, rows: torch.Tensor, x: torch.Tensor, hit: torch.Tensor | None, passes: int | torch.Tensor
    ) -> None:
        """Keep ``x`` for the examples ``rows``, those where ``hit`` (all when ``None``) fooling the model,
        and add ``passes`` to what each cost.
        """
        self.best[rows] = x
        self.fooled[rows if hit is None else rows[hit]] = True
        self.queries[rows.cpu()] += passes

    def outcome(self, extra: dict[str, Any] | None = None) -> BatchOutcome:
        """The batch's outcome, with per-example ``extra`` details."""
        return BatchOutcome(self.best, self.queries, extra or {}, self.fooled)


def pgd_descend(
    model: TorchNative,
    record: EarlyStop,
    x: torch.Tensor,
    y: torch.Tensor,
    live: torch.Tensor,
    proj: Any,
    *,
    steps: int,
    loss: str,
    advance: Callable[..., torch.Tensor],
    carry: tuple[torch.Tensor, ...] = (),
    check: bool = False,
) -> None:
    """``steps`` gradient steps from ``x``, the points of the batch rows ``live``, recorded in ``record``.

    Each step is one forward and backward pass at the current points; an example whose point fools the
    model keeps it and leaves (it costs no further passes). The points after the last step get one
    forward pass. ``advance(x, grad, proj, *carry)`` returns the next (projected) points; ``carry`` holds
    per-example tensors it needs, kept in step with the examples still standing. ``check`` checks the
    first pass's logits for shape.
    """
    import torch

    for k in range(steps):
        _, grad, logits = loss_grad(model, x, y, loss)
        if check and k == 0:
            check_logits(logits, len(x), model.n_classes, finite=False)
        done = logits.argmax(dim=1) != y
        if bool(done.any()):  # these examples are fooled at x: keep it, stop attacking them
            record.keep(live[done], x[done], None, k + 1)
            keep = ~done
            if not bool(keep.any()):
                return
            x, grad, y, live, proj = x[keep], grad[keep], y[keep], live[keep], proj.subset(keep)
            carry = tuple(c[keep] for c in carry)
        x = advance(x, grad, proj, *carry)
    with torch.no_grad():  # the points after the last step: one forward pass
        hit = model.logits(x).argmax(dim=1) != y
    record.keep(live, x, hit, steps + 1)


class CleanAccuracy:
    """``clean_accuracy`` of an evaluation that holds ``clean_correct`` (per example: right without attack)."""

    clean_correct: np.ndarray

    @property
    def clean_accuracy(self) -> float:
        """Accuracy without attack."""
        return float(self.clean_correct.mean()) if self.clean_correct.size else 0.0


def median_queries(result: AttackResult) -> float | None:
    """The median queries spent on the correctly classified examples the attack fooled (none: ``None``)."""
    broken = result.fooled & result.clean_correct
    return float(np.median(result.queries[broken])) if broken.any() else None


def evasion_finding(*, kind: str, subject: str, remediation: str, **fields: Any) -> Finding:
    """A finding of ``kind`` on ``subject`` that an evasion attack fools the model (MITRE ATLAS
    AML.T0015, evade ML model); ``remediation`` follows ``HARDEN``, ``fields`` are the other ``Finding``
    fields (severity, title, detail, location, evidence).
    """
    return Finding(
        check=kind, artifact=subject, remediation=f"{HARDEN}{remediation}", atlas="AML.T0015", **fields
    )


def evasion_report(
    *,
    subject: str,
    kind: str,
    started: Any,
    findings: Iterable[Finding],
    metrics: dict[str, float],
    data: dict[str, Any],
    figures: Iterable[Figure],
) -> Report:
    """The report of an evasion evaluation: ``vulnerable`` when it has findings, else ``robust``."""
    found = tuple(findings)
    return Report(
        subject=subject,
        kind=kind,
        started=started or utcnow(),
        finished=utcnow(),
        findings=found,
        metrics=metrics,
        verdict="vulnerable" if found else "robust",
        data=data,
        figures=tuple(figures),
    )
