"""Fairness-mitigated models: a JSON manifest over member models that load through the scanner.

fairlearn's ``ThresholdOptimizer`` and ``ExponentiatedGradient`` are Python objects whose pickles name
fairlearn and pandas classes our artifact scanner does not allow, and pickling our own wrapper would
need the scanner to trust this package's classes. So ``mlsecops harden fairness`` writes what the
mitigation *is*, as data: a ``<name>.fair.json`` manifest (``FAIR_FORMAT``) and member model files
beside it. ``load_fair_model`` reads the manifest (bounded, strictly validated: no paths, only plain
file names in the manifest's folder, each pinned by SHA-256) and loads every member through
``load_model`` (so ``safe_load``: scanned, refused unless judged safe). ``load_model`` routes any file
named ``*.fair.json`` here.

What a ``FairModel`` computes, per row (fairlearn's own ``_pmf_predict``):

- ``threshold``: one member, the original model; its score ``s`` = P(positive). The row's group picks
  a rule ``p0 * [s op0 t0] + p1 * [s op1 t1]`` (mixed with a constant when fairlearn's ``p_ignore`` is
  set): the probability of a positive decision.
- ``reductions``: members with weights; the probability of a positive decision is the weighted vote
  of the members' labels.

fairlearn then draws the decision at random with that probability. Here the draw is a keyed hash of
the row's bytes (BLAKE2b with the manifest's ``coin_key``) mapped to [0, 1): the same input always
gets the same decision, and over many rows the rates are the randomised rule's. A row with
probability 0 or 1 (most rows) is not random at all. The model outputs decisions, not
probabilities: ``predict_proba`` is one-hot and ``probabilities`` is False (calibration is refused).

The sensitive attribute at prediction time: a threshold model needs each row's group. Its inputs are
the base features followed by one more column, the group's code: its index in the manifest's
``groups`` list (``group_code`` / ``encode_inputs`` compute it from the raw sensitive values). A
served model therefore receives the group code from the caller as the last input; an unknown code is
an ``InputError``, never a silent default. A reductions model needs no group at prediction time.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlsecops.core.errors import InputError
from mlsecops.core.inputs import load_json
from mlsecops.models.interface import ModelAdapter, ModelError, check_inputs

__all__ = [
    "FAIR_FORMAT",
    "FAIR_SUFFIX",
    "MISSING",
    "FairModel",
    "GroupRule",
    "Member",
    "group_keys",
    "load_fair_model",
    "sensitive_strings",
    "write_fair_model",
]

FAIR_FORMAT = "mlsecops.fair-model/1"
"""The manifest's ``format`` value."""
FAIR_SUFFIX = ".fair.json"
"""File names ending so are fairness-mitigated model manifests."""
MAX_MANIFEST_BYTES = 1 << 20
"""Largest manifest read (1 MiB): bounds the JSON parse of a hostile file."""
MAX_MEMBERS = 200
"""Most member models (ExponentiatedGradient keeps at most one per iteration; fairlearn's default is 50)."""
MAX_GROUPS = 500
"""Most groups in a threshold table."""
MISSING = "(missing)"
"""The group name of rows whose sensitive value is empty or NaN."""
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
_OPS = (">", "<")


def sensitive_strings(values: np.ndarray) -> np.ndarray:
    """A sensitive column as group names: whole floats without ``.0``, empty/NaN as ``(missing)``."""
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(np.asarray(values, dtype=object).tolist()):
        if v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and not v.strip()):
            out[i] = MISSING
        elif isinstance(v, float) and v.is_integer():
            out[i] = str(int(v))
        else:
            out[i] = str(v)
    return out


def group_keys(columns: Sequence[np.ndarray]) -> np.ndarray:
    """One group name per row: the sensitive values joined by ``", "`` (the audit's intersection)."""
    parts = [sensitive_strings(c) for c in columns]
    if len(parts) == 1:
        return parts[0]
    return np.asarray([", ".join(row) for row in zip(*parts, strict=True)], dtype=object)


