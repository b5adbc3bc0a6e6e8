"""How the demo cases train their small PyTorch models: the same seeded mini-batch loop for each."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from torch import nn

__all__ = ["fit_classifier"]


def fit_classifier(
    model: nn.Module,
    x: np.ndarray[Any, Any],
    y: np.ndarray[Any, Any],
    *,
    epochs: int,
    batch_size: int,
    seed: int,
    lr: float = 3e-3,
) -> None:
    """Train ``model`` on ``(x, y)`` with Adam on cross-entropy, ``epochs`` passes over mini-batches
    shuffled by a generator seeded with ``seed``; leave it in eval mode.
    """
    import torch
    from torch import nn

    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), batch_size):
            idx = perm[i : i + batch_size]
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(xt[idx]), yt[idx])
            loss.backward()  # type: ignore[no-untyped-call]  # torch leaves Tensor.backward unannotated
            opt.step()
    model.eval()
