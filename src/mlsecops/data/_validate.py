"""Validating data against a trusted baseline profile.

``validate(baseline, current)`` compares two ``DataProfile`` values (the current one built with the
baseline as ``reference``, so out-of-range values and unseen categories are counted exactly) and returns
findings for: schema changes (missing or new columns, changed types), new missingness, values outside the
baseline range, unseen categories, per-column distribution shift with a test suited to the type (two-sample
Kolmogorov-Smirnov on numeric samples, chi-square on category counts), label-distribution shift and a rise
in exact duplicate rows. A shift is reported only when it is both significant (p < ``alpha``) and large
enough to matter (KS statistic or total-variation distance >= ``min_effect``): on millions of rows every
tiny difference is significant.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from scipy import stats

from mlsecops.core.findings import Finding, Severity
from mlsecops.data._profile import ColumnProfile, DataProfile

__all__ = ["CHECK_NAME", "ValidationOptions", "validate"]

CHECK_NAME = "data.check"
_ATLAS_POISON = "AML.T0020"


@dataclass(frozen=True)
class ValidationOptions:
    """Thresholds of ``validate``.

    Attributes:
        alpha: significance level of the shift tests.
        min_effect: smallest KS statistic / total-variation distance reported as a shift.
        max_null_increase: rise in a column's missing share tolerated without a finding.
        max_duplicate_increase: rise in the share of duplicate rows tolerated without a finding.
    """

    alpha: float = 1e-3
    min_effect: float = 0.1
    max_null_increase: float = 0.02
    max_duplicate_increase: float = 0.01


def validate(
    baseline: DataProfile,
    current: DataProfile,
    *,
    artifact: str | None = None,
    options: ValidationOptions | None = None,
) -> list[Finding]:
    """Compare ``current`` with ``baseline`` and return one finding per violation.

    Args:
        baseline: the trusted profile.
        current: the profile of the data to check, built with ``reference=baseline``.
        artifact: path or id named in the findings.
        options: thresholds.

    Returns:
        Findings, most structural first (schema, then values, then distributions).
    """
    opt = options or ValidationOptions()
    out: list[Finding] = []

    def add(sev: Severity, title: str, detail: str, column: str | None = None, **evidence: object) -> None:
        out.append(
            Finding(
                check=CHECK_NAME,
                severity=sev,
                title=title,
                detail=detail,
                artifact=artifact,
                location={"column": column} if column else {},
                evidence={k: v for k, v in evidence.items()},
                remediation="Inspect the rows behind this change before training on the data; if the change is"
                " expected, profile the new data as the baseline.",
                atlas=_ATLAS_POISON if sev >= Severity.MEDIUM else None,
            )
        )

    missing = [c for c in baseline.columns if c not in current.columns]
    extra = [c for c in current.columns if c not in baseline.columns]
    for c in missing:
        add(Severity.HIGH, f"column {c!r} is missing", "The baseline has this column; the data does not.", c)
    for c in extra:
        add(Severity.MEDIUM, f"unexpected column {c!r}", "The data has a column the baseline never had.", c)
    for name, base in baseline.columns.items():
        cur = current.columns.get(name)
        if cur is None:
            continue
        if cur.type != base.type:
            add(
                Severity.HIGH,
                f"column {name!r} changed type",
                f"baseline {base.type}, now {cur.type}.",
                name,
                baseline_type=base.type,
                current_type=cur.type,
            )
            continue
        _nulls(add, name, base, cur, opt)
        if cur.type == "numeric":
            _numeric(add, name, base, cur, baseline, current, opt)
        else:
            _categorical(add, name, base, cur, opt, is_label=name == baseline.label)
    base_dup = baseline.duplicate_rows / max(baseline.rows, 1)
    cur_dup = current.duplicate_rows / max(current.rows, 1)
    if cur_dup - base_dup > opt.max_duplicate_increase:
        add(
            Severity.MEDIUM,
            "more duplicate rows than the baseline",
            f"about {cur_dup:.1%} of rows repeat an earlier row (baseline {base_dup:.1%}); duplicated rows are a"
            " cheap way to over-weight injected data.",
            None,
            baseline_rate=round(base_dup, 4),
            current_rate=round(cur_dup, 4),
        )
    return out


def _nulls(add: _Add, name: str, base: ColumnProfile, cur: ColumnProfile, opt: ValidationOptions) -> None:
    if base.nulls == 0 and cur.nulls > 0:
        add(
            Severity.MEDIUM,
            f"column {name!r} has missing values",
            f"{cur.nulls} missing values; the baseline column was never missing.",
            name,
            nulls=cur.nulls,
        )
    elif cur.null_rate - base.null_rate > opt.max_null_increase:
        add(
            Severity.MEDIUM,
            f"more missing values in {name!r}",
            f"missing share {cur.null_rate:.1%}, baseline {base.null_rate:.1%}.",
            name,
            baseline_rate=round(base.null_rate, 4),
            current_rate=round(cur.null_rate, 4),
        )


def _numeric(
    add: _Add,
    name: str,
    base: ColumnProfile,
    cur: ColumnProfile,
    baseline: DataProfile,
    current: DataProfile,
    opt: ValidationOptions,
) -> None:
    if cur.out_of_range:
        share = cur.out_of_range / max(cur.count - cur.nulls, 1)
        add(
            Severity.MEDIUM if share >= 0.01 else Severity.LOW,
            f"values outside the baseline range in {name!r}",
            f"{cur.out_of_range} values ({share:.2%}) outside [{base.min:g}, {base.max:g}]; now [{cur.min:g}, {cur.max:g}].",
            name,
            count=cur.out_of_range,
            baseline_min=base.min,
            baseline_max=base.max,
            current_min=cur.min,
            current_max=cur.max,
        )
    a = np.asarray(baseline.sample.get(name, []))
    b = np.asarray(current.sample.get(name, []))
    if a.size >= 20 and b.size >= 20:
        res = stats.ks_2samp(a, b)
        d, p = float(res.statistic), float(res.pvalue)
        if p < opt.alpha and d >= opt.min_effect:
            add(
                Severity.MEDIUM,
                f"distribution shift in {name!r}",
                f"two-sample Kolmogorov-Smirnov D={d:.3f}"
                f" (p={p:.1e}); baseline mean {base.mean:.4g}, now {cur.mean:.4g}.",
                name,
                test="ks",
                statistic=round(d, 4),
                p_value=p,
            )


def _categorical(
    add: _Add, name: str, base: ColumnProfile, cur: ColumnProfile, opt: ValidationOptions, *, is_label: bool
) -> None:
    if cur.unseen:
        n = sum(cur.unseen.values())
        top = sorted(cur.unseen, key=lambda k: -cur.unseen[k])[:5]
        add(
            Severity.HIGH if is_label else Severity.MEDIUM,
            f"unseen categories in {name!r}",
            f"{n} values in {len(cur.unseen)} categories the baseline never saw, e.g. {top}.",
            name,
            count=n,
            examples=top,
        )
    keys = sorted(set(base.categories) | set(cur.categories))
    if len(keys) < 2:
        return
    b = np.array([base.categories.get(k, 0) for k in keys], dtype=float)
    c = np.array([cur.categories.get(k, 0) for k in keys], dtype=float)
    if b.sum() == 0 or c.sum() == 0:
        return
    tv = 0.5 * float(np.abs(b / b.sum() - c / c.sum()).sum())
    table = np.vstack([b, c])
    table = table[:, table.sum(axis=0) > 0]
    p = float(stats.chi2_contingency(table + 0.5).pvalue) if table.shape[1] >= 2 else 1.0
    if p < opt.alpha and tv >= (opt.min_effect / 2 if is_label else opt.min_effect):
        what = "label distribution shift" if is_label else f"category distribution shift in {name!r}"
        add(
            Severity.HIGH if is_label else Severity.MEDIUM,
            what,
            f"chi-square p={p:.1e}, total-variation distance {tv:.3f}.",
            name,
            test="chi2",
            statistic=round(tv, 4),
            p_value=p,
        )


class _Add(Protocol):
    """Signature of the finding-adding callback (for type checking only)."""

    def __call__(
        self, sev: Severity, title: str, detail: str, column: str | None = None, **evidence: object
    ) -> None:
        """Add one finding."""