@dataclass(frozen=True)
class GroupRule:
    """fairlearn's interpolated threshold rule for one group."""

    p0: float
    op0: str
    t0: float
    p1: float
    op1: str
    t1: float
    p_ignore: float = 0.0
    constant: float = 0.0

    def apply(self, score: np.ndarray) -> np.ndarray:
        """P(positive decision) for scores ``score``."""

        def op(kind: str, t: float) -> np.ndarray:
            return (score > t) if kind == ">" else (score < t)

        pmf = self.p0 * op(self.op0, self.t0) + self.p1 * op(self.op1, self.t1)
        return np.asarray(self.p_ignore * self.constant + (1 - self.p_ignore) * pmf, dtype=np.float64)


@dataclass(frozen=True)
class Member:
    """One member model and how its output enters the mixture."""

    model: ModelAdapter
    weight: float
    output: str
    """``score`` (P(positive)) or ``label`` (the predicted class, 0/1)."""

    def positive(self, x: np.ndarray) -> np.ndarray:
        """The member's score or label for the positive class."""
        with warnings.catch_warnings():  # fitted on a DataFrame; the rows come in base_features order
            warnings.filterwarnings("ignore", message="X does not have valid feature names")
            proba = np.asarray(self.model.predict_proba(x), dtype=np.float64)
        if self.output == "label":
            return np.asarray(proba.argmax(axis=1) == 1, dtype=np.float64)
        return np.asarray(proba[:, 1], dtype=np.float64)


