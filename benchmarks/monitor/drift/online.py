"""The drift detector online: detection delay and false alarms over a stream of 100-row requests.

    nice -n 10 .venv/bin/python benchmarks/monitor/drift/online.py [--trials 8]

Per trial: a fresh ``DriftDetector`` (defaults: window 5,000 rows, step 1,000, alpha 0.01) on the
benchmark's 20 numeric columns, 20,000 clean rows (16 verdicts), then rows with +0.05 sd on 3 columns
until the first alert. Prints the false alarms on the clean part and the delay after the onset in rows.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _data import make_frame  # noqa: E402

from mlsecops.data import profile_chunks  # noqa: E402
from mlsecops.monitor.drift import DriftDetector  # noqa: E402
from mlsecops.monitor.interface import Observation  # noqa: E402

NUMERIC = [f"x{j}" for j in range(20)]
ROWS = 20_000
REQUEST = 100


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=8)
    args = ap.parse_args()
    ref = make_frame(50_000, 1)[NUMERIC]
    profile = profile_chunks([{c: ref[c].to_numpy(float) for c in NUMERIC}]).model_dump(mode="json")
    delays: list[int | None] = []
    false_alarms = 0
    for trial in range(args.trials):
        det = DriftDetector(model_name="m", baseline=profile)
        clean = make_frame(ROWS, 500 + trial)[NUMERIC].to_numpy(float)
        drifted = make_frame(ROWS, 600 + trial, "mean_0.05")[NUMERIC].to_numpy(float)
        t = 0.0
        for i in range(0, ROWS, REQUEST):
            obs = Observation(time=t, principal=f"p{i % 7}", model="m", inputs=clean[i : i + REQUEST])
            false_alarms += len(det.observe(obs))
            t += 1
        delay = None
        for i in range(0, ROWS, REQUEST):
            obs = Observation(time=t, principal=f"p{i % 7}", model="m", inputs=drifted[i : i + REQUEST])
            t += 1
            if det.observe(obs):
                delay = i + REQUEST
                break
        delays.append(delay)
    print(
        json.dumps(
            {
                "trials": args.trials,
                "clean_verdicts": args.trials * ((ROWS - 5_000) // 1_000 + 1),
                "false_alarms": false_alarms,
                "delay_rows_after_onset": delays,
            }
        )
    )


if __name__ == "__main__":
    main()
