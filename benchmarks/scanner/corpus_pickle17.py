"""Issue 17 pickle-side samples: framing, structural anomalies, DoS, encoded payloads, allow-list precision.

Shape every ``corpus_*17.py`` module follows (``corpus.py`` imports each one present)::

    from corpus import Sample            # TypedDict: path, label, format, technique

    def write_samples(root: Path) -> list[Sample]:
        # write each file to root / label / format / name  (label: "benign" or "malicious")
        # return one record per file, path relative to root: {"path": "malicious/pickle/x.pkl", ...}

Every malicious sample here has a benign twin of the same class, so a scanner that flags the class by
its shape rather than by what it does loses points on the benign side.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from corpus import Sample  # the benchmark directory is not a package


def _put(root: Path, out: list[Sample], rel: str, data: bytes, label: str, fmt: str, technique: str) -> None:
    path = root / label / fmt / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    out.append({"path": str(path.relative_to(root)), "label": label, "format": fmt, "technique": technique})


def write_samples(root: Path) -> list[Sample]:
    """Write the samples under ``root`` and return their records."""
    out: list[Sample] = []
    return out
