"""Data-side bias checks: who is in the data, how they are labelled, what is missing, what leaks the group.

A biased or incomplete training set makes a biased model; these checks catch it before training.
``BiasBuilder`` accumulates, chunk by chunk beside the data profile (``ProfileBuilder(sensitive=...)``),
per sensitive column (and their intersection when there are several):

- **representation**: rows per group (exact counts, at most ``MAX_GROUPS`` groups per column);
- **label rates**: label value counts per group;
- **missingness**: missing cells per column per group;
- **proxy features**: from a uniform sample of at most ``PROXY_SAMPLE_ROWS`` rows (priority sampling),
  per feature column the mutual information with the group and the cross-validated ROC AUC of a
  shallow decision tree predicting the group from that column alone (0.5 is the majority baseline: a
  constant guess ranks nobody). A column with a high AUC lets a model rebuild the sensitive attribute
  even when it is dropped.

``bias_findings`` turns a ``BiasProfile`` into findings: a group under-represented against the
reference (a baseline profile's shares, or ``reference_groups`` proportions) by more than
``UNDER_REPRESENTED`` of its share and significantly (binomial test, p < alpha); a reference group
absent; groups too small to learn or audit; label rates that moved against the reference's rate for
the same group, or (without a reference profile) differ between groups, by more than ``LABEL_GAP``,
significantly (chi-square);
missingness that differs between groups by more than ``MISSING_GAP``; proxy columns with AUC of at
least ``PROXY_AUC`` (``PROXY_AUC_HIGH`` for high severity). Every test needs significance and a
large effect: on a million rows every difference is significant.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from mlsecops.core.errors import InputError
from mlsecops.core.findings import Finding, Severity

__all__ = [
    "BiasBuilder",
    "BiasProfile",
    "GroupCounts",
    "ProxyScore",
    "SensitiveProfile",
    "bias_findings",
    "parse_reference_groups",
]

CHECK_NAME = "data.check.bias"
MAX_GROUPS = 500
"""Most groups counted per sensitive column; more means the column is an identifier (reported)."""
MAX_SENSITIVE = 5
"""Most sensitive columns (their intersection can have MAX_GROUPS groups at most)."""
PROXY_SAMPLE_ROWS = 20_000
"""Rows sampled for the proxy models (a uniform sample: priority sampling over the stream)."""
MAX_PROXY_COLUMNS = 200
"""Most feature columns scored as proxies (the first ones in file order)."""
MIN_GROUP_ROWS = 30
"""A group with fewer rows is reported as too small to learn from or to audit."""
UNDER_REPRESENTED = 0.2
"""A group whose share is below (1 - this) x its reference share is under-represented (0.8: four-fifths)."""
LABEL_GAP = 0.1
"""Label-rate differences between groups (or against the reference) above this are reported."""
MISSING_GAP = 0.1
"""Missing-share differences between groups above this are reported."""
PROXY_AUC = 0.75
"""A column predicting the group with at least this cross-validated AUC is a proxy (medium)."""
PROXY_AUC_HIGH = 0.9
"""At least this AUC: the column nearly is the sensitive attribute (high)."""
MISSING = "(missing)"
"""Group name of rows whose sensitive value is empty or NaN (as in the fairness audit)."""


class ProxyScore(BaseModel):
    """How well one column predicts a sensitive attribute."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    auc: float
    """Cross-validated ROC AUC (one-vs-rest, weighted, for several groups); 0.5 = the majority baseline."""
    mutual_information: float
    """Mutual information with the group, in nats."""


class GroupCounts(BaseModel):
    """Counts of one group."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rows: int
    labels: dict[str, int] = Field(default_factory=dict)
    """Label value -> rows of this group (when a label column is named)."""
    nulls: dict[str, int] = Field(default_factory=dict)
    """Column -> missing cells in this group's rows (columns with any)."""


