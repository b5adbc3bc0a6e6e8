"""The registered data checks: ``data.check`` (validation against a baseline) and ``data.poison``.

``data.check`` options: ``baseline`` (a profile JSON written by ``mlsecops data profile``, or a trusted
data file profiled on the fly), ``label``, ``chunk_rows``, ``alpha``, ``min_effect``, and ``dataset``
(the name of a registered data set: the files must match its newest manifest). Metrics: ``rows``,
``violations``, ``drifted_columns``, ``duplicate_rows`` (the report's timestamps give the run time).
With ``sensitive`` (columns), the bias checks of ``mlsecops.data._bias`` run too (findings named
``data.check.bias``, metric ``bias_issues``): representation against the baseline's group shares or
``reference_groups`` (``"sex=Male:0.5,Female:0.5;race=..."``), label rates and missingness by group,
proxy features.

``data.poison`` options: ``label`` (label column of a CSV/Parquet; a ``.npz`` holds ``X`` and ``y``),
``kind`` (``rows`` or ``ratings``; ratings when the columns are ``user, item, rating, time`` and no label
is named), ``trusted`` (known-clean data with the same columns: the label models learn from it too, which
matters for small batches), ``detectors`` (list; default all row detectors), ``quarantine`` (folder for the clean and
suspect files; recorded in the workspace when the target has a ``home``), ``model`` (a model file, URL or
``python:module:attr`` loaded with ``mlsecops.models.load_model``: its penultimate-layer activations, or
its probabilities for models without internals, are the backdoor detector's features, and rows whose label
it gives less than ``model_min_proba``, default 0.01, are label issues), ``max_rows`` (default
20,000,000 rows or ratings; a larger file is refused before it is read, counted in constant memory; row
data over 200,000 rows is streamed, ``mlsecops.data._stream``). Its report's ``data`` holds
``suspect_rows`` (``{row, score, reason}``, 0-based rows) or ``suspect_accounts``
(``{user, score, reason}``), ``quarantine`` when files were written, and ``model`` (``{model, features}``)
when a model was used.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import JsonValue

from mlsecops.core.checks import CheckKind, ContractCases, Target, register
from mlsecops.core.errors import InputError, VerificationError
from mlsecops.core.findings import Finding, Report, Severity, utcnow
from mlsecops.core.target_executor import EXECUTOR_OPTIONS, executor_from_target
from mlsecops.data._bias import bias_findings, parse_reference_groups
from mlsecops.data._model_features import model_signals
from mlsecops.data._poison import MODEL_MIN_PROBA, ROW_DETECTORS, PoisonResult, scan_accounts, scan_rows
from mlsecops.data._profile import DataProfile, profile_chunks
from mlsecops.data._readers import DEFAULT_CHUNK_ROWS, count_rows, iter_chunks, load_table, load_xy
from mlsecops.data._validate import ValidationOptions, validate
from mlsecops.data.manifest import verify_dataset
from mlsecops.data.quarantine import record_quarantine, write_quarantine

__all__ = ["DataPoisonCheck", "DataValidationCheck", "load_baseline"]

RATINGS_COLUMNS = ("user", "item", "rating", "time")
MAX_POISON_ROWS = 20_000_000
"""Default row limit of ``data.poison`` on row data (option ``max_rows``). Files over
``STREAM_ABOVE_ROWS`` (200,000) rows are streamed: detectors fit on a uniform sample, every row scored
in chunks (``mlsecops.data._stream``)."""
STREAM_ABOVE_ROWS = 200_000
"""Row data above this many rows is scanned in streaming mode."""
MAX_POISON_RATINGS = 20_000_000
"""Default row limit of ``data.poison`` on ratings."""
MAX_ROWS_OPTION = 10**12
"""Largest ``max_rows`` accepted: a bound on the value, not a promise that so many rows fit in memory."""


def _row_limit(path: Path, rows: int, option: int | None, default: int) -> None:
    limit = option or default
    if rows > limit:
        raise InputError(
            f"{path}: more than {limit:,} rows (the --max-rows guard); split or sample the file, or raise"
            " the limit with --max-rows"
        )


def load_baseline(
    path: Path, *, label: str | None = None, seed: int = 0, sensitive: list[str] | None = None
) -> DataProfile:
    """A baseline from a profile JSON, or by profiling a trusted data file (with bias statistics of
    the ``sensitive`` columns).

    Raises:
        InputError: the file is neither a profile nor readable data.
    """
    if path.suffix.lower() == ".json":
        return DataProfile.load(path)
    return profile_chunks(iter_chunks(path), label=label, seed=seed, sensitive=sensitive)


@register(
    "data.check",
    kind=CheckKind.DATA,
    summary="Validate data against a trusted baseline: schema, ranges, categories, missingness, drift, labels",
    metrics=("rows", "violations", "drifted_columns", "duplicate_rows", "bias_issues"),
    options=(
        "baseline",
        "label",
        "chunk_rows",
        "alpha",
        "min_effect",
        "dataset",
        "sensitive",
        "reference_groups",
    ),
)
class DataValidationCheck:
    """Profile each data file in one streaming pass and compare it with the baseline."""

    def run(self, target: Target) -> Report:
        """Validate every path of ``target`` against ``options["baseline"]``.

        Raises:
            InputError: no path or baseline, an unreadable file, a bad option.
        """
        started = utcnow()
        if not target.paths:
            raise InputError("data.check needs at least one data file")
        base_path = target.path_option("baseline")
        if base_path is None:
            raise InputError(
                "data.check needs a baseline: a profile JSON (`mlsecops data profile`) or trusted data"
            )
        label = target.opt_str("label")
        seed = target.seed or 0
        sensitive = target.opt_list("sensitive") or None
        ref_text = target.opt_str("reference_groups")
        ref_groups = parse_reference_groups(ref_text) if ref_text else None
        baseline = load_baseline(base_path, label=label, seed=seed, sensitive=sensitive)
        label = label or baseline.label
        vopts = ValidationOptions(
            alpha=target.opt_float("alpha", 1e-3, lo=0.0, hi=1.0),
            min_effect=target.opt_float("min_effect", 0.1, lo=0.0, hi=1.0),
        )
        chunk_rows = target.opt_int("chunk_rows", DEFAULT_CHUNK_ROWS, lo=1000, hi=50_000_000)
        findings: list[Finding] = []
        rows = 0
        dup = 0.0
        bias_issues = 0
        dataset = target.opt_str("dataset")
        if dataset is not None:
            findings.extend(self._manifest(target, dataset))
        for path in target.paths:
            current = profile_chunks(
                iter_chunks(path, chunk_rows=chunk_rows),
                label=label,
                reference=baseline,
                seed=seed,
                sensitive=sensitive,
            )
            rows += current.rows
            dup += current.duplicate_rows
            findings.extend(validate(baseline, current, artifact=str(path), options=vopts))
            if current.bias is not None:
                biased = bias_findings(
                    current.bias,
                    reference=baseline.bias,
                    reference_groups=ref_groups,
                    artifact=str(path),
                    alpha=vopts.alpha,
                )
                findings.extend(biased)
                bias_issues += len(biased)
        drifted = sum(1 for f in findings if f.evidence.get("test") in ("ks", "chi2"))
        worst = max((f.severity for f in findings), default=None)
        return Report(
            subject=", ".join(str(p) for p in target.paths),
            kind="data.check",
            started=started,
            finished=utcnow(),
            findings=tuple(findings),
            metrics={
                "rows": float(rows),
                "violations": float(len(findings)),
                "drifted_columns": float(drifted),
                "duplicate_rows": round(dup, 1),
                **({"bias_issues": float(bias_issues)} if sensitive else {}),
            },
            verdict="pass" if worst is None or worst < Severity.MEDIUM else "fail",
            data={"baseline": str(base_path), "baseline_fingerprint": baseline.fingerprint},
        )

    @staticmethod
    def _manifest(target: Target, dataset: str) -> list[Finding]:
        if target.home is None:
            raise InputError("option dataset needs a workspace (MLSECOPS_HOME or --home)")
        try:
            verify_dataset(list(target.paths), dataset, home=target.home, database_url=target.database_url)
        except VerificationError as err:
            return [
                Finding(
                    check="data.check.manifest",
                    severity=Severity.CRITICAL,
                    title="data changed without a new manifest",
                    detail=err.diagnostics(),
                    artifact=dataset,
                    remediation="find out who changed the data; if intended, run `mlsecops data register` again",
                    atlas="AML.T0020",
                )
            ]
        return []

    @classmethod
    def contract_cases(cls, tmp_dir: Path) -> ContractCases:
        """A baseline and a shifted batch; and a ragged CSV."""
        rng = np.random.default_rng(0)
        base, new, bad = tmp_dir / "base.csv", tmp_dir / "new.csv", tmp_dir / "ragged.csv"
        for path, shift in ((base, 0.0), (new, 1.0)):
            lines = ["a,b,label"] + [
                f"{x:.4f},{z:.4f},{int(x > 0)}" for x, z in rng.normal(shift, 1.0, size=(300, 2))
            ]
            path.write_text("\n".join(lines) + "\n")
        bad.write_text("a,b,label\n1,2,0\n3,4\n")
        opts: dict[str, JsonValue] = {"baseline": str(base), "label": "label"}
        return ContractCases(
            valid=Target(paths=(new,), options=opts), corrupt=Target(paths=(bad,), options=opts)
        )


@register(
    "data.poison",
    kind=CheckKind.DATA,
    summary="Poisoning detection: label flips, backdoor triggers, outliers, near-duplicates, fake accounts",
    metrics=(
        "rows",
        "ratings",
        "accounts",
        "suspect_*",
        "label_issues",
        "model_label_issues",
        "backdoor_rows",
        "outliers",
        "near_duplicates",
        "campaign_items",
    ),
    options=(
        "label",
        "kind",
        "trusted",
        "detectors",
        "quarantine",
        "model",
        "model_min_proba",
        "max_rows",
        *EXECUTOR_OPTIONS,
    ),
)
class DataPoisonCheck:
    """Flag suspect rows (or accounts) of one data file, optionally quarantining them.

    Args:
        progress: called as each row detector starts with its name, the detectors done and the
            detectors that will run (``scan_rows``).
    """

    def __init__(self, *, progress: Callable[[str, int, int], None] | None = None) -> None:
        self.progress = progress

    def run(self, target: Target) -> Report:
        """Scan ``target.paths[0]``.

        Raises:
            InputError: not exactly one path, unreadable data, a missing label column, a bad option.
        """
        started = utcnow()
        if len(target.paths) != 1:
            raise InputError("data.poison scans exactly one data file")
        path = target.paths[0]
        label = target.opt_str("label")
        kind = target.opt_choice("kind", ("rows", "ratings"))
        max_rows = target.opt_int("max_rows", lo=1, hi=MAX_ROWS_OPTION)
        table: dict[str, np.ndarray] | None = None
        n_rows = count_rows(path, stop_after=max_rows or MAX_POISON_RATINGS)
        _row_limit(path, n_rows, max_rows, MAX_POISON_RATINGS)
        if kind is None and label is None and path.suffix.lower() != ".npz":
            table = load_table(path)
            kind = "ratings" if set(RATINGS_COLUMNS) <= set(table) else "rows"
        seed = target.seed or 0
        model_info: dict[str, JsonValue] = {}
        if kind == "ratings":
            if target.opt_str("model") is not None:
                raise InputError("option model applies to row data (--label or .npz), not to ratings")
            table = table if table is not None else load_table(path)
            res = self._ratings(table, str(path))
            key = "suspect_accounts"
            mask = self._account_mask(table, res)
        else:
            detectors = tuple(target.opt_list("detectors")) or ROW_DETECTORS
            _row_limit(path, n_rows, max_rows, MAX_POISON_ROWS)
            if n_rows > STREAM_ABOVE_ROWS:
                return self._stream(target, path, label, detectors, seed, started)
            X, y, _, classes = load_xy(path, label=label)
            trusted = None
            trusted_path = target.path_option("trusted")
            if trusted_path is not None:
                tX, ty, _, tclasses = load_xy(trusted_path, label=label)
                if tX.shape[1:] != X.shape[1:]:
                    raise InputError(
                        f"{trusted_path}: {tX.shape[1:]} features per row, the data has {X.shape[1:]}"
                    )
                batch_classes = classes
                classes = sorted(set(classes) | set(tclasses))
                code = {c: k for k, c in enumerate(classes)}
                y = np.array([code[c] for c in np.asarray(batch_classes)[y]], dtype=np.int64)
                ty = np.array([code[c] for c in np.asarray(tclasses)[ty]], dtype=np.int64)
                trusted = (tX, ty)
            spec = target.opt_str("model")
            signals = None
            if spec is not None:
                mpath = target.path_option("model")
                if mpath is not None and not spec.startswith(("python:", "http://", "https://")):
                    spec = str(mpath)
                signals = model_signals(spec, X, classes)
            res = scan_rows(
                X,
                y,
                detectors=detectors,
                classes=classes,
                artifact=str(path),
                seed=seed,
                trusted=trusted,
                model=signals,
                model_min_proba=target.opt_float("model_min_proba", MODEL_MIN_PROBA, lo=0.0, hi=0.5),
                progress=self.progress,
                executor=executor_from_target(target),
            )
            if signals is not None:
                model_info = {"model": signals.model, "features": signals.source}
            key = "suspect_rows"
            mask = res.mask if res.mask is not None else np.zeros(X.shape[0], dtype=bool)
        data: dict[str, JsonValue] = {key: list(res.suspects)}
        if model_info:
            data["model"] = model_info
        qdir = target.path_option("quarantine")
        if qdir is not None:
            rows_info: list[dict[str, Any]] = (
                res.suspects if key == "suspect_rows" else [{"row": int(r)} for r in np.flatnonzero(mask)]
            )
            q = write_quarantine(path, mask, rows_info, qdir)
            qjson: dict[str, JsonValue] = dict(q.as_json())
            if target.home is not None:
                qjson.update(
                    record_quarantine(
                        q, home=target.home, database_url=target.database_url, actor=target.actor
                    )
                )
            data["quarantine"] = qjson
        metrics = dict(res.metrics)
        return Report(
            subject=str(path),
            kind="data.poison",
            started=started,
            finished=utcnow(),
            findings=tuple(res.findings),
            metrics=metrics,
            verdict="suspect" if res.suspects else "clean",
            data=data,
        )

    def _stream(
        self,
        target: Target,
        path: Path,
        label: str | None,
        detectors: tuple[str, ...],
        seed: int,
        started: Any,
    ) -> Report:
        """Above ``STREAM_ABOVE_ROWS`` rows: fit on a uniform sample, score every row in chunks."""
        from mlsecops.data._stream import scan_file

        for opt in ("trusted", "model", "quarantine"):
            if target.opt_str(opt) is not None:
                raise InputError(
                    f"option {opt} needs every row in memory: files over {STREAM_ABOVE_ROWS:,} rows are"
                    " streamed without it; split the file or drop the option"
                )
        res = scan_file(
            path,
            label=label,
            detectors=detectors,
            seed=seed,
            executor=executor_from_target(target),
            progress=self.progress,
        )
        data: dict[str, JsonValue] = {"suspect_rows": list(res.suspects), "mode": "streaming"}
        return Report(
            subject=str(path),
            kind="data.poison",
            started=started,
            finished=utcnow(),
            findings=tuple(res.findings),
            metrics=dict(res.metrics),
            verdict="suspect" if res.metrics.get("suspect_rows") else "clean",
            data=data,
        )

    @staticmethod
    def _ratings(table: dict[str, np.ndarray], artifact: str) -> PoisonResult:
        missing = [c for c in RATINGS_COLUMNS if c not in table]
        if missing:
            raise InputError(f"ratings data needs columns {', '.join(RATINGS_COLUMNS)}; missing {missing}")
        for col in ("rating", "time"):
            if table[col].dtype == object:
                raise InputError(
                    f"ratings column {col!r} must be numeric (time: seconds or an ISO timestamp)"
                )
        if table["user"].dtype == object and any(v is None for v in table["user"]):
            raise InputError("ratings column 'user' has missing values")
        return scan_accounts(table["user"], table["item"], table["rating"], table["time"], artifact=artifact)

    @staticmethod
    def _account_mask(table: dict[str, np.ndarray], res: PoisonResult) -> np.ndarray:
        users = table["user"]
        flagged = [s["user"] for s in res.suspects]
        if users.dtype == object:
            return np.isin(users.astype(str), [str(u) for u in flagged])
        return np.isin(users, np.asarray(flagged, dtype=float))

    @classmethod
    def contract_cases(cls, tmp_dir: Path) -> ContractCases:
        """Three well-separated classes with a few flipped labels; and a file without the label column."""
        rng = np.random.default_rng(0)
        y = np.repeat(np.arange(3), 60)
        X = rng.normal(0.0, 1.0, (180, 4)) + 4.0 * np.eye(3, 4)[y]
        y_noisy = y.copy()
        y_noisy[[0, 70, 130]] = [1, 2, 0]
        good, bad = tmp_dir / "train.csv", tmp_dir / "nolabel.csv"
        lines = ["f0,f1,f2,f3,label"] + [
            ",".join(f"{v:.4f}" for v in x) + f",{c}" for x, c in zip(X, y_noisy, strict=True)
        ]
        good.write_text("\n".join(lines) + "\n")
        bad.write_text("f0,f1\n1,2\n3,4\n5,6\n")
        opts: dict[str, JsonValue] = {"label": "label", "detectors": ["labels", "outliers", "duplicates"]}
        return ContractCases(
            valid=Target(paths=(good,), options=opts), corrupt=Target(paths=(bad,), options=opts)
        )
