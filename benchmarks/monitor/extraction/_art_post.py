"""Run inside the ART environment: apply ART's output postprocessors to the victim's probabilities.

    benchmarks/.venvs/extraction-art/bin/python _art_post.py IN.npz OUT.npz

IN.npz holds ``proba`` (n, classes); OUT.npz gets one array per postprocessor, same shape.
"""

from __future__ import annotations

import sys

import numpy as np
from art.defences.postprocessor import ClassLabels, GaussianNoise, HighConfidence, ReverseSigmoid, Rounded

POSTPROCESSORS = {
    "rounded_1": lambda: Rounded(decimals=1),
    "high_confidence_0.5": lambda: HighConfidence(cutoff=0.5),
    "class_labels": lambda: ClassLabels(),
    "gaussian_noise_0.1": lambda: GaussianNoise(scale=0.1),
    "reverse_sigmoid": lambda: ReverseSigmoid(beta=1.0, gamma=0.1),
}


def main() -> None:
    proba = np.load(sys.argv[1])["proba"]
    out = {name: np.asarray(make()(proba), dtype=np.float64) for name, make in POSTPROCESSORS.items()}
    np.savez(sys.argv[2], **out)


if __name__ == "__main__":
    main()