class SensitiveProfile(BaseModel):
    """The groups of one sensitive column (or of the intersection of several: ``"a, b"``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    column: str
    groups: dict[str, GroupCounts]
    truncated: bool = False
    """More than MAX_GROUPS distinct values: counting stopped at the cap."""
    proxies: dict[str, ProxyScore] = Field(default_factory=dict)
    """Feature column -> how well it predicts this column's group (single columns only)."""


class BiasProfile(BaseModel):
    """Bias statistics of a data set, kept in its ``DataProfile`` (``bias``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sensitive: list[str]
    label: str | None = None
    columns: list[SensitiveProfile]
    proxy_rows: int = 0
    """Rows of the sample the proxy scores come from."""

    def shares(self, column: str) -> dict[str, float]:
        """Group -> share of rows, for one sensitive column (or intersection name)."""
        prof = next((c for c in self.columns if c.column == column), None)
        if prof is None:
            return {}
        total = sum(g.rows for g in prof.groups.values())
        return {k: g.rows / total for k, g in prof.groups.items()} if total else {}


def _names(arr: np.ndarray) -> np.ndarray:
    """Group names: whole floats without ``.0``, empty/NaN/None as ``(missing)``."""
    out = np.empty(len(arr), dtype=object)
    for i, v in enumerate(np.asarray(arr, dtype=object).tolist()):
        if v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and not v.strip()):
            out[i] = MISSING
        elif isinstance(v, float) and v.is_integer():
            out[i] = str(int(v))
        else:
            out[i] = str(v)
    return out


def _is_null(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == object:
        return np.array([v is None or (isinstance(v, float) and math.isnan(v)) for v in arr], dtype=bool)
    if arr.dtype.kind == "f":
        return np.asarray(np.isnan(arr), dtype=bool)
    return np.zeros(len(arr), dtype=bool)


class _Acc:
    def __init__(self) -> None:
        self.rows: dict[str, int] = {}
        self.labels: dict[str, dict[str, int]] = {}
        self.nulls: dict[str, dict[str, int]] = {}
        self.truncated = False


class BiasBuilder:
    """Accumulates ``BiasProfile`` statistics chunk by chunk, in memory bounded by the caps above.

    Args:
        sensitive: the sensitive columns.
        label: the label column, if any.
        seed: seed of the proxy sample and the proxy models' folds.
    """

    def __init__(self, sensitive: Sequence[str], *, label: str | None = None, seed: int = 0) -> None:
        if not sensitive:
            raise InputError("name at least one sensitive column")
        if len(sensitive) > MAX_SENSITIVE:
            raise InputError(f"at most {MAX_SENSITIVE} sensitive columns; got {len(sensitive)}")
        if label is not None and label in sensitive:
            raise InputError(f"the label column {label!r} cannot be a sensitive column")
        self.sensitive = list(sensitive)
        self.label = label
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        keys = [*self.sensitive, ", ".join(self.sensitive)] if len(self.sensitive) > 1 else self.sensitive
        self._accs = {k: _Acc() for k in keys}
        self._keys = np.empty(0)
        self._sample: dict[str, np.ndarray] = {}
        self._rows = 0

    def update(self, chunk: Mapping[str, np.ndarray]) -> None:
        """Add one chunk of rows.

        Raises:
            InputError: a sensitive column is missing.
        """
        absent = [c for c in self.sensitive if c not in chunk]
        if absent:
            raise InputError(f"sensitive column(s) {absent} not found; columns are {sorted(chunk)[:20]}")
        n = len(next(iter(chunk.values())))
        named = {c: _names(chunk[c]) for c in self.sensitive}
        if len(self.sensitive) > 1:
            named[", ".join(self.sensitive)] = np.asarray(
                [", ".join(r) for r in zip(*(named[c] for c in self.sensitive), strict=True)], dtype=object
            )
        labels = _names(chunk[self.label]) if self.label is not None and self.label in chunk else None
        nulls = {c: _is_null(a) for c, a in chunk.items() if c not in self.sensitive and c != self.label}
        nulls = {c: m for c, m in nulls.items() if m.any()}
        for key, groups in named.items():
            self._count(self._accs[key], groups, labels, nulls)
        self._update_sample(chunk, named, n)
        self._rows += n

    def _count(
        self, acc: _Acc, groups: np.ndarray, labels: np.ndarray | None, nulls: Mapping[str, np.ndarray]
    ) -> None:
        values, inverse = np.unique(groups.astype(str), return_inverse=True)
        for gi, g in enumerate(values.tolist()):
            rows = inverse == gi
            if g not in acc.rows and len(acc.rows) >= MAX_GROUPS:
                acc.truncated = True
                continue
            acc.rows[g] = acc.rows.get(g, 0) + int(rows.sum())
            if labels is not None:
                lab = acc.labels.setdefault(g, {})
                lv, lc = np.unique(labels[rows].astype(str), return_counts=True)
                for v, c in zip(lv.tolist(), lc.tolist(), strict=True):
                    lab[v] = lab.get(v, 0) + int(c)
            for col, mask in nulls.items():
                k = int(mask[rows].sum())
                if k:
                    acc.nulls.setdefault(g, {})[col] = acc.nulls.get(g, {}).get(col, 0) + k

    def _update_sample(
        self, chunk: Mapping[str, np.ndarray], named: Mapping[str, np.ndarray], n: int
    ) -> None:
        keys = np.concatenate([self._keys, self._rng.random(n)])
        keep = (
            np.argpartition(keys, PROXY_SAMPLE_ROWS)[:PROXY_SAMPLE_ROWS]
            if keys.size > PROXY_SAMPLE_ROWS
            else None
        )
        self._keys = keys if keep is None else keys[keep]
        features = [c for c in chunk if c not in self.sensitive and c != self.label][:MAX_PROXY_COLUMNS]
        parts = {**{c: chunk[c] for c in features}, **{f"\0{c}": named[c] for c in self.sensitive}}
        for name, arr in parts.items():
            old = self._sample.get(name)
            both = (
                arr
                if old is None
                else np.concatenate([old.astype(object) if arr.dtype == object else old, arr])
            )
            self._sample[name] = both if keep is None else both[keep]

    def result(self) -> BiasProfile:
        """The statistics of everything added, with the proxy scores computed on the sample."""
        columns = []
        for key, acc in self._accs.items():
            groups = {
                g: GroupCounts(rows=r, labels=acc.labels.get(g, {}), nulls=acc.nulls.get(g, {}))
                for g, r in sorted(acc.rows.items(), key=lambda kv: -kv[1])
            }
            proxies = self._proxies(key) if key in self.sensitive else {}
            columns.append(
                SensitiveProfile(column=key, groups=groups, truncated=acc.truncated, proxies=proxies)
            )
        return BiasProfile(
            sensitive=self.sensitive,
            label=self.label,
            columns=columns,
            proxy_rows=int(min(self._rows, PROXY_SAMPLE_ROWS)),
        )

    def _proxies(self, column: str) -> dict[str, ProxyScore]:
        y_raw = self._sample.get(f"\0{column}")
        if y_raw is None:
            return {}
        y = np.unique(y_raw.astype(str), return_inverse=True)[1]
        counts = np.bincount(y)
        ok = counts[y] >= 3  # stratified 3-fold CV needs 3 rows of every group
        if int((counts >= 3).sum()) < 2:
            return {}
        y = np.unique(y[ok], return_inverse=True)[1]
        out = {}
        for name, arr in self._sample.items():
            if name.startswith("\0"):
                continue
            x, discrete = _encode(arr[ok])
            out[name] = _proxy_score(x, y, discrete, self.seed)
        return out


def _encode(arr: np.ndarray) -> tuple[np.ndarray, bool]:
    """One column as a numeric feature: numbers with NaN -> median, text as category codes."""
    if arr.dtype == object:
        codes = np.unique(_names(arr).astype(str), return_inverse=True)[1]
        return codes.astype(np.float64).reshape(-1, 1), True
    x = arr.astype(np.float64)
    finite = np.isfinite(x)
    fill = float(np.median(x[finite])) if finite.any() else 0.0
    return np.where(finite, x, fill).reshape(-1, 1), False


def _proxy_score(x: np.ndarray, y: np.ndarray, discrete: bool, seed: int) -> ProxyScore:
    from sklearn.feature_selection import mutual_info_classif
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.tree import DecisionTreeClassifier

    if np.ptp(x) == 0:
        return ProxyScore(auc=0.5, mutual_information=0.0)
    tree = DecisionTreeClassifier(max_depth=4, min_samples_leaf=20, random_state=seed)
    cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=seed)
    proba = cross_val_predict(tree, x, y, cv=cv, method="predict_proba")
    if proba.shape[1] == 2:
        auc = float(roc_auc_score(y, proba[:, 1]))
    else:
        auc = float(roc_auc_score(y, proba, multi_class="ovr", average="weighted"))
    mi = float(mutual_info_classif(x, y, discrete_features=discrete, random_state=seed)[0])
    return ProxyScore(auc=round(auc, 6), mutual_information=round(mi, 6))


def parse_reference_groups(text: str) -> dict[str, dict[str, float]]:
    """``"sex=Male:0.5,Female:0.5;race=..."`` as column -> group -> share (shares normalised to 1).

    Raises:
        InputError: malformed text or a non-positive share.
    """
    out: dict[str, dict[str, float]] = {}
    for part in (p for p in text.split(";") if p.strip()):
        if "=" not in part:
            raise InputError(f"reference groups read COL=GROUP:SHARE,GROUP:SHARE[;COL=...]; got {part!r}")
        col, rest = part.split("=", 1)
        shares: dict[str, float] = {}
        for item in (i for i in rest.split(",") if i.strip()):
            group, _, share = item.rpartition(":")
            try:
                value = float(share)
            except ValueError:
                raise InputError(f"reference share {share!r} of {group!r} is not a number") from None
            if not group.strip() or not math.isfinite(value) or value <= 0:
                raise InputError(f"reference groups need a name and a positive share; got {item!r}")
            shares[group.strip()] = value
        total = sum(shares.values())
        if not shares:
            raise InputError(f"no groups given for {col.strip()!r}")
        out[col.strip()] = {g: v / total for g, v in shares.items()}
    return out


def bias_findings(
    current: BiasProfile,
    *,
    reference: BiasProfile | None = None,
    reference_groups: Mapping[str, Mapping[str, float]] | None = None,
    artifact: str | None = None,
    alpha: float = 1e-3,
) -> list[Finding]:
    """Findings for under-representation, label-rate gaps, missingness gaps and proxy features.

    Args:
        current: the data's bias statistics.
        reference: a baseline's statistics (its group shares and label rates are the reference).
        reference_groups: column -> group -> expected share; takes precedence over ``reference``.
        artifact: path named in the findings.
        alpha: significance level of the tests.
    """
    out: list[Finding] = []

    def add(
        sev: Severity, title: str, detail: str, column: str, remediation: str, **evidence: JsonValue
    ) -> None:
        out.append(
            Finding(
                check=CHECK_NAME,
                severity=sev,
                title=title,
                detail=detail,
                artifact=artifact,
                location={"column": column},
                evidence=dict(evidence),
                remediation=remediation,
                atlas="AML.T0020" if sev >= Severity.HIGH else None,
            )
        )

    for prof in current.columns:
        total = sum(g.rows for g in prof.groups.values())
        if not total:
            continue
        if prof.truncated:
            add(
                Severity.LOW,
                f"{prof.column} has more than {MAX_GROUPS} groups; counted the first {MAX_GROUPS}",
                "a sensitive column with this many values is closer to an identifier than a group",
                prof.column,
                "check the column; bin it into groups before auditing",
            )
        expected = (reference_groups or {}).get(prof.column)
        if expected is None and reference is not None:
            expected = reference.shares(prof.column) or None
        if expected:
            _representation(add, prof, expected, total, alpha)
        small = {g: c.rows for g, c in prof.groups.items() if c.rows < MIN_GROUP_ROWS}
        if small:
            add(
                Severity.LOW,
                f"{len(small)} group(s) of {prof.column} have fewer than {MIN_GROUP_ROWS} rows",
                "; ".join(f"{g}: {n}" for g, n in list(small.items())[:10]),
                prof.column,
                "collect more rows for these groups: a model learns little about them and an audit cannot judge them",
                groups=dict(list(small.items())[:50]),
            )
        ref_prof = (
            next((c for c in reference.columns if c.column == prof.column), None) if reference else None
        )
        _label_rates(add, prof, ref_prof, alpha)
        _missingness(add, prof, alpha)
        for col, score in sorted(prof.proxies.items(), key=lambda kv: -kv[1].auc):
            if score.auc >= PROXY_AUC:
                add(
                    Severity.HIGH if score.auc >= PROXY_AUC_HIGH else Severity.MEDIUM,
                    f"column {col} predicts {prof.column} (AUC {score.auc:.2f}; 0.5 is a guess)",
                    f"a shallow tree on {col} alone tells the groups of {prof.column} apart with cross-validated "
                    f"AUC {score.auc:.3f} (mutual information {score.mutual_information:.3f} nats): dropping "
                    f"{prof.column} does not hide it from a model",
                    col,
                    f"decide whether {col} is legitimate for the task; audit the model's fairness by {prof.column}",
                    sensitive=prof.column,
                    auc=score.auc,
                    mutual_information=score.mutual_information,
                )
    return out


class _Add(Protocol):
    def __call__(
        self, sev: Severity, title: str, detail: str, column: str, remediation: str, **evidence: JsonValue
    ) -> None: ...


def _representation(
    add: _Add, prof: SensitiveProfile, expected: Mapping[str, float], total: int, alpha: float
) -> None:
    from scipy import stats

    for group, share in expected.items():
        got = prof.groups.get(group)
        n = got.rows if got else 0
        observed = n / total
        if n == 0:
            add(
                Severity.HIGH,
                f"group {group} of {prof.column} is absent (reference share {share:.1%})",
                f"none of {total} rows belong to {group}",
                prof.column,
                "the data misses a group the model will meet: collect it before training",
                group=group,
                expected_share=round(share, 6),
            )
            continue
        if observed >= (1 - UNDER_REPRESENTED) * share:
            continue
        p = float(stats.binomtest(n, total, share, alternative="less").pvalue)
        if p >= alpha:
            continue
        sev = Severity.HIGH if observed < 0.5 * share else Severity.MEDIUM
        add(
            sev,
            f"group {group} of {prof.column} is under-represented: {observed:.1%} of rows, reference {share:.1%}",
            f"{n} of {total} rows (binomial test p={p:.2g}); a model trained on it sees this group "
            f"{observed / share:.2f} times as often as it should",
            prof.column,
            "re-sample or re-weight the data, or collect more rows for this group",
            group=group,
            share=round(observed, 6),
            expected_share=round(share, 6),
            p_value=p,
        )


def _binary_rates(groups: Mapping[str, GroupCounts]) -> tuple[str, dict[str, tuple[int, int]]] | None:
    """The less frequent label overall, and (positives, rows with a label) per group; None if not binary."""
    totals: dict[str, int] = {}
    for g in groups.values():
        for v, c in g.labels.items():
            totals[v] = totals.get(v, 0) + c
    if len(totals) != 2:
        return None
    positive = min(sorted(totals), key=lambda v: totals[v])
    return positive, {k: (g.labels.get(positive, 0), sum(g.labels.values())) for k, g in groups.items()}


def _label_rates(add: _Add, prof: SensitiveProfile, ref_prof: SensitiveProfile | None, alpha: float) -> None:
    from scipy import stats

    found = _binary_rates({k: g for k, g in prof.groups.items() if g.rows >= MIN_GROUP_ROWS})
    if found is None:
        return
    positive, rates = found
    if len(rates) >= 2 and ref_prof is None:  # with a reference, a shift per group is the sharper test
        share = {k: p / n for k, (p, n) in rates.items() if n}
        lo, hi = min(share, key=share.__getitem__), max(share, key=share.__getitem__)
        gap = share[hi] - share[lo]
        table = np.array([[p, n - p] for p, n in rates.values()])
        p_value = float(stats.chi2_contingency(table)[1]) if table.sum(axis=0).all() else 1.0
        if gap > LABEL_GAP and p_value < alpha:
            add(
                Severity.MEDIUM,
                f"label {positive!r} rate differs by {gap:.1%} between groups of {prof.column}",
                f"{share[lo]:.1%} for {lo} vs {share[hi]:.1%} for {hi} (chi-square p={p_value:.2g}); a real "
                "difference in base rates or biased labelling: a model will learn it either way",
                prof.column,
                "check how the labels were produced for each group; audit the trained model by group",
                label=positive,
                rates={k: round(v, 6) for k, v in share.items()},
                p_value=p_value,
            )
    if ref_prof is None:
        return
    ref = _binary_rates(ref_prof.groups)
    if ref is None or ref[0] != positive:
        return
    for group, (p, n) in rates.items():
        if group not in ref[1] or not n or not ref[1][group][1]:
            continue
        rp, rn = ref[1][group]
        now, before = p / n, rp / rn
        table = np.array([[p, n - p], [rp, rn - rp]])
        p_value = float(stats.chi2_contingency(table)[1]) if table.sum(axis=0).all() else 1.0
        if abs(now - before) > LABEL_GAP and p_value < alpha:
            add(
                Severity.HIGH,
                f"label {positive!r} rate of group {group} ({prof.column}) moved from {before:.1%} to {now:.1%}",
                f"against the reference for the same group (chi-square p={p_value:.2g}): labels for this group "
                "changed, by the world or by the labelling",
                prof.column,
                "find out who labelled these rows and how; do not train on them until explained",
                group=group,
                rate=round(now, 6),
                reference_rate=round(before, 6),
                p_value=p_value,
            )


def _missingness(add: _Add, prof: SensitiveProfile, alpha: float) -> None:
    from scipy import stats

    groups = {k: g for k, g in prof.groups.items() if g.rows >= MIN_GROUP_ROWS}
    columns = sorted({c for g in groups.values() for c in g.nulls})
    for col in columns:
        rates = {k: g.nulls.get(col, 0) / g.rows for k, g in groups.items()}
        if len(rates) < 2:
            continue
        lo, hi = min(rates, key=rates.__getitem__), max(rates, key=rates.__getitem__)
        gap = rates[hi] - rates[lo]
        table = np.array([[g.nulls.get(col, 0), g.rows - g.nulls.get(col, 0)] for g in groups.values()])
        p_value = float(stats.chi2_contingency(table)[1]) if table.sum(axis=0).all() else 1.0
        if gap > MISSING_GAP and p_value < alpha:
            add(
                Severity.MEDIUM,
                f"column {col} is missing for {rates[hi]:.1%} of {hi} vs {rates[lo]:.1%} of {lo} ({prof.column})",
                f"missingness differs between groups (chi-square p={p_value:.2g}): the data is less complete "
                "for some groups, and imputation will treat them differently",
                col,
                "find why the column is missing more often for this group; collect it or model the gap",
                sensitive=prof.column,
                rates={k: round(v, 6) for k, v in rates.items()},
                p_value=p_value,
            )
