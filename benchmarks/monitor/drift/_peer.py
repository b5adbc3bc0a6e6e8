"""One drift tool over the benchmark's windows, in its own process (and its own venv for the peers).

    python _peer.py TOOL WORKDIR MANIFEST.json OUT.json

TOOL is ``mlsecops`` (run with the project's venv), ``evidently``, ``alibi`` or ``nannyml`` (run with
``benchmarks/.venv-drift-<tool>``). Every tool gets the reference CSV once (its set-up is timed apart)
and then each window CSV: the per-window CPU time covers reading the window and testing it. Each tool
runs with its default settings; only what a tool needs to know about the data (which columns are
categorical, the window size as nannyml's chunk size) is passed.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

CATEGORICAL = [f"cat{c}" for c in range(5)]


def _rss_mb() -> float:
    """Peak resident memory of this process (VmHWM: unlike ru_maxrss, not inherited across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _mlsecops(ref: Path) -> Any:
    from mlsecops.data import iter_chunks, profile_chunks
    from mlsecops.monitor.drift import DriftBaseline, evaluate, window_stats

    base = DriftBaseline.from_profile(profile_chunks(iter_chunks(ref)))

    def run(path: Path) -> bool:
        return evaluate(window_stats(base, iter_chunks(path), where=str(path)), window=str(path)).drift

    return run


def _evidently(ref: Path) -> Any:
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    ref_df = pd.read_csv(ref)
    numeric = [c for c in ref_df.columns if c not in CATEGORICAL]
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=CATEGORICAL)
    ref_ds = Dataset.from_pandas(ref_df, data_definition=definition)

    def run(path: Path) -> bool:
        cur = Dataset.from_pandas(pd.read_csv(path), data_definition=definition)
        snapshot = Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref_ds)
        for metric in snapshot.dict()["metrics"]:
            if str(metric.get("metric_name", "")).startswith("DriftedColumnsCount"):
                # the preset's dataset-drift rule: drifted share >= its default drift_share (0.5)
                return bool(metric["value"]["share"] >= 0.5)
        raise RuntimeError("evidently: no DriftedColumnsCount metric in the report")

    return run


def _alibi(ref: Path) -> Any:
    import numpy as np
    import pandas as pd
    from alibi_detect.cd import TabularDrift

    ref_df = pd.read_csv(ref)
    cols = list(ref_df.columns)
    levels = {c: sorted(ref_df[c].unique()) for c in CATEGORICAL}

    def encode(df: Any) -> Any:
        out = df.copy()
        for c in CATEGORICAL:  # the scenarios add no new categories; an unseen one would count as code 0
            out[c] = out[c].map({v: i for i, v in enumerate(levels[c])}).fillna(0)
        return out[cols].to_numpy(dtype=np.float32)

    cats = {cols.index(c): None for c in CATEGORICAL}  # None: alibi takes the categories from the reference
    detector = TabularDrift(encode(ref_df), p_val=0.05, categories_per_feature=cats)

    def run(path: Path) -> bool:
        return bool(detector.predict(encode(pd.read_csv(path)))["data"]["is_drift"])

    return run


def _nannyml(ref: Path) -> Any:
    import nannyml as nml
    import pandas as pd

    ref_df = pd.read_csv(ref)
    cols = list(ref_df.columns)
    calc = nml.UnivariateDriftCalculator(column_names=cols, chunk_size=5_000)
    calc.fit(ref_df)

    def run(path: Path) -> bool:
        result = calc.calculate(pd.read_csv(path)).filter(period="analysis")
        frame = result.to_df()
        alerts = [c for c in frame.columns if c[-1] == "alert"]
        return bool(frame[alerts].to_numpy().any())

    return run


TOOLS = {"mlsecops": _mlsecops, "evidently": _evidently, "alibi": _alibi, "nannyml": _nannyml}


def main() -> None:
    tool, workdir, manifest, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
    windows: dict[str, list[str]] = json.loads(manifest.read_text())
    rss0 = _rss_mb()
    t0 = time.process_time()
    run = TOOLS[tool](workdir / "reference.csv")
    setup_cpu = time.process_time() - t0
    rss_setup = _rss_mb()
    results: dict[str, Any] = {}
    for scenario, files in windows.items():
        flags, cpu = [], []
        for name in files:
            t1 = time.process_time()
            flags.append(run(workdir / name))
            cpu.append(time.process_time() - t1)
        results[scenario] = {"flagged": sum(flags), "windows": len(flags), "cpu_s": cpu}
    out.write_text(
        json.dumps(
            {
                "tool": tool,
                "setup_cpu_s": setup_cpu,
                "rss_start_mb": rss0,
                "rss_after_setup_mb": rss_setup,
                "rss_peak_mb": _rss_mb(),
                "results": results,
            }
        )
    )


if __name__ == "__main__":
    main()
