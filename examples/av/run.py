"""The autonomous-driving case study, end to end: train, attack, gate, harden, promote, serve, detect.

    python examples/av/run.py [FOLDER]          # default: out/av

Trains a small CNN on scikit-learn's 8x8 digits (the stand-in for traffic signs), registers it signed,
runs ``pipeline-blocked.yaml`` (PGD, the sticker attack, randomized smoothing: the gate blocks it),
hardens it with PGD adversarial training, runs ``pipeline.yaml`` (it passes) and promotes it, then
serves it behind ``mlsecops serve`` on a loopback port and sends a benign fleet client and a black-box
Square attacker through the guard: the query-attack detector flags the attacker, not the fleet.
Everything is recorded in the workspace ``FOLDER/.mlsecops``; reports and numbers in ``FOLDER/reports``.
Needs ``pip install 'mlsecops[torch,serve]'``. ``mlsecops demo --case av`` does the same.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mlsecops.pipeline.case_av import run_av_case

if __name__ == "__main__":
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("out/av")
    sys.exit(run_av_case(folder, home=folder / ".mlsecops", actor="example", say=print))
