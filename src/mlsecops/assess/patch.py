"""Sticker (adversarial patch) attacks, and the ``assess.patch`` check: success rate per sticker size.

A physical attacker cannot add a faint perturbation to every pixel a camera sees; they can stick
something on the object. Eykholt et al. (CVPR 2018, the stop-sign study) confined the perturbation to
sticker-shaped regions and optimised only those pixels; Brown et al. (2017) and Karmon et al. (LaVAN,
ICML 2018) did the same with one square patch. ``PatchAttack`` is that threat model on any image
classifier with gradients: a ``k x k`` square (every channel) at one position, its pixels optimised by
PGD with the gradient masked to the square, everything outside it left exactly as it was. Inside the
square a pixel may move by at most ``eps`` (``eps`` at least the data's range: any colour, a printed
sticker) and stays inside the feature bounds.

Where the sticker goes (``position``):

- ``search`` (default): the ``candidates`` positions where the loss is most sensitive (the sum of
  ``|gradient|`` over the square, one backward pass at the clean input, as LaVAN's saliency), tried in
  that order; an example stops at the first position that fools the model;
- ``fixed``: one position ``at=(row, col)`` for every example (the centre when not given), as a
  sticker placed where it can be placed;
- ``random``: ``candidates`` positions drawn at random per example.

``evaluate_patches`` runs the attack for several sticker sizes on the same examples; ``patch_report``
turns that into a ``Report``: metrics ``clean_accuracy``, ``patch_success@<k>x<k>`` (share of the
correctly classified examples fooled) and ``robust_accuracy@patch_<k>x<k>``, a findings per size that
fools the model (MITRE ATLAS AML.T0015, evade ML model), a curve of success against sticker area, and a
figure of stickered examples captioned with the model's prediction before and after.

The ``assess.patch`` check reads the model and data from the target (``paths`` = (model, data) or the
options ``model`` and ``data``); other options: ``sizes`` (list of ``k``, default ``[1, 2, 3]``),
``position``, ``at``, ``candidates``, ``steps``, ``restarts``, ``eps`` (default: the data's range),
``max_examples`` (default 500), ``label``, feature ``lower``/``upper``, ``input_shape``, ``weights``.
The attack is also in the attack catalogue (``make_attack("patch", size=2)``), so ``assess.robustness``
can run it at an eps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast

import numpy as np

from mlsecops.assess._data import encode_labels, load_dataset, subsample
from mlsecops.assess._evasion import (
    CleanAccuracy,
    EarlyStop,
    evasion_finding,
    evasion_report,
    loss_grad,
    median_queries,
    pgd_descend,
)
from mlsecops.assess._figures import image_pairs_svg
from mlsecops.assess._options import MODEL_OPTIONS, load_target_model, model_and_data
from mlsecops.assess.attack import (
    Attack,
    AttackResult,
    BatchOutcome,
    is_torch_native,
    register_attack,
)
from mlsecops.assess.constraints import FeatureConstraints, Norm
from mlsecops.core.checks import CheckKind, ContractCases, Target, register
from mlsecops.core.errors import InputError
from mlsecops.core.findings import Figure, Finding, Report, Severity, utcnow
from mlsecops.core.redaction import redact
from mlsecops.models.interface import ModelAdapter, TorchNative, check_inputs
from mlsecops.report.plots import line_chart

if TYPE_CHECKING:
    import torch

__all__ = [
    "PatchAttack",
    "PatchCheck",
    "PatchEvaluation",
    "evaluate_patches",
    "patch_key",
    "patch_report",
]

POSITIONS = ("search", "fixed", "random")
"""How the sticker's position is chosen (see the module docstring)."""
DEFAULT_SIZES = (1, 2, 3)
_METRICS = ("clean_accuracy", "patch_success@*", "robust_accuracy@patch_*")


def patch_key(size: int) -> str:
    """The metric suffix for one sticker size, e.g. ``3x3``."""
    return f"{int(size)}x{int(size)}"


def _spatial(shape: tuple[int, ...]) -> tuple[int, int]:
    if len(shape) < 2:
        raise InputError(
            f"the patch attack needs image inputs (height and width as the last two axes); got input "
            f"shape {shape}: pass input_shape, e.g. 1,8,8"
        )
    return int(shape[-2]), int(shape[-1])


