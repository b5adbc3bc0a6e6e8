"""Fuzz the scanner's hdf5 parsers (see ``_harness``)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.fuzz._harness import main

if __name__ == "__main__":
    main("hdf5")
