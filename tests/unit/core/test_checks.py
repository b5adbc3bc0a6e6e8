"""The check catalogue: registration rules and lookups."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mlsecops.core import ConfigError, Report, Target
from mlsecops.core.checks import CheckKind, all_checks, get_check, register, unregister


@pytest.fixture
def fake_name() -> Iterator[str]:
    name = "test.fake_check"
    yield name
    unregister(name)


def test_register_and_lookup(fake_name: str) -> None:
    @register(fake_name, kind=CheckKind.AUDIT, summary="fake", metrics=("score@*",))
    class Fake:
        def run(self, target: Target) -> Report:
            return Report(subject="s", kind=fake_name)

    spec = get_check(fake_name)
    assert spec.factory is Fake and spec.module == __name__
    assert spec.declares_metric("score@pgd_0.1") and not spec.declares_metric("other")
    assert fake_name in [s.name for s in all_checks()]


def test_second_registration_under_one_name_raises(fake_name: str) -> None:
    @register(fake_name, kind=CheckKind.AUDIT, summary="first")
    class First:
        def run(self, target: Target) -> Report:
            raise NotImplementedError

    with pytest.raises(ValueError, match="registered already"):

        @register(fake_name, kind=CheckKind.AUDIT, summary="second")
        class Second:
            def run(self, target: Target) -> Report:
                raise NotImplementedError


@pytest.mark.parametrize("bad", ["nodot", "Upper.case", "a..b", "a.b-c", ""])
def test_names_must_be_lowercase_dotted(bad: str) -> None:
    with pytest.raises(ValueError, match="lowercase and dotted"):

        @register(bad, kind=CheckKind.AUDIT, summary="x")
        class Fake:
            def run(self, target: Target) -> Report:
                raise NotImplementedError


def test_unknown_check_suggests_close_names() -> None:
    with pytest.raises(ConfigError, match=r"Did you mean 'audit\.verify'"):
        get_check("audit.verfy")


def test_target_resolves_relative_path_options(tmp_path: object) -> None:
    from pathlib import Path

    t = Target(options={"baseline": "b.json", "abs": "/x/y", "n": 3}, base_dir=Path("/proj"))
    assert t.path_option("baseline") == Path("/proj/b.json")
    assert t.path_option("abs") == Path("/x/y")
    assert t.path_option("missing") is None
    with pytest.raises(ConfigError):
        t.path_option("n")
