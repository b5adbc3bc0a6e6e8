"""Property-based tests (hypothesis) of the policy parsers (issue 19 item 4).

The guard policy: any YAML document whatever is either a policy or a one-line ``ConfigError`` /
``InputError``, never another exception; any key the schema does not know, at any depth, is refused
(a typo never switches a control off); and valid policies built from the schema's own values parse to
exactly those values. The gate's rules: any list of mappings is either rules or a ``ConfigError``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("fastapi")

from mlsecops.core.errors import ConfigError, InputError
from mlsecops.runtime.policy import load_policy

_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
_keys = st.sampled_from(
    ["version", "server", "auth", "limits", "validation", "outputs", "logging", "monitor", "playbooks"]
) | st.text(min_size=1, max_size=12)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=True)
    | st.text(max_size=20)
)
_values: Any = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=10,
)
_counter = iter(range(10**9))


def _write(tmp_path: Path, document: object) -> Path:
    path = tmp_path / f"guard{next(_counter)}.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True))
    return path


@_SETTINGS
@given(document=st.dictionaries(_keys, _values, max_size=5) | _values)
def test_any_document_is_a_policy_or_a_one_line_error(tmp_path: Path, document: object) -> None:
    path = _write(tmp_path, document)
    try:
        load_policy(path)
    except (ConfigError, InputError) as err:
        assert "\n" not in str(err) and str(err)


@pytest.mark.parametrize("key", ["\n", "a\nb", "\r", "\x1b[2J", "\u2028"])
def test_a_key_with_a_line_break_or_escape_is_a_one_line_error(tmp_path: Path, key: str) -> None:
    # found by the property above: a key holding a newline broke the error over two lines
    with pytest.raises(ConfigError) as err:
        load_policy(_write(tmp_path, {key: 1}))
    assert "\n" not in str(err.value) and "\x1b" not in str(err.value) and "\u2028" not in str(err.value)
    with pytest.raises(ConfigError) as err:
        load_policy(_write(tmp_path, {"server": {key: 1}}))
    assert "\n" not in str(err.value) and "Extra inputs" in str(err.value)


_sections = {
    "server": {"max_body_bytes": st.integers(1024, 1 << 24), "request_timeout_s": st.integers(1, 60)},
    "limits": {"requests_per_second": st.integers(1, 1000), "burst": st.integers(1, 2000)},
    "logging": {"sample_rate": st.floats(0, 1), "raw_inputs": st.booleans()},
    "auth": {"anonymous": st.booleans(), "api_keys": st.booleans()},
}


@_SETTINGS
@given(data=st.data())
def test_valid_policies_parse_to_their_values(tmp_path: Path, data: st.DataObject) -> None:
    document: dict[str, Any] = {"version": 1}
    for section, fields in _sections.items():
        chosen = data.draw(st.sets(st.sampled_from(sorted(fields))), label=section)
        if chosen:
            document[section] = {f: data.draw(fields[f], label=f"{section}.{f}") for f in chosen}
    policy = load_policy(_write(tmp_path, document))
    for section, values in document.items():
        if section == "version":
            continue
        for field, value in values.items():
            assert getattr(getattr(policy, section), field) == value


@_SETTINGS
@given(
    section=st.sampled_from(sorted(_sections)),
    typo=st.text(st.characters(min_codepoint=97, max_codepoint=122), min_size=1, max_size=10),
)
def test_an_unknown_key_at_any_depth_is_refused(tmp_path: Path, section: str, typo: str) -> None:
    if typo in _sections[section] or typo in ("api_keys", "anonymous", "jwt"):
        return
    # a valid document with one extra, misspelled key beside a known one
    known, value = {
        "server": ("max_body_bytes", 2048),
        "limits": ("burst", 5),
        "logging": ("sample_rate", 0.5),
        "auth": ("anonymous", False),
    }[section]
    document = {"version": 1, section: {known: value, f"{typo}_x": True}}
    with pytest.raises(ConfigError, match=f"{section}.{typo}_x"):
        load_policy(_write(tmp_path, document))
    with pytest.raises(ConfigError):
        load_policy(_write(tmp_path, {"version": 1, f"{typo}_section": {}}))


@_SETTINGS
@given(
    rules=st.lists(
        st.dictionaries(st.sampled_from(["stage", "max_severity", "metric", "x"]), _values, max_size=3)
    )
)
def test_gate_rules_are_rules_or_a_config_error(rules: list[dict[str, Any]]) -> None:
    from mlsecops.core.checks import get_check
    from mlsecops.pipeline.policy import parse_rules

    stages = {"scan": get_check("artifact.scan"), "robust": get_check("assess.robustness")}
    try:
        parse_rules(rules, stages)
    except ConfigError as err:
        assert str(err)