class FairModel:
    """A mitigated binary classifier behind the adapter protocol (see the module docstring).

    Args:
        members: the member models (one for ``threshold``).
        base_features: names of the members' input columns.
        sensitive: the sensitive columns the groups are made of.
        classes: the two class labels, negative first.
        coin_key: key of the per-row hash that replaces fairlearn's random draw.
        groups: group names (the code of a group is its index); ``None`` when no group input is needed.
        rules: one rule per group (``threshold``).
        method: ``threshold`` or ``reductions``.
    """

    probabilities = False
    """The outputs are decisions (one-hot), not probabilities."""

    def __init__(
        self,
        *,
        members: Sequence[Member],
        base_features: Sequence[str],
        sensitive: Sequence[str],
        classes: Sequence[str],
        coin_key: bytes,
        groups: Sequence[str] | None = None,
        rules: Sequence[GroupRule] | None = None,
        method: str = "threshold",
    ) -> None:
        if not members:
            raise ModelError("a mitigated model needs at least one member model")
        if (groups is None) != (rules is None) or (groups is not None and len(groups) != len(rules or ())):
            raise ModelError("a threshold table needs one rule per group")
        self.members = tuple(members)
        self.base_features = list(base_features)
        self.sensitive = list(sensitive)
        self.classes = np.asarray(list(classes), dtype=object)
        self.coin_key = bytes(coin_key)
        self.groups = list(groups) if groups is not None else None
        self.rules = tuple(rules) if rules is not None else None
        self.method = method
        self._codes = {g: i for i, g in enumerate(self.groups or ())}

    @property
    def n_classes(self) -> int:
        """Two: mitigation applies to binary classifiers."""
        return 2

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The base features, plus the group code when the rule depends on the group."""
        return (len(self.base_features) + (1 if self.groups is not None else 0),)

    @property
    def feature_names(self) -> list[str]:
        """Input column names; the group code column is named ``group_code``."""
        return self.base_features + (["group_code"] if self.groups is not None else [])

    def group_code(self, names: Sequence[str]) -> np.ndarray:
        """The codes of group names.

        Raises:
            InputError: a group the thresholds were not fitted for.
        """
        try:
            return np.asarray([self._codes[str(n)] for n in names], dtype=np.float64)
        except KeyError as err:
            raise InputError(
                f"group {err.args[0]!r} of {', '.join(self.sensitive)} was not seen when the thresholds were "
                f"fitted; known groups: {self.groups[:10] if self.groups else []}"
            ) from None

    def encode_inputs(self, base: np.ndarray, table: Mapping[str, np.ndarray]) -> np.ndarray:
        """The model's input rows from base feature rows and a table holding the sensitive columns.

        Raises:
            InputError: a sensitive column is missing, or a group is unknown.
        """
        if self.groups is None:
            return base
        absent = [c for c in self.sensitive if c not in table]
        if absent:
            raise InputError(f"the mitigated model needs the sensitive column(s) {absent} to pick thresholds")
        codes = self.group_code(group_keys([table[c] for c in self.sensitive]).tolist())
        return np.column_stack([base.astype(np.float32), codes.astype(np.float32)])

    def positive_probability(self, x: np.ndarray) -> np.ndarray:
        """Fairlearn's probability of a positive decision per row (before the draw)."""
        arr = check_inputs(x, self.input_shape).reshape(len(x), -1)
        n_base = len(self.base_features)
        base = arr[:, :n_base]
        total = sum(m.weight for m in self.members)
        score = sum(m.weight * m.positive(base) for m in self.members) / (total or 1.0)
        score = np.asarray(score, dtype=np.float64)
        if self.rules is None:
            return score
        codes = arr[:, n_base]
        if not np.all((codes == np.round(codes)) & (codes >= 0) & (codes < len(self.rules))):
            raise InputError(f"the last input must be a group code in [0, {len(self.rules) - 1}]")
        idx = codes.astype(np.int64)
        out = np.zeros(len(arr))
        for code in np.unique(idx):
            rows = idx == code
            out[rows] = self.rules[code].apply(score[rows])
        return out

    def coins(self, x: np.ndarray) -> np.ndarray:
        """One number in [0, 1) per row: a keyed hash of the row's float32 bytes."""
        rows = np.ascontiguousarray(np.asarray(x, dtype=np.float32).reshape(len(x), -1))
        out = np.empty(len(rows))
        for i, row in enumerate(rows):
            digest = hashlib.blake2b(row.tobytes(), key=self.coin_key, digest_size=8).digest()
            out[i] = int.from_bytes(digest, "big") / 2.0**64
        return out

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """One-hot decisions: positive where fairlearn's probability is at least the row's coin."""
        pmf = self.positive_probability(x)
        decision = (pmf >= self.coins(x)).astype(np.float64)
        return np.column_stack([1.0 - decision, decision])


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_fair_model(
    path: Path,
    *,
    method: str,
    constraint: str,
    member_files: Sequence[tuple[Path, float, str]],
    base_features: Sequence[str],
    sensitive: Sequence[str],
    classes: Sequence[str],
    groups: Sequence[str] | None = None,
    rules: Sequence[GroupRule] | None = None,
    coin_key: bytes | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the manifest for member files already written beside ``path``; returns the manifest.

    Raises:
        InputError: a member file outside the manifest's folder, or a bad output name.
    """
    if not path.name.endswith(FAIR_SUFFIX):
        raise InputError(f"a mitigated model is written as a {FAIR_SUFFIX} manifest; got {path.name}")
    members = []
    for file, weight, output in member_files:
        if file.parent.resolve() != path.parent.resolve():
            raise InputError(f"member {file} must be in the manifest's folder {path.parent}")
        members.append(
            {"file": file.name, "sha256": _sha256(file), "weight": float(weight), "output": output}
        )
    manifest: dict[str, Any] = {
        "format": FAIR_FORMAT,
        "method": method,
        "constraint": constraint,
        "classes": [str(c) for c in classes],
        "base_features": list(base_features),
        "sensitive": list(sensitive),
        "groups": list(groups) if groups is not None else None,
        "rules": [vars(r) for r in rules] if rules is not None else None,
        "members": members,
        "coin_key": (coin_key or os.urandom(16)).hex(),
        **dict(extra or {}),
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, allow_nan=False))
    tmp.replace(path)
    return manifest


def _bad(path: Path, what: str) -> ModelError:
    return ModelError(f"{path}: not a valid {FAIR_FORMAT} manifest: {what}")


def _strs(value: Any, path: Path, what: str, *, limit: int = 10_000) -> list[str]:
    if not isinstance(value, list) or len(value) > limit or not all(isinstance(v, str) for v in value):
        raise _bad(path, f"{what} must be a list of strings")
    return list(value)


def _num(value: Any, path: Path, what: str, lo: float = -math.inf, hi: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= float(value) <= hi:
        raise _bad(path, f"{what} must be a number in [{lo}, {hi}]")
    return float(value)


def _rule(raw: Any, path: Path) -> GroupRule:
    if not isinstance(raw, dict) or set(raw) != {
        "p0",
        "op0",
        "t0",
        "p1",
        "op1",
        "t1",
        "p_ignore",
        "constant",
    }:
        raise _bad(path, "each rule has exactly p0, op0, t0, p1, op1, t1, p_ignore, constant")
    if raw["op0"] not in _OPS or raw["op1"] not in _OPS:
        raise _bad(path, "rule operators are '>' or '<'")
    return GroupRule(
        p0=_num(raw["p0"], path, "p0", 0, 1),
        op0=raw["op0"],
        t0=_num(raw["t0"], path, "t0"),
        p1=_num(raw["p1"], path, "p1", 0, 1),
        op1=raw["op1"],
        t1=_num(raw["t1"], path, "t1"),
        p_ignore=_num(raw["p_ignore"], path, "p_ignore", 0, 1),
        constant=_num(raw["constant"], path, "constant", 0, 1),
    )


def load_fair_model(path: str | os.PathLike[str], *, timeout: float = 10.0) -> FairModel:
    """Read a manifest and load its members through the artifact scanner.

    Raises:
        InputError: a missing or oversized file.
        ModelError: a malformed manifest, a member whose digest differs from the manifest's.
        UnsafeArtifactError: a member the scanner does not judge safe.
    """
    from mlsecops.models.loading import load_model

    p = Path(path)
    if not p.is_file():
        raise InputError(f"model file {p} does not exist")
    # the bounded reader: a regular file of at most MAX_MANIFEST_BYTES, nesting limited before parsing
    raw = load_json(p, what="mitigated-model manifest", max_bytes=MAX_MANIFEST_BYTES)
    if not isinstance(raw, dict) or raw.get("format") != FAIR_FORMAT:
        raise _bad(p, f"format must be {FAIR_FORMAT!r}")
    method = raw.get("method")
    if method not in ("threshold", "reductions"):
        raise _bad(p, "method must be threshold or reductions")
    features = _strs(raw.get("base_features"), p, "base_features")
    sensitive = _strs(raw.get("sensitive"), p, "sensitive", limit=20)
    classes = _strs(raw.get("classes"), p, "classes", limit=2)
    if len(classes) != 2:
        raise _bad(p, "classes must name the two classes")
    groups = None if raw.get("groups") is None else _strs(raw["groups"], p, "groups", limit=MAX_GROUPS)
    rules_raw = raw.get("rules")
    if (groups is None) != (rules_raw is None) or (
        rules_raw is not None and (not isinstance(rules_raw, list) or len(rules_raw) != len(groups or []))
    ):
        raise _bad(p, "groups and rules go together, one rule per group")
    rules = [_rule(r, p) for r in rules_raw] if rules_raw is not None else None
    try:
        coin_key = bytes.fromhex(str(raw.get("coin_key", "")))
    except ValueError:
        raise _bad(p, "coin_key must be hex") from None
    if not 8 <= len(coin_key) <= 64:
        raise _bad(p, "coin_key must be 8 to 64 bytes")
    members_raw = raw.get("members")
    if not isinstance(members_raw, list) or not 1 <= len(members_raw) <= MAX_MEMBERS:
        raise _bad(p, f"members must be a list of 1 to {MAX_MEMBERS}")
    members = []
    for m in members_raw:
        if not isinstance(m, dict) or set(m) != {"file", "sha256", "weight", "output"}:
            raise _bad(p, "each member has exactly file, sha256, weight, output")
        name = m["file"]
        if not isinstance(name, str) or not _FILE_NAME.match(name) or ".." in name:
            raise _bad(p, f"member file {name!r} must be a plain file name in the manifest's folder")
        if m["output"] not in ("score", "label"):
            raise _bad(p, "member output must be score or label")
        file = p.parent / name
        if not file.is_file():
            raise InputError(f"{p}: member file {name} is missing")
        if not isinstance(m["sha256"], str) or _sha256(file) != m["sha256"]:
            raise ModelError(f"{p}: member file {name} does not match the manifest's SHA-256; refusing it")
        model = load_model(file, input_shape=(len(features),), timeout=timeout)
        if model.n_classes != 2:
            raise ModelError(f"{p}: member {name} is not a binary classifier")
        members.append(Member(model=model, weight=_num(m["weight"], p, "weight", 0), output=m["output"]))
    return FairModel(
        members=members,
        base_features=features,
        sensitive=sensitive,
        classes=classes,
        coin_key=coin_key,
        groups=groups,
        rules=rules,
        method=method,
    )
