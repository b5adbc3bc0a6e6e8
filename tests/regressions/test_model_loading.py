"""Issue 11 item 2: a model file the scanner does not judge safe is never loaded, by any entry point.

Each hostile model carries a payload that creates a marker file when its code runs: a TorchScript
archive whose ``code/`` entry calls ``torch.from_file`` (built by editing the zip of a real scripted
model), a ``.pt2`` program whose sample-inputs entry is a ``torch.save`` pickle (``torch.export.load``
falls back to ``weights_only=False`` on it), a pickle and a joblib file whose ``__reduce__`` calls
``os.system``. Every entry point (the
library's ``load_model``, the CLI's ``assess robustness``, ``certify``, ``harden``, ``data poison
--model``, a pipeline with and without a scan stage) must refuse them with the marker absent; the benign
twins load and work. A file rewritten in place after the scan is loaded as the bytes that were scanned.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import textwrap
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from mlsecops.core.errors import InputError, VerificationError
from mlsecops.models import TorchModel, load_estimator, load_model
from mlsecops.supplychain import UnsafeArtifactError, safe_load

torch = pytest.importorskip("torch")
joblib = pytest.importorskip("joblib")

N_FEATURES = 4


class _Touch:
    """Pickles to ``os.system("touch <marker>")``: running its code leaves the marker behind."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(N_FEATURES, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))


def _benign_torchscript(folder: Path) -> Path:
    return TorchModel(_net(), input_shape=(N_FEATURES,)).save(folder / "benign.pt")


def _hostile_torchscript(folder: Path, marker: Path) -> Path:
    """A real scripted model whose Sequential.forward first maps (and so creates) ``marker``.

    Every ``code/`` entry holding the Sequential's forward is edited: when other tests of the same
    process scripted a Sequential before, TorchScript stores this one under a mangled name.
    """
    benign = _benign_torchscript(folder)
    hostile = folder / "hostile.pt"
    first = "    input0 = (_0).forward(input, )\n"
    payload = f"    _3 = torch.from_file({str(marker)!r}, True, 8)\n"
    edited = 0
    with zipfile.ZipFile(benign) as src, zipfile.ZipFile(hostile, "w") as out:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename.endswith(".py.debug_pkl"):
                continue  # source ranges of the original code; optional
            if "/code/" in info.filename and info.filename.endswith(".py") and first.encode() in data:
                text = data.decode().replace(
                    first, payload + "    input0 = (_0).forward(torch.add(input, torch.sum(_3)), )\n"
                )
                data = text.encode()
                edited += 1
            out.writestr(info, data)
    assert edited >= 1
    return hostile


def _hostile_pt2(folder: Path, marker: Path) -> Path:
    good = TorchModel(_net(), input_shape=(N_FEATURES,)).save(folder / "benign.pt2")
    payload = folder / "payload.pt"
    torch.save(_Touch(marker), payload)
    hostile = folder / "hostile.pt2"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(hostile, "w") as out:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename.endswith("sample_inputs/model.pt"):
                data = payload.read_bytes()
            out.writestr(info, data)
    return hostile


def _hostile_pickles(folder: Path, marker: Path) -> list[Path]:
    pkl = folder / "hostile.pkl"
    pkl.write_bytes(pickle.dumps(_Touch(marker)))
    jbl = folder / "hostile.joblib"
    joblib.dump(_Touch(marker), jbl)
    return [pkl, jbl]


