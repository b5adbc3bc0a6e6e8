"""The interface every evasion attack implements, and the small catalogue of attack implementations.

An ``Attack`` is configured once (norm, steps, restarts...) and ``generate`` crafts adversarial inputs
for a batch within ``eps`` of the originals and inside the ``FeatureConstraints``. It returns an
``AttackResult`` (adversarial inputs, which examples are fooled, queries per example). Attacks are
deterministic for a given ``seed``. White-box attacks need a ``TorchNative`` model and run in torch;
black-box ones (``BlackBoxAttack``) need only ``predict_proba`` and run in numpy, so a scikit-learn,
ONNX or HTTP model is attacked without torch installed (a PyTorch model's logits are read without
gradients).

Only examples the model classifies correctly are attacked; the others count as fooled from the start,
so ``robust_accuracy = 1 - fooled.mean()``.

Cost: ``generate`` validates the inputs once (shape, NaN, labels, bounds: numpy checks, no model call)
and each batch gets one clean pass, the attack, and one pass to check the adversarial inputs. Attacks
that already know their verdict skip that last pass (white-box attacks read it from the logits of the
passes they make anyway, see ``BatchOutcome.fooled``), and FGSM folds the clean pass into its gradient
pass. Torch-native models are scored from their logits; the first batch's logits are checked for shape
and NaN, so a model answering garbage gives a ``ModelError``.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, cast

import numpy as np

from mlsecops.assess.constraints import FeatureConstraints, Norm, parse_norm
from mlsecops.core.errors import InputError
from mlsecops.models.interface import ModelAdapter, ModelError, TorchNative, check_inputs, check_labels

if TYPE_CHECKING:
    import torch

__all__ = [
    "ATTACKS",
    "Attack",
    "AttackResult",
    "BatchOutcome",
    "BlackBoxAttack",
    "NumpyOutcome",
    "check_logits",
    "is_torch_native",
    "label_function",
    "make_attack",
    "numpy_score_function",
    "register_attack",
    "score_function",
]


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
    """Per example: model evaluations spent on it, the clean pass included (for white-box attacks, forward
    passes, with or without a backward pass)."""
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


class BatchOutcome(NamedTuple):
    """What ``_attack_batch`` returns for the examples it attacked."""

    x_adv: torch.Tensor
    """Adversarial inputs, one per attacked example."""
    queries: torch.Tensor
    """Model evaluations spent per example (on the CPU)."""
    extra: dict[str, Any]
    """Per-example details (arrays of the batch's length)."""
    fooled: torch.Tensor | None = None
    """Per example: the model's label on ``x_adv`` is wrong, when the attack evaluated ``x_adv`` itself
    (white-box attacks do); ``None`` makes ``generate`` check ``x_adv`` with one more pass."""


class NumpyOutcome(NamedTuple):
    """What ``BlackBoxAttack._attack_batch_np`` returns for the examples it attacked (numpy arrays)."""

    x_adv: np.ndarray
    """Adversarial inputs, one per attacked example."""
    queries: np.ndarray
    """Model evaluations spent per example."""
    extra: dict[str, Any]
    """Per-example details (arrays of the batch's length)."""
    fooled: np.ndarray | None = None
    """Per example: the model's label on ``x_adv`` is wrong, when the attack knows it; ``None`` makes
    ``generate`` check ``x_adv`` with one more pass."""


# One batch's results: adversarial inputs, clean-correct, fooled, queries, per-example extras.
_Batch = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]


