"""Small trained models on scikit-learn's bundled digits (8x8, scaled to [0, 1]) for the attack tests.

Trained once per session, full batch, in about a second: an MLP on flat rows, a tiny CNN on (1, 8, 8)
images, and a logistic regression as the black-box model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from sklearn.datasets import load_digits
from tests._deps import require

torch = require("torch", "torch")
torch.set_num_threads(2)


@dataclass
class Digits:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


@pytest.fixture(scope="session")
def digits() -> Digits:
    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x))
    x, y = x[order], d.target[order]
    return Digits(x[:1500], y[:1500], x[1500:1620], y[1500:1620])


def train(net: torch.nn.Module, x: np.ndarray, y: np.ndarray, *, steps: int = 300) -> torch.nn.Module:
    torch.manual_seed(0)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    return net.eval()


@pytest.fixture(scope="session")
def mlp(digits: Digits):
    from mlsecops.models import TorchModel

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    return TorchModel(train(net, digits.x_train, digits.y_train), input_shape=(64,))


@pytest.fixture(scope="session")
def cnn(digits: Digits):
    from mlsecops.models import TorchModel

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(8 * 64, 10)
    )
    x = digits.x_train.reshape(-1, 1, 8, 8)
    return TorchModel(train(net, x, digits.y_train, steps=150), input_shape=(1, 8, 8))


@pytest.fixture(scope="session")
def logreg(digits: Digits):
    from sklearn.linear_model import LogisticRegression

    from mlsecops.models import SklearnModel

    return SklearnModel(LogisticRegression(max_iter=300).fit(digits.x_train, digits.y_train))