def _data(folder: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    x = rng.random((48, N_FEATURES)).astype(np.float32)
    y = np.arange(len(x)) % 3  # balanced classes: every detector of `data poison` has enough rows
    npz = folder / "data.npz"
    np.savez(npz, X=x, y=y)
    csv = folder / "data.csv"
    lines = ["a,b,c,d,label"] + [
        ",".join(f"{v:.5f}" for v in row) + f",{k}" for row, k in zip(x, y, strict=True)
    ]
    csv.write_text("\n".join(lines) + "\n")
    return npz, csv


@pytest.fixture
def planted(tmp_path: Path) -> dict[str, Path]:
    marker = tmp_path / "PWNED"
    ts = _hostile_torchscript(tmp_path, marker)
    pt2 = _hostile_pt2(tmp_path, marker)
    pkl, jbl = _hostile_pickles(tmp_path, marker)
    npz, csv = _data(tmp_path)
    return {
        "marker": marker,
        "torchscript": ts,
        "pt2": pt2,
        "pickle": pkl,
        "joblib": jbl,
        "npz": npz,
        "csv": csv,
    }


def test_the_torchscript_payload_is_live_when_loaded_without_the_guard(tmp_path: Path) -> None:
    """Proves the planted model would run its payload: the refusals below are not vacuous."""
    marker = tmp_path / "live"
    hostile = _hostile_torchscript(tmp_path, marker)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = torch.jit.load(str(hostile))  # type: ignore[no-untyped-call]
    module(torch.zeros((1, N_FEATURES)))
    assert marker.exists()


def test_the_pt2_payload_is_live_when_loaded_without_the_guard(tmp_path: Path) -> None:
    marker = tmp_path / "live"
    hostile = _hostile_pt2(tmp_path, marker)
    with contextlib.suppress(Exception):  # whether torch then fails or not, the payload has run
        torch.export.load(hostile)
    assert marker.exists()


@pytest.mark.parametrize("kind", ["torchscript", "pt2", "pickle", "joblib"])
def test_library_entry_points_refuse_without_running(planted: dict[str, Path], kind: str) -> None:
    path = planted[kind]
    with pytest.raises(UnsafeArtifactError) as info:
        load_model(path, input_shape=(N_FEATURES,))
    assert isinstance(info.value, VerificationError) and "refusing to load" in str(info.value)
    with pytest.raises(UnsafeArtifactError):
        safe_load(path)
    if kind in ("torchscript", "pt2"):
        with pytest.raises(UnsafeArtifactError):
            TorchModel.from_file(path, input_shape=(N_FEATURES,))
    else:
        with pytest.raises(UnsafeArtifactError):
            load_estimator(path)
    assert not planted["marker"].exists()


def _commands(model: Path, p: dict[str, Path], out: Path) -> dict[str, list[str]]:
    npz, csv = str(p["npz"]), str(p["csv"])
    return {
        "assess robustness": [
            "assess",
            "robustness",
            "--model",
            str(model),
            "--data",
            npz,
            "--eps",
            "0.1",
            "--steps",
            "2",
            "--max-examples",
            "8",
        ],
        "certify": [
            "certify",
            "--model",
            str(model),
            "--data",
            npz,
            "--n",
            "20",
            "--n0",
            "5",
            "--max-examples",
            "4",
        ],
        "harden": [
            "harden",
            "adversarial-training",
            "--model",
            str(model),
            "--data",
            npz,
            "--epochs",
            "1",
            "--steps",
            "1",
            "--out-model",
            str(out),
        ],
        "data poison --model": [
            "data",
            "poison",
            csv,
            "--label",
            "label",
            "--detectors",
            "backdoor,outliers",
            "--model",
            str(model),
        ],
    }


@pytest.mark.parametrize("command", ["assess robustness", "certify", "harden", "data poison --model"])
@pytest.mark.parametrize("kind", ["torchscript", "pt2", "pickle"])
def test_cli_commands_refuse_without_running(
    planted: dict[str, Path], cli: Callable[..., object], command: str, kind: str, tmp_path: Path
) -> None:
    args = _commands(planted[kind], planted, tmp_path / "hardened.pt")[command]
    result = cli(*args)
    assert result.code == 2, result  # type: ignore[attr-defined]
    assert "refusing to load" in result.err  # type: ignore[attr-defined]
    assert not planted["marker"].exists()
    assert not (tmp_path / "hardened.pt").exists()


@pytest.mark.parametrize("command", ["assess robustness", "certify", "harden", "data poison --model"])
@pytest.mark.parametrize("suffix", [".pt", ".pt2"])
def test_cli_commands_run_the_benign_twin(
    planted: dict[str, Path], cli: Callable[..., object], command: str, suffix: str, tmp_path: Path
) -> None:
    benign = TorchModel(_net(), input_shape=(N_FEATURES,)).save(tmp_path / f"twin{suffix}")
    result = cli(*_commands(benign, planted, tmp_path / "hardened.pt")[command])
    assert result.code in (0, 1), result  # type: ignore[attr-defined]  # ran (1: its policy failed)
    assert "refusing" not in result.err  # type: ignore[attr-defined]


def _pipeline(folder: Path, model: Path, data: Path, *, scan: bool) -> Path:
    stages = ""
    if scan:
        stages += f"  - {{name: scan, check: artifact.scan, paths: [{model}], options: {{workers: 1}}}}\n"
    stages += (
        f"  - {{name: robustness, check: assess.robustness, paths: [{model}, {data}],"
        " options: {eps: [0.1], steps: 2, max_examples: 8}}\n"
        f"  - {{name: certify, check: assess.certify, paths: [{model}, {data}],"
        " options: {n: 20, n0: 5, max_examples: 4}}\n"
    )
    path = folder / "pipeline.yaml"
    path.write_text(textwrap.dedent("name: p\nstages:\n") + stages)
    return path


@pytest.mark.parametrize("kind", ["torchscript", "pt2", "pickle"])
def test_pipeline_does_not_load_what_its_scan_stage_flagged(planted: dict[str, Path], kind: str) -> None:
    from mlsecops.pipeline import load_pipeline, run_pipeline

    folder = planted["npz"].parent
    run = run_pipeline(load_pipeline(_pipeline(folder, planted[kind], planted["npz"], scan=True)))
    assert not run.passed
    by_stage = {r.stage.name: r for r in run.stages}
    assert by_stage["scan"].report.verdict == "malicious"
    for name in ("robustness", "certify"):
        refused = by_stage[name]
        assert refused.error is not None and "judged" in refused.error
        (finding,) = refused.report.findings
        assert finding.check == "pipeline.unsafe_artifact" and finding.location["judged_by"] == "scan"
    assert not planted["marker"].exists()


def test_pipeline_without_a_scan_stage_still_refuses_at_load(planted: dict[str, Path]) -> None:
    from mlsecops.pipeline import load_pipeline, run_pipeline

    folder = planted["npz"].parent
    run = run_pipeline(load_pipeline(_pipeline(folder, planted["torchscript"], planted["npz"], scan=False)))
    assert not run.passed
    for result in run.stages:
        assert result.error is not None and "refusing to load" in result.error
    assert not planted["marker"].exists()


def test_pipeline_benign_twin_runs_every_stage(tmp_path: Path) -> None:
    from mlsecops.pipeline import load_pipeline, run_pipeline

    benign = _benign_torchscript(tmp_path)
    npz, _ = _data(tmp_path)
    run = run_pipeline(load_pipeline(_pipeline(tmp_path, benign, npz, scan=True)))
    assert [r.error for r in run.stages] == [None, None, None]
    assert run.stages[0].report.verdict == "safe"
    assert "clean_accuracy" in run.stages[1].report.metrics


def test_a_file_rewritten_after_the_scan_loads_as_the_scanned_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Check-then-use: the loader reads the private snapshot the scanner judged, not the file again."""
    import mlsecops.supplychain.scanner._guard as guard

    marker = tmp_path / "swapped"
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    hostile = pickle.dumps(_Touch(marker))
    real_scan = guard.scan_fd

    def scan_then_rewrite(fd: int, name: str, **kw: object) -> object:
        result = real_scan(fd, name, **kw)  # type: ignore[arg-type]
        with open(path, "r+b") as fh:  # same inode, new content: what an attacker racing the load does
            fh.write(hostile)
        return result

    monkeypatch.setattr(guard, "scan_fd", scan_then_rewrite)
    assert safe_load(path) == {"weights": [1, 2, 3]}
    assert path.read_bytes().startswith(hostile)
    assert not marker.exists()


def test_state_dict_given_as_a_model_says_what_to_give_instead(tmp_path: Path) -> None:
    path = tmp_path / "weights.pt"
    torch.save(_net().state_dict(), path)
    with pytest.raises(InputError) as info:
        load_model(path, input_shape=(N_FEATURES,))
    msg = str(info.value)
    assert "state_dict" in msg and ".pt2" in msg and "python:" in msg and "corrupt" not in msg
    assert "\n" not in msg


def test_whole_pickled_module_is_named_not_called_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "whole.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.save(_net(), path)
    with pytest.raises((InputError, VerificationError)) as info:
        load_model(path, input_shape=(N_FEATURES,))
    msg = str(info.value)
    assert "\n" not in msg and "corrupt" not in msg
    assert "torch.export" in msg or "refusing to load" in msg


def test_wrong_input_shape_is_one_line_naming_both_shapes(tmp_path: Path) -> None:
    benign = _benign_torchscript(tmp_path)
    with pytest.raises(InputError) as info:
        load_model(benign, input_shape=(10,))
    msg = str(info.value)
    assert "\n" not in msg and len(msg) < 400
    assert "(n, 10)" in msg and "4 values" in msg