class Attack(abc.ABC):
    """Base of every attack: validation, batching and seeding around ``_attack_batch``.

    The batches run in torch (``_batches``); ``BlackBoxAttack`` runs them in numpy instead.

    Args:
        norm: ``linf`` or ``l2``.
        batch_size: examples attacked together; ``None`` picks it from the input size (every row of a
            small tabular or 8x8 image set in one batch, fewer for large images).
    """

    name: ClassVar[str] = ""
    norms: ClassVar[tuple[Norm, ...]] = ("linf", "l2")
    white_box: ClassVar[bool] = True

    def __init__(self, *, norm: str = "linf", batch_size: int | None = None) -> None:
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
            ModelError: the model's scores have the wrong shape or are not finite.
        """
        norm = parse_norm(self.norm)
        if norm not in self.norms:
            raise InputError(f"attack {self.name!r} supports norms {', '.join(self.norms)}; got {norm!r}")
        try:
            eps = float(eps)
        except (TypeError, ValueError):
            raise InputError(f"eps must be a finite number >= 0; got {eps!r}") from None
        if not math.isfinite(eps) or eps < 0:
            raise InputError(f"eps must be a finite number >= 0; got {eps}")
        native = is_torch_native(model)
        if self.white_box and not native:
            raise InputError(
                f"attack {self.name!r} is white-box and needs a PyTorch model; for models without "
                "gradients use 'square' or 'hopskipjump'"
            )
        arr = check_inputs(x, model.input_shape, finite=False)
        # one pass for the range, which is NaN or infinite exactly when some value is
        lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 1.0)
        if not (math.isfinite(lo) and math.isfinite(hi)):
            check_inputs(arr, model.input_shape)  # raises the usual error, with the row count
        labels = check_labels(y, len(arr), model.n_classes)
        if constraints is None:  # the data's own range: it holds the data, nothing to check
            cons = FeatureConstraints(lower=lo, upper=hi)
        else:
            cons = constraints
            cons.check_inside(arr)
        batches = self._batches(model, arr, labels, float(eps), norm, cons, int(seed)) if len(arr) else []
        outs = [b[0] for b in batches]
        correct = [b[1] for b in batches]
        fooled = [b[2] for b in batches]
        queries = [b[3] for b in batches]
        extras = [b[4] for b in batches]
        merged: dict[str, Any] = {}
        for key in {k for e in extras for k in e}:
            merged[key] = np.concatenate(
                [e.get(key, np.full(len(c), np.nan)) for e, c in zip(extras, correct, strict=True)]
            )
        return AttackResult(
            x_adv=_join(outs) if outs else arr.copy(),
            fooled=_join(fooled) if fooled else np.zeros(0, dtype=bool),
            clean_correct=_join(correct) if correct else np.zeros(0, dtype=bool),
            queries=_join(queries) if queries else np.zeros(0, dtype=np.int64),
            attack=self.name,
            norm=norm,
            eps=float(eps),
            extra=merged,
        )

    def _batches(
        self,
        model: ModelAdapter,
        arr: np.ndarray,
        labels: np.ndarray,
        eps: float,
        norm: Norm,
        cons: FeatureConstraints,
        seed: int,
    ) -> list[_Batch]:
        """Attack ``arr`` batch by batch in torch (on the model's device for a PyTorch model)."""
        import torch

        native = is_torch_native(model)
        device = cast("TorchNative", model).device if native else torch.device("cpu")
        gen = torch.Generator(device="cpu").manual_seed(seed)
        predict = label_function(model)
        xs = torch.from_numpy(arr).to(device)
        ys = torch.from_numpy(labels).to(device)
        proj = cons.torch_projector(xs)
        rows = self._rows_per_batch(arr)
        out: list[_Batch] = []
        for start in range(0, len(arr), rows):
            part = slice(start, start + rows)
            x_adv, ok, wrong, q, extra = self._run_batch(
                model, xs[part], ys[part], eps, norm, proj.subset(part), gen, predict
            )
            out.append(
                (x_adv.detach().cpu().numpy(), ok.cpu().numpy(), wrong.cpu().numpy(), q.numpy(), extra)
            )
        return out

    def _rows_per_batch(self, arr: np.ndarray) -> int:
        if self.batch_size is not None:
            return max(1, int(self.batch_size))
        # about 2M input values per batch, between 256 and 4096 rows
        per_row = max(1, int(arr[0].size)) if len(arr) else 1
        return int(min(4096, max(256, (1 << 21) // per_row)))

    def _run_batch(
        self,
        model: ModelAdapter,
        x0: torch.Tensor,
        y: torch.Tensor,
        eps: float,
        norm: Norm,
        proj: Any,
        gen: torch.Generator,
        predict: Callable[[torch.Tensor], torch.Tensor],
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, np.ndarray]]:
        """One batch: a clean pass, the attack on the correctly classified rows, and the verdict.

        Returns ``(x_adv, clean_correct, fooled, queries, extra)``. The adversarial inputs are checked
        with one more pass only when the attack did not evaluate them itself.
        """
        import torch

        ok = predict(x0) == y
        x_adv = x0.clone()
        wrong = ~ok
        q = torch.ones(len(x0), dtype=torch.long)
        idx = ok.nonzero().flatten()
        extra: dict[str, np.ndarray] = {}
        if len(idx) == 0 or eps <= 0:
            return x_adv, ok, wrong, q, extra
        out = self._attack_batch(model, x0[idx], y[idx], eps, norm, proj.subset(idx), gen)
        x_adv[idx] = out.x_adv.detach()
        q[idx.cpu()] += out.queries.cpu()
        extra = _spread(out.extra, idx.cpu().numpy(), len(x0))
        if out.fooled is not None:
            wrong[idx] = out.fooled.to(wrong.device)
        else:
            wrong[idx] = predict(x_adv[idx]) != y[idx]
        return x_adv, ok, wrong, q, extra

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
    ) -> BatchOutcome:
        """Attack a batch of correctly classified examples."""


class BlackBoxAttack(Attack):
    """Base of the attacks that need only the model's scores: the batches run in numpy.

    Subclasses implement ``_attack_batch_np``; randomness comes from one ``numpy.random.Generator``
    seeded by ``generate``'s ``seed``. No torch import on this path (a PyTorch model brings its own).
    """

    white_box = False

    def _batches(
        self,
        model: ModelAdapter,
        arr: np.ndarray,
        labels: np.ndarray,
        eps: float,
        norm: Norm,
        cons: FeatureConstraints,
        seed: int,
    ) -> list[_Batch]:
        rng = np.random.default_rng(seed)
        scores = numpy_score_function(model)
        proj = cons.numpy_projector(arr)
        rows = self._rows_per_batch(arr)
        out: list[_Batch] = []
        for start in range(0, len(arr), rows):
            part = slice(start, start + rows)
            x0, y = arr[part], labels[part]
            ok = scores(x0).argmax(axis=1) == y
            x_adv, wrong = x0.copy(), ~ok
            q = np.ones(len(x0), dtype=np.int64)
            extra: dict[str, np.ndarray] = {}
            idx = np.flatnonzero(ok)
            if len(idx) and eps > 0:
                res = self._attack_batch_np(
                    model, x0[idx], y[idx], eps, norm, proj.subset(part).subset(idx), rng
                )
                x_adv[idx] = res.x_adv
                q[idx] += res.queries
                extra = _spread(res.extra, idx, len(x0))
                if res.fooled is not None:
                    wrong[idx] = res.fooled
                else:
                    wrong[idx] = scores(x_adv[idx]).argmax(axis=1) != y[idx]
            out.append((x_adv, ok, wrong, q, extra))
        return out

    def _attack_batch(
        self,
        model: ModelAdapter,
        x0: torch.Tensor,
        y: torch.Tensor,
        eps: float,
        norm: Norm,
        proj: Any,
        gen: torch.Generator,
    ) -> BatchOutcome:
        raise NotImplementedError(f"{self.name} runs in numpy: see _attack_batch_np")

    @abc.abstractmethod
    def _attack_batch_np(
        self,
        model: ModelAdapter,
        x0: np.ndarray,
        y: np.ndarray,
        eps: float,
        norm: Norm,
        proj: Any,
        rng: np.random.Generator,
    ) -> NumpyOutcome:
        """Attack a batch of correctly classified examples (numpy in, numpy out)."""


def numpy_score_function(model: ModelAdapter) -> Callable[[np.ndarray], np.ndarray]:
    """A function from an input batch (numpy) to class probabilities (float32 numpy), no gradients.

    A PyTorch model is read from its logits (softmax, no autograd; the first batch's logits are
    checked for shape and NaN); any other adapter answers through ``predict_proba``, which validates
    its probabilities. Nothing here imports torch for a model that is not a PyTorch one.

    Raises:
        ModelError: (from the returned function) scores of the wrong shape or with NaN or infinity.
    """
    if is_torch_native(model):
        import torch

        native = cast("TorchNative", model)
        logits = _checked_logits(native)

        def torch_scores(x: np.ndarray) -> np.ndarray:
            z = logits(torch.from_numpy(np.ascontiguousarray(x)).to(native.device))
            with torch.inference_mode():
                out: np.ndarray = torch.softmax(z.float(), dim=1).cpu().numpy()
            return out

        return torch_scores

    def scores(x: np.ndarray) -> np.ndarray:
        return np.asarray(model.predict_proba(x), dtype=np.float32)

    return scores


def label_function(model: ModelAdapter) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function from an input batch (tensor) to the model's predicted labels, without gradients.

    For torch-native models it reads the logits directly (one forward pass, no softmax, no numpy) and
    checks that they are a finite ``(n, n_classes)`` matrix; other models answer through
    ``predict_proba``, which validates their probabilities.

    Raises:
        ModelError: (from the returned function) scores of the wrong shape or with NaN or infinity.
    """
    if is_torch_native(model):
        logits = _checked_logits(cast("TorchNative", model))

        def torch_labels(x: torch.Tensor) -> torch.Tensor:
            return logits(x).argmax(dim=1)

        return torch_labels

    scores = score_function(model)

    def numpy_labels(x: torch.Tensor) -> torch.Tensor:
        return scores(x).argmax(dim=1)

    return numpy_labels


def _spread(extra: dict[str, Any], idx: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """Per-example extras of the attacked rows ``idx`` spread over the batch's ``n`` rows, NaN elsewhere."""
    out: dict[str, np.ndarray] = {}
    for key, value in extra.items():
        full = np.full(n, np.nan)
        full[idx] = np.asarray(value, dtype=np.float64)
        out[key] = full
    return out


def _checked_logits(native: TorchNative) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function from an input batch to the model's logits, without autograd; the first batch proves
    the shape (NaN checks cost a pass over the logits, so only that batch is checked).
    """
    import torch

    checked = False

    def logits(x: torch.Tensor) -> torch.Tensor:
        nonlocal checked
        with torch.inference_mode():  # no autograd bookkeeping at all
            out = native.logits(x)
        if not checked:
            check_logits(out, len(x), native.n_classes)
            checked = True
        return out

    return logits


def _join(parts: list[np.ndarray]) -> np.ndarray:
    return parts[0] if len(parts) == 1 else np.concatenate(parts)  # one batch: no copy


_NATIVE: dict[type, bool] = {}


def is_torch_native(model: object) -> bool:
    """``isinstance(model, TorchNative)``, remembered per class (a runtime protocol check is slow)."""
    kind = type(model)
    if kind not in _NATIVE:
        _NATIVE[kind] = isinstance(model, TorchNative)
    return _NATIVE[kind]


def check_logits(logits: torch.Tensor, n: int, n_classes: int, *, finite: bool = True) -> torch.Tensor:
    """Return ``logits`` after checking they are a finite ``(n, n_classes)`` matrix.

    The shape check is free; the finite check (``finite=True``) is one pass over the logits.

    Raises:
        ModelError: wrong shape, NaN or infinity.
    """
    import torch

    if logits.ndim != 2 or logits.shape[0] != n or logits.shape[1] != n_classes:
        raise ModelError(
            f"the model returned scores of shape {tuple(logits.shape)}; expected ({n}, {n_classes})"
        )
    if finite and not bool(torch.isfinite(logits).all()):
        raise ModelError("the model returned NaN or infinite scores")
    return logits


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
"""Attack implementations by short name (``fgsm``, ``pgd``, ``apgd``, ``square``, ``hopskipjump``, ``patch``)."""


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

    for module in ("whitebox", "apgd", "square", "hopskipjump", "patch"):
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
