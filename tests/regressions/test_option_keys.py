"""Unknown stage ``options`` keys were ignored: ``epz: 0.1`` ran with the default budgets, silently.

A typo in a pipeline (or a key an attacker adds to look like a setting) must stop the run before any
stage starts, naming the allowed keys and the closest one; the same values spelled as strings, lists or
numbers mean the same in every stage.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select

from mlsecops.core.checks import Target, get_check
from mlsecops.core.errors import ConfigError
from mlsecops.pipeline import load_pipeline
from mlsecops.store import PipelineRun, Workspace

Cli = Callable[..., Any]

PIPELINE = """
name: typo
stages:
  - {name: scan, check: artifact.scan, paths: [w.pkl], options: {max_seconds: 5}}
  - name: robust
    check: assess.fgsm
    paths: [m.pt2, d.npz]
    options: {%s: 0.1, max_examples: 10}
"""


def _write(tmp_path: Path, key: str) -> Path:
    (tmp_path / "w.pkl").write_bytes(b"\x80\x04K\x01.")
    path = tmp_path / "p.yaml"
    path.write_text(textwrap.dedent(PIPELINE % key))
    return path


def test_unknown_stage_option_is_refused_at_load(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_pipeline(_write(tmp_path, "epz"))
    text = str(err.value)
    assert "stage 'robust'" in text and "'epz'" in text and "Did you mean 'eps'?" in text
    assert "Allowed options:" in text and "max_examples" in text


def test_known_stage_option_loads(tmp_path: Path) -> None:
    pipeline = load_pipeline(_write(tmp_path, "eps"))
    assert pipeline.stages[1].options == {"eps": 0.1, "max_examples": 10}


def test_run_with_unknown_option_exits_2_and_runs_nothing(cli: Cli, tmp_path: Path) -> None:
    _write(tmp_path, "epz")
    assert cli("init").code == 0
    r = cli("run", "p.yaml")
    assert r.code == 2, r.out + r.err
    assert "'eps'" in r.err and "Traceback" not in r.err
    with Workspace.open(tmp_path / ".mlsecops") as ws, ws.session() as s:
        assert s.scalar(select(func.count()).select_from(PipelineRun)) == 0


def test_attack_options_mean_the_same_in_every_spelling(tmp_path: Path) -> None:
    """``eps: "0.1"``, ``eps: [0.1]`` and ``eps: 0.1``; ``steps: "3"`` and ``steps: 3``: one report."""
    from mlsecops.assess._options import tiny_contract_model

    model, data = tiny_contract_model(tmp_path)
    check = get_check("assess.pgd").create()
    metrics = []
    for eps, steps in ((0.1, 3), ("0.1", "3"), ([0.1], 3.0), (["0.1"], " 3 ")):
        options = {"eps": eps, "steps": steps, "restarts": 1, "max_examples": 10}
        report = check.run(Target(paths=(model, data), options=options, seed=1))
        metrics.append(report.metrics)
    assert all(m == metrics[0] for m in metrics) and "robust_accuracy@pgd_linf_0.1" in metrics[0]
    assert np.isfinite(metrics[0]["clean_accuracy"])
    with pytest.raises(ConfigError, match="option 'steps' must be an integer"):
        check.run(Target(paths=(model, data), options={"steps": "3.5"}, seed=1))


def test_cli_values_pass_the_same_reader(cli: Cli, tmp_path: Path) -> None:
    """The CLI builds options too: a bad budget is the same one-line error, exit 2."""
    from mlsecops.assess._options import tiny_contract_model

    model, data = tiny_contract_model(tmp_path)
    args = ("assess", "robustness", "--model", str(model), "--data", str(data), "--max-examples", "5")
    r = cli(*args, "--eps", "0.1,abc", "--attack", "fgsm")
    assert r.code == 2 and "option 'eps' must be numbers like 0.1,0.2" in r.err, r.err
    assert "Traceback" not in r.err
    r = cli(*args, "--eps", "0.1", "--attack", "fgsm", "--format", "json")
    assert r.code in (0, 1) and "robust_accuracy@fgsm_linf_0.1" in r.out
