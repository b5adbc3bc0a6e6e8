"""The interface every evasion attack implements, and the small catalogue of attack implementations.

An ``Attack`` is configured once (norm, steps, restarts...) and ``generate`` crafts adversarial inputs
for a batch within ``eps`` of the originals and inside the ``FeatureConstraints``. It returns an
``AttackResult`` (adversarial inputs, which examples are fooled, queries per example). Attacks are
deterministic for a given ``seed``. White-box attacks need a ``TorchNative`` model and run in torch;
black-box ones need only ``predict_proba`` (and use torch logits without gradients when available).

Only examples the model classifies correctly are attacked; the others count as fooled from the start,
so ``robust_accuracy = 1 - fooled.mean()``.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from mlsecops.assess.constraints import FeatureConstraints, Norm, parse_norm
from mlsecops.core.errors import InputError
from mlsecops.models.interface import ModelAdapter, TorchNative, check_inputs, check_labels

if TYPE_CHECKING:
    import torch

__all__ = ["ATTACKS", "Attack", "AttackResult", "make_attack", "register_attack", "score_function"]


@dataclass(frozen=True)
class AttackResult:
    """What one attack run produced for a batch."""

    x_adv: np.ndarray
    """Adversarial inputs (the original where the attack found nothing better), same shape as ``x``."""
    fooled: np.ndarray
    """Per example: the model's label on ``x_adv`` differs from the true label."""
    clean_correct: np.ndarray
    """Per example: the model was right on the clean input."""
    queries: np.ndarray
    """Per example: model evaluations the attack spent on it (forward passes count for white-box)."""
    attack: str = ""
    norm: str = "linf"
    eps: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    """Attack-specific details (e.g. the minimal distance found by a decision-based attack)."""

    @property
    def robust_accuracy(self) -> float:
        """Share of examples still correctly classified under attack."""
        return float(1.0 - self.fooled.mean()) if self.fooled.size else 0.0

    @property
    def clean_accuracy(self) -> float:
        """Share of examples correctly classified without attack."""
        return float(self.clean_correct.mean()) if self.clean_correct.size else 0.0

    @property
    def success_rate(self) -> float:
        """Share of the correctly classified examples the attack fooled."""
        n = int(self.clean_correct.sum())
        return float((self.fooled & self.clean_correct).sum() / n) if n else 0.0


