"""``.pt2`` (torch.export) programs: the recommended PyTorch format, saved and loaded by the adapter."""

from __future__ import annotations

import contextlib
import pickle
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mlsecops.core.errors import InputError, VerificationError
from mlsecops.models import ModelError, TorchModel, load_model

torch = pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).parent))
from adapter_helpers import make_linear  # noqa: E402


def _mlp() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))


def test_save_picks_the_format_by_suffix_or_by_request(tmp_path: Path) -> None:
    m = TorchModel(_mlp(), input_shape=(4,))
    pt2 = m.save(tmp_path / "m.pt2")
    ts = m.save(tmp_path / "m.pt")
    asked = m.save(tmp_path / "m.bin", fmt="torch-export")
    names = zipfile.ZipFile(pt2).namelist()
    assert any(n.endswith("archive_format") for n in names) and not any("/code/" in n for n in names)
    assert any("/code/" in n for n in zipfile.ZipFile(ts).namelist())  # TorchScript keeps its code/ entries
    assert any(n.endswith("archive_format") for n in zipfile.ZipFile(asked).namelist())


def test_writing_and_reading_pt2_emits_no_torchscript_deprecation(tmp_path: Path, xy) -> None:
    x, _ = xy
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = TorchModel(_mlp(), input_shape=(4,)).save(tmp_path / "m.pt2")
        load_model(path).predict_proba(x)
    assert not [w for w in caught if "torch.jit" in str(w.message)]


def test_pt2_round_trip_reads_its_own_input_shape_and_stays_white_box(tmp_path: Path, xy) -> None:
    x, y = xy
    original = TorchModel(_mlp(), input_shape=(4,))
    path = original.save(tmp_path / "m.pt2")
    loaded = load_model(path)  # no input_shape: the program knows it
    assert isinstance(loaded, TorchModel) and loaded.input_shape == (4,) and loaded.n_classes == 3
    np.testing.assert_allclose(loaded.predict_proba(x), original.predict_proba(x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loaded.loss_gradient(x, y), original.loss_gradient(x, y), rtol=1e-4, atol=1e-6)
    assert load_model(path, input_shape=(2, 2)).input_shape == (4,)  # the program's shape wins over a hint


def test_pt2_wrong_input_shape_is_one_line(tmp_path: Path) -> None:
    loaded = load_model(TorchModel(_mlp(), input_shape=(4,)).save(tmp_path / "m.pt2"))
    with pytest.raises(InputError) as info:
        loaded.logits(torch.zeros((2, 7)))
    msg = str(info.value)
    assert "\n" not in msg and "(n, 7)" in msg and "(n, 4)" in msg


def test_exported_module_trains_and_saves_again(tmp_path: Path, xy) -> None:
    x, y = xy
    loaded = load_model(TorchModel(_mlp(), input_shape=(4,)).save(tmp_path / "m.pt2"))
    assert isinstance(loaded, TorchModel)
    module = loaded.module
    module.train()  # exported graphs refuse train()/eval(); the wrapper keeps the export-time mode
    before = loaded.predict_proba(x)
    opt = torch.optim.SGD(module.parameters(), lr=0.5)
    loss = torch.nn.functional.cross_entropy(module(torch.from_numpy(x)), torch.from_numpy(y).long())
    loss.backward()
    opt.step()
    module.eval()
    after = loaded.predict_proba(x)
    assert np.abs(after - before).max() > 1e-4
    again = load_model(loaded.save(tmp_path / "again.pt2"))
    np.testing.assert_allclose(again.predict_proba(x), after, rtol=1e-5, atol=1e-6)
    kept = loaded.save(tmp_path / "generic-suffix.pt")  # a program stays a program whatever the suffix
    assert any(n.endswith("archive_format") for n in zipfile.ZipFile(kept).namelist())
    with pytest.raises(ModelError, match="cannot be written as TorchScript"):
        loaded.save(tmp_path / "as-torchscript.pt", fmt="torchscript")


def test_a_torchscript_module_cannot_become_pt2(tmp_path: Path) -> None:
    scripted = load_model(TorchModel(_mlp(), input_shape=(4,)).save(tmp_path / "m.pt"), input_shape=(4,))
    assert isinstance(scripted, TorchModel)
    with pytest.raises(ModelError, match="TorchScript"):
        scripted.save(tmp_path / "m.pt2")


def _hostile_pt2(tmp_path: Path, marker: Path) -> Path:
    """A real .pt2 whose sample inputs entry is a torch.save pickle calling os.system.

    torch.export.load reads that entry with torch.load and falls back to ``weights_only=False``.
    """
    good = TorchModel(_mlp(), input_shape=(4,)).save(tmp_path / "m.pt2")
    payload = tmp_path / "payload.pt"
    torch.save(_Touch(str(marker)), payload)
    hostile = tmp_path / "hostile.pt2"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(hostile, "w") as out:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename.endswith("sample_inputs/model.pt"):
                data = payload.read_bytes()
            out.writestr(info, data)
    return hostile


def test_hostile_pt2_payload_is_live_without_the_guard(tmp_path: Path) -> None:
    marker = tmp_path / "live"
    hostile = _hostile_pt2(tmp_path, marker)
    with contextlib.suppress(Exception):  # whether torch then fails or not, the payload has run
        torch.export.load(hostile)
    assert marker.exists()


def test_hostile_pt2_is_refused_unrun(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    hostile = _hostile_pt2(tmp_path, marker)
    with pytest.raises(VerificationError, match="refusing to load"):
        load_model(hostile)
    assert not marker.exists()


def test_python_weights_load_through_the_scanner(tmp_path: Path, xy) -> None:
    x, _ = xy
    weights = tmp_path / "w.pt"
    torch.save(make_linear().state_dict(), weights)
    m = load_model("python:adapter_helpers:make_linear", input_shape=(4,), weights=weights)
    assert m.predict_proba(x).shape == (30, 3)
    marker = tmp_path / "pwned"
    hostile = tmp_path / "hostile.pt"
    hostile.write_bytes(pickle.dumps(_Touch(str(marker))))
    with pytest.raises(VerificationError, match="refusing to load"):
        load_model("python:adapter_helpers:make_linear", input_shape=(4,), weights=hostile)
    assert not marker.exists()
    program = TorchModel(_mlp(), input_shape=(4,)).save(tmp_path / "m.pt2")
    with pytest.raises(ModelError, match="not a state dict"):
        load_model("python:adapter_helpers:make_linear", input_shape=(4,), weights=program)
    with pytest.raises(InputError, match="applies only to a python:module:attr"):
        load_model(program, weights=weights)  # never silently ignored


def test_python_references_need_their_prefix() -> None:
    from mlsecops.models import import_object

    with pytest.raises(InputError, match="python:"):
        import_object("os:system")


class _Touch:
    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.system, (f"touch {self.target}",))
