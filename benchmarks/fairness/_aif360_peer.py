"""Runs in the AIF360 venv: AIF360's ClassificationMetric on the predictions run.py hands over.

Input: an .npz with ``y``, ``pred`` and ``sex`` (1 = Male, the privileged group). Output (stdout): one
JSON object with the metric values and the seconds they took (dataset construction included).
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import pandas as pd
from aif360.datasets import BinaryLabelDataset
from aif360.metrics import ClassificationMetric

data = np.load(sys.argv[1])
t0 = time.perf_counter()
frame = pd.DataFrame({"sex": data["sex"].astype(float), "income": data["y"].astype(float)})
truth = BinaryLabelDataset(df=frame, label_names=["income"], protected_attribute_names=["sex"])
predicted = truth.copy()
predicted.labels = data["pred"].astype(float).reshape(-1, 1)
m = ClassificationMetric(
    truth, predicted, unprivileged_groups=[{"sex": 0.0}], privileged_groups=[{"sex": 1.0}]
)
out = {
    "statistical_parity_difference": m.statistical_parity_difference(),
    "disparate_impact": m.disparate_impact(),
    "equal_opportunity_difference": m.equal_opportunity_difference(),
    "false_positive_rate_difference": m.false_positive_rate_difference(),
    "accuracy": m.accuracy(),
    "selection_rate_unprivileged": m.selection_rate(privileged=False),
    "selection_rate_privileged": m.selection_rate(privileged=True),
}
out["seconds"] = time.perf_counter() - t0
print(json.dumps({k: float(v) for k, v in out.items()}))