class Attack(abc.ABC):
    """Base of every attack: validation, batching and seeding around ``_attack_batch``.

    Args:
        norm: ``linf`` or ``l2``.
        batch_size: examples attacked together.
    """

    name: ClassVar[str] = ""
    norms: ClassVar[tuple[Norm, ...]] = ("linf", "l2")
    white_box: ClassVar[bool] = True

    def __init__(self, *, norm: str = "linf", batch_size: int = 256) -> None:
        self.norm = norm
        self.batch_size = batch_size

    def generate(
        self,
        model: ModelAdapter,
        x: np.ndarray,
        y: np.ndarray,
        *,
        eps: float,
        constraints: FeatureConstraints | None = None,
        seed: int = 0,
    ) -> AttackResult:
        """Craft adversarial inputs for ``x`` within ``eps``.

        Args:
            model: the model under attack.
            x: clean inputs, shape ``(n, *model.input_shape)``.
            y: true labels.
            eps: perturbation budget in the attack's norm.
            constraints: feature domain; defaults to the data's global range.
            seed: random seed; the same seed gives the same result.

        Raises:
            InputError: bad inputs or labels, an unsupported norm, a negative eps, or a white-box attack
                on a model without gradients.
        """
        import torch

        norm = parse_norm(self.norm)
        if norm not in self.norms:
            raise InputError(f"attack {self.name!r} supports norms {', '.join(self.norms)}; got {norm!r}")
        if not np.isfinite(eps) or eps < 0:
            raise InputError(f"eps must be a finite number >= 0; got {eps}")
        if self.white_box and not isinstance(model, TorchNative):
            raise InputError(
                f"attack {self.name!r} is white-box and needs a PyTorch model; for models without "
                "gradients use 'square' or 'hopskipjump'"
            )
        arr = check_inputs(x, model.input_shape)
        labels = check_labels(y, len(arr), model.n_classes)
        cons = constraints if constraints is not None else FeatureConstraints.from_data(arr)
        cons.check_inside(arr)
        device = model.device if isinstance(model, TorchNative) else torch.device("cpu")
        gen = torch.Generator(device="cpu").manual_seed(int(seed))
        scores = score_function(model)
        outs, fooled, correct, queries, extras = [], [], [], [], []
        for start in range(0, len(arr), self.batch_size):
            x0 = torch.from_numpy(arr[start : start + self.batch_size]).to(device)
            yb = torch.from_numpy(labels[start : start + self.batch_size]).to(device)
            with torch.no_grad():
                ok = scores(x0).argmax(dim=1) == yb
            x_adv = x0.clone()
            q = torch.ones(len(x0), dtype=torch.long)
            idx = ok.nonzero().flatten()
            extra: dict[str, Any] = {}
            if len(idx) and eps > 0:
                proj = cons.torch_projector(x0[idx])
                adv_sub, q_sub, sub_extra = self._attack_batch(
                    model, x0[idx], yb[idx], float(eps), norm, proj, gen
                )
                x_adv[idx] = adv_sub.detach()
                q[idx.cpu()] += q_sub.cpu()
                for key, value in sub_extra.items():  # per-example extras, NaN where not attacked
                    full = np.full(len(x0), np.nan)
                    full[idx.cpu().numpy()] = np.asarray(value, dtype=np.float64)
                    extra[key] = full
            with torch.no_grad():
                wrong = scores(x_adv).argmax(dim=1) != yb
            outs.append(x_adv.cpu().numpy())
            fooled.append(wrong.cpu().numpy())
            correct.append(ok.cpu().numpy())
            queries.append(q.numpy())
            extras.append(extra)
        merged: dict[str, Any] = {}
        for key in {k for e in extras for k in e}:
            merged[key] = np.concatenate(
                [e.get(key, np.full(len(c), np.nan)) for e, c in zip(extras, correct, strict=True)]
            )
        return AttackResult(
            x_adv=np.concatenate(outs) if outs else arr.copy(),
            fooled=np.concatenate(fooled) if fooled else np.zeros(0, dtype=bool),
            clean_correct=np.concatenate(correct) if correct else np.zeros(0, dtype=bool),
            queries=np.concatenate(queries) if queries else np.zeros(0, dtype=np.int64),
            attack=self.name,
            norm=norm,
            eps=float(eps),
            extra=merged,
        )

    @abc.abstractmethod
    def _attack_batch(
        self,
        model: ModelAdapter,
        x0: torch.Tensor,
        y: torch.Tensor,
        eps: float,
        norm: Norm,
        proj: Any,
        gen: torch.Generator,
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
        """Attack a batch of correctly classified examples; return (x_adv, queries, extra)."""


def score_function(model: ModelAdapter) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function from an input batch (tensor) to class probabilities (tensor), without gradients."""
    import torch

    if isinstance(model, TorchNative):

        def torch_scores(x: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return torch.softmax(model.logits(x), dim=1)

        return torch_scores

    def numpy_scores(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(model.predict_proba(x.detach().cpu().numpy()).astype(np.float32)).to(x.device)

    return numpy_scores


ATTACKS: dict[str, type[Attack]] = {}
"""Attack implementations by short name (``fgsm``, ``pgd``, ``apgd``, ``square``, ``hopskipjump``)."""


def register_attack(cls: type[Attack]) -> type[Attack]:
    """Class decorator adding an attack implementation to ``ATTACKS`` under ``cls.name``."""
    if not cls.name or cls.name in ATTACKS:
        raise ValueError(f"attack name {cls.name!r} is empty or taken")
    ATTACKS[cls.name] = cls
    return cls


def make_attack(name: str, **params: Any) -> Attack:
    """Build an attack by short name with keyword parameters.

    Raises:
        InputError: unknown attack or parameter.
    """
    import importlib

    for module in ("whitebox", "apgd", "square", "hopskipjump"):
        try:  # importing registers the implementations
            importlib.import_module(f"mlsecops.assess.{module}")
        except ModuleNotFoundError as err:
            if err.name != f"mlsecops.assess.{module}":
                raise

    key = name.strip().lower()
    if key not in ATTACKS:
        raise InputError(f"unknown attack {name!r}; choose from {', '.join(sorted(ATTACKS))}")
    try:
        return ATTACKS[key](**params)
    except TypeError as err:
        raise InputError(f"attack {key!r}: {err}") from err
