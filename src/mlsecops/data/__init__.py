"""Data security: validation against a trusted baseline, poisoning detection, quarantine and manifests.

A short tour::

    from pathlib import Path
    from mlsecops.data import iter_chunks, profile_chunks, validate, ConfidentLabelDetector, load_xy

    baseline = profile_chunks(iter_chunks(Path("trusted.csv")), label="label")
    current = profile_chunks(iter_chunks(Path("new.csv")), label="label", reference=baseline)
    findings = validate(baseline, current)                 # schema, ranges, drift, label shift

    X, y, _, _ = load_xy(Path("new.csv"), label="label")
    suspects = ConfidentLabelDetector().fit(X, y).suspect_  # rows whose label the data contradicts

Readers stream CSV/Parquet/NumPy files in chunks (``_readers``); a profile is learned in one pass with
constant memory (``_profile``) and compared with ``validate`` (``_validate``). The poisoning detectors
follow the estimator contract (``fit`` returns ``self``; learned attributes end in ``_``): label issues
(``_labels``), backdoor triggers on learned features (``_backdoor``), outliers and near-duplicates
(``_outliers``) and coordinated fake accounts in ratings (``_accounts``). The registered checks
``data.check`` and ``data.poison`` (``checks``) wrap them for the CLI and pipelines; ``quarantine``
and ``manifest`` record their results in the workspace.
"""

from __future__ import annotations

from mlsecops.data._accounts import CoordinatedAccountDetector
from mlsecops.data._backdoor import (
    ActivationClusteringDetector,
    BackdoorClusterDetector,
    SpectralSignatureDetector,
    learned_features,
)
from mlsecops.data._labels import ConfidentLabelDetector, out_of_sample_proba
from mlsecops.data._outliers import NearDuplicateDetector, OutlierDetector
from mlsecops.data._profile import ColumnProfile, DataProfile, ProfileBuilder, profile_chunks
from mlsecops.data._readers import (
    Chunk,
    count_rows,
    file_format,
    iter_chunks,
    load_npz,
    load_table,
    load_xy,
    read_labelled,
)
from mlsecops.data._validate import ValidationOptions, validate
from mlsecops.data.ratings import RatingsData, generate_ratings

__all__ = [
    "ActivationClusteringDetector",
    "BackdoorClusterDetector",
    "Chunk",
    "ColumnProfile",
    "ConfidentLabelDetector",
    "CoordinatedAccountDetector",
    "DataProfile",
    "NearDuplicateDetector",
    "OutlierDetector",
    "ProfileBuilder",
    "RatingsData",
    "SpectralSignatureDetector",
    "ValidationOptions",
    "count_rows",
    "file_format",
    "generate_ratings",
    "iter_chunks",
    "learned_features",
    "load_npz",
    "load_table",
    "load_xy",
    "out_of_sample_proba",
    "profile_chunks",
    "read_labelled",
    "validate",
]
