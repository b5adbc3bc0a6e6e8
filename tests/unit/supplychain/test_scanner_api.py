"""Library entry points: directory scans, the registered check, its report, and the loading guard."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests._deps import require

from mlsecops.core.checks import Target, get_check
from mlsecops.core.errors import ConfigError, InputError, VerificationError
from mlsecops.supplychain import UnsafeArtifactError, Verdict, safe_load, scan_paths, scan_report


def _payload_touching(path: Path, pk: Any) -> bytes:
    """A pickle that would create ``path`` if anything ever executed it."""
    return pk.asm(
        ("proto", 2), ("G", "builtins", "open"), ("U", str(path)), ("U", "w"), "TUPLE2", "REDUCE", "STOP"
    )


def test_directory_scan_in_parallel(tmp_path: Path, pk: Any) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "good.pkl").write_bytes(pk.BENIGN)
    (tmp_path / "bad.bin").write_bytes(pk.SYSTEM)
    (tmp_path / "notes.txt").write_text("hello\n")
    (tmp_path / "link.pkl").symlink_to(tmp_path / "bad.bin")
    results = scan_paths([tmp_path], workers=2)
    by_name = {Path(r.path).name: r for r in results}
    assert by_name["bad.bin"].verdict is Verdict.MALICIOUS
    assert by_name["good.pkl"].verdict is Verdict.SAFE
    assert by_name["notes.txt"].verdict is Verdict.SAFE
    assert by_name["link.pkl"].format == "symlink"
    assert all(r.sha256 and len(r.sha256) == 64 for r in results if r.format != "symlink")


def test_report_carries_artifacts(tmp_path: Path, pk: Any) -> None:
    (tmp_path / "bad.pt").write_bytes(pk.torch_zip(pk.SYSTEM))
    (tmp_path / "ok.pkl").write_bytes(pk.BENIGN)
    report = scan_report(scan_paths([tmp_path], workers=1))
    assert report.kind == "artifact.scan" and report.verdict == "malicious"
    arts = {Path(a["path"]).name: a for a in report.data["artifacts"]}  # type: ignore[index,union-attr]
    bad = arts["bad.pt"]
    assert bad["format"] == "pytorch-zip" and bad["verdict"] == "malicious"
    finding = bad["findings"][0]
    assert finding["location"]["entry"] == "archive/data.pkl"
    assert finding["evidence"]["callable"] == "os.system"
    assert finding["atlas"] == "AML.T0010" and finding["check"] == "artifact.scan.pickle"
    assert arts["ok.pkl"]["verdict"] == "safe" and arts["ok.pkl"]["findings"] == []
    json.dumps(report.model_dump(mode="json"))
    assert report.metrics["artifacts_malicious"] == 1.0


def test_registered_check_runs_and_validates_options(tmp_path: Path, pk: Any) -> None:
    (tmp_path / "m.pkl").write_bytes(pk.SYSTEM)
    check = get_check("artifact.scan").create()
    report = check.run(Target(paths=(tmp_path / "m.pkl",), options={"workers": 1}))
    assert report.verdict == "malicious" and report.findings
    with pytest.raises(InputError):
        check.run(Target(paths=()))
    with pytest.raises(ConfigError, match=r"option .max_seconds. must be a number >= 0\.001; got -1"):
        check.run(Target(paths=(tmp_path / "m.pkl",), options={"max_seconds": -1}))
    with pytest.raises(InputError):
        check.run(Target(paths=(tmp_path / "missing",)))


def test_safe_load_refuses_without_executing(tmp_path: Path, pk: Any) -> None:
    marker = tmp_path / "executed"
    path = tmp_path / "model.pkl"
    path.write_bytes(_payload_touching(marker, pk))
    with pytest.raises(UnsafeArtifactError) as info:
        safe_load(path)
    assert isinstance(info.value, VerificationError)
    assert info.value.result.verdict is Verdict.MALICIOUS
    assert not marker.exists()


def test_safe_load_refuses_suspicious_unless_allowed(tmp_path: Path, pk: Any) -> None:
    path = tmp_path / "net.pkl"
    path.write_bytes(pk.asm(("proto", 2), ("G", "__main__", "Net"), "EMPTY_TUPLE", "REDUCE", "STOP"))
    with pytest.raises(UnsafeArtifactError):
        safe_load(path)


def test_safe_load_loads_benign_formats(tmp_path: Path) -> None:
    import joblib
    from sklearn.linear_model import LogisticRegression

    x = np.random.default_rng(0).normal(size=(40, 3))
    y = (x[:, 0] > 0).astype(int)
    joblib.dump(LogisticRegression().fit(x, y), tmp_path / "lr.joblib", compress=3)
    assert type(safe_load(tmp_path / "lr.joblib")).__name__ == "LogisticRegression"
    np.save(tmp_path / "a.npy", np.arange(4))
    assert safe_load(tmp_path / "a.npy").tolist() == [0, 1, 2, 3]
    torch = require("torch", "torch")
    torch.save({"w": torch.ones(2)}, tmp_path / "sd.pt")
    assert safe_load(tmp_path / "sd.pt")["w"].tolist() == [1.0, 1.0]
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(InputError):
        safe_load(tmp_path / "notes.txt")
