"""The privacy audit: leaking and non-leaking models, the mirror result, label-only models, bad input,
output defences, attribute inference and reconstruction. Small scikit-learn models on digits."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.tree import DecisionTreeClassifier

from mlsecops.assess.privacy import (
    PrivacyAudit,
    attribute_inference,
    audit_privacy,
    evaluate_defences,
    privacy_report,
    reconstruct_classes,
)
from mlsecops.core.errors import InputError
from mlsecops.core.executor import get_executor
from mlsecops.core.findings import Severity
from mlsecops.models.sklearn import SklearnModel

REFERENCES = 4
"""Reference models per audit in these tests (enough for the reference attacks to work, cheap)."""


@dataclass(frozen=True)
class Split:
    x: np.ndarray
    y: np.ndarray
    members: np.ndarray
    non_members: np.ndarray
    pool: np.ndarray

    def sets(self) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
        return tuple((self.x[i], self.y[i]) for i in (self.members, self.non_members, self.pool))


@pytest.fixture(scope="module")
def split() -> Split:
    """Digits, stratified: 20 members and 20 non-members per class, the rest is the reference pool."""
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    rng = np.random.default_rng(0)
    m, n, p = [], [], []
    for c in range(10):
        idx = rng.permutation(np.flatnonzero(y == c))
        m += list(idx[:20])
        n += list(idx[20:40])
        p += list(idx[40:80])
    return Split(x, y, np.array(m), np.array(n), np.array(p))


def _audit(est: object, split: Split, **kw: object) -> PrivacyAudit:
    members, non_members, pool = split.sets()
    est.fit(*members)  # type: ignore[attr-defined]
    return audit_privacy(
        SklearnModel(est),
        members,
        non_members,
        reference=pool,
        references=REFERENCES,
        executor=get_executor("inline"),
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def overfit(split: Split) -> PrivacyAudit:
    # distance-weighted 5-NN: a training record is its own nearest neighbour, so it is memorised
    return _audit(KNeighborsClassifier(5, weights="distance"), split)


@pytest.fixture(scope="module")
def regularised(split: Split) -> PrivacyAudit:
    # few parameters per record: 10 principal components, strong L2
    model = make_pipeline(PCA(10, random_state=0), LogisticRegression(C=0.05, max_iter=2000))
    return _audit(model, split, attacks=["loss", "calibrated", "lira_online", "rmia"])


def _best(audit: PrivacyAudit, fpr: float) -> float:
    return max(a.tpr[fpr] for a in audit.attacks)


@pytest.mark.timeout(300)
def test_an_overfit_model_is_audited_as_leaking(overfit: PrivacyAudit) -> None:
    assert [a.attack for a in overfit.attacks] == [
        "loss",
        "confidence",
        "calibrated",
        "lira_offline",
        "lira_online",
        "rmia",
        "label_only",
    ]
    best = max(overfit.attacks, key=lambda a: a.tpr[0.01])
    assert best.attack in ("lira_offline", "lira_online", "rmia", "calibrated")
    assert best.tpr[0.01] >= 0.1 and best.tpr_ci[0.01][0] > 0.02  # well above the 1% FPR
    report = privacy_report(overfit, subject="knn")
    assert report.verdict == "leaking"
    assert report.metrics["membership_tpr@0.01"] == pytest.approx(best.tpr[0.01], abs=1e-6)
    assert report.metrics["membership_auc"] >= 0.7
    high = [f for f in report.findings if f.severity == Severity.HIGH]
    assert high and high[0].atlas == "AML.T0024.000"
    exposed = high[0].evidence["most_exposed_members"]
    assert isinstance(exposed, list) and all(isinstance(i, int) and 0 <= i < 200 for i in exposed)
    assert len(report.figures) == 1 and "<polyline" in report.figures[0].content


@pytest.mark.timeout(300)
def test_a_regularised_model_leaks_little(regularised: PrivacyAudit, overfit: PrivacyAudit) -> None:
    assert regularised.accuracy["non_members"] > 0.85
    assert _best(regularised, 0.01) <= 0.08  # 200 records in 64 dimensions: some leakage remains
    assert _best(overfit, 0.01) >= 2 * _best(regularised, 0.01)
    report = privacy_report(regularised, subject="lr")
    assert not any(f.severity >= Severity.HIGH for f in report.findings)


@pytest.mark.timeout(300)
def test_swapping_members_and_non_members_mirrors_the_result(split: Split, overfit: PrivacyAudit) -> None:
    members, non_members, _ = split.sets()
    est = KNeighborsClassifier(5, weights="distance").fit(*members)
    swapped = audit_privacy(SklearnModel(est), non_members, members, attacks=["loss", "confidence"])
    original = {a.attack: a for a in overfit.attacks}
    for a in swapped.attacks:
        assert a.auc == pytest.approx(1.0 - original[a.attack].auc, abs=1e-9)
        assert a.tpr[0.01] <= 0.03  # the "members" look like unseen data: nothing to find
    report = privacy_report(swapped, subject="knn")
    assert report.verdict != "leaking"
    assert any("swapped" in f.title for f in report.findings)


@pytest.mark.timeout(300)
def test_a_label_only_model_is_audited_with_the_label_only_attack(split: Split) -> None:
    audit = _audit(DecisionTreeClassifier(random_state=0), split)  # pure leaves: one-hot answers
    assert audit.label_only and [a.attack for a in audit.attacks] == ["label_only"]
    assert audit.probabilities is None and "labels only" in audit.notes[0]
    assert audit.attacks[0].auc >= 0.6 and audit.attacks[0].auc_ci[0] > 0.5
    with pytest.raises(InputError, match="answers labels only"):
        _audit(DecisionTreeClassifier(random_state=0), split, attacks=["loss"])


def test_overlapping_members_and_non_members_are_refused(split: Split) -> None:
    members, non_members, _ = split.sets()
    model = SklearnModel(LogisticRegression(max_iter=500).fit(*members))
    mixed = (
        np.concatenate([non_members[0], members[0][:3]]),
        np.concatenate([non_members[1], members[1][:3]]),
    )
    with pytest.raises(InputError, match="3 non-member row"):
        audit_privacy(model, members, mixed, attacks=["loss"])


def test_too_few_rows_for_reference_models_is_refused(split: Split) -> None:
    members, non_members, _ = split.sets()
    model = SklearnModel(LogisticRegression(max_iter=500).fit(*members))
    small = (members[0][:12], members[1][:12]), (non_members[0][:12], non_members[1][:12])
    with pytest.raises(InputError, match="too few rows for 4 reference models"):
        audit_privacy(model, *small, attacks=["rmia"], references=4, executor=get_executor("inline"))
    with pytest.raises(InputError, match="needs at least 10"):
        audit_privacy(model, (members[0][:5], members[1][:5]), non_members, attacks=["loss"])


class _Scores:
    """A model whose 'probabilities' are raw scores."""

    n_classes = 10
    input_shape = (64,)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x[:, :10] * 5.0 - 1.0, dtype=np.float64)


def test_outputs_that_are_not_probabilities_are_refused(split: Split) -> None:
    members, non_members, _ = split.sets()
    with pytest.raises(InputError, match="not probabilities"):
        audit_privacy(_Scores(), members, non_members, attacks=["loss"])


def test_a_model_that_cannot_be_retrained_gets_no_reference_attacks(split: Split) -> None:
    members, non_members, _ = split.sets()
    est = LogisticRegression(max_iter=500).fit(*members)

    class Opaque:  # only predict_proba: like an endpoint
        n_classes, input_shape = 10, (64,)

        def predict_proba(self, x: np.ndarray) -> np.ndarray:
            return np.asarray(est.predict_proba(x.reshape(len(x), -1)))

    audit = audit_privacy(Opaque(), members, non_members)
    assert [a.attack for a in audit.attacks] == ["loss", "confidence", "label_only"]
    assert any("cannot be retrained" in n for n in audit.notes)
    with pytest.raises(InputError, match="retrain the model's architecture"):
        audit_privacy(Opaque(), members, non_members, attacks=["lira_online"])


@pytest.mark.timeout(300)
def test_reference_models_give_the_same_audit_on_every_engine(
    split: Split, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlsecops.assess.privacy import _reference

    monkeypatch.setattr(_reference, "POOL_PAYS_SECONDS", 0.0)  # use the pool even for this small job
    members, non_members, pool = split.sets()
    model = SklearnModel(LogisticRegression(C=1.0, max_iter=1000).fit(*members))
    runs = [
        audit_privacy(
            model, members, non_members, reference=pool, references=3, attacks=["rmia"], executor=ex, seed=3
        )
        for ex in (get_executor("inline"), get_executor("process", workers=2))
    ]
    assert runs[0].references is not None and runs[1].references is not None
    np.testing.assert_array_equal(runs[0].references[0], runs[1].references[0])
    np.testing.assert_array_equal(runs[0].scores["rmia"], runs[1].scores["rmia"])


@pytest.mark.timeout(300)
def test_output_defences_are_priced_and_label_only_answers_still_leak(overfit: PrivacyAudit) -> None:
    results = {r.defence.name: r for r in evaluate_defences(overfit)}
    assert set(results) == {"round2", "round1", "top1", "label", "noise0.05", "noise0.2"}
    for name in ("round2", "round1", "top1", "label"):  # the label is kept: accuracy does not move
        assert results[name].accuracy_after == results[name].accuracy_before
    assert results["label"].log_loss_after > results["label"].log_loss_before  # the price of hiding
    label_only = next(a for a in overfit.attacks if a.attack == "label_only")
    kept = next(a for a in results["label"].attacks if a.attack == "label_only")
    assert kept.auc == label_only.auc  # answers with labels do not stop the label-only attack
    lira_before = next(a for a in overfit.attacks if a.attack == "lira_online")
    lira_after = next(a for a in results["label"].attacks if a.attack == "lira_online")
    assert lira_after.tpr[0.01] < lira_before.tpr[0.01]  # hiding confidences blunts the strong attack
    report = privacy_report(overfit, subject="knn", defences=tuple(results.values()))
    assert "membership_tpr@0.01@defence:label" in report.metrics
    flagged = {f.location.get("defence") for f in report.findings if "does not reduce" in f.title}
    assert flagged == {n for n, r in results.items() if not r.reduces_leakage}


def _planted(rng: np.random.Generator, n: int, *, leak: bool) -> tuple[np.ndarray, np.ndarray]:
    s = rng.integers(0, 2, n)
    other = rng.normal(size=(n, 4))
    y = s if leak else (other[:, 0] > 0).astype(int)  # the label reveals s, or ignores it
    return np.column_stack([other, s]).astype(np.float32), y


def test_attribute_inference_finds_a_planted_leak_and_not_a_clean_one() -> None:
    rng = np.random.default_rng(0)
    names = ["a", "b", "c", "d", "sensitive"]
    for leak in (True, False):
        m, n = _planted(rng, 200, leak=leak), _planted(rng, 200, leak=leak)
        model = SklearnModel(LogisticRegression(max_iter=1000).fit(*m))
        res = attribute_inference(model, m, n, names, "sensitive")
        if leak:
            assert res["accuracy_with_model"] > 0.9 and res["gain_ci"][0] > 0.3
        else:
            assert res["gain_ci"][0] <= 0.0 <= res["gain_ci"][1] + 0.05 and res["gain"] < 0.1
    with pytest.raises(InputError, match="is not a feature"):
        attribute_inference(model, m, n, names, "age")


def test_class_reconstruction_reaches_each_class(split: Split) -> None:
    members, non_members, _ = split.sets()
    model = SklearnModel(LogisticRegression(max_iter=1000).fit(*members))
    summary, pairs = reconstruct_classes(model, members, non_members, image_shape=(8, 8), max_classes=3)
    assert [r["class"] for r in summary["classes"]] == [0, 1, 2]
    assert all(r["confidence"] > 0.9 for r in summary["classes"])
    assert all(-1.0 <= r["similarity_member"] <= 1.0 for r in summary["classes"])
    assert pairs[0][0].shape == (8, 8) and pairs[0][1].shape == (8, 8)
    members_rows = {r.tobytes() for r in members[0]}
    assert not any(
        p[1].astype(np.float32).reshape(-1).tobytes() in members_rows for p in pairs
    )  # no raw record


@pytest.mark.timeout(300)
def test_cli_writes_the_report_and_exits_on_findings(split: Split, tmp_path: Path) -> None:
    import json

    from mlsecops.cli.main import main

    members, non_members, _ = split.sets()
    est = KNeighborsClassifier(5, weights="distance").fit(*members)
    (tmp_path / "m.pkl").write_bytes(pickle.dumps(est))
    np.savez(tmp_path / "in.npz", X=members[0], y=members[1])
    np.savez(tmp_path / "out.npz", X=non_members[0], y=non_members[1])
    args = ["assess", "privacy", "--model", str(tmp_path / "m.pkl"), "--members", str(tmp_path / "in.npz")]
    out = tmp_path / "r.json"
    code = main(
        [
            *args,
            "--non-members",
            str(tmp_path / "out.npz"),
            "--attacks",
            "loss,rmia",
            "--references",
            "4",
            "--executor",
            "inline",
            "--no-defences",
            "-q",
            "-o",
            str(out),
            "--fail-on",
            "low",
        ]
    )
    doc = json.loads(out.read_text())
    assert doc["metrics"]["membership_auc@loss"] > 0.6 and code == 1
    assert doc["metrics"]["membership_tpr@0.01"] == doc["metrics"]["membership_tpr@0.01@rmia"] > 0.05
    assert doc["privacy"]["attacks"][1]["most_exposed_members"]
    assert main([*args, "--non-members", str(tmp_path / "in.npz"), "-q"]) == 2  # overlap: usage error


@pytest.mark.timeout(300)
def test_a_pipeline_gates_on_the_privacy_metrics(split: Split, tmp_path: Path) -> None:
    from mlsecops.pipeline import load_pipeline, run_pipeline

    members, non_members, _ = split.sets()
    est = KNeighborsClassifier(5, weights="distance").fit(*members)
    (tmp_path / "m.pkl").write_bytes(pickle.dumps(est))
    np.savez(tmp_path / "in.npz", X=members[0], y=members[1])
    np.savez(tmp_path / "out.npz", X=non_members[0], y=non_members[1])
    text = """
