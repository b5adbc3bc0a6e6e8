"""Write Keras-style HDF5 model files (``model_config`` attribute + weight groups) with h5py.

Run by ``corpus.py`` inside the benchmark venv, which has h5py: ``python write_h5.py SPECS.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import h5py
import numpy as np


def main() -> None:
    specs = json.loads(Path(sys.argv[1]).read_text())
    for i, spec in enumerate(specs):
        path = Path(spec["path"])
        path.parent.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(i)
        userblock = int(spec.get("userblock", 0))
        text = spec.get("config_text") or json.dumps(spec["config"])
        with h5py.File(path, "w", userblock_size=userblock) as f:
            f.attrs["keras_version"] = "2.15.0"
            f.attrs["backend"] = "tensorflow"
            # Keras 2 stored bytes (a fixed-length string attribute), Keras 3 a str (variable length).
            f.attrs["model_config"] = text.encode() if spec.get("as_bytes") else text
            weights = f.create_group("model_weights")
            for j in range(3):
                g = weights.create_group(f"dense_{j}")
                g.attrs["weight_names"] = [f"dense_{j}/kernel:0".encode(), f"dense_{j}/bias:0".encode()]
                g.create_dataset(f"dense_{j}/kernel:0", data=rng.normal(size=(16, 16)).astype("float32"))
                g.create_dataset(f"dense_{j}/bias:0", data=np.zeros(16, "float32"))
        if userblock:
            with path.open("r+b") as fh:
                fh.write(bytes(range(256)) * (userblock // 256))  # junk where the user block is


if __name__ == "__main__":
    main()
