"""The typed option reader on ``Target``: one value means the same in every check that reads it."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import JsonValue

from mlsecops.core.checks import MAX_OPTION_LIST, Target, all_checks, get_check
from mlsecops.core.errors import ConfigError


def _t(**options: JsonValue) -> Target:
    return Target(options=options)


@pytest.mark.parametrize("value", [0.1, "0.1", [0.1], ["0.1"], " 0.1 ", "0.1,"])
def test_float_list_spellings_agree(value: JsonValue) -> None:
    assert _t(eps=value).opt_float_list("eps") == [0.1]


@pytest.mark.parametrize("value", ["0.1,0.2", [0.1, 0.2], ["0.1", 0.2], "0.1, 0.2"])
def test_float_list_of_two(value: JsonValue) -> None:
    assert _t(eps=value).opt_float_list("eps") == [0.1, 0.2]


@pytest.mark.parametrize("value", [10, "10", 10.0, " 10 "])
def test_int_spellings_agree(value: JsonValue) -> None:
    assert _t(steps=value).opt_int("steps") == 10


@pytest.mark.parametrize("value", [3, "3", 3.0])
def test_name_from_a_number(value: JsonValue) -> None:
    assert _t(label=value).opt_str("label") in ("3", "3.0")
    assert _t(label=3).opt_str("label") == "3"


@pytest.mark.parametrize(
    ("value", "expected"), [(True, True), ("true", True), ("False", False), (False, False)]
)
def test_bool_spellings(value: JsonValue, expected: bool) -> None:
    assert _t(flag=value).opt_bool("flag") is expected


def test_absent_null_and_empty_mean_default() -> None:
    for target in (_t(), _t(steps=None), _t(steps="")):
        assert target.opt_int("steps", 7) == 7
        assert target.opt_float_list("steps") == []
        assert target.opt_list("steps") == []
        assert target.opt_str("steps") is None
        assert target.path_option("steps") is None
        assert target.opt_bool("steps", True) is True


def test_lists_of_names() -> None:
    assert _t(a="PGD, square").opt_list("a", lower=True) == ["pgd", "square"]
    assert _t(a=["pgd", "Square"]).opt_list("a") == ["pgd", "Square"]
    assert _t(a=[0, 3]).opt_int_list("a") == _t(a="0,3").opt_int_list("a") == [0, 3]


@pytest.mark.parametrize(
    ("method", "value", "expected"),
    [
        ("opt_int", True, "must be an integer"),
        ("opt_int", "0.5", "must be an integer"),
        ("opt_int", "ten", "must be an integer"),
        ("opt_int", [1], "must be an integer"),
        ("opt_float", "nan", "must be a number"),
        ("opt_float", "inf", "must be a number"),
        ("opt_float", False, "must be a number"),
        ("opt_float", {"a": 1}, "must be a number"),
        ("opt_bool", 1, "must be true or false"),
        ("opt_bool", "yes please", "must be true or false"),
        ("opt_str", True, "must be a string"),
        ("opt_str", ["a"], "must be a string"),
        ("opt_float_list", "0.1,abc", "numbers like 0.1,0.2"),
        ("opt_float_list", [True], "numbers like 0.1,0.2"),
        ("opt_int_list", "0,1.5", "whole numbers"),
        ("opt_list", [{"a": 1}], "a list of names"),
        ("path_option", 5, "a path string"),
    ],
)
def test_wrong_values_name_the_option_the_type_and_the_value(
    method: str, value: JsonValue, expected: str
) -> None:
    with pytest.raises(ConfigError) as err:
        getattr(_t(opt=value), method)("opt")
    text = str(err.value)
    assert text.startswith("option 'opt' must be") and expected in text and "got " in text
    assert len(text.splitlines()) == 1


def test_ranges_are_enforced_and_named() -> None:
    with pytest.raises(ConfigError, match=r"'n' must be an integer >= 1; got '0'"):
        _t(n="0").opt_int("n", lo=1)
    with pytest.raises(ConfigError, match=r"in \[0, 1\]; got 2"):
        _t(alpha=2).opt_float("alpha", lo=0.0, hi=1.0)
    with pytest.raises(ConfigError, match=r"got '-0.1'"):
        _t(eps="0.1,-0.1").opt_float_list("eps", lo=0.0)
    assert _t(alpha="1").opt_float("alpha", lo=0.0, hi=1.0) == 1.0


def test_choice() -> None:
    assert _t(kind="rows").opt_choice("kind", ("rows", "ratings")) == "rows"
    with pytest.raises(ConfigError, match="one of rows, ratings; got 'row'"):
        _t(kind="row").opt_choice("kind", ("rows", "ratings"))


def test_hostile_sizes_are_bounded() -> None:
    with pytest.raises(ConfigError, match=f"at most {MAX_OPTION_LIST}"):
        _t(eps=",".join(["0.1"] * (MAX_OPTION_LIST + 1))).opt_float_list("eps")
    message = ""
    try:
        _t(n="9" * 100_000).opt_int("n")
    except ConfigError as err:
        message = str(err)
    assert 0 < len(message) < 200  # the value is cut in the message


def test_every_builtin_check_declares_its_options() -> None:
    undeclared = [spec.name for spec in all_checks() if spec.options is None]
    assert undeclared == []


def test_unknown_key_is_refused_with_the_closest_allowed() -> None:
    with pytest.raises(ConfigError) as err:
        get_check("assess.pgd").check_options({"eps": 0.1, "epz": 0.1})
    text = str(err.value)
    assert "'epz'" in text and "Did you mean 'eps'?" in text and "max_examples" in text
    get_check("assess.pgd").check_options({"eps": 0.1, "steps": "10"})  # benign twin


def test_running_a_check_directly_refuses_unknown_keys(tmp_path: Path) -> None:
    """The CLI and library callers run checks directly: the same key check applies before any work."""
    model = tmp_path / "w.pkl"
    model.write_bytes(b"\x80\x04K\x01.")
    check = get_check("artifact.scan").create()
    with pytest.raises(ConfigError, match="Did you mean 'max_seconds'"):
        check.run(Target(paths=(model,), options={"max_second": 5}))
    assert check.run(Target(paths=(model,), options={"max_seconds": 5, "workers": 1})).verdict


def test_scanner_options_mean_the_same_in_every_spelling(tmp_path: Path) -> None:
    model = tmp_path / "w.pkl"
    model.write_bytes(b"\x80\x04K\x01.")
    check = get_check("artifact.scan").create()
    typed = check.run(Target(paths=(model,), options={"max_seconds": 5, "workers": 1, "sha256": False}))
    text = check.run(Target(paths=(model,), options={"max_seconds": "5", "workers": "1", "sha256": "false"}))
    assert typed.findings == text.findings and typed.verdict == text.verdict
    assert typed.data == text.data
    with pytest.raises(ConfigError, match="option 'workers' must be an integer >= 1"):
        check.run(Target(paths=(model,), options={"workers": 0}))


def test_signing_shard_size_spellings_agree(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "w.bin").write_bytes(b"\x01" * 5000)
    check = get_check("sign.model").create()
    digests = set()
    for shard in (1024, "1024", 1024.0):
        options: dict[str, JsonValue] = {
            "key": str(tmp_path / "k.key"),
            "create_key": "true",
            "shard_size": shard,
        }
        digests.add(check.run(Target(paths=(model,), options=options)).data["model_digest"])
    assert len(digests) == 1
    with pytest.raises(ConfigError, match="option 'shard_size' must be an integer"):
        check.run(Target(paths=(model,), options={"key": str(tmp_path / "k.key"), "shard_size": "1k"}))


def test_data_check_label_given_as_a_number(tmp_path: Path) -> None:
    """``label: 3`` names the column "3" in data.check as in every other stage."""
    rows = "\n".join(f"{i % 7},{i % 2}" for i in range(200))
    (tmp_path / "base.csv").write_text("a,3\n" + rows + "\n")
    (tmp_path / "new.csv").write_text("a,3\n" + rows + "\n")
    check = get_check("data.check").create()
    reports = [
        check.run(
            Target(
                paths=(tmp_path / "new.csv",),
                options={"baseline": str(tmp_path / "base.csv"), "label": label, "chunk_rows": chunk},
            )
        )
        for label, chunk in ((3, 1000), ("3", "1000"))
    ]
    assert reports[0].findings == reports[1].findings and reports[0].metrics == reports[1].metrics
