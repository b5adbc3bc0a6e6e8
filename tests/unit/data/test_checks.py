"""The registered checks end to end: reports, suspect rows, quarantine files, workspace records, manifests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tests.unit.data.conftest import flip_labels

from mlsecops.core.checks import Target, get_check
from mlsecops.core.errors import InputError, VerificationError
from mlsecops.data import generate_ratings
from mlsecops.data.manifest import build_manifest, register_dataset, verify_dataset
from mlsecops.store import Workspace, audit


def _write_csv(path: Path, X: np.ndarray, y: np.ndarray) -> Path:
    lines = [",".join([*(f"f{i}" for i in range(X.shape[1])), "label"])]
    lines += [",".join([*(f"{v:g}" for v in row), str(int(c))]) for row, c in zip(X, y, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def flipped_csv(tmp_path: Path) -> tuple[Path, np.ndarray]:
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=400, n_features=6, n_informative=4, n_classes=3, class_sep=2.5, flip_y=0.0, random_state=1
    )
    noisy, truth = flip_labels(y, 0.05, seed=0)
    return _write_csv(tmp_path / "train.csv", X, noisy), truth


def test_poison_check_reports_flipped_rows_and_quarantines_them(
    flipped_csv: tuple[Path, np.ndarray], tmp_path: Path
) -> None:
    path, truth = flipped_csv
    home = tmp_path / ".mlsecops"
    Workspace.init(home, actor="alice").close()
    target = Target(
        paths=(path,),
        options={"label": "label", "detectors": ["labels"], "quarantine": str(tmp_path / "q")},
        home=home,
        actor="alice",
    )
    report = get_check("data.poison").create().run(target)
    rows = report.data["suspect_rows"]
    assert isinstance(rows, list)
    found = {r["row"] for r in rows}  # type: ignore[index]
    assert len(found & set(np.flatnonzero(truth))) >= 0.95 * truth.sum()
    assert len(found - set(np.flatnonzero(truth))) <= 0.02 * (~truth).sum()
    assert all(set(r) == {"row", "score", "reason"} for r in rows)  # type: ignore[arg-type]
    assert report.findings and report.findings[0].check == "data.poison.labels"
    clean = (tmp_path / "q" / "train.clean.csv").read_text().splitlines()
    suspect = (tmp_path / "q" / "train.suspect.csv").read_text().splitlines()
    assert len(clean) - 1 + len(suspect) - 1 == 400 and len(suspect) - 1 == len(rows)
    assert suspect[0].endswith("_row,_score,_reason")
    assert path.exists()  # nothing is deleted
    with Workspace.open(home) as ws, ws.session(readonly=True) as s:
        events = [e for e in audit.iter_events(s) if e.action == "data.quarantine"]
    assert len(events) == 1 and events[0].actor == "alice" and events[0].subject == str(path)


def test_poison_check_on_ratings_reports_accounts(tmp_path: Path) -> None:
    data = generate_ratings(n_users=2000, n_items=1000, n_fake=150, seed=4)
    data.write_csv(tmp_path / "ratings.csv")
    report = get_check("data.poison").create().run(Target(paths=(tmp_path / "ratings.csv",)))
    accounts = report.data["suspect_accounts"]
    assert isinstance(accounts, list)
    users = {a["user"] for a in accounts}  # type: ignore[index]
    assert len(users & set(data.fake_users.tolist())) >= 0.95 * 150
    assert len(users - set(data.fake_users.tolist())) <= 0.02 * 2000
    assert json.loads(report.model_dump_json())["data"]["suspect_accounts"][0]["reason"]


def test_poison_check_on_npz_images_finds_backdoor(tmp_path: Path) -> None:
    from sklearn.datasets import load_digits
    from tests.unit.data.conftest import plant_trigger

    X, y = load_digits(return_X_y=True)
    Xp, yp, truth = plant_trigger(X.astype(float), y, 0.05, 7, seed=5)
    np.savez(tmp_path / "imgs.npz", X=Xp.reshape(-1, 1, 8, 8), y=yp)
    target = Target(paths=(tmp_path / "imgs.npz",), options={"detectors": ["backdoor"]})
    report = get_check("data.poison").create().run(target)
    rows = {r["row"] for r in report.data["suspect_rows"]}  # type: ignore[index, union-attr]
    assert len(rows & set(np.flatnonzero(truth))) >= 0.95 * truth.sum()
    assert report.max_severity is not None and str(report.max_severity) == "critical"


def test_poison_check_bad_input(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("a,b\n1,2\n")
    check = get_check("data.poison").create()
    with pytest.raises(InputError, match="label column"):
        check.run(Target(paths=(tmp_path / "d.csv",), options={"label": "y"}))
    with pytest.raises(InputError, match="unknown detectors"):
        check.run(Target(paths=(tmp_path / "d.csv",), options={"label": "b", "detectors": ["magic"]}))
    with pytest.raises(InputError, match="exactly one"):
        check.run(Target(paths=()))


def test_data_check_with_baseline_file_and_manifest(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    base = _write_csv(tmp_path / "base.csv", rng.normal(size=(500, 3)), rng.integers(0, 2, 500))
    new = _write_csv(tmp_path / "new.csv", rng.normal(size=(500, 3)), rng.integers(0, 2, 500))
    home = tmp_path / ".mlsecops"
    Workspace.init(home).close()
    version, _ = register_dataset(build_manifest([new], name="batch", label="label"), home=home, actor="bob")
    assert version == "1"
    check = get_check("data.check").create()
    opts = {"baseline": str(base), "label": "label", "dataset": "batch"}
    report = check.run(Target(paths=(new,), options=opts, home=home))
    assert report.verdict == "pass" and report.metrics["rows"] == 500
    with new.open("a") as fh:
        fh.write("9,9,9,1\n")
    report = check.run(Target(paths=(new,), options=opts, home=home))
    assert any(
        f.title == "data changed without a new manifest" and str(f.severity) == "critical"
        for f in report.findings
    )
    with pytest.raises(VerificationError, match="changed since"):
        verify_dataset([new], "batch", home=home)
    version, _ = register_dataset(build_manifest([new], name="batch"), home=home, actor="bob")
    assert version == "2" and verify_dataset([new], "batch", home=home) == "2"
