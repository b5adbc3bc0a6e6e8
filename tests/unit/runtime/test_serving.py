"""What ``mlsecops serve MODEL`` takes MODEL to be, and loading a local model file."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlsecops.core.errors import InputError, MlsecopsError
from mlsecops.runtime.serving import is_registry_ref, load_local


def test_registry_refs_and_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert is_registry_ref("fraud@production") and is_registry_ref("fraud@3") and is_registry_ref("fraud")
    assert not is_registry_ref("model.joblib") and not is_registry_ref("models/fraud")
    (tmp_path / "fraud@1").mkdir()  # an existing path wins over the reference syntax
    assert not is_registry_ref("fraud@1")


def test_load_local_serves_under_the_stem(tmp_path: Path) -> None:
    import joblib
    from sklearn.linear_model import LogisticRegression

    path = tmp_path / "iris-small.joblib"
    joblib.dump(LogisticRegression().fit(np.eye(4), [0, 1, 2, 0]), path)
    served = load_local(path)
    assert served.name == "iris-small" and served.platform == "sklearn"
    assert served.input_shape == (4,) and served.n_classes == 3 and len(served.version) == 12
    assert load_local(path, name="other").name == "other"


def test_load_local_refuses_unsafe_and_ambiguous(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self) -> tuple[Any, ...]:
            return (eval, ("1+1",))

    bad = tmp_path / "evil.pkl"
    bad.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(MlsecopsError):
        load_local(bad)
    two = tmp_path / "two"
    two.mkdir()
    (two / "a.joblib").write_bytes(b"x")
    (two / "b.joblib").write_bytes(b"y")
    with pytest.raises(InputError, match="exactly one model file"):
        load_local(two)
    with pytest.raises(InputError, match="does not exist"):
        load_local(tmp_path / "nope.joblib")
