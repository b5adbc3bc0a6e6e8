"""The two ``ModelAdapter`` properties of an adapter that fixes them when it is built."""

from __future__ import annotations

__all__ = ["FixedShape"]


class FixedShape:
    """``n_classes`` and ``input_shape`` read from ``_n_classes`` and ``_input_shape``, which the
    adapter's ``__init__`` sets.
    """

    _n_classes: int
    _input_shape: tuple[int, ...]

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return self._n_classes

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input, without the batch axis."""
        return self._input_shape
