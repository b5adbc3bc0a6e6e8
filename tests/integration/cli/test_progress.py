"""Long commands show a sign of life (issue 12.4): assess robustness, certify and harden report
progress through a callback into the library (which draws nothing itself), and the CLI turns it into
a bar on a terminal only."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from mlsecops.core.checks import Target


def _steps() -> tuple[list[tuple[str, int, int]], object]:
    seen: list[tuple[str, int, int]] = []
    return seen, lambda step, done, total: seen.append((step, done, total))


def _assert_runs_to_the_end(seen: list[tuple[str, int, int]]) -> None:
    assert seen, "no progress reported"
    dones = [d for _, d, _ in seen]
    assert dones == sorted(dones)  # never backwards
    _, last, total = seen[-1]
    assert last == total > 0  # ends full


@pytest.fixture(scope="module")
def sklearn_case(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    import joblib
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    folder = tmp_path_factory.mktemp("progress")
    digits = load_digits()
    x, y = (digits.data / 16).astype(np.float32), digits.target
    joblib.dump(LogisticRegression(max_iter=300).fit(x[:800], y[:800]), folder / "lr.joblib")
    np.savez(folder / "d.npz", X=x[800:830], y=y[800:830])
    return folder / "lr.joblib", folder / "d.npz"


def test_robustness_reports_each_attack_and_budget(sklearn_case: tuple[Path, Path]) -> None:
    from mlsecops.assess import RobustnessCheck

    seen, hook = _steps()
    model, data = sklearn_case
    opts = {"eps": [0.1, 0.2], "max_queries": 30, "attack": "square,hopskipjump"}
    RobustnessCheck(progress=hook).run(Target(paths=(model, data), options=opts))  # type: ignore[arg-type]
    _assert_runs_to_the_end(seen)
    assert seen[-1][2] == 4 and {s for s, _, _ in seen} >= {"square eps=0.1", "hopskipjump eps=0.2"}


def test_certify_and_harden_report_progress(tmp_path: Path) -> None:
    from mlsecops.assess import CertifyCheck
    from mlsecops.assess._options import tiny_contract_model
    from mlsecops.harden.check import AdversarialTrainingCheck

    model, data = tiny_contract_model(tmp_path)
    seen, hook = _steps()
    CertifyCheck(progress=hook).run(  # type: ignore[arg-type]
        Target(paths=(model, data), options={"n": 20, "n0": 5, "max_examples": 10})
    )
    _assert_runs_to_the_end(seen)
    seen, hook = _steps()
    opts = {"epochs": 2, "steps": 2, "eval_steps": 2, "output": str(tmp_path / "hard.pt")}
    AdversarialTrainingCheck(progress=hook).run(Target(paths=(model, data), options=opts))  # type: ignore[arg-type]
    _assert_runs_to_the_end(seen)
    assert [s for s, _, _ in seen] == ["attack before", "epoch 1", "epoch 2", "attack after"]


def test_the_bar_is_drawn_on_a_terminal_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.console import Console

    from mlsecops.cli import _common

    terminal = io.StringIO()
    monkeypatch.setattr(_common, "_consoles", {True: Console(file=terminal, force_terminal=True, width=80)})
    with _common.progress_hook("assess.robustness") as hook:
        hook("square eps=0.1\x1b[2J", 1, 2)
    assert "square eps=0.1" in terminal.getvalue() and "\x1b[2J" not in terminal.getvalue()
    for quiet, console in ((True, Console(file=io.StringIO(), force_terminal=True)), (False, None)):
        pipe = io.StringIO()
        monkeypatch.setattr(_common, "_consoles", {True: console or Console(file=pipe)})  # not a terminal
        with _common.progress_hook("x", quiet=quiet) as hook:
            hook("step", 1, 1)
        assert pipe.getvalue() == "" and (console is None or console.file.getvalue() == "")
