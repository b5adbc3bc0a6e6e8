"""Data, models and wrappers shared by the robustness benchmark (benchmark environment only)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin


def digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's digits scaled to [0, 1], stratified 80/20 split (seed 0): 1437 train, 360 test rows."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    xtr, xte, ytr, yte = train_test_split(x, d.target, test_size=0.2, random_state=0, stratify=d.target)
    return xtr, ytr.astype(np.int64), xte, yte.astype(np.int64)


def make_cnn() -> torch.nn.Module:
    """The small digits CNN (1x8x8 input): two 3x3 convolutions, max-pool, two dense layers."""
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(32, 64, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(64 * 16, 128),
        torch.nn.ReLU(),
        torch.nn.Linear(128, 10),
    )


def make_mlp() -> torch.nn.Module:
    """The digits MLP (64 inputs, two hidden layers of 256)."""
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(64, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 10),
    )


def _fit(
    module: torch.nn.Module, x: np.ndarray, y: np.ndarray, *, epochs: int, sigma: float = 0.0
) -> torch.nn.Module:
    torch.manual_seed(0)
    opt = torch.optim.Adam(module.parameters(), lr=1e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    gen = torch.Generator().manual_seed(0)
    module.train()
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=gen)
        for b in range(0, len(xt), 64):
            idx = perm[b : b + 64]
            xb = xt[idx]
            if sigma > 0:
                xb = xb + sigma * torch.randn(xb.shape, generator=gen)
            opt.zero_grad()
            torch.nn.functional.cross_entropy(module(xb), yt[idx]).backward()
            opt.step()
    return module.eval()


def train_clean(module: torch.nn.Module, x: np.ndarray, y: np.ndarray) -> torch.nn.Module:
    """Standard training: Adam 1e-3, batch 64, 30 epochs."""
    return _fit(module, x, y, epochs=30)


def train_noise(module: torch.nn.Module, x: np.ndarray, y: np.ndarray, *, sigma: float) -> torch.nn.Module:
    """Training with Gaussian noise augmentation (the base classifier for randomized smoothing)."""
    return _fit(module, x, y, epochs=40, sigma=sigma)


def art_classifier(module: torch.nn.Module, shape: tuple[int, ...], lr: float | None = None) -> Any:
    """ART's PyTorchClassifier around ``module`` (with an optimizer when it will be trained)."""
    from art.estimators.classification import PyTorchClassifier

    return PyTorchClassifier(
        model=module,
        loss=torch.nn.CrossEntropyLoss(),
        input_shape=shape,
        nb_classes=10,
        optimizer=torch.optim.Adam(module.parameters(), lr=lr) if lr is not None else None,
        clip_values=(0.0, 1.0),
        device_type="cpu",
    )


class CountingModel(ClassifierMixin, BaseEstimator):
    """A scikit-learn classifier wrapper that counts queried rows and attributes them to attacked examples.

    Every row a peer attack sends is attributed to the nearest original (L-inf distance); for attacks that
    stay inside the eps ball of their original (Square) this is exact, as long as originals are more than
    2 eps apart, which holds on digits.
    """

    def __init__(self, model: Any = None) -> None:
        self.model = model

    @property
    def classes_(self) -> np.ndarray:
        return self.model.classes_

    @property
    def n_features_in_(self) -> int:
        return int(self.model.n_features_in_)

    def reset(self, originals: np.ndarray) -> None:
        self._orig = originals.reshape(len(originals), -1)
        self._counts = np.zeros(len(originals), dtype=np.int64)
        self.total = 0

    def per_example(self) -> np.ndarray:
        return self._counts.copy()

    def fit(self, x: np.ndarray, y: np.ndarray) -> CountingModel:
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        rows = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
        self.total += len(rows)
        if len(self._orig) == 1:
            self._counts[0] += len(rows)
        else:
            for start in range(0, len(rows), 512):
                chunk = rows[start : start + 512]
                d = np.abs(chunk[:, None, :] - self._orig[None, :, :]).max(axis=2)
                np.add.at(self._counts, d.argmin(axis=1), 1)
        return self.model.predict_proba(rows)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.predict_proba(x).argmax(axis=1)
