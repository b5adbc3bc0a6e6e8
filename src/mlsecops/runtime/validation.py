"""Input validation on the request path: the model's schema and, when known, its training-data profile.

``InputValidator.for_model(schema, policy, profile)`` precomputes everything once per served model
version: the expected feature count, and per feature a lower and an upper bound (the profile's
``[min, max]`` widened by ``range_slack``; without a profile, the largest finite float, so the same
comparison also catches NaN and infinity) and, for categorical columns coded as numbers, the sorted set
of values seen in training. ``check`` then costs two vectorised comparisons and one ``all()`` for a
valid batch; only a batch that fails pays for finding and describing what failed.

Each problem names the field and the position in the tensor, and the column when the profile names it::

    inputs[0][0][3]: column "age" value 250 above the training maximum 90

``enforce`` mode raises :class:`~mlsecops.runtime.errors.InvalidInput` (422) with the first problem
(and how many more there are); ``observe`` mode returns them for the app to log. Messages never echo
more than a short, clipped rendering of a value or a name, whatever the client sent.

The profile comes from the policy (``validation.profile``) or, for a registry model, from the data set
it was trained on (``find_profile``): a ``dataset`` node in the model version's lineage that carries a
``mlsecops data register`` manifest (whose ``profile`` is the ``mlsecops data profile`` document) or a
profile document itself.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import ValidationError

from mlsecops.core.errors import ConfigError
from mlsecops.data import ColumnProfile, DataProfile
from mlsecops.models import ModelAdapter
from mlsecops.runtime.errors import InvalidInput
from mlsecops.runtime.policy import ValidationPolicy
from mlsecops.store import Workspace, lineage

__all__ = [
    "MAX_ISSUES",
    "InputSchema",
    "InputValidator",
    "IssueKind",
    "ProfileSource",
    "ValidationIssue",
    "clip_text",
    "find_profile",
]

MAX_ISSUES = 10
"""Problems described per request; a batch of a million NaNs costs ten messages, not a million."""
MAX_NAME_CHARS = 60
"""Longest column or field name quoted in a message (names come from files and clients)."""
MAX_LINEAGE_NODES = 1_000
"""Ancestors searched for a data profile (the lineage graph of one model is small; a cycle is not)."""
_FINITE_MAX = float(np.finfo(np.float64).max)
"""Bound of a column without a profile: every finite value passes, NaN and infinity fail."""

IssueKind = Literal["dtype", "shape", "empty", "nan", "infinite", "range", "category"]


@dataclass(frozen=True, slots=True)
class ValidationIssue:
    """One problem of one input.

    Attributes:
        kind: What failed (a stable label, for metrics: ``rejected:invalid_input:<kind>``).
        field: Where: the tensor (``inputs[0]``) and, for a value, its index (``inputs[0][2][5]``).
        message: One line for the client and the log, starting with ``field``.
        column: Profile column name of the value, if any.
    """

    kind: IssueKind
    field: str
    message: str
    column: str | None = None


@dataclass(frozen=True, slots=True)
class InputSchema:
    """What the model says one input looks like.

    Attributes:
        input_shape: Shape of one input, without the batch axis.
        n_classes: Classes the model predicts.
        feature_names: Names of the flattened features, when the model knows them (scikit-learn's
            ``feature_names_in_``); used to match profile columns by name instead of by position.
    """

    input_shape: tuple[int, ...]
    n_classes: int
    feature_names: tuple[str, ...] | None = None

    @classmethod
    def from_adapter(cls, model: ModelAdapter) -> InputSchema:
        """The schema of a loaded model adapter."""
        names = getattr(getattr(model, "estimator", None), "feature_names_in_", None)
        return cls(
            input_shape=tuple(int(s) for s in model.input_shape),
            n_classes=int(model.n_classes),
            feature_names=tuple(str(n) for n in names) if names is not None else None,
        )

    @property
    def n_features(self) -> int:
        """Values in one flattened input."""
        return math.prod(self.input_shape)


@dataclass(frozen=True, slots=True)
class ProfileSource:
    """A data profile found for a model, and where it came from (for the start-up log line).

    Attributes:
        profile: The ``mlsecops data profile`` document.
        origin: ``policy:<path>`` or ``lineage:dataset:<name>@<version>``.
    """

    profile: dict[str, Any]
    origin: str


def clip_text(text: str, limit: int = MAX_NAME_CHARS) -> str:
    """``text`` with control characters escaped, cut to ``limit`` characters (with an ellipsis)."""
    return _clip(text[: limit + 1], limit)


@functools.lru_cache(maxsize=256)
def _clip(text: str, limit: int) -> str:
    # Cached: the same few field names come with every request; keys are at most limit + 1 characters.
    shown = "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def _fmt(value: float) -> str:
    """A number in at most a dozen characters: ``250``, ``0.125``, ``1e+300``."""
    return f"{value:.6g}"


class InputValidator:
    """Checks request tensors against one model version's schema and profile; thread-safe (read-only).

    Build it with :meth:`for_model`. Attributes ending in ``_`` are precomputed at build time.

    Attributes:
        schema: The model's input schema.
        mode: ``enforce`` (raise 422) or ``observe`` (return the problems).
        origin: Where the profile came from (``""`` without one).
        notes: Start-up remarks, e.g. columns that cannot be checked (text categories).
    """

    def __init__(
        self,
        schema: InputSchema,
        *,
        mode: Literal["enforce", "observe"],
        lower: np.ndarray,
        upper: np.ndarray,
        train_min: np.ndarray,
        train_max: np.ndarray,
        columns: Sequence[str | None],
        categories: Mapping[int, np.ndarray],
        range_slack: float,
        origin: str = "",
        notes: Sequence[str] = (),
    ) -> None:
        self.schema = schema
        self.mode = mode
        self.origin = origin
        self.notes = tuple(notes)
        self.n_features_ = schema.n_features
        self.lower_ = lower
        self.upper_ = upper
        self.train_min_ = train_min
        self.train_max_ = train_max
        self.columns_ = tuple(clip_text(c) if c is not None else None for c in columns)
        self.categories_ = dict(categories)
        self.range_slack_ = range_slack

    @classmethod
    def for_model(
        cls,
        schema: InputSchema | ModelAdapter,
        policy: ValidationPolicy,
        profile: Mapping[str, Any] | DataProfile | None,
        *,
        origin: str = "",
    ) -> InputValidator:
        """Precompute the checks for one model version.

        Args:
            schema: The model's schema, or its adapter (``input_shape``, ``n_classes``).
            policy: The guard policy's ``validation`` section (mode, range slack).
            profile: A ``mlsecops data profile`` document (parsed JSON or ``DataProfile``), or None for
                schema-only checks (shape, dtype, NaN and infinity).
            origin: Where the profile came from, kept for messages and the start-up log.

        Raises:
            ConfigError: the profile is malformed, or its feature columns do not match the model's
                inputs (count, or names when the model knows its feature names).
        """
        if not isinstance(schema, InputSchema):
            schema = InputSchema.from_adapter(schema)
        n = schema.n_features
        lower = np.full(n, -_FINITE_MAX)
        upper = np.full(n, _FINITE_MAX)
        train_min = np.full(n, np.nan)
        train_max = np.full(n, np.nan)
        columns: list[str | None] = [None] * n
        categories: dict[int, np.ndarray] = {}
        notes: list[str] = []
        if profile is not None:
            prof = _parse_profile(profile, origin)
            for index, col in _match_columns(schema, prof, origin):
                columns[index] = col.name
                if col.type == "numeric" and col.min is not None and col.max is not None:
                    slack = policy.range_slack * (col.max - col.min)
                    # kept finite, so that infinity still fails whatever the profile's range and slack
                    lower[index] = max(col.min - slack, -_FINITE_MAX)
                    upper[index] = min(col.max + slack, _FINITE_MAX)
                    train_min[index], train_max[index] = col.min, col.max
                elif col.type == "categorical":
                    allowed, note = _numeric_categories(col)
                    if allowed is not None:
                        categories[index] = allowed
                    if note:
                        notes.append(note)
        return cls(
            schema,
            mode=policy.mode,
            lower=lower,
            upper=upper,
            train_min=train_min,
            train_max=train_max,
            columns=columns,
            categories=categories,
            range_slack=policy.range_slack,
            origin=origin,
            notes=notes,
        )

    def validate(self, array: np.ndarray, field: str = "inputs[0]") -> list[str]:
        """Check one request tensor.

        Args:
            array: The tensor as decoded from the request, shape ``(n, *input_shape)`` or ``(n, features)``.
            field: The tensor's name in the request, used in messages.

        Returns:
            The problems' messages (empty when the tensor is valid); only in ``observe`` mode can this
            be non-empty.

        Raises:
            InvalidInput: in ``enforce`` mode, when there is a problem (422, ``field`` set to where).
        """
        if self.mode == "observe":
            return [i.message for i in self.check(array, field)]
        issues, total = self._check(array, field)
        if issues:
            first = issues[0]
            more = f" (and {total - 1} more problem(s))" if total > 1 else ""
            raise InvalidInput(first.message + more, field=first.field)
        return []

    def check(self, array: np.ndarray, field: str = "inputs[0]") -> list[ValidationIssue]:
        """The tensor's problems (at most ``MAX_ISSUES``, the last one saying how many more), whatever
        the mode; never raises.
        """
        issues, total = self._check(array, field)
        if total > len(issues):
            last = issues[-1]
            more = f"{last.message} (and {total - len(issues)} more)"
            issues[-1] = ValidationIssue(last.kind, last.field, more, last.column)
        return issues

    def _check(self, array: np.ndarray, field: str) -> tuple[list[ValidationIssue], int]:
        field = clip_text(field)
        arr = np.asarray(array)
        if arr.dtype.kind not in "biuf":
            return [
                ValidationIssue(
                    "dtype", field, f"{field}: datatype {clip_text(str(arr.dtype), 20)} is not numeric"
                )
            ], 1
        n_features = self.n_features_
        shape = arr.shape
        flat_rows = len(shape) == 2 and shape[1] == n_features  # the common case, without math.prod
        if not flat_rows and (len(shape) < 2 or math.prod(shape[1:]) != n_features):
            got = "x".join(str(d) for d in arr.shape) or "scalar"
            want = ", ".join(str(d) for d in self.schema.input_shape)
            return [
                ValidationIssue(
                    "shape",
                    field,
                    f"{field}: shape [{clip_text(got, 40)}] does not match the model's input (n, {want}): "
                    f"each row needs {n_features} value(s)",
                )
            ], 1
        if shape[0] == 0:
            return [ValidationIssue("empty", field, f"{field}: no rows")], 1
        flat = arr if flat_rows else arr.reshape(shape[0], n_features)
        # NaN fails both comparisons and the bounds are finite, so this one pass covers NaN, infinity
        # and the profile's ranges.
        ok = flat >= self.lower_
        ok &= flat <= self.upper_
        in_bounds = bool(ok.all())
        if in_bounds and not self.categories_:
            return [], 0
        issues: list[ValidationIssue] = []
        extra = 0
        if not in_bounds:
            bad = np.flatnonzero(~ok.ravel())
            extra += max(0, bad.size - MAX_ISSUES)
            for pos in bad[:MAX_ISSUES].tolist():
                row, col = divmod(pos, n_features)
                issues.append(self._value_issue(field, row, col, flat[row, col]))
        for col, allowed in self.categories_.items():
            # ``allowed`` ends with +inf and NaN (sentinels), so every index is in bounds; four calls
            # decide a valid column, and NaN (never equal) only costs the failure path below.
            values = flat[:, col]
            hit = allowed[np.searchsorted(allowed, values)] == values
            if hit.all():
                continue
            unseen = np.flatnonzero(~hit & np.isfinite(values))
            room = MAX_ISSUES - len(issues)
            extra += max(0, unseen.size - room)
            for row in unseen[: max(room, 0)].tolist():
                where = self._where(field, row, col)
                issues.append(
                    ValidationIssue(
                        "category",
                        where,
                        f"{where}: {self._column(col)}value {_fmt(float(values[row]))} is a category "
                        "not seen in training",
                        self.columns_[col],
                    )
                )
        return issues, len(issues) + extra

    # -- describing one bad value (only on the failure path) ---------------------------------------

    def _where(self, field: str, row: int, col: int) -> str:
        shape = self.schema.input_shape
        index = np.unravel_index(col, shape) if len(shape) > 1 else (col,)
        return field + f"[{row}]" + "".join(f"[{int(i)}]" for i in index)

    def _column(self, col: int) -> str:
        name = self.columns_[col]
        return f'column "{name}" ' if name is not None else ""

    def _value_issue(self, field: str, row: int, col: int, raw: Any) -> ValidationIssue:
        where = self._where(field, row, col)
        value = float(raw)
        column = self._column(col)
        name = self.columns_[col]
        if math.isnan(value):
            return ValidationIssue("nan", where, f"{where}: {column}value is NaN", name)
        if math.isinf(value):
            return ValidationIssue("infinite", where, f"{where}: {column}value is infinite", name)
        if value > self.upper_[col]:
            side, bound, limit = "above", "maximum", self.train_max_[col]
        else:
            side, bound, limit = "below", "minimum", self.train_min_[col]
        allowed = self.upper_[col] if side == "above" else self.lower_[col]
        slack = (
            f" (allowed {'up' if side == 'above' else 'down'} to {_fmt(allowed)} with range_slack "
            f"{_fmt(self.range_slack_)})"
            if allowed != limit
            else ""
        )
        return ValidationIssue(
            "range",
            where,
            f"{where}: {column}value {_fmt(value)} {side} the training {bound} {_fmt(limit)}{slack}",
            name,
        )


def _parse_profile(profile: Mapping[str, Any] | DataProfile, origin: str) -> DataProfile:
    if isinstance(profile, DataProfile):
        return profile
    try:
        return DataProfile.model_validate(dict(profile))
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise ConfigError(
            f"data profile {origin or '(given)'}: {clip_text(where)}: {first['msg']}; "
            "expected a `mlsecops data profile` document"
        ) from None


_FIX = (
    "name the profile of the model's input features (with --label) in the policy's validation.profile, "
    "or set validation.lineage_profile: false for schema-only checks"
)


def _match_columns(schema: InputSchema, profile: DataProfile, origin: str) -> list[tuple[int, ColumnProfile]]:
    """``(feature index, column)`` pairs: by name when the model knows its feature names, else by order.

    Raises:
        ConfigError: the profile's feature columns (all but the label) do not fit the model's inputs.
    """
    where = f"data profile {origin}" if origin else "the data profile"
    features = [c for c in profile.columns.values() if c.name != profile.label]
    names = schema.feature_names
    if names is not None and len(names) == schema.n_features:
        by_name = {c.name: c for c in features}
        missing = [n for n in names if n not in by_name]
        if not missing:
            return [(i, by_name[n]) for i, n in enumerate(names)]
        raise ConfigError(
            f"{where} has no column {clip_text(missing[0])!r} of the model's {len(names)} input features "
            f"({len(missing)} missing); {_FIX}"
        )
    if len(features) != schema.n_features:
        label = f" (label {clip_text(profile.label)!r} left out)" if profile.label else ""
        raise ConfigError(
            f"{where} has {len(features)} feature column(s){label}, but the model takes "
            f"{schema.n_features} value(s) per input; {_FIX}"
        )
    return list(enumerate(features))


def _numeric_categories(col: ColumnProfile) -> tuple[np.ndarray | None, str]:
    """The sorted numeric codes a categorical column took in training followed by the sentinels +inf
    and NaN (see ``InputValidator._check``), or None with the reason.
    """
    name = clip_text(col.name)
    if col.categories_truncated:
        return None, f"column {name!r}: too many categories in training to check for unseen values"
    codes = []
    for text in col.categories:
        try:
            value = float(text)
        except ValueError:
            continue
        if math.isfinite(value):
            codes.append(value)
    if not codes:
        return None, f"column {name!r}: categories are text; a numeric input cannot be checked against them"
    return np.concatenate([np.unique(np.asarray(codes, dtype=np.float64)), [np.inf, np.nan]]), ""


def find_profile(
    ws: Workspace | None, policy: ValidationPolicy, model: str | None = None, version: str | int | None = None
) -> ProfileSource | None:
    """The data profile to validate a model's inputs against.

    The policy's ``validation.profile`` file comes first; else, for a registry model version and unless
    ``validation.lineage_profile`` is false, the nearest ``dataset`` ancestor in its lineage holding a
    profile (direct ``trained_on`` parents first); else None (schema-only checks).

    Args:
        ws: The workspace (None for a local model file: only the policy's profile can apply).
        policy: The ``validation`` section.
        model: Registry model name.
        version: Registry version number.

    Raises:
        InputError: the policy's profile file is unreadable or not a profile.
        WorkspaceError: the database cannot be read.
    """
    if policy.profile is not None:
        return ProfileSource(
            DataProfile.load(policy.profile).model_dump(mode="json"), f"policy:{policy.profile}"
        )
    if ws is None or model is None or version is None or not policy.lineage_profile:
        return None
    with ws.session(readonly=True) as s:
        node = lineage.find_node(s, "model_version", model, str(version))
        if node is None:
            return None
        graph = lineage.ancestors(s, node, max_nodes=MAX_LINEAGE_NODES)
        children: dict[int, list[int]] = {}
        for parent, child, _relation in graph.edges:
            children.setdefault(child, []).append(parent)
        # Breadth first from the model version: the data it was trained on directly wins over the raw
        # data further up; among equals, the oldest edge (the order they were recorded).
        seen, frontier = {node.id}, [node.id]
        while frontier:
            nxt: list[int] = []
            for nid in frontier:
                for pid in children.get(nid, []):
                    if pid in seen:
                        continue
                    seen.add(pid)
                    nxt.append(pid)
                    parent_node = graph.nodes.get(pid)
                    if parent_node is None or parent_node.kind != "dataset":
                        continue
                    found = _profile_of(lineage.node_attributes(parent_node))
                    if found is not None:
                        label = (
                            f"{parent_node.name}@{parent_node.version}"
                            if parent_node.version
                            else parent_node.name
                        )
                        return ProfileSource(found, f"lineage:dataset:{label}")
            frontier = nxt
    return None


def _profile_of(attributes: dict[str, Any]) -> dict[str, Any] | None:
    """The profile in a dataset node's attributes: a manifest's ``profile``, or a profile itself."""
    schema_id = DataProfile.model_fields["schema_id"].default
    for doc in (attributes.get("profile"), attributes):
        if isinstance(doc, dict) and doc.get("schema_id") == schema_id:
            return doc
    return None
