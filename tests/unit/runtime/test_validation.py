"""Input validation of the guard: every invalid-input class planted, each a 422 naming field and column."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlsecops.core.errors import ConfigError
from mlsecops.data import profile_chunks
from mlsecops.runtime.errors import InvalidInput
from mlsecops.runtime.policy import ValidationPolicy
from mlsecops.runtime.validation import MAX_ISSUES, InputSchema, InputValidator, find_profile

COLUMNS = ("age", "income", "plan")


@pytest.fixture(scope="module")
def profile() -> dict[str, Any]:
    """A profile of training data: age in [18, 90], income ~ N(50, 10), plan coded 1/2/3, label y."""
    rng = np.random.default_rng(0)
    n = 2_000
    age = rng.integers(18, 91, n).astype(float)
    age[:2] = (18.0, 90.0)
    chunk = {
        "age": age,
        "income": rng.normal(50, 10, n),
        "plan": np.array([str(v) for v in rng.integers(1, 4, n)], dtype=object),
        "y": rng.integers(0, 2, n).astype(float),
    }
    return profile_chunks([chunk], label="y").model_dump(mode="json")


def validator(profile: dict[str, Any] | None, **policy: Any) -> InputValidator:
    return InputValidator.for_model(InputSchema((3,), 2), ValidationPolicy(**policy), profile)


def rejected(v: InputValidator, x: Any, field: str = "inputs[0]") -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        v.validate(np.asarray(x), field)
    err = info.value
    assert err.status == 422
    body = err.body()["error"]
    assert isinstance(body, dict) and body["field"] == err.field and body["code"] == "invalid_input"
    assert err.field is not None and err.field.startswith(field)
    assert len(err.message) < 300
    return err


def test_valid_rows_inside_the_profile_pass(profile: dict[str, Any]) -> None:
    v = validator(profile)
    assert v.validate(np.array([[18.0, 50.0, 1.0], [90.0, 31.5, 3.0], [44.0, 60.0, 2.0]])) == []
    assert v.validate(np.array([[30, 50, 2]], dtype=np.int64)) == []  # integers are numbers too
    assert v.validate(np.array([[30.0, 50.0, 2.0]], dtype=np.float32)) == []


def test_value_above_the_training_maximum_names_field_and_column(profile: dict[str, Any]) -> None:
    err = rejected(validator(profile), [[40.0, 50.0, 1.0], [250.0, 50.0, 1.0]])
    assert err.field == "inputs[0][1][0]"
    assert err.message == 'inputs[0][1][0]: column "age" value 250 above the training maximum 90'


def test_value_below_the_training_minimum(profile: dict[str, Any]) -> None:
    err = rejected(validator(profile), [[3.0, 50.0, 1.0]])
    assert err.message == 'inputs[0][0][0]: column "age" value 3 below the training minimum 18'


def test_nan_and_infinity_are_rejected(profile: dict[str, Any]) -> None:
    err = rejected(validator(profile), [[40.0, np.nan, 1.0]])
    assert err.message == 'inputs[0][0][1]: column "income" value is NaN'
    err = rejected(validator(profile), [[40.0, 50.0, np.inf]])
    assert err.field == "inputs[0][0][2]" and "infinite" in err.message
    # without a profile the schema checks still catch them
    err = rejected(validator(None), [[-np.inf, 1.0, 2.0]])
    assert err.message == "inputs[0][0][0]: value is infinite"
    err = rejected(validator(None), [[1.0, 1.0, np.nan]])
    assert err.message == "inputs[0][0][2]: value is NaN"


def test_unseen_category_is_rejected(profile: dict[str, Any]) -> None:
    err = rejected(validator(profile), [[40.0, 50.0, 7.0]])
    assert err.message == 'inputs[0][0][2]: column "plan" value 7 is a category not seen in training'
    err = rejected(validator(profile), [[40.0, 50.0, 2.5]])
    assert err.field == "inputs[0][0][2]"


def test_wrong_feature_count_is_rejected(profile: dict[str, Any]) -> None:
    err = rejected(validator(profile), [[40.0, 50.0]])
    assert err.field == "inputs[0]"
    assert "shape [1x2]" in err.message and "(n, 3)" in err.message
    err = rejected(validator(profile), [40.0, 50.0, 1.0])  # a batch axis is required
    assert "shape [3]" in err.message
    err = rejected(validator(profile), np.float64(3.0))
    assert "scalar" in err.message


def test_non_numeric_dtype_is_rejected(profile: dict[str, Any]) -> None:
    err = rejected(validator(profile), np.array([["40", "50", "1"]]))
    assert err.message.startswith("inputs[0]: datatype <U2 is not numeric")
    err = rejected(validator(profile), np.array([[1 + 2j, 0, 0]]))
    assert "complex128" in err.message
    rejected(validator(None), np.array([[1, 2, 3]], dtype=object))


def test_empty_batch_is_rejected(profile: dict[str, Any]) -> None:
    err = rejected(validator(profile), np.zeros((0, 3)))
    assert err.message == "inputs[0]: no rows"


def test_range_slack_widens_the_bounds(profile: dict[str, Any]) -> None:
    v = validator(profile, range_slack=0.1)  # range 72: up to 97.2
    assert v.validate(np.array([[97.0, 50.0, 1.0]])) == []
    err = rejected(v, [[98.0, 50.0, 1.0]])
    assert err.message == (
        'inputs[0][0][0]: column "age" value 98 above the training maximum 90 '
        "(allowed up to 97.2 with range_slack 0.1)"
    )


def test_infinity_fails_even_when_the_profile_range_is_huge(profile: dict[str, Any]) -> None:
    wide = dict(profile)
    cols = dict(wide["columns"])
    cols["income"] = {**cols["income"], "min": -1e308, "max": 1e308}
    wide["columns"] = cols
    v = validator(wide, range_slack=10.0)  # the slack alone overflows float64
    assert v.validate(np.array([[40.0, 1e308, 1.0]])) == []
    err = rejected(v, [[40.0, np.inf, 1.0]])
    assert err.message == 'inputs[0][0][1]: column "income" value is infinite'


def test_observe_mode_returns_the_flags_instead_of_raising(profile: dict[str, Any]) -> None:
    v = validator(profile, mode="observe")
    flags = v.validate(np.array([[250.0, np.nan, 7.0], [40.0, 50.0, 1.0]]), "inputs[1]")
    assert flags == [
        'inputs[1][0][0]: column "age" value 250 above the training maximum 90',
        'inputs[1][0][1]: column "income" value is NaN',
        'inputs[1][0][2]: column "plan" value 7 is a category not seen in training',
    ]
    assert v.validate(np.array([[40.0, 50.0, 1.0]])) == []
    assert [i.kind for i in v.check(np.array([[250.0, np.nan, 7.0]]))] == ["range", "nan", "category"]


def test_a_batch_of_many_bad_values_is_described_briefly(profile: dict[str, Any]) -> None:
    x = np.full((100_000, 3), np.nan)
    err = rejected(validator(profile), x)
    assert err.message.endswith("(and 299999 more problem(s))")
    issues = validator(profile, mode="observe").check(x)
    assert len(issues) == MAX_ISSUES
    assert issues[-1].message.endswith(f"(and {300_000 - MAX_ISSUES} more)")


def test_messages_never_echo_huge_or_hostile_text(profile: dict[str, Any]) -> None:
    hostile = "inputs[0]" + "\x1b[31m" + "A" * 10_000
    err = rejected(validator(profile), [[1e308, 50.0, 1.0]], field=hostile[:9])
    assert "1e+308" in err.message
    v = validator(profile, mode="observe")
    (flag,) = v.validate(np.array([[1e308, 50.0, 1.0]]), hostile)
    assert "\x1b" not in flag and "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" not in flag
    assert len(flag) < 200
    long_column = dict(profile)
    cols = dict(long_column["columns"])
    age = dict(cols.pop("age"))
    age["name"] = "age\n" + "x" * 5_000
    long_column["columns"] = {age["name"]: age, **cols}
    (flag,) = validator(long_column, mode="observe").validate(np.array([[250.0, 50.0, 1.0]]))
    assert "\n" not in flag and len(flag) < 200


def test_profile_that_does_not_fit_the_model_is_a_config_error(profile: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=r"3 feature column\(s\) \(label 'y' left out\).*takes 4"):
        InputValidator.for_model(InputSchema((4,), 2), ValidationPolicy(), profile)
    with pytest.raises(ConfigError, match="no column 'height'"):
        InputValidator.for_model(
            InputSchema((3,), 2, feature_names=("age", "height", "plan")), ValidationPolicy(), profile
        )
    with pytest.raises(ConfigError, match="expected a `mlsecops data profile` document"):
        InputValidator.for_model(InputSchema((3,), 2), ValidationPolicy(), {"rows": "many"})


def test_feature_names_match_profile_columns_by_name(profile: dict[str, Any]) -> None:
    schema = InputSchema((3,), 2, feature_names=("plan", "age", "income"))
    v = InputValidator.for_model(schema, ValidationPolicy(), profile)
    assert v.validate(np.array([[2.0, 90.0, 50.0]])) == []
    with pytest.raises(InvalidInput, match='inputs\\[0\\]\\[0\\]\\[1\\]: column "age" value 95'):
        v.validate(np.array([[2.0, 95.0, 50.0]]))


def test_schema_from_a_model_adapter_and_image_shaped_inputs() -> None:
    from sklearn.linear_model import LogisticRegression

    from mlsecops.models import SklearnModel

    rng = np.random.default_rng(1)
    x = rng.random((60, 4))
    model = SklearnModel(LogisticRegression().fit(x, rng.integers(0, 3, 60)))
    v = InputValidator.for_model(model, ValidationPolicy(), None)
    assert v.schema == InputSchema((4,), 3)
    assert v.validate(x[:2]) == []
    err = rejected(v, x[:, :3])
    assert "(n, 4)" in err.message
    img = InputValidator.for_model(InputSchema((1, 2, 2), 10), ValidationPolicy(), None)
    bad = np.zeros((2, 1, 2, 2))
    bad[1, 0, 1, 0] = np.nan
    err = rejected(img, bad)
    assert err.field == "inputs[0][1][0][1][0]"  # the index in the tensor as sent
    assert img.validate(np.zeros((2, 4))) == []  # flat rows of the right size are fine


def test_text_categories_are_noted_not_checked() -> None:
    chunk = {"color": np.array(["red", "blue"] * 10, dtype=object), "w": np.arange(20.0)}
    prof = profile_chunks([chunk]).model_dump(mode="json")
    v = InputValidator.for_model(InputSchema((2,), 2), ValidationPolicy(), prof)
    assert any("color" in n and "text" in n for n in v.notes)
    assert v.validate(np.array([[5.0, 3.0]])) == []
    rejected(v, [[5.0, 30.0]])  # the numeric column is still checked


def test_one_row_check_costs_microseconds(profile: dict[str, Any]) -> None:
    v = validator(profile)
    row = np.array([[40.0, 50.0, 2.0]])
    for _ in range(200):
        v.validate(row)
    samples = []
    for _ in range(20):
        start = time.perf_counter()
        for _ in range(200):
            v.validate(row)
        samples.append((time.perf_counter() - start) / 200)
    # Measured at ~10-20 us on a loaded 2-core machine; the bound only catches a gross regression.
    assert statistics.median(samples) < 500e-6


def test_find_profile_prefers_the_policy_then_the_model_lineage(
    profile: dict[str, Any], tmp_path: Path, workspace_home: Path
) -> None:
    from mlsecops.data.manifest import build_manifest, register_dataset
    from mlsecops.store import Workspace, lineage

    csv = tmp_path / "train.csv"
    rows = ["age,income,plan,y"] + [f"{20 + i % 50},{40 + i % 20},{1 + i % 3},{i % 2}" for i in range(200)]
    csv.write_text("\n".join(rows) + "\n")
    with Workspace.init(workspace_home, actor="test") as ws:
        assert find_profile(ws, ValidationPolicy(), "fraud", 1) is None  # no such model version
        register_dataset(build_manifest([csv], name="train", label="y"), home=workspace_home, actor="test")
        with ws.session() as s:
            data = lineage.find_node(s, "dataset", "train", "1")
            assert data is not None
            raw = lineage.add_node(
                s, kind="dataset", name="train.csv", version="abc", digest="0" * 64, actor="t"
            )
            run = lineage.add_node(s, kind="training_run", name="run", version="1", actor="t")
            mv = lineage.add_node(s, kind="model_version", name="fraud", version="1", actor="t")
            lineage.link(s, data, run, "input", actor="t")
            lineage.link(s, raw, mv, "trained_on", actor="t")  # a file-hash node: no profile in it
            lineage.link(s, run, mv, "produced_by", actor="t")
            lineage.add_node(s, kind="model_version", name="fraud", version="2", actor="t")
        found = find_profile(ws, ValidationPolicy(), "fraud", 1)
        assert found is not None and found.origin == "lineage:dataset:train@1"
        v = InputValidator.for_model(InputSchema((3,), 2), ValidationPolicy(), found.profile)
        assert v.validate(np.array([[30.0, 45.0, 2.0]])) == []
        assert "training maximum 69" in v.check(np.array([[80.0, 45.0, 2.0]]))[0].message
        assert find_profile(ws, ValidationPolicy(lineage_profile=False), "fraud", 1) is None
        assert find_profile(ws, ValidationPolicy(), "fraud", 2) is None  # version 2 has no lineage
        assert find_profile(None, ValidationPolicy(), "fraud", 1) is None
        path = tmp_path / "baseline.json"
        path.write_text(json.dumps(profile))
        chosen = find_profile(ws, ValidationPolicy(profile=path), "fraud", 1)
        assert chosen is not None and chosen.origin == f"policy:{path}"
        assert chosen.profile["columns"]["age"]["max"] == 90.0
