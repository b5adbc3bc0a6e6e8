"""Build the healthcare case study into this folder (or the folder given): data, model, pipelines.

    python examples/healthcare/prepare.py [FOLDER]

Writes ``assets/data/{train,validation,test}.csv`` from the flchain study that ships in the
scikit-survival wheel (``pip install 'mlsecops[healthcare]'``), with most women's deaths missing from
the training records, ``assets/models/screening.pkl`` trained on them, and the two pipeline files
(the same as the ones beside this script). Then follow README.md. ``mlsecops demo --case healthcare``
does all of it in one go.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mlsecops.pipeline.healthcare import build_healthcare_case

if __name__ == "__main__":
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
    blocked = build_healthcare_case(folder)
    print(
        f"built the healthcare case in {folder}; next: cd {folder} && mlsecops init && mlsecops run {blocked.name}"
    )
