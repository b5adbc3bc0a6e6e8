"""Per-example losses that attacks maximise: cross-entropy, margin (C&W) and DLR (torch); margin in numpy."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = ["attack_loss", "margin", "margin_np"]


def margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Best other logit minus the true one: positive exactly when the example is misclassified."""
    import torch

    true = logits.gather(1, y[:, None]).squeeze(1)
    other = logits.masked_fill(torch.nn.functional.one_hot(y, logits.shape[1]).bool(), float("-inf"))
    return other.max(dim=1).values - true


def margin_np(scores: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``margin`` in numpy (black-box attacks): best other score minus the true one, per example."""
    rows = np.arange(len(y))
    true = scores[rows, y]
    other = scores.copy()
    other[rows, y] = -np.inf
    out: np.ndarray = other.max(axis=1) - true
    return out


def attack_loss(name: str, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-example loss to maximise.

    ``ce``: cross-entropy. ``margin``: the C&W margin. ``dlr``: the difference-of-logits ratio of Croce
    and Hein (2020), the margin divided by the spread of the top logits, so it does not depend on the
    logits' scale; with fewer than three classes it falls back to the margin.
    """
    import torch

    if name == "ce":
        return torch.nn.functional.cross_entropy(logits, y, reduction="none")
    if name == "margin":
        return margin(logits, y)
    if name == "dlr":
        if logits.shape[1] < 3:
            return margin(logits, y)
        top = logits.sort(dim=1, descending=True).values
        return margin(logits, y) / (top[:, 0] - top[:, 2] + 1e-12)
    raise ValueError(f"unknown loss {name!r}; use 'ce', 'margin' or 'dlr'")
