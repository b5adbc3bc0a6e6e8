"""The light install (no torch): black-box attacks on scikit-learn models run, and every command that
needs torch says which extra to install instead of ``internal error: ModuleNotFoundError`` (issue 12.2).

Each case runs the CLI in a subprocess where ``import torch`` fails as on a machine without it (a
meta-path finder raising ModuleNotFoundError; ``sys.modules['torch'] = None`` would not do, as scipy
probes ``sys.modules`` for torch arrays).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mlsecops.core._lazy import MissingDependencyError, missing_dependency, require

_NO_TORCH = """
import sys

class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _NoTorch())
from mlsecops.cli import main
code = main(sys.argv[1:])
assert "torch" not in sys.modules, "torch was imported"
raise SystemExit(code)
"""
HINT = 'pip install "mlsecops[torch]"'


def _without_torch(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _NO_TORCH, *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def sklearn_case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import joblib
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    folder = tmp_path_factory.mktemp("light")
    digits = load_digits()
    x, y = (digits.data / 16).astype(np.float32), digits.target
    joblib.dump(LogisticRegression(max_iter=300).fit(x[:1000], y[:1000]), folder / "lr.joblib")
    np.savez(folder / "d.npz", X=x[1000:1060], y=y[1000:1060])
    return folder


@pytest.mark.parametrize("attack", ["square", "hopskipjump"])
def test_black_box_attack_on_sklearn_runs_without_torch(sklearn_case: Path, attack: str) -> None:
    out = f"{attack}.json"
    r = _without_torch(
        sklearn_case, "assess", "robustness", "-m", "lr.joblib", "-d", "d.npz", "--attack", attack,
        "--eps", "0.3", "--max-queries", "150", "-o", out,
    )  # fmt: skip
    assert r.returncode in (0, 1), r.stderr
    report = json.loads((sklearn_case / out).read_text())
    key = f"robust_accuracy@{attack}_linf_0.3"
    assert report["metrics"]["clean_accuracy"] > 0.9
    assert report["metrics"][key] < report["metrics"]["clean_accuracy"]


def test_commands_needing_torch_name_the_extra(sklearn_case: Path) -> None:
    # certify runs in torch even on a scikit-learn model: one line naming the extra, exit 2
    r = _without_torch(sklearn_case, "certify", "-m", "lr.joblib", "-d", "d.npz")
    assert r.returncode == 2
    assert HINT in r.stderr and "internal error" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_torchscript_model_without_torch_names_the_extra(tmp_path: Path) -> None:
    from mlsecops.assess._options import tiny_contract_model

    model, data = tiny_contract_model(tmp_path)
    for args in (
        ("assess", "robustness", "-m", str(model), "-d", str(data)),
        ("harden", "adversarial-training", "-m", str(model), "-d", str(data)),
    ):
        r = _without_torch(tmp_path, *args)
        assert r.returncode == 2, r.stderr
        assert "mlsecops[torch]" in r.stderr and "internal error" not in r.stderr


def test_missing_dependency_maps_only_known_optional_modules() -> None:
    err = missing_dependency(ModuleNotFoundError("No module named 'torch.nn'", name="torch.nn"))
    assert isinstance(err, MissingDependencyError) and err.extra == "torch"
    assert 'pip install "mlsecops[torch]"' in err.diagnostics()
    assert missing_dependency(ModuleNotFoundError("x", name="pyarrow")).extra == "data"  # type: ignore[union-attr]
    # a missing module of ours or of a base dependency is a bug, not a missing extra
    assert missing_dependency(ModuleNotFoundError("x", name="mlsecops.nothing")) is None
    assert missing_dependency(ModuleNotFoundError("x", name="pydantic")) is None
    assert missing_dependency(ModuleNotFoundError("x", name="numpy")).extra == "ml"  # type: ignore[union-attr]
    with pytest.raises(ModuleNotFoundError):
        require("mlsecops_not_a_module")
    assert require("json").__name__ == "json"