@register_attack
class PatchAttack(Attack):
    """PGD confined to one ``size x size`` square per example (a sticker).

    Each try runs ``restarts`` PGD runs of ``steps`` signed-gradient steps on the square's pixels,
    starting from random pixel values inside the square; an example stops at its first success, so
    it costs no further passes. The budget per example is at most ``candidates * restarts * steps``
    forward and backward passes, plus one for the saliency (``search``).

    Args:
        norm: ``linf`` only (``eps`` bounds each pixel of the square).
        size: side of the square in pixels.
        position: ``search``, ``fixed`` or ``random``.
        at: ``(row, col)`` of the square's top-left pixel for ``fixed`` (default: centred).
        candidates: positions tried per example (``search`` and ``random``).
        steps: PGD steps per run.
        restarts: PGD runs per position.
        step_size: absolute step, or ``None`` for ``2.5 * eps / steps``.
        batch_size: examples attacked together (``None``: from the input size).
    """

    name = "patch"
    norms: ClassVar[tuple[Norm, ...]] = ("linf",)

    def __init__(
        self,
        *,
        norm: str = "linf",
        size: int = 2,
        position: str = "search",
        at: tuple[int, int] | None = None,
        candidates: int = 4,
        steps: int = 30,
        restarts: int = 1,
        step_size: float | None = None,
        batch_size: int | None = None,
    ) -> None:
        super().__init__(norm=norm, batch_size=batch_size)
        self.size = size
        self.position = position
        self.at = at
        self.candidates = candidates
        self.steps = steps
        self.restarts = restarts
        self.step_size = step_size

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
        """Stick a ``size x size`` square on each input (see ``Attack.generate``).

        Raises:
            InputError: as ``Attack.generate``; also non-image inputs, a square larger than the image,
                a ``fixed`` position outside it, or an unknown ``position``.
        """
        h, w = _spatial(tuple(model.input_shape))
        k = int(self.size)
        if k < 1 or k > min(h, w):
            raise InputError(f"patch size must be between 1 and {min(h, w)} pixels; got {self.size}")
        if self.position not in POSITIONS:
            raise InputError(f"patch position must be one of {', '.join(POSITIONS)}; got {self.position!r}")
        if self.position == "fixed" and self.at is not None:
            r, c = (int(v) for v in self.at)
            if not (0 <= r <= h - k and 0 <= c <= w - k):
                raise InputError(f"a {k}x{k} patch at {(r, c)} does not fit a {h}x{w} image")
        if int(self.candidates) < 1 or int(self.steps) < 1 or int(self.restarts) < 1:
            raise InputError("patch candidates, steps and restarts must be at least 1")
        return super().generate(model, x, y, eps=eps, constraints=constraints, seed=seed)

    def _positions(
        self, native: TorchNative, x0: torch.Tensor, y: torch.Tensor, gen: torch.Generator
    ) -> tuple[torch.Tensor, int]:
        """``(n, tries, 2)`` top-left corners to try per example, and the passes spent choosing them."""
        import torch

        h, w = x0.shape[-2], x0.shape[-1]
        k, n = int(self.size), len(x0)
        if self.position == "fixed":
            r, c = self.at if self.at is not None else ((h - k) // 2, (w - k) // 2)
            return torch.tensor([[[int(r), int(c)]]], dtype=torch.long).expand(n, 1, 2), 0
        tries = min(int(self.candidates), (h - k + 1) * (w - k + 1))
        if self.position == "random":
            rows = torch.randint(0, h - k + 1, (n, tries), generator=gen)
            cols = torch.randint(0, w - k + 1, (n, tries), generator=gen)
            return torch.stack([rows, cols], dim=2), 0
        grad = loss_grad(native, x0, y, "ce").grad
        sal = grad.abs().reshape(n, -1, h, w).sum(dim=1, keepdim=True)
        score = torch.nn.functional.avg_pool2d(sal, kernel_size=k, stride=1).flatten(1)  # (n, (h-k+1)(w-k+1))
        top = score.topk(tries, dim=1).indices.cpu()
        return torch.stack([top // (w - k + 1), top % (w - k + 1)], dim=2), 1

    def _mask(self, corners: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """A 0/1 mask shaped like ``like``: 1 on each example's square."""
        import torch

        h, w, k = like.shape[-2], like.shape[-1], int(self.size)
        rows = torch.arange(h, device=like.device)
        cols = torch.arange(w, device=like.device)
        r = corners[:, 0].to(like.device).view(-1, 1)
        c = corners[:, 1].to(like.device).view(-1, 1)
        in_r = (rows >= r) & (rows < r + k)
        in_c = (cols >= c) & (cols < c + k)
        square = (in_r[:, :, None] & in_c[:, None, :]).to(like.dtype)  # (n, h, w)
        return square.view(len(like), *([1] * (like.ndim - 3)), h, w).expand_as(like)

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
        import torch

        native = cast("TorchNative", model)
        steps = int(self.steps)
        step = self.step_size if self.step_size is not None else 2.5 * eps / steps

        def advance(x: torch.Tensor, grad: torch.Tensor, sub: Any, mask: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = sub(x + step * grad.sign() * mask, eps, "linf")
            return out

        corners, spent = self._positions(native, x0, y, gen)
        record = EarlyStop(x0, spent=spent)
        tried = torch.zeros(len(x0), dtype=torch.long)  # per example: the last position tried on it
        lo, hi = proj.lo, proj.hi
        for t in range(corners.shape[1]):
            for restart in range(int(self.restarts)):
                idx = record.standing()
                if len(idx) == 0:
                    break
                tried[idx.cpu()] = t
                mask = self._mask(corners[idx.cpu(), t, :], x0[idx])
                noise = torch.rand(x0[idx].shape, generator=gen).to(x0.device)
                sub = proj.subset(idx)
                x = sub(x0[idx] + mask * (lo + noise * (hi - lo) - x0[idx]), eps, "linf")
                pgd_descend(
                    native,
                    record,
                    x,
                    y[idx],
                    idx,
                    sub,
                    steps=steps,
                    loss="ce",
                    advance=advance,
                    carry=(mask,),
                    check=t == 0 and restart == 0,
                )
        # an example stops at the position that fooled it, or ends at the last one
        where = corners[torch.arange(len(x0)), tried]
        extra = {
            "patch_row": where[:, 0].numpy().astype(np.float64),
            "patch_col": where[:, 1].numpy().astype(np.float64),
        }
        return record.outcome(extra)


@dataclass(frozen=True)
class PatchEvaluation(CleanAccuracy):
    """Sticker attacks of several sizes on one set of examples."""

    x: np.ndarray
    y: np.ndarray
    clean_correct: np.ndarray
    results: tuple[tuple[int, AttackResult], ...]
    """``(size, result)`` per sticker size, smallest first."""
    lower: float
    upper: float
    predictions: tuple[np.ndarray, ...] = ()
    """The model's label on each size's stickered inputs (same order as ``results``)."""
    clean_predictions: np.ndarray | None = None
    position: str = "search"


def evaluate_patches(
    model: ModelAdapter,
    x: np.ndarray,
    y: np.ndarray,
    *,
    sizes: Sequence[int] = DEFAULT_SIZES,
    eps: float | None = None,
    constraints: FeatureConstraints | None = None,
    seed: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
    **params: Any,
) -> PatchEvaluation:
    """Run the sticker attack at each size on the same examples.

    Args:
        model: a PyTorch model (the attack needs gradients).
        x: clean images, shape ``(n, *model.input_shape)``.
        y: integer labels.
        sizes: sticker sides in pixels.
        eps: bound on each pixel of the sticker; ``None``: the feature range (any value).
        constraints: feature domain; defaults to the data's global range.
        seed: random seed.
        progress: called as ``("patch 2x2", done, total)`` per size and once at the end.
        params: ``PatchAttack`` parameters (``position``, ``at``, ``candidates``, ``steps``...).

    Raises:
        InputError: bad data, sizes or parameters, or a model without gradients.
    """
    if not sizes:
        raise InputError("give at least one patch size")
    arr = check_inputs(x, model.input_shape, what="data")
    cons = constraints if constraints is not None else FeatureConstraints.from_data(arr)
    lo, hi, _, _ = cons.arrays(int(np.prod(model.input_shape)))
    lower, upper = float(lo.min()), float(hi.max())
    budget = float(eps) if eps is not None else (upper - lower if math.isfinite(upper - lower) else 1.0)
    results: list[tuple[int, AttackResult]] = []
    preds: list[np.ndarray] = []
    from mlsecops.assess.attack import numpy_score_function

    scores = numpy_score_function(model)
    for i, size in enumerate(sorted({int(s) for s in sizes})):
        if progress is not None:
            progress(f"patch {patch_key(size)}", i, len(sizes))
        attack = PatchAttack(size=size, **params)
        res = attack.generate(model, arr, y, eps=budget, constraints=cons, seed=seed)
        results.append((size, res))
        preds.append(scores(res.x_adv).argmax(axis=1))
    if progress is not None:
        progress("done", len(sizes), len(sizes))
    clean_pred = scores(arr).argmax(axis=1)
    return PatchEvaluation(
        x=arr,
        y=np.asarray(y),
        clean_correct=results[0][1].clean_correct,
        results=tuple(results),
        lower=lower,
        upper=upper,
        predictions=tuple(preds),
        clean_predictions=clean_pred,
        position=str(params.get("position", "search")),
    )


def patch_report(
    evaluation: PatchEvaluation,
    *,
    subject: str,
    kind: str = "assess.patch",
    started: Any = None,
    n_examples: int = 6,
    class_names: Sequence[str] | None = None,
) -> Report:
    """Metrics per sticker size, findings where stickers fool the model, a curve and captioned examples."""
    ev = evaluation
    metrics: dict[str, float] = {"clean_accuracy": round(ev.clean_accuracy, 6)}
    rows: list[dict[str, Any]] = []
    findings: list[Finding] = []
    h, w = ev.x.shape[-2], ev.x.shape[-1]
    curve: list[tuple[float, float]] = [(0.0, 0.0)]
    position = {
        "search": "the most sensitive position of each input",
        "fixed": "the same position on every input",
        "random": "random positions",
    }.get(ev.position, ev.position)
    for size, r in ev.results:
        key = patch_key(size)
        area = size * size / (h * w)
        metrics[f"patch_success@{key}"] = round(r.success_rate, 6)
        metrics[f"robust_accuracy@patch_{key}"] = round(r.robust_accuracy, 6)
        curve.append((round(100 * area, 3), r.success_rate))
        row = {
            "size": size,
            "area_share": round(area, 6),
            "attack_success": r.success_rate,
            "robust_accuracy": r.robust_accuracy,
            "median_queries": median_queries(r),
        }
        rows.append(row)
        if (r.fooled & r.clean_correct).any():
            sev = (
                Severity.HIGH
                if r.success_rate >= 0.5
                else Severity.MEDIUM
                if r.success_rate >= 0.2
                else Severity.LOW
            )
            findings.append(
                evasion_finding(
                    kind=kind,
                    subject=subject,
                    severity=sev,
                    title=f"a {key} sticker ({area:.1%} of the image) fools the model on {r.success_rate:.0%} of "
                    "correctly classified inputs",
                    detail=f"accuracy drops from {ev.clean_accuracy:.3f} to {r.robust_accuracy:.3f} when one "
                    f"{key}-pixel square is changed ({position})",
                    location={"patch": key},
                    evidence={k: v for k, v in row.items() if k != "size"},
                    remediation=", and screen live inputs; patch-specific defences (input masking, certified "
                    "patch defences) bound what a sticker can do",
                )
            )
    figures = [
        line_chart(
            "Sticker attack: success rate vs sticker area",
            {"sticker": curve},
            xlabel="sticker area (% of the image)",
            ylabel="attack success",
            ylim=(0.0, 1.0),
        )
    ]
    examples, fig = _examples(ev, n_examples, class_names)
    if fig is not None:
        figures.append(fig)
    return evasion_report(
        subject=subject,
        kind=kind,
        started=started,
        findings=findings,
        metrics=metrics,
        data={"patches": rows, "examples": examples, "n_examples": len(ev.y)},
        figures=figures,
    )


def _examples(
    ev: PatchEvaluation, n: int, class_names: Sequence[str] | None
) -> tuple[list[dict[str, Any]], Figure | None]:
    """Successful stickers at the smallest size that has any, captioned with the predictions."""

    def name(c: int) -> str:
        return str(class_names[c]) if class_names else str(c)

    for (size, r), pred in zip(ev.results, ev.predictions, strict=True):
        idx = np.flatnonzero(r.fooled & r.clean_correct)[:n]
        if len(idx) == 0:
            continue
        out: list[dict[str, Any]] = []
        pairs = []
        clean = ev.clean_predictions if ev.clean_predictions is not None else ev.y
        for i in idx:
            row, col = int(r.extra["patch_row"][i]), int(r.extra["patch_col"][i])
            entry = {
                "index": int(i),
                "size": size,
                "row": row,
                "col": col,
                "true": int(ev.y[i]),
                "clean_prediction": int(clean[i]),
                "patched_prediction": int(pred[i]),
            }
            out.append(entry)
            caption = (
                f"#{i} true {name(int(ev.y[i]))}: predicted {name(int(clean[i]))} -> "
                f"{name(int(pred[i]))} with a {patch_key(size)} sticker at ({row},{col})"
            )
            pairs.append((ev.x[i], r.x_adv[i], caption))
        fig = Figure(
            title=f"Sticker attack examples ({patch_key(size)}): original | stickered, with predictions",
            content=image_pairs_svg(pairs, lower=ev.lower, upper=ev.upper),
        )
        return out, fig
    return [], None


@register(
    "assess.patch",
    kind=CheckKind.ATTACK,
    summary="Physical-style sticker attack: success rate per patch size, with captioned examples",
    metrics=_METRICS,
    options=(
        *MODEL_OPTIONS,
        "sizes",
        "position",
        "at",
        "candidates",
        "steps",
        "restarts",
        "eps",
        "max_examples",
        "lower",
        "upper",
    ),
)
class PatchCheck:
    """Sticker attacks of several sizes (``assess.patch``; options in the module docstring).

    Args:
        progress: called as ``(step, done, total)`` per sticker size.
    """

    def __init__(self, *, progress: Callable[[str, int, int], None] | None = None) -> None:
        self.progress = progress

    def run(self, target: Target) -> Report:
        """Load model and data from the target, attack with each sticker size, and report.

        Raises:
            InputError: missing or malformed model, data or options; a model without gradients.
        """
        started = utcnow()
        seed = int(target.seed or 0)
        model_ref, data_ref = model_and_data(target, "patch attacks need")
        x, raw_y = load_dataset(data_ref, label=target.opt_str("label"))
        model = load_target_model(target, model_ref, x)
        if not is_torch_native(model):
            raise InputError(
                f"the patch attack needs gradients (a PyTorch model); {redact(model_ref)} is "
                f"{type(model).__name__}"
            )
        y = encode_labels(raw_y, getattr(model, "classes", None))
        x = check_inputs(x, model.input_shape, what="data")
        idx = subsample(len(x), target.opt_int("max_examples", 500, lo=1), seed)
        x, y = x[idx], y[idx]
        cons = FeatureConstraints.from_target(target, x)
        sizes = target.opt_int_list("sizes", lo=1) or list(DEFAULT_SIZES)
        at = target.opt_int_list("at", lo=0)
        if at and len(at) != 2:
            raise InputError(f"option at must be two numbers (row, col); got {at}")
        params: dict[str, Any] = {
            "position": target.opt_choice("position", POSITIONS, "search"),
            "candidates": target.opt_int("candidates", 4, lo=1),
            "steps": target.opt_int("steps", 30, lo=1),
            "restarts": target.opt_int("restarts", 1, lo=1),
        }
        if at:
            params["at"] = (at[0], at[1])
        ev = evaluate_patches(
            model,
            x,
            y,
            sizes=sizes,
            eps=target.opt_float("eps", lo=0.0),
            constraints=cons,
            seed=seed,
            progress=self.progress,
            **params,
        )
        return patch_report(ev, subject=redact(model_ref), started=started)

    @classmethod
    def contract_cases(cls, tmp_dir: Any) -> ContractCases:
        """A tiny random PyTorch model on 1x4x4 images, and a corrupt data file."""
        model_path, data_path = _tiny_image_model(tmp_dir)
        bad = tmp_dir / "corrupt.npz"
        bad.write_bytes(b"PK\x03\x04 this is not a real archive")
        opts = {"sizes": [1, 2], "steps": 5, "max_examples": 20}
        return ContractCases(
            valid=Target(paths=(model_path, data_path), options=opts, seed=1),
            corrupt=Target(paths=(model_path, bad), options=opts, seed=1),
        )


def _tiny_image_model(tmp_dir: Path, *, seed: int = 0) -> tuple[Path, Path]:
    """A small random PyTorch classifier of 1x4x4 images (a ``.pt2`` program) and matching data."""
    import torch

    from mlsecops.models.pytorch import TorchModel

    gen = torch.Generator().manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(16, 12), torch.nn.ReLU(), torch.nn.Linear(12, 3)
    )
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    model_path = Path(tmp_dir) / "tiny-image.pt2"
    TorchModel(net, input_shape=(1, 4, 4)).save(model_path)
    x = np.random.default_rng(seed).random((40, 1, 4, 4)).astype(np.float32)
    with torch.no_grad():
        y = net(torch.from_numpy(x)).argmax(dim=1).numpy()
    data_path = Path(tmp_dir) / "tiny-image.npz"
    np.savez(data_path, X=x, y=y)
    return model_path, data_path
