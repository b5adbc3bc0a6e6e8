"""Where an adversarial example may go: the eps ball around the original and the feature domain.

``FeatureConstraints`` holds per-feature lower and upper bounds, integer features (which only move in
whole steps) and immutable features (which never move). ``project`` maps any candidate back into
``ball(x0, eps) ∩ bounds``, with integer features moved toward the original by whole steps and
immutable ones reset. Every attack calls it after every step, so no attack can leave the set. The
projection exists twice, with the same semantics: in torch for white-box attacks (``torch_projector``)
and in numpy for black-box ones (``numpy_projector``), which therefore need no torch.

Integer features are truncated toward the original (``x0 + trunc(x - x0)``): that never increases
the perturbation, so the eps ball and (integer) bounds still hold after rounding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from mlsecops.core.checks import Target
from mlsecops.core.errors import InputError

if TYPE_CHECKING:
    import torch

__all__ = ["FeatureConstraints", "Norm", "NumpyProjector", "parse_norm"]

Norm = Literal["linf", "l2"]


def parse_norm(value: str) -> Norm:
    """Turn ``linf``/``inf``/``Linf`` or ``l2``/``2`` into a norm name.

    Raises:
        InputError: anything else.
    """
    v = str(value).strip().lower().replace("-", "")
    if v in ("linf", "inf", "l_inf", "np.inf"):
        return "linf"
    if v in ("l2", "2"):
        return "l2"
    raise InputError(f"norm must be 'linf' or 'l2'; got {value!r}")


@dataclass(frozen=True)
class FeatureConstraints:
    """Feature domain for adversarial inputs, per feature of one input (flattened order).

    Attributes:
        lower: lower bound, a scalar or one value per feature.
        upper: upper bound, a scalar or one value per feature.
        integer: indices of features that take whole values only.
        immutable: indices of features an attacker cannot change.
    """

    lower: float | tuple[float, ...] = 0.0
    upper: float | tuple[float, ...] = 1.0
    integer: tuple[int, ...] = ()
    immutable: tuple[int, ...] = ()

    @classmethod
    def from_data(cls, x: np.ndarray, **overrides: Any) -> FeatureConstraints:
        """Bounds from the data's global range, unless given in ``overrides``."""
        kw: dict[str, Any] = {
            "lower": float(np.min(x)) if x.size else 0.0,
            "upper": float(np.max(x)) if x.size else 1.0,
        }
        kw.update({k: v for k, v in overrides.items() if v is not None})
        for key in ("lower", "upper"):
            if isinstance(kw[key], Sequence):
                kw[key] = tuple(float(v) for v in kw[key])
            else:
                kw[key] = float(kw[key])
        for key in ("integer", "immutable"):
            if key in kw:
                kw[key] = tuple(int(v) for v in kw[key])
        return cls(**kw)

    @classmethod
    def from_target(cls, target: Target, x: np.ndarray) -> FeatureConstraints:
        """Read ``lower``/``upper`` (a number, or one per feature) and ``integer_features``/
        ``immutable_features`` (feature indices) from the target's options.

        Raises:
            ConfigError: a malformed option.
        """
        bounds: dict[str, float | tuple[float, ...] | None] = {}
        for key in ("lower", "upper"):
            values = target.opt_float_list(key)
            bounds[key] = None if not values else values[0] if len(values) == 1 else tuple(values)
        return cls.from_data(
            x,
            lower=bounds["lower"],
            upper=bounds["upper"],
            integer=target.opt_int_list("integer_features", lo=0) or None,
            immutable=target.opt_int_list("immutable_features", lo=0) or None,
        )

    def arrays(self, n_features: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Bounds and masks as flat arrays of length ``n_features``.

        Raises:
            InputError: bounds of the wrong length, lower above upper, or feature indices out of range.
        """
        lo = _per_feature(self.lower, n_features, "lower")
        hi = _per_feature(self.upper, n_features, "upper")
        if np.any(lo > hi):
            raise InputError("every lower bound must be at most its upper bound")
        integer = np.zeros(n_features, dtype=bool)
        immutable = np.zeros(n_features, dtype=bool)
        for name, idx, mask in (("integer", self.integer, integer), ("immutable", self.immutable, immutable)):
            bad = [i for i in idx if not 0 <= i < n_features]
            if bad:
                raise InputError(f"{name} feature indices {bad} are outside 0..{n_features - 1}")
            mask[list(idx)] = True
        return lo, hi, integer, immutable

    def check_inside(self, x: np.ndarray) -> None:
        """Raise ``InputError`` when the clean inputs already break the bounds or integrality."""
        flat = x.reshape(len(x), -1)
        lo, hi, integer, _ = self.arrays(flat.shape[1])
        if np.any(flat < lo - 1e-6) or np.any(flat > hi + 1e-6):
            raise InputError(
                "the data lies outside the feature bounds; widen 'lower'/'upper' or rescale the data "
                f"(data range {flat.min():.4g}..{flat.max():.4g})"
            )
        if integer.any() and np.any(flat[:, integer] != np.round(flat[:, integer])):
            raise InputError("features declared integer hold non-integer values in the data")

    def torch_projector(self, x0: torch.Tensor) -> _Projector:
        """A projector bound to a batch of originals (bounds moved to its device and shape)."""
        return _Projector(self, x0)

    def numpy_projector(self, x0: np.ndarray) -> NumpyProjector:
        """The same projection in numpy, bound to a batch of originals."""
        return NumpyProjector(self, x0)


def _per_feature(value: float | tuple[float, ...], n_features: int, name: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float32)
    if arr.ndim == 0:
        return np.full(n_features, float(arr), dtype=np.float32)
    if arr.shape != (n_features,):
        raise InputError(
            f"per-feature bound {name!r} has {arr.size} values; the inputs have {n_features} features"
        )
    return arr.copy()


class _Projector:
    """Projection onto ``ball(x0, eps) ∩ bounds`` with integer and immutable features, in torch."""

    def __init__(self, constraints: FeatureConstraints, x0: torch.Tensor) -> None:
        import torch

        self.x0 = x0
        self.shape = tuple(x0.shape[1:])
        c = constraints
        plain = not c.integer and not c.immutable
        if plain and isinstance(c.lower, int | float) and isinstance(c.upper, int | float):
            # the common case (one range for every feature): no per-feature tensors, one clamp
            if c.lower > c.upper:
                raise InputError("every lower bound must be at most its upper bound")
            self.bounds: tuple[float, float] | None = (float(c.lower), float(c.upper))
            self._lo: torch.Tensor | None = None
            self._hi: torch.Tensor | None = None
            self.integer: torch.Tensor | None = None
            self.mutable: torch.Tensor | None = None
            return
        lo, hi, integer, immutable = c.arrays(int(x0[0].numel()))
        self._lo = torch.from_numpy(lo).reshape(self.shape).to(x0.device)
        self._hi = torch.from_numpy(hi).reshape(self.shape).to(x0.device)
        same = lo.size > 0 and bool(np.all(lo == lo[0])) and bool(np.all(hi == hi[0]))
        self.bounds = (float(lo[0]), float(hi[0])) if same else None
        self.integer = torch.from_numpy(integer).reshape(self.shape).to(x0.device) if integer.any() else None
        # None when every feature may move: the mask multiply is skipped in the attacks' inner loops
        self.mutable = (
            (~torch.from_numpy(immutable)).reshape(self.shape).to(x0.device).to(x0.dtype)
            if immutable.any()
            else None
        )

    @property
    def plain(self) -> bool:
        """One range for every feature, none integer or immutable: projection is a clamp."""
        return self.bounds is not None and self.integer is None and self.mutable is None

    @property
    def lo(self) -> torch.Tensor:
        """Lower bound of one input (shape of one input)."""
        if self._lo is None:
            self._lo = self._full(0)
        return self._lo

    @property
    def hi(self) -> torch.Tensor:
        """Upper bound of one input (shape of one input)."""
        if self._hi is None:
            self._hi = self._full(1)
        return self._hi

    def _full(self, which: int) -> torch.Tensor:
        import torch

        assert self.bounds is not None  # per-feature tensors exist whenever bounds is None
        return torch.full(self.shape, self.bounds[which], dtype=self.x0.dtype, device=self.x0.device)

    def subset(self, idx: torch.Tensor | slice) -> _Projector:
        """The same projector for a subset of the batch (index tensor, boolean mask or slice)."""
        out = object.__new__(_Projector)
        out.__dict__.update(self.__dict__)
        out.x0 = self.x0[idx]
        return out

    def __call__(
        self, x: torch.Tensor, eps: float, norm: Norm, x0: torch.Tensor | None = None
    ) -> torch.Tensor:
        import torch

        base = self.x0 if x0 is None else x0
        delta = x - base if self.mutable is None else (x - base) * self.mutable
        if norm == "linf":
            delta = delta.clamp(-eps, eps)
        else:
            norms = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
            factor = torch.clamp(eps / norms, max=1.0)
            delta = delta * factor.view(-1, *([1] * (delta.ndim - 1)))
        out = self._bound(base + delta)
        if self.integer is not None:
            out = torch.where(self.integer, base + torch.trunc(out - base), out)
        return out

    def _bound(self, x: torch.Tensor) -> torch.Tensor:
        import torch

        if self.bounds is not None:
            return x.clamp(*self.bounds)
        return torch.maximum(torch.minimum(x, self.hi), self.lo)  # per-feature bounds

    def clip(self, x: torch.Tensor) -> torch.Tensor:
        """Bounds and immutable features only, no eps ball (for decision-based starting points)."""
        import torch

        out = x if self.mutable is None else self.x0 + (x - self.x0) * self.mutable
        out = self._bound(out)
        if self.integer is not None:
            out = torch.where(self.integer, self.x0 + torch.trunc(out - self.x0), out)
        return out


class NumpyProjector:
    """Projection onto ``ball(x0, eps) ∩ bounds`` with integer and immutable features, in numpy.

    The twin of the torch projector (same order of operations, same results up to float rounding).
    """

    def __init__(self, constraints: FeatureConstraints, x0: np.ndarray) -> None:
        self.x0 = x0
        shape = tuple(x0.shape[1:])
        lo, hi, integer, immutable = constraints.arrays(int(np.prod(shape)) if shape else 1)
        self.lo = lo.reshape(shape).astype(x0.dtype)
        """Lower bound of one input (shape of one input)."""
        self.hi = hi.reshape(shape).astype(x0.dtype)
        """Upper bound of one input (shape of one input)."""
        self.integer = integer.reshape(shape) if integer.any() else None
        # None when every feature may move: the mask multiply is skipped in the attacks' inner loops
        self.mutable = (~immutable).reshape(shape).astype(x0.dtype) if immutable.any() else None

    def subset(self, idx: np.ndarray | slice) -> NumpyProjector:
        """The same projector for a subset of the batch (index array, boolean mask or slice)."""
        out = object.__new__(NumpyProjector)
        out.__dict__.update(self.__dict__)
        out.x0 = self.x0[idx]
        return out

    def __call__(self, x: np.ndarray, eps: float, norm: Norm) -> np.ndarray:
        """``x`` moved into the eps ball around the originals, then into the feature domain."""
        base = self.x0
        delta = x - base if self.mutable is None else (x - base) * self.mutable
        if norm == "linf":
            delta = np.clip(delta, -eps, eps)
        else:
            norms = np.maximum(np.linalg.norm(delta.reshape(len(delta), -1), axis=1), 1e-12)
            factor = np.minimum(eps / norms, 1.0).astype(delta.dtype)
            delta = delta * factor.reshape(-1, *([1] * (delta.ndim - 1)))
        return self._finish(np.clip(base + delta, self.lo, self.hi), base)

    def clip(self, x: np.ndarray) -> np.ndarray:
        """Bounds and immutable features only, no eps ball (for decision-based starting points)."""
        out = x if self.mutable is None else self.x0 + (x - self.x0) * self.mutable
        return self._finish(np.clip(out, self.lo, self.hi), self.x0)

    def _finish(self, out: np.ndarray, base: np.ndarray) -> np.ndarray:
        out = out.astype(self.x0.dtype, copy=False)
        if self.integer is not None:
            out = np.where(self.integer, base + np.trunc(out - base), out).astype(self.x0.dtype, copy=False)
        return out
