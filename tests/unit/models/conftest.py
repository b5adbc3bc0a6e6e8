"""Small models for the adapter tests: a linear PyTorch classifier and a fitted logistic regression."""

from __future__ import annotations

import numpy as np
import pytest
from tests._deps import require

torch = require("torch", "torch")
torch.set_num_threads(2)


@pytest.fixture
def xy() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.random((30, 4)).astype(np.float32)
    y = (x[:, 0] * 3).astype(int).clip(0, 2)
    return x, y