name: privacy
stages:
  - name: privacy
    check: assess.privacy
    options: {model: m.pkl, members: in.npz, non_members: out.npz, attacks: "loss,rmia", references: 4,
              executor: inline, defences: false}
policy:
  - {metric: "membership_tpr@0.01 <= 0.05"}
  - {metric: "membership_auc@loss <= 0.9"}
"""
    (tmp_path / "p.yaml").write_text(text)
    result = run_pipeline(load_pipeline(tmp_path / "p.yaml"))
    assert [r.passed for r in result.gate.results][:2] == [False, True]  # RMIA finds members: refused
    assert result.report.metrics["privacy/membership_tpr@0.01"] > 0.05


@pytest.mark.timeout(300)
def test_pytorch_reference_models_are_reinitialised_and_retrained(split: Split) -> None:
    import torch

    from mlsecops.assess.privacy._reference import TorchRecipe, learner_of, train_torch
    from mlsecops.models import TorchModel

    members, non_members, _ = ((x[::2], y[::2]) for x, y in split.sets())  # 100 and 100: a quick run
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    model = TorchModel(train_torch(net, *members, epochs=40, lr=5e-3, batch_size=50), input_shape=(64,))
    learner = learner_of(model, epochs=40, lr=5e-3, batch_size=50)
    assert isinstance(learner, TorchRecipe)
    before = [p.detach().clone() for p in net.parameters()]
    audit = audit_privacy(
        model,
        members,
        non_members,
        attacks=["loss", "rmia"],
        references=4,
        executor=get_executor("inline"),
        learner=learner,
    )
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))  # target untouched
    assert audit.references is not None
    ref, _ = audit.references
    assert ref.shape == (4, 200, 10) and np.allclose(ref.sum(axis=2), 1.0, atol=1e-5)
    assert len({float(r[0, 0]) for r in ref}) == 4  # each reference its own fresh initialisation
    rmia = next(a for a in audit.attacks if a.attack == "rmia")
    assert audit.accuracy["members"] == 1.0 and rmia.auc_ci[0] > 0.5  # above chance
