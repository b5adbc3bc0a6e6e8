"""The demo project: the main job end to end on bundled data.

``build_demo(folder)`` writes everything the example pipeline needs into ``folder`` and returns the
pipeline's path:

- ``assets/models/digits-cnn.pt2``: a small CNN (a ``torch.export`` program) trained on scikit-learn's bundled digits
  (8x8 images scaled to [0, 1]), the model that is scanned, attacked, certified, signed and registered;
- ``assets/models/digits-logreg.pkl``: a scikit-learn logistic regression, pickled (scanned as safe);
- ``assets/data/train.csv``: the trusted training data (64 pixel columns and ``label``);
- ``assets/data/incoming.csv``: a new batch to validate against the baseline, with 3% label flips;
- ``assets/data/test.npz``: held-out ``X`` (N, 1, 8, 8) and ``y`` for the robustness stages;
- ``assets/data/shifted.csv``: held-out rows whose centre pixels are brighter (drift to catch);
- ``assets/queries/traffic.jsonl``: a guard decision log in the replay format: two benign clients (one
  retries its requests) and a thief perturbing a few seed images (PRADA's T-RND) to copy the model;
- ``pipeline.yaml``: the commented ``demo_pipeline.yaml`` shipped in this package (the repository's
  ``examples/pipeline.yaml`` is the same file; a test keeps them identical).

Everything is generated from data that ships inside scikit-learn; nothing is downloaded.
"""

from __future__ import annotations

import csv
import pickle
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from mlsecops.core.errors import InputError
from mlsecops.pipeline._demo_train import fit_classifier

__all__ = ["DEMO_PIPELINE", "build_demo"]

DEMO_PIPELINE = "demo_pipeline.yaml"
_SEED = 0


def _digits() -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    from sklearn.datasets import load_digits

    data = load_digits()
    return (data.data / 16.0).astype(np.float32), data.target.astype(np.int64)


def _write_csv(path: Path, x: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([f"px{i}" for i in range(x.shape[1])] + ["label"])
        for row, label in zip(x, y, strict=True):
            writer.writerow([f"{v:.4f}" for v in row] + [int(label)])


def _train_cnn(x: np.ndarray[Any, Any], y: np.ndarray[Any, Any], path: Path) -> None:
    try:
        import torch
        from torch import nn
    except ImportError as err:
        raise InputError("the demo trains a small PyTorch model: pip install 'mlsecops[torch]'") from err
    from mlsecops.models.pytorch import TorchModel

    torch.manual_seed(_SEED)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    )
    fit_classifier(model, x.reshape(-1, 1, 8, 8), y, epochs=25, batch_size=64, seed=_SEED)
    # A torch.export program (.pt2), the recommended format: TorchScript is deprecated in torch 2.13.
    TorchModel(model, input_shape=(1, 8, 8), n_classes=10, source=path.name).save(path)


def _brighter(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """The rows with the 4x4 centre of each 8x8 image 0.15 brighter (clipped to [0, 1])."""
    out = x.copy().reshape(-1, 8, 8)
    out[:, 2:6, 2:6] = np.clip(out[:, 2:6, 2:6] + 0.15, 0.0, 1.0)
    return out.reshape(len(x), -1)


def _write_traffic(path: Path, pool: np.ndarray[Any, Any], rng: np.random.Generator) -> None:
    """A decision log of three principals, one request per line, interleaved in time order."""
    import json

    start, requests = 1_764_000_000.0, []
    for i in range(300):  # app-1: natural held-out images, one per request
        requests.append((start + 2.0 * i + rng.random(), "app-1", pool[rng.integers(len(pool))]))
    for i in range(150):  # app-2: natural images, each sent twice (a client that retries)
        row = pool[rng.integers(len(pool))]
        t = start + 4.0 * i + rng.random()
        requests += [(t, "app-2", row), (t + 0.5, "app-2", row)]
    seeds = pool[rng.choice(len(pool), size=5, replace=False)]
    for i in range(300):  # thief: T-RND, random sign steps on a few pixels around five seed images
        row = seeds[i % 5].copy()
        pixels = rng.choice(row.size, size=8, replace=False)
        row[pixels] = np.clip(row[pixels] + rng.choice([-0.2, 0.2], size=8), 0.0, 1.0)
        requests.append((start + 1.0 + 2.0 * i + rng.random(), "thief", row))
    requests.sort(key=lambda r: r[0])
    with path.open("w", encoding="utf-8") as fh:
        for t, who, row in requests:
            line = {"time": round(t, 3), "principal": who, "inputs": [np.round(row, 4).tolist()]}
            fh.write(json.dumps(line) + "\n")


def build_demo(folder: Path) -> Path:
    """Write the demo project into ``folder`` and return the path of its pipeline file.

    Raises:
        InputError: ``folder`` cannot be written, or PyTorch is not installed.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    try:
        models, data = folder / "assets" / "models", folder / "assets" / "data"
        models.mkdir(parents=True, exist_ok=True)
        data.mkdir(parents=True, exist_ok=True)
        x, y = _digits()
        x_train, x_test, y_train, y_test = train_test_split(
            x, y, test_size=0.25, random_state=_SEED, stratify=y
        )
        x_trusted, x_new, y_trusted, y_new = train_test_split(
            x_train, y_train, test_size=0.3, random_state=_SEED, stratify=y_train
        )
        _write_csv(data / "train.csv", x_trusted, y_trusted)
        rng = np.random.default_rng(_SEED)
        flipped = y_new.copy()
        idx = rng.choice(len(flipped), size=max(1, len(flipped) * 3 // 100), replace=False)
        flipped[idx] = (flipped[idx] + rng.integers(1, 10, size=len(idx))) % 10
        _write_csv(data / "incoming.csv", x_new, flipped)
        np.savez(data / "test.npz", X=x_test[:300].reshape(-1, 1, 8, 8), y=y_test[:300])
        _write_csv(data / "shifted.csv", _brighter(x_test[300:]), y_test[300:])
        queries = folder / "assets" / "queries"
        queries.mkdir(parents=True, exist_ok=True)
        _write_traffic(queries / "traffic.jsonl", x_test[300:], rng)
        _train_cnn(x_train, y_train, models / "digits-cnn.pt2")
        logreg = LogisticRegression(max_iter=2000).fit(x_trusted, y_trusted)
        with (models / "digits-logreg.pkl").open("wb") as fh:
            pickle.dump(logreg, fh, protocol=4)
        target = folder / "pipeline.yaml"
        with resources.as_file(resources.files("mlsecops.pipeline") / DEMO_PIPELINE) as src:
            shutil.copyfile(src, target)
    except OSError as err:
        raise InputError(f"cannot build the demo in {folder}: {err.strerror or err}") from err
    return target
