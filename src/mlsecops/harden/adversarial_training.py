"""Adversarial training for PyTorch classifiers: PGD (Madry et al. 2018) and TRADES (Zhang et al. 2019).

``adversarial_train`` trains a ``torch.nn.Module`` in place on inputs the current model gets wrong in
the worst case: each mini-batch is replaced (PGD) or complemented (TRADES) by adversarial inputs
crafted with a short PGD inside the eps ball and the feature constraints. PGD-AT minimises the
cross-entropy on the adversarial batch (optionally mixed with the clean batch); TRADES minimises the
clean cross-entropy plus ``beta`` times the KL divergence between the predictions on clean and
adversarial inputs, trading a little clean accuracy for robustness. A short clean warm-up and a
linear eps ramp keep small models from collapsing early. Everything is seeded.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from mlsecops.assess.constraints import FeatureConstraints, parse_norm
from mlsecops.assess.whitebox import gradient_step, random_start
from mlsecops.core.errors import InputError
from mlsecops.models.interface import check_inputs, check_labels

if TYPE_CHECKING:
    import torch

__all__ = ["TrainingResult", "adversarial_train"]

Method = Literal["pgd", "trades"]


@dataclass(frozen=True)
class TrainingResult:
    """What a training run did."""

    method: str
    epochs: int
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)
    """Per epoch: mean training loss and accuracy on the adversarial batches."""


def adversarial_train(
    module: torch.nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    *,
    method: Method = "pgd",
    eps: float = 0.1,
    norm: str = "linf",
    epochs: int = 20,
    steps: int = 10,
    step_size: float | None = None,
    batch_size: int = 128,
    lr: float = 1e-3,
    beta: float = 6.0,
    clean_weight: float = 0.0,
    warmup_epochs: int = 1,
    ramp_epochs: int = 3,
    constraints: FeatureConstraints | None = None,
    seed: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
) -> TrainingResult:
    """Train ``module`` adversarially, in place.

    Args:
        module: the classifier; returns logits for a float32 batch shaped like ``x``.
        x: training inputs.
        y: integer labels.
        method: ``pgd`` or ``trades``.
        eps: perturbation budget.
        norm: ``linf`` or ``l2``.
        epochs: passes over the data.
        steps: PGD steps per batch.
        step_size: PGD step (default 2.5 eps / steps).
        batch_size: mini-batch size.
        lr: Adam learning rate.
        beta: TRADES weight of the robustness term.
        clean_weight: PGD-AT only: share of the loss taken on the clean batch (0 = pure Madry).
        warmup_epochs: first epochs on clean data only.
        ramp_epochs: epochs over which eps grows linearly.
        constraints: feature domain (default: the data's global range).
        seed: random seed (shuffling, PGD starts).
        progress: called as ``("epoch N", done, epochs)`` after each epoch.

    Raises:
        InputError: bad data or parameters.
    """
    import torch

    if method not in ("pgd", "trades"):
        raise InputError(f"method must be 'pgd' or 'trades'; got {method!r}")
    if not eps > 0 or epochs < 1 or steps < 1 or batch_size < 1:
        raise InputError("need eps > 0, epochs >= 1, steps >= 1 and batch_size >= 1")
    nrm = parse_norm(norm)
    arr = np.asarray(x, dtype=np.float32)
    arr = check_inputs(arr, tuple(arr.shape[1:]), what="training data")
    labels = check_labels(y, len(arr), int(np.max(y)) + 1 if len(y) else 1)
    cons = constraints if constraints is not None else FeatureConstraints.from_data(arr)
    cons.check_inside(arr)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    xt, yt = torch.from_numpy(arr), torch.from_numpy(labels)
    opt = torch.optim.Adam(module.parameters(), lr=lr)
    total_steps = epochs * ((len(arr) + batch_size - 1) // batch_size)
    # one-cycle schedule for real runs; a constant rate for tiny ones (the schedule needs a few steps)
    sched: Any = (
        torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total_steps, pct_start=0.25)
        if total_steps >= 20
        else None
    )
    warmup_epochs = min(warmup_epochs, epochs - 1)
    history: list[dict[str, float]] = []
    start = time.perf_counter()
    for epoch in range(epochs):
        perm = torch.randperm(len(arr), generator=gen)
        if epoch < warmup_epochs:
            cur_eps = 0.0
        else:
            ramp = min(1.0, (epoch - warmup_epochs + 1) / max(1, ramp_epochs))
            cur_eps = eps * ramp
        losses, correct = [], 0
        for b in range(0, len(arr), batch_size):
            idx = perm[b : b + batch_size]
            xb, yb = xt[idx], yt[idx]
            proj = cons.torch_projector(xb)
            step = step_size if step_size is not None else 2.5 * cur_eps / steps
            if method == "pgd":
                x_adv = _pgd(module, xb, yb, cur_eps, nrm, steps, step, proj, gen) if cur_eps > 0 else xb
                module.train()
                logits = module(x_adv)
                loss = torch.nn.functional.cross_entropy(logits, yb)
                if clean_weight > 0 and cur_eps > 0:
                    clean_loss = torch.nn.functional.cross_entropy(module(xb), yb)
                    loss = (1 - clean_weight) * loss + clean_weight * clean_loss
            else:
                x_adv = _trades_adv(module, xb, cur_eps, nrm, steps, step, proj) if cur_eps > 0 else xb
                module.train()
                logits_clean = module(xb)
                logits = module(x_adv)
                robust = torch.nn.functional.kl_div(
                    torch.log_softmax(logits, dim=1),
                    torch.softmax(logits_clean, dim=1),
                    reduction="batchmean",
                )
                loss = torch.nn.functional.cross_entropy(logits_clean, yb) + beta * robust
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]  # torch stub gap
            opt.step()
            if sched is not None:
                sched.step()
            losses.append(float(loss.detach()))
            correct += int((logits.detach().argmax(dim=1) == yb).sum())
        history.append(
            {
                "epoch": epoch + 1,
                "eps": cur_eps,
                "loss": float(np.mean(losses)),
                "adv_accuracy": correct / len(arr),
            }
        )
        if progress is not None:
            progress(f"epoch {epoch + 1}", epoch + 1, epochs)
    module.eval()
    return TrainingResult(method=method, epochs=epochs, seconds=time.perf_counter() - start, history=history)


def _pgd(
    module: Any,
    x0: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    norm: Any,
    steps: int,
    step: float,
    proj: Any,
    gen: Any,
) -> torch.Tensor:
    """Inner maximisation of the cross-entropy, from a random start, in eval mode."""
    import torch

    module.eval()
    x = proj(random_start(x0, eps, norm, gen), eps, norm)
    for _ in range(steps):
        x = x.detach().requires_grad_(True)
        loss = torch.nn.functional.cross_entropy(module(x), y)
        (g,) = torch.autograd.grad(loss, x)
        x = proj(gradient_step(x.detach(), g, step, norm), eps, norm)
    out: torch.Tensor = x.detach()
    return out


def _trades_adv(
    module: Any, x0: torch.Tensor, eps: float, norm: Any, steps: int, step: float, proj: Any
) -> torch.Tensor:
    """Inner maximisation of KL(f(x0) || f(x)), started next to the clean point as TRADES does."""
    import torch

    module.eval()
    with torch.no_grad():
        p_clean = torch.softmax(module(x0), dim=1)
    x = proj(x0 + 0.001 * torch.randn_like(x0), eps, norm)
    for _ in range(steps):
        x = x.detach().requires_grad_(True)
        kl = torch.nn.functional.kl_div(torch.log_softmax(module(x), dim=1), p_clean, reduction="sum")
        (g,) = torch.autograd.grad(kl, x)
        x = proj(gradient_step(x.detach(), g, step, norm), eps, norm)
    out: torch.Tensor = x.detach()
    return out
