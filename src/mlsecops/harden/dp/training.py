"""Differentially private training of PyTorch classifiers through Opacus (DP-SGD, Abadi et al. 2016).

``dp_train`` takes a ``torch.nn.Module`` and a training set and trains a copy of it so that the released
weights are (epsilon, delta)-differentially private with respect to each training row:

- **Per-sample clipping and noise** are Opacus's (``PrivacyEngine.make_private_with_epsilon``): every
  row's gradient is clipped to L2 norm ``clip``, Gaussian noise of standard deviation
  ``noise_multiplier * clip`` is added to their sum, and the noise multiplier is solved by Opacus from
  the target epsilon, delta, the sampling rate and the number of steps. We never compute the noise or
  the privacy loss ourselves: accounting is the part that is easy to get wrong.
- **Poisson sampling**: each step takes every row independently with probability
  ``batch_size / n``, the sampling the accountant's amplification analysis assumes.
- **Layers Opacus cannot train privately** are replaced where Opacus knows an equivalent
  (``ModuleValidator.fix``: BatchNorm, whose statistics mix rows, becomes GroupNorm; LSTM becomes
  DPLSTM), and each replacement is stated in ``DpTrainingResult.notes``. A model that still cannot be
  made private (a TorchScript module: no hooks; an exported program using an operation with trainable
  weights other than linear and convolution layers) raises ``PrivacyUnsupportedError`` naming the
  layer and what to give instead.
- ``.pt2`` programs (``torch.export``) run their graph as ATen calls, which Opacus's per-sample
  gradient hooks never see. ``_rebuild_exported`` turns each ``aten.linear`` / ``aten.conv{1,2}d``
  call on a parameter holder back into the ``nn.Linear`` / ``nn.Conv`` it came from, sharing the
  same parameters, so an exported model trains privately like the module it was exported from.

The defaults are the known-good DP-SGD practice for small tabular and image classifiers (see
``DEFAULT_*`` below and ``benchmarks/results/privacy-dp.md`` for what they measure against Opacus's
tutorial settings): large expected batches, so the noise added to the batch sum is small against the
signal; more epochs, which the accountant pays for with a little more noise but which let the model
converge; a clip norm near the typical per-sample gradient norm; Adam, which tolerates the noise better
than plain SGD at a fixed learning rate; a moving average of the weights released instead of the last,
noisiest iterate (free: post-processing); and inputs rescaled to a fixed public range (never statistics
of the private data, which the accountant does not cover).

**Public pre-training** (``public_data``; Tramer & Boneh 2021, De et al. 2022): before the private run
the fresh model is trained without noise on rows that are public (another collection of the same kind
of data, never the private set), then DP-SGD fine-tunes it on the private rows. The public rows cost no
privacy, because the guarantee is about the private rows only, so it holds only if they really are
public; rows that also occur in the private set are refused. With ``dp_layers=N`` only the last N layers
with parameters are trained privately and the rest keep their pre-trained weights: fewer private
parameters, less noise in total. What was pre-trained, on what, and what stayed frozen is in
``DpTrainingResult.facts()`` (so in the lineage and ML-BOM).

After training, ``mlsecops.harden.dp.leakage`` tests the model's measured membership leakage against
the epsilon it claims.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from mlsecops.core.errors import InputError
from mlsecops.models.interface import check_inputs, check_labels

if TYPE_CHECKING:
    import torch

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_CLIP",
    "DEFAULT_DELTA",
    "DEFAULT_EPOCHS",
    "DEFAULT_LR",
    "DEFAULT_PUBLIC_EPOCHS",
    "DpTrainingResult",
    "PrivacyUnsupportedError",
    "PublicData",
    "dp_train",
    "prepare_module",
]

DEFAULT_DELTA = 1e-5
"""Target delta when none is given: below 1/n for any training set under 100 000 rows."""
DEFAULT_EPOCHS = 60
"""Passes over the data: DP-SGD converges slower than SGD; the accountant charges for extra passes
with a larger noise multiplier, which large batches keep small (De et al. 2022)."""
DEFAULT_BATCH_SIZE = 256
"""Expected Poisson batch: the noise on the averaged gradient falls as 1 / batch size."""
DEFAULT_CLIP = 1.0
"""Per-sample L2 clip norm, on the order of the per-sample gradient norms of a cross-entropy classifier
on inputs scaled to [-1, 1]."""
DEFAULT_LR = 1e-2
"""Adam learning rate for the defaults above, on inputs scaled to [-1, 1] (``input_range``). Chosen on a
split of the digits training rows (900 / 357, never the benchmark's test rows): 1e-2 beat 5e-3 at
epsilon 1, 3 and 8 alike (+2 to +4 points), 2e-2 diverged (``benchmarks/results/privacy-dp.md``)."""
DEFAULT_EMA = 0.97
"""Decay of the exponential moving average of the weights that is released instead of the last iterate
(De et al. 2022): it averages out part of the noise of the last ~1/(1-decay) steps, and as
post-processing of the private iterates it costs no privacy. ``None`` releases the last iterate."""
DEFAULT_PUBLIC_EPOCHS = 30
"""Passes over the public data in the (non-private) pre-training that ``public_data`` asks for."""
DEFAULT_PUBLIC_LR = 1e-3
"""Adam learning rate of the public pre-training (batch 64)."""
DEFAULT_ACCOUNTANT = "prv"
"""Opacus's PRV accountant: tighter than RDP for the same noise, so less noise for the same epsilon."""
ACCOUNTANTS = ("prv", "rdp", "gdp")
"""Accountants Opacus offers and ``dp_train`` accepts."""
MAX_SAMPLE_RATE = 1.0
"""A batch at least as large as the data set means full-batch steps (rate 1, no amplification)."""


class PrivacyUnsupportedError(InputError):
    """The model cannot be trained with differential privacy (an architecture Opacus cannot make private)."""


@dataclass(frozen=True)
class PublicData:
    """Public rows to pre-train on before the private run (no privacy cost: they must be public)."""

    x: np.ndarray
    y: np.ndarray
    source: str = "given arrays"
    """Where the rows come from (a file name and digest, a data set's name), for the lineage."""
    epochs: int = DEFAULT_PUBLIC_EPOCHS
    lr: float = DEFAULT_PUBLIC_LR


@dataclass(frozen=True)
class DpTrainingResult:
    """What a private training run did and what it spent."""

    module: Any
    """The trained module (a copy; layers may have been replaced, see ``notes``)."""
    target_epsilon: float
    epsilon: float
    """Epsilon spent, as the accountant computes it for ``delta`` after every step taken."""
    delta: float
    accountant: str
    noise_multiplier: float
    clip: float
    sample_rate: float
    """Poisson sampling rate: each row joins each step with this probability."""
    expected_batch_size: int
    epochs: int
    steps: int
    seconds: float
    notes: tuple[str, ...] = ()
    """Layers replaced to make the model private, and other facts a reader must know."""
    initialisation: str = "random"
    """``random`` (every parameter re-drawn before training: the guarantee covers all the training
    that produced the weights) or ``given weights`` (fine-tuning: only this run is covered)."""
    history: list[dict[str, float]] = field(default_factory=list)
    """Per epoch: mean training loss and accuracy on the sampled batches."""
    public_pretraining: dict[str, Any] | None = None
    """Source, rows, epochs and final accuracy of the public pre-training, when there was one."""
    private_layers: tuple[str, ...] = ()
    """Layers trained with DP-SGD (empty: all); the others kept their pre-trained weights."""

    def facts(self) -> dict[str, Any]:
        """The privacy facts for lineage, the ML-BOM and reports (no weights, no data)."""
        extra: dict[str, Any] = {}
        if self.public_pretraining is not None:
            extra["pretrained_on"] = self.public_pretraining["source"]  # flat, for the ML-BOM's properties
            extra["public_pretraining"] = {
                **self.public_pretraining,
                "privacy_cost": "none, provided the rows are public (not drawn from the private data)",
            }
        if self.private_layers:
            extra["private_layers"] = list(self.private_layers)
        return {
            "mechanism": "DP-SGD (Opacus)",
            "epsilon": round(self.epsilon, 6),
            "target_epsilon": self.target_epsilon,
            "delta": self.delta,
            "accountant": self.accountant,
            "noise_multiplier": round(self.noise_multiplier, 6),
            "max_grad_norm": self.clip,
            "sample_rate": round(self.sample_rate, 6),
            "sampling": "poisson",
            "epochs": self.epochs,
            "steps": self.steps,
            "initialisation": self.initialisation,
            **extra,
            "notes": list(self.notes),
        }


def _exported_wrapper_type() -> type[Any]:
    from mlsecops.models.pytorch import _exported_wrapper

    return _exported_wrapper()


_ATEN_LAYERS = ("linear", "conv1d", "conv2d")
"""ATen operations whose parameter holders ``_rebuild_exported`` turns back into layers Opacus supports."""


def _rebuild_exported(wrapper: Any) -> list[str]:
    """Turn an exported program's ``aten.linear``/``aten.conv*`` calls back into ``nn`` layer calls, in place.

    Returns:
        the rebuilt layer names.

    Raises:
        PrivacyUnsupportedError: a trainable parameter is used by another operation, or in a way the
            layer cannot express (shared between calls, a transposed or strided holder).
    """
    import torch

    gm = wrapper.program_module
    graph = gm.graph
    getattrs = {n: n.target for n in graph.nodes if n.op == "get_attr"}
    rebuilt: list[str] = []
    used: set[str] = set()
    for node in list(graph.nodes):
        if node.op != "call_function":
            continue
        op = getattr(getattr(node.target, "_overloadpacket", None), "__name__", "")
        params = [a for a in node.args if isinstance(a, torch.fx.Node) and a in getattrs]
        if op not in _ATEN_LAYERS:
            for p in params:
                if _is_trainable(gm, str(getattrs[p])):
                    raise PrivacyUnsupportedError(
                        f"cannot make this exported model private: parameter {getattrs[p]} is used by "
                        f"aten.{op or node.target}, which has no per-sample gradient here (only linear and "
                        "convolution layers are rebuilt from a .pt2 program); give the architecture as "
                        "python:module:Class with --weights so Opacus can replace the layer"
                    )
            continue
        weight, bias = node.args[1], node.args[2] if len(node.args) > 2 else None
        owner = _holder(getattrs.get(weight), "weight")
        if owner is None or (bias is not None and _holder(getattrs.get(bias), "bias") != owner):
            raise PrivacyUnsupportedError(
                f"cannot make this exported model private: aten.{op} at {node.name} does not take its "
                "weight and bias from one layer; give the architecture as python:module:Class"
            )
        if owner in used:
            raise PrivacyUnsupportedError(
                f"cannot make this exported model private: layer {owner} is called more than once "
                "(shared weights); give the architecture as python:module:Class"
            )
        used.add(owner)
        holder = gm.get_submodule(owner)
        w = holder.weight
        b = getattr(holder, "bias", None) if bias is not None else None
        if op == "linear":
            layer: torch.nn.Module = torch.nn.Linear(w.shape[1], w.shape[0], bias=b is not None)
        else:
            stride, padding, dilation, groups = (list(node.args[3:7]) + [1, 0, 1, 1][len(node.args) - 3 :])[
                :4
            ]
            conv = torch.nn.Conv1d if op == "conv1d" else torch.nn.Conv2d
            if isinstance(padding, str):
                raise PrivacyUnsupportedError(
                    f"cannot make this exported model private: {owner} uses padding={padding!r}; "
                    "give the architecture as python:module:Class"
                )
            layer = conv(
                w.shape[1] * int(groups),
                w.shape[0],
                tuple(w.shape[2:]),
                stride=stride,
                padding=padding,
                dilation=dilation,
                groups=int(groups),
                bias=b is not None,
            )
        layer.weight = w
        if b is not None:
            layer.bias = b
        _set_submodule(gm, owner, layer)
        with graph.inserting_before(node):
            call = graph.call_module(owner, (node.args[0],))
        node.replace_all_uses_with(call)
        graph.erase_node(node)
        rebuilt.append(owner)
    for node in list(graph.nodes):
        if node.op == "get_attr" and not node.users:
            graph.erase_node(node)
    graph.lint()
    gm.recompile()
    return rebuilt


def _holder(target: Any, attr: str) -> str | None:
    """The module path owning parameter ``target`` when its name ends in ``.attr``."""
    if not isinstance(target, str) or not target.endswith("." + attr):
        return None
    return target[: -len(attr) - 1]


def _is_trainable(gm: Any, target: str) -> bool:
    try:
        value = gm.get_parameter(target)
    except AttributeError:
        return False
    return bool(value.requires_grad)


def _set_submodule(root: Any, path: str, module: Any) -> None:
    parent_path, _, name = path.rpartition(".")
    parent = root.get_submodule(parent_path) if parent_path else root
    setattr(parent, name, module)


def prepare_module(module: torch.nn.Module) -> tuple[torch.nn.Module, list[str]]:
    """A trainable copy of ``module`` that Opacus can make private, and notes on what was changed.

    Raises:
        PrivacyUnsupportedError: the model cannot be made private (see the module docstring).
    """
    import torch
    from opacus.validators import ModuleValidator

    if isinstance(module, torch.jit.ScriptModule):
        raise PrivacyUnsupportedError(
            "cannot make a TorchScript model private: Opacus computes per-sample gradients with module "
            "hooks, which TorchScript does not run; give a .pt2 program (torch.export) or the architecture "
            "as python:module:Class with --weights"
        )
    notes: list[str] = []
    work = copy.deepcopy(module)
    if isinstance(work, _exported_wrapper_type()):
        rebuilt = _rebuild_exported(work)
        if rebuilt:
            notes.append(f"rebuilt {len(rebuilt)} layer(s) of the exported program for per-sample gradients")
        for sub in work.modules():  # a flag only: the graph keeps the mode it was exported in
            sub.training = True
        left = ModuleValidator.validate(work, strict=False)
        if left:  # Opacus's fixes clone by pickling, which an exported graph does not support
            raise PrivacyUnsupportedError(
                "cannot make this exported model private: "
                + "; ".join(_one_line(str(e)) for e in left[:3])
                + "; give the architecture as python:module:Class with --weights"
            )
    else:
        work.train()  # a model saved or handed over in eval mode: Opacus validates training mode
    for p in work.parameters():
        p.requires_grad_(True)
    if not any(True for _ in work.parameters()):
        raise PrivacyUnsupportedError("the model has no trainable parameters; there is nothing to train")
    before = {name: type(m).__name__ for name, m in work.named_modules()}
    _batchnorm1d_to_groupnorm(work)
    errors = ModuleValidator.validate(work, strict=False)
    if errors:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Opacus warns for each replacement; we list them in notes
            work = ModuleValidator.fix(work)
    after = {name: type(m).__name__ for name, m in work.named_modules()}
    for name, kind in before.items():
        if name in after and after[name] != kind:
            notes.append(
                f"replaced {kind} at {name or '(root)'} by {after[name]}: "
                f"{_WHY.get(kind, 'Opacus cannot compute its per-sample gradients')}"
            )
    if errors:
        left = ModuleValidator.validate(work, strict=False)
        if left:
            raise PrivacyUnsupportedError(
                "cannot make this model private: " + "; ".join(_one_line(str(e)) for e in left[:3])
            )
    return work, notes


def _batchnorm1d_to_groupnorm(root: Any) -> None:
    """Replace each ``BatchNorm1d`` by ``GroupNorm(1, C)`` (per-row normalisation over the features).

    Opacus's own fix uses ``min(32, C)`` groups, which on ``(n, C)`` feature vectors leaves one value
    per group: the layer then outputs its bias whatever the input. One group normalises each row over
    all its features, which is defined for ``(n, C)`` and ``(n, C, L)`` inputs alike.
    """
    import torch

    for name, sub in list(root.named_modules()):
        if type(sub) is torch.nn.BatchNorm1d and name:
            _set_submodule(root, name, torch.nn.GroupNorm(1, sub.num_features, affine=sub.affine))


_WHY = {
    "BatchNorm1d": "batch statistics mix rows, so one row's gradient depends on the others",
    "BatchNorm2d": "batch statistics mix rows, so one row's gradient depends on the others",
    "BatchNorm3d": "batch statistics mix rows, so one row's gradient depends on the others",
    "SyncBatchNorm": "batch statistics mix rows, so one row's gradient depends on the others",
    "LSTM": "Opacus's DPLSTM computes the same function with per-sample gradients",
    "GRU": "Opacus's DPGRU computes the same function with per-sample gradients",
    "RNN": "Opacus's DPRNN computes the same function with per-sample gradients",
    "MultiheadAttention": "Opacus's DPMultiheadAttention computes it with per-sample gradients",
}


def _one_line(text: str) -> str:
    return " ".join(text.split())[:240]


def _check_params(epsilon: float, delta: float, n: int, epochs: int, clip: float, batch_size: int) -> None:
    if not (math.isfinite(epsilon) and epsilon > 0):
        raise InputError(f"epsilon must be a positive number; got {epsilon!r}")
    if not 0 < delta < 1:
        raise InputError(f"delta must be in (0, 1); got {delta!r}")
    if delta >= 1.0 / n:
        raise InputError(
            f"delta {delta:g} is not below 1/n = {1.0 / n:g} for {n} training rows: a mechanism that "
            "publishes one random row in the clear meets such a delta; choose a smaller --delta"
        )
    if epochs < 1 or batch_size < 1 or not clip > 0:
        raise InputError("need epochs >= 1, batch_size >= 1 and clip > 0")


def dp_train(
    module: torch.nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epsilon: float,
    delta: float = DEFAULT_DELTA,
    epochs: int = DEFAULT_EPOCHS,
    clip: float = DEFAULT_CLIP,
    batch_size: int = DEFAULT_BATCH_SIZE,
    lr: float = DEFAULT_LR,
    optimizer: str = "adam",
    accountant: str = DEFAULT_ACCOUNTANT,
    n_classes: int | None = None,
    input_range: tuple[float, float] | None = None,
    ema: float | None = DEFAULT_EMA,
    seed: int = 0,
    fine_tune: bool = False,
    public_data: PublicData | None = None,
    dp_layers: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> DpTrainingResult:
    """Train a copy of ``module`` with DP-SGD to the target (epsilon, delta).

    The copy's parameters are drawn afresh first (``reset_parameters`` of every layer, seeded): the
    weights a model file carries were trained on data the accountant never saw, so starting from them
    would release that training in the clear. ``fine_tune=True`` keeps them, for weights that are
    public (pre-trained on public data); the guarantee then covers only this run's data.

    Args:
        module: the classifier (returns logits); it is not changed.
        x: training inputs, already in the scale the model expects.
        y: integer labels.
        epsilon: target epsilon; the noise multiplier is solved for it.
        delta: target delta (below 1/n).
        epochs: passes over the data (in expectation: steps = epochs / sample rate).
        clip: per-sample gradient L2 clip norm.
        batch_size: expected Poisson batch size.
        lr: learning rate.
        optimizer: ``adam`` or ``sgd`` (momentum 0.9).
        accountant: ``prv`` (default), ``rdp`` or ``gdp``.
        n_classes: number of classes (default: largest label + 1).
        input_range: public bounds ``(lo, hi)`` of the features: inputs are mapped to [-1, 1] by a
            fixed layer put in front of the trained model (the saved model still takes raw inputs).
            Bounds must be public knowledge (a pixel range, a schema), not statistics of the private
            data, which the accountant does not cover. Inputs outside the range are refused.
        ema: decay of the moving average of the weights released at the end (``None``: the last
            iterate); post-processing, so it changes no privacy figure.
        seed: seeds the initial weights, the shuffle, the sampling and the noise (reproducible runs;
            a deployment that must resist an attacker who knows the seed uses Opacus's secure mode).
        fine_tune: start from the module's weights instead of re-drawing them (see above).
        public_data: public rows to pre-train on without noise before the private run (in the same
            scale as ``x``; inside ``input_range`` when one is given); see the module docstring.
        dp_layers: train only the last N layers that have parameters with DP-SGD and freeze the
            others (useful after public pre-training); ``None`` trains all.
        progress: called as ``("epoch N", done, epochs)``.

    Raises:
        InputError: bad data or parameters.
        PrivacyUnsupportedError: the model cannot be made private.
    """
    import torch
    from opacus import PrivacyEngine

    if accountant not in ACCOUNTANTS:
        raise InputError(f"accountant must be one of {', '.join(ACCOUNTANTS)}; got {accountant!r}")
    if optimizer not in ("adam", "sgd"):
        raise InputError(f"optimizer must be 'adam' or 'sgd'; got {optimizer!r}")
    arr = np.asarray(x, dtype=np.float32)
    arr = check_inputs(arr, tuple(arr.shape[1:]), what="training data")
    if len(arr) < 2:
        raise InputError("differentially private training needs at least 2 training rows")
    k = n_classes if n_classes is not None else int(np.max(y)) + 1
    labels = check_labels(y, len(arr), k)
    _check_params(epsilon, delta, len(arr), epochs, clip, batch_size)
    pub = _check_public(public_data, arr, k) if public_data is not None else None
    rescale = _rescaler(input_range, arr) if input_range is not None else None
    if rescale is not None and input_range is not None:
        if pub is not None:
            _rescaler(input_range, pub[0], what="public data")  # the same public bounds hold
        with torch.no_grad():
            arr = rescale(torch.from_numpy(arr)).numpy()
            if pub is not None:
                pub = (rescale(torch.from_numpy(pub[0])).numpy(), pub[1])
    work, notes = prepare_module(module)
    torch.manual_seed(seed)
    if fine_tune:
        notes.append(
            "fine-tuned from the given weights: the guarantee covers this run's data only, and holds "
            "only if those weights are public (trained on public data)"
        )
    else:
        _reinitialise(work)
    pretraining = None
    if pub is not None and public_data is not None:
        pretraining = _pretrain(work, pub, public_data, seed)
        notes.append(
            f"pre-trained without noise on {len(pub[0])} public rows ({public_data.source}) for "
            f"{public_data.epochs} epochs before the private run: no privacy cost only if those rows are "
            "public, not drawn from the private data"
        )
    private_layers = _freeze(work, dp_layers) if dp_layers is not None else []
    if private_layers:
        notes.append(
            f"trained privately only {', '.join(private_layers)}; the other layers kept their "
            + ("pre-trained" if pretraining or fine_tune else "initial random")
            + " weights"
        )
    gen = torch.Generator().manual_seed(seed)
    noise_gen = torch.Generator().manual_seed(seed + 1)
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(arr), torch.from_numpy(labels))
    expected = min(batch_size, len(arr))
    loader = torch.utils.data.DataLoader(dataset, batch_size=expected, shuffle=True, generator=gen)
    params = [p for p in work.parameters() if p.requires_grad]
    opt: torch.optim.Optimizer = (
        torch.optim.Adam(params, lr=lr)
        if optimizer == "adam"
        else torch.optim.SGD(params, lr=lr, momentum=0.9)
    )
    work.train()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # secure-mode and accountant warnings: the facts go in notes
            engine = PrivacyEngine(accountant=accountant)
            private, dp_opt, dp_loader = engine.make_private_with_epsilon(
                module=work,
                optimizer=opt,
                data_loader=loader,
                target_epsilon=epsilon,
                target_delta=delta,
                epochs=epochs,
                max_grad_norm=clip,
                poisson_sampling=True,
                noise_generator=noise_gen,
            )
    except (NotImplementedError, ValueError, RuntimeError) as err:
        raise PrivacyUnsupportedError(
            f"Opacus cannot make this model private: {_one_line(str(err))}"
        ) from err
    if ema is not None and not 0 <= ema < 1:
        raise InputError(f"ema must be in [0, 1) or None; got {ema!r}")
    averaged = [p.detach().clone() for p in params] if ema is not None else None
    history: list[dict[str, float]] = []
    steps = 0
    start = time.perf_counter()
    for epoch in range(epochs):
        losses, correct, seen = [], 0, 0
        for xb, yb in dp_loader:
            if len(xb) == 0:  # Poisson sampling can draw an empty batch; skipping it releases nothing
                continue
            dp_opt.zero_grad()
            logits = private(xb)
            loss = torch.nn.functional.cross_entropy(logits, yb)
            with warnings.catch_warnings():
                # the first layer's input needs no gradient; Opacus's hooks still see the output's
                warnings.filterwarnings("ignore", message="Full backward hook is firing")
                loss.backward()  # type: ignore[no-untyped-call]  # torch stub gap
            dp_opt.step()
            steps += 1
            if averaged is not None and ema is not None:
                decay = min(ema, (1 + steps) / (10 + steps))  # short runs: do not keep the initial weights
                with torch.no_grad():
                    for avg, p in zip(averaged, params, strict=True):
                        avg.mul_(decay).add_(p.detach(), alpha=1 - decay)
            losses.append(float(loss.detach()))
            correct += int((logits.detach().argmax(dim=1) == yb).sum())
            seen += len(yb)
        history.append(
            {
                "epoch": epoch + 1,
                "loss": float(np.mean(losses)) if losses else float("nan"),
                "accuracy": correct / seen if seen else float("nan"),
            }
        )
        if progress is not None:
            progress(f"epoch {epoch + 1}", epoch + 1, epochs)
    spent = float(engine.get_epsilon(delta))
    if averaged is not None:
        with torch.no_grad():
            for avg, p in zip(averaged, params, strict=True):
                p.copy_(avg)
        notes.append(f"released the moving average of the weights (decay {ema:g}), not the last step")
    private.remove_hooks()
    trained = private.to_standard_module()  # no hooks or per-sample attributes left on the weights
    trained.eval()
    if isinstance(trained, _exported_wrapper_type()):
        notes.append("the exported program keeps the mode it was exported in (dropout stays as exported)")
    if rescale is not None and input_range is not None:
        trained = torch.nn.Sequential(rescale, trained).eval()
        lo, hi = input_range
        notes.append(
            f"inputs mapped from the public range [{lo:g}, {hi:g}] to [-1, 1] by a fixed first layer"
        )
    return DpTrainingResult(
        module=trained,
        target_epsilon=float(epsilon),
        epsilon=spent,
        delta=float(delta),
        accountant=accountant,
        noise_multiplier=float(dp_opt.noise_multiplier),
        clip=float(clip),
        sample_rate=float(dp_loader.sample_rate),
        expected_batch_size=expected,
        epochs=epochs,
        steps=steps,
        seconds=time.perf_counter() - start,
        notes=tuple(notes),
        initialisation=(
            "given weights" if fine_tune else "public pre-training" if pretraining is not None else "random"
        ),
        history=history,
        public_pretraining=pretraining,
        private_layers=tuple(private_layers),
    )


def _check_public(public: PublicData, private: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """The public rows as arrays, checked: same shape of row, labels in range, no row of the private set.

    Raises:
        InputError: a shape or label mismatch, too few rows, or rows shared with the private data.
    """
    px = np.asarray(public.x, dtype=np.float32)
    if px.ndim < 2 or tuple(px.shape[1:]) != tuple(private.shape[1:]):
        raise InputError(
            f"public data rows have shape {tuple(px.shape[1:])}, the training rows "
            f"{tuple(private.shape[1:])}; give public rows in the same features and scale"
        )
    px = check_inputs(px, tuple(px.shape[1:]), what="public data")
    py = check_labels(public.y, len(px), n_classes)
    if len(px) < 2:
        raise InputError("public pre-training needs at least 2 public rows")
    if public.epochs < 1 or not public.lr > 0:
        raise InputError("public pre-training needs epochs >= 1 and lr > 0")
    seen = {row.tobytes() for row in np.ascontiguousarray(private).reshape(len(private), -1)}
    shared = sum(row.tobytes() in seen for row in np.ascontiguousarray(px).reshape(len(px), -1))
    if shared:
        raise InputError(
            f"{shared} public row(s) also occur in the private training data: pre-training on them is "
            "not covered by the accountant; remove them from the public data"
        )
    return px, py


def _pretrain(
    module: Any, pub: tuple[np.ndarray, np.ndarray], public: PublicData, seed: int
) -> dict[str, Any]:
    """Non-private training on the public rows (Adam, batch 64), in place; what was done."""
    import torch

    gen = torch.Generator().manual_seed(seed + 2)
    xt, yt = torch.from_numpy(pub[0]), torch.from_numpy(pub[1])
    opt = torch.optim.Adam([p for p in module.parameters() if p.requires_grad], lr=public.lr)
    module.train()
    for _ in range(public.epochs):
        order = torch.randperm(len(xt), generator=gen)
        for b in range(0, len(xt), 64):
            idx = order[b : b + 64]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(module(xt[idx]), yt[idx]).backward()  # type: ignore[no-untyped-call]
            opt.step()
    with torch.no_grad():
        acc = float((module(xt).argmax(1) == yt).float().mean())
    return {
        "source": public.source,
        "rows": len(xt),
        "epochs": public.epochs,
        "lr": public.lr,
        "train_accuracy": round(acc, 4),
    }


def _freeze(module: Any, n: int) -> list[str]:
    """Freeze all but the last ``n`` layers that own parameters; the names of those left trainable.

    Raises:
        InputError: ``n`` < 1 or more layers than the model has.
    """
    owners = [name for name, m in module.named_modules() if any(True for _ in m.parameters(recurse=False))]
    if not 1 <= n <= len(owners):
        raise InputError(f"dp_layers must be between 1 and {len(owners)} (layers with parameters); got {n}")
    keep = owners[-n:]
    for name, m in module.named_modules():
        for p in m.parameters(recurse=False):
            p.requires_grad_(name in keep)
    return keep


def _reinitialise(module: Any) -> None:
    """Draw every trainable parameter afresh with its layer's own initialiser (seeded by the caller).

    Raises:
        PrivacyUnsupportedError: a trainable parameter whose layer has no ``reset_parameters`` (it
            would keep weights trained outside the accountant); fine-tuning is the way for those.
    """
    import torch

    covered: set[int] = set()
    for layer in module.modules():
        reset = getattr(layer, "reset_parameters", None)
        if callable(reset):
            with torch.no_grad():
                reset()
            covered.update(id(p) for p in layer.parameters(recurse=False))
    left = [name for name, p in module.named_parameters() if p.requires_grad and id(p) not in covered]
    if left:
        raise PrivacyUnsupportedError(
            f"cannot re-draw the weights of {', '.join(left[:3])}{' ...' if len(left) > 3 else ''} "
            "(no reset_parameters); DP training starts from fresh weights so that the training behind "
            "the given ones is not released. If those weights are public, pass --fine-tune"
        )


def _rescaler(bounds: tuple[float, float], arr: np.ndarray, what: str = "training data") -> Any:
    """A fixed layer mapping ``[lo, hi]`` to ``[-1, 1]`` (no parameters: nothing for DP-SGD to train).

    Raises:
        InputError: ``lo >= hi``, or training rows outside the bounds (they would not be public bounds).
    """
    import torch

    lo, hi = float(bounds[0]), float(bounds[1])
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise InputError(f"the input range must be two finite numbers lo < hi; got {bounds!r}")
    if len(arr) and (float(arr.min()) < lo or float(arr.max()) > hi):
        raise InputError(
            f"{what} lies outside the input range [{lo:g}, {hi:g}] (found {float(arr.min()):g} to "
            f"{float(arr.max()):g}); give the features' public bounds"
        )

    class InputRescale(torch.nn.Module):
        """Maps the public input range to [-1, 1]."""

        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("lo", torch.tensor(lo, dtype=torch.float32))
            self.register_buffer("scale", torch.tensor(2.0 / (hi - lo), dtype=torch.float32))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = (x - self.get_buffer("lo")) * self.get_buffer("scale") - 1.0
            return out

    return InputRescale()
