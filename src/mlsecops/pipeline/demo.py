"""The demo project: the main job end to end on bundled data.

``build_demo(folder)`` writes everything the example pipeline needs into ``folder`` (models trained on
scikit-learn's bundled data sets, data files, the pipeline file) and returns the pipeline's path. The
pipeline is the commented ``demo_pipeline.yaml`` shipped in this package; ``examples/pipeline.yaml`` in
the repository is the same file (a test keeps them identical).
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from mlsecops.core.errors import InputError

__all__ = ["DEMO_PIPELINE", "build_demo"]

DEMO_PIPELINE = "demo_pipeline.yaml"


def build_demo(folder: Path) -> Path:
    """Write the demo project into ``folder`` and return the path of its pipeline file.

    Raises:
        InputError: ``folder`` cannot be written.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        assets = folder / "assets"
        assets.mkdir(exist_ok=True)
        target = folder / "pipeline.yaml"
        with resources.as_file(resources.files("mlsecops.pipeline") / DEMO_PIPELINE) as src:
            shutil.copyfile(src, target)
    except OSError as err:
        raise InputError(f"cannot build the demo in {folder}: {err.strerror or err}") from err
    return target
