"""The bounded YAML/JSON readers: limits hold at their edges, ordinary documents pass unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlsecops.core import load_json, load_yaml, parse_json, parse_yaml, read_regular_file
from mlsecops.core.errors import ConfigError, InputError
from mlsecops.core.inputs import MAX_NESTING_DEPTH, MAX_YAML_ALIAS_NODES, MAX_YAML_ALIASES


def test_read_regular_file_limits_and_kinds(tmp_path: Path) -> None:
    f = tmp_path / "f.yaml"
    f.write_bytes(b"x" * 100)
    assert read_regular_file(f, limit=100) == b"x" * 100
    with pytest.raises(InputError, match="100 bytes; the limit is 99 bytes"):
        read_regular_file(f, limit=99, what="policy file")
    with pytest.raises(InputError, match="does not exist"):
        read_regular_file(tmp_path / "nope.yaml", limit=10)
    with pytest.raises(InputError, match="is a directory"):
        read_regular_file(tmp_path, limit=10)
    with pytest.raises(InputError, match="not a regular file"):
        read_regular_file("/dev/null", limit=10)
    link = tmp_path / "link.yaml"
    link.symlink_to(f)
    assert read_regular_file(link, limit=100) == b"x" * 100  # symlinks to regular files are fine


def test_yaml_depth_limit_edges() -> None:
    ok = "[" * MAX_NESTING_DEPTH + "]" * MAX_NESTING_DEPTH
    assert parse_yaml(ok) is not None
    deep = "[" * (MAX_NESTING_DEPTH + 1) + "]" * (MAX_NESTING_DEPTH + 1)
    with pytest.raises(InputError, match=f"nests deeper than {MAX_NESTING_DEPTH} levels"):
        parse_yaml(deep, what="pipeline file p.yaml")


def test_yaml_alias_limits_edges() -> None:
    many = "a: &x 1\nb: [" + ", ".join(["*x"] * MAX_YAML_ALIASES) + "]\n"
    assert len(parse_yaml(many)["b"]) == MAX_YAML_ALIASES
    # one anchor of (n - 1) scalars + the list node itself = n nodes, aliased enough to pass the budget
    n = 200
    fits = MAX_YAML_ALIAS_NODES // n
    assert fits + 1 <= MAX_YAML_ALIASES  # so the expansion budget, not the alias count, refuses it
    base = "a: &x [" + ", ".join(["1"] * (n - 1)) + "]\n"
    assert parse_yaml(base + "b: [" + ", ".join(["*x"] * fits) + "]\n") is not None
    with pytest.raises(InputError, match="aliases expand"):
        parse_yaml(base + "b: [" + ", ".join(["*x"] * (fits + 1)) + "]\n")


def test_yaml_merge_keys_and_plain_documents() -> None:
    doc = "base: &b {x: 1, y: 2}\nderived: {<<: *b, y: 3}\n"
    assert parse_yaml(doc) == {"base": {"x": 1, "y": 2}, "derived": {"x": 1, "y": 3}}
    assert parse_yaml("") is None
    assert parse_yaml(b"k: v\n") == {"k": "v"}


def test_yaml_errors_are_typed() -> None:
    with pytest.raises(ConfigError, match="not valid YAML at line 2"):
        parse_yaml("a: [1,", what="policy file")
    with pytest.raises(ConfigError, match="not valid YAML"):
        parse_yaml("a: 1\n---\nb: 2\n")  # one document only
    with pytest.raises(ConfigError, match="constructor"):
        parse_yaml("a: !!python/name:os.system\n")
    with pytest.raises(ConfigError, match="undefined alias"):
        parse_yaml("a: *nope\n")
    with pytest.raises(InputError, match="not UTF-8"):
        parse_yaml(b"a: \xff\xfe\n")


def test_json_reader(tmp_path: Path) -> None:
    assert parse_json(b'{"a": [1, {"b": "]]]"}]}') == {"a": [1, {"b": "]]]"}]}
    with pytest.raises(InputError, match="not valid JSON"):
        parse_json("{", what="baseline")
    with pytest.raises(InputError, match="not UTF-8"):
        parse_json(b"\xff")
    f = tmp_path / "d.json"
    f.write_text('{"k": 1}')
    assert load_json(f) == {"k": 1}
    g = tmp_path / "g.yaml"
    g.write_text("k: [1, 2]\n")
    assert load_yaml(g) == ({"k": [1, 2]}, b"k: [1, 2]\n")
