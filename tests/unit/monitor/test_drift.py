"""Drift monitoring: each drift kind planted and found, clean windows left alone, bad input refused."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mlsecops.core.errors import ConfigError, InputError
from mlsecops.data import DataProfile, profile_chunks
from mlsecops.data._readers import Chunk
from mlsecops.monitor import _drift_tests as t
from mlsecops.monitor.drift import DriftBaseline, DriftDetector, WindowStats, evaluate, record_feedback
from mlsecops.monitor.interface import Detector, Observation
from mlsecops.monitor.performance import PerformanceStats, fit_calibration

REF_ROWS = 20_000
WINDOW = 2_000
NUMERIC = ("a", "b", "c", "d", "skewed", "count")
_COV = np.array(
    [
        [1.0, 0.4, 0.0, 0.2],
        [0.4, 1.0, 0.1, 0.0],
        [0.0, 0.1, 1.0, 0.0],
        [0.2, 0.0, 0.0, 1.0],
    ]
)


def _rows(n: int, seed: int, *, drift: str = "none") -> Chunk:
    """Four correlated normal columns, a lognormal one, an integer one, two categorical ones."""
    rng = np.random.default_rng(seed)
    cov = _COV.copy()
    if drift == "covariance":  # a and c become correlated; every marginal stays N(0, 1)
        cov[0, 2] = cov[2, 0] = 0.25
    z = rng.multivariate_normal(np.zeros(4), cov, size=n)
    skewed = np.exp(0.5 * rng.standard_normal(n))
    count = rng.poisson(4.0, n).astype(float)
    a = 10 + 3 * z[:, 0]
    if drift == "mean":
        a = a + 0.2 * 3
    b = z[:, 1]
    if drift == "variance":
        b = b * np.sqrt(1.5)
    colour_p = [0.5, 0.3, 0.2]
    if drift == "categorical":
        colour_p = [0.35, 0.3, 0.35]  # total variation 0.15
    colour = rng.choice(np.array(["red", "green", "blue"], dtype=object), size=n, p=colour_p)
    if drift == "unseen":
        colour[: n // 20] = "purple"
    shape = rng.choice(np.array(["round", "square"], dtype=object), size=n, p=[0.7, 0.3])
    d = z[:, 3].copy()
    if drift == "missing":
        d[rng.random(n) < 0.05] = np.nan
    return {
        "a": a,
        "b": b,
        "c": z[:, 2],
        "d": d,
        "skewed": skewed,
        "count": count,
        "colour": colour,
        "shape": shape,
    }


@pytest.fixture(scope="module")
def profile() -> DataProfile:
    return profile_chunks([_rows(REF_ROWS // 2, 1), _rows(REF_ROWS // 2, 2)])


@pytest.fixture(scope="module")
def baseline(profile: DataProfile) -> DriftBaseline:
    return DriftBaseline.from_profile(profile)


def _verdict(baseline: DriftBaseline, chunk: Chunk, **kw: float) -> dict[str, object]:
    stats = WindowStats(baseline)
    stats.update(chunk)
    return evaluate(stats, window="w", **kw).to_json()


def _tests(verdict: dict[str, object]) -> set[tuple[object, object]]:
    evidence = verdict["evidence"]
    assert isinstance(evidence, dict)
    return {(e["test"], e["column"]) for e in evidence["rejected"]}


def test_profile_keeps_an_exact_correlation_matrix(profile: DataProfile) -> None:
    corr = profile.correlation
    assert corr is not None and corr.columns == list(NUMERIC) and corr.rows == REF_ROWS
    full = [_rows(REF_ROWS // 2, 1), _rows(REF_ROWS // 2, 2)]
    x = np.column_stack([np.concatenate([c[name] for c in full]) for name in NUMERIC])
    np.testing.assert_allclose(np.asarray(corr.matrix), np.corrcoef(x, rowvar=False), atol=1e-9)
    # an older profile (no matrix) still loads and falls back to the aligned row sample
    old = json.loads(profile.model_dump_json())
    del old["correlation"]
    base = DriftBaseline.from_profile(DataProfile.model_validate(old))
    assert base.corr_source == "sample" and base.corr.shape == (6, 6)


def test_profile_correlation_uses_complete_rows_only() -> None:
    rng = np.random.default_rng(3)
    x = rng.multivariate_normal([0, 0], [[1, 0.6], [0.6, 1]], size=4_000)
    x[rng.random(4_000) < 0.1, 0] = np.nan
    corr = profile_chunks(
        [{"u": x[:2_000, 0], "v": x[:2_000, 1]}, {"u": x[2_000:, 0], "v": x[2_000:, 1]}]
    ).correlation
    complete = x[np.isfinite(x).all(axis=1)]
    assert corr is not None and corr.rows == complete.shape[0]
    assert corr.matrix[0][1] == pytest.approx(np.corrcoef(complete, rowvar=False)[0, 1], abs=1e-9)


def test_small_windows_stay_calibrated(baseline: DriftBaseline) -> None:
    # the tests account for the window size: 200-row windows false-alarm at alpha too
    flagged = [_verdict(baseline, _rows(200, 400 + seed))["drift"] for seed in range(30)]
    assert sum(map(bool, flagged)) <= 5


def test_clean_windows_are_not_flagged(baseline: DriftBaseline) -> None:
    flagged = [_verdict(baseline, _rows(WINDOW, 100 + seed))["drift"] for seed in range(20)]
    # alpha 0.05 over 20 windows: 1 expected; 5 or more has probability 0.3 %
    assert sum(map(bool, flagged)) <= 4


@pytest.mark.parametrize(
    ("drift", "column", "test"),
    [
        ("mean", "a", "mean"),
        ("variance", "b", "quantile_bins"),
        ("categorical", "colour", "chi2"),
        ("unseen", "colour", "chi2"),
        ("missing", "d", "missing"),
    ],
)
def test_each_univariate_drift_is_found(baseline: DriftBaseline, drift: str, column: str, test: str) -> None:
    for seed in range(3):
        verdict = _verdict(baseline, _rows(WINDOW, 200 + seed, drift=drift))
        assert verdict["drift"] is True
        assert column in verdict["columns"]  # type: ignore[operator]
        assert (test, column) in _tests(verdict)
        assert float(verdict["p_value"]) <= 0.05  # type: ignore[arg-type]
    if drift == "unseen":
        evidence = verdict["evidence"]
        assert isinstance(evidence, dict)
        assert "purple" in next(e for e in evidence["rejected"] if e["column"] == "colour")["unseen"]


def test_covariance_only_drift_is_found_by_the_joint_test(baseline: DriftBaseline) -> None:
    for seed in range(5):
        verdict = _verdict(baseline, _rows(WINDOW, 300 + seed, drift="covariance"))
        assert verdict["drift"] is True
        assert _tests(verdict) == {("correlation", None)}  # no marginal moved
        assert set(verdict["columns"]) == {"a", "c"}  # type: ignore[arg-type]
        evidence = verdict["evidence"]
        assert isinstance(evidence, dict)
        top = evidence["rejected"][0]["strongest_pairs"][0]
        assert top["pair"] == ["a", "c"] and top["window"] > 0.15


def test_correlation_test_is_calibrated_on_skewed_data() -> None:
    # Fisher's 1/(n-3) would flag lognormal pairs far more often than alpha; the fourth-moment
    # standard error does not.
    rng = np.random.default_rng(5)

    def lognormal(n: int) -> Chunk:
        z = rng.multivariate_normal([0, 0], [[1, 0.5], [0.5, 1]], size=n)
        return {"u": np.exp(z[:, 0]), "v": np.exp(z[:, 1])}

    base = DriftBaseline.from_profile(profile_chunks([lognormal(50_000)]))
    pvals = []
    for _ in range(40):
        stats = WindowStats(base)
        stats.update(lognormal(2_000))
        pvals.append(float(evaluate(stats, window="w", alpha=0.5).p_value))
    assert sum(p <= 0.05 for p in pvals) <= 6


def test_constant_and_empty_baseline_columns() -> None:
    n = 3_000
    rng = np.random.default_rng(4)
    ref = {"k": np.full(n, 2.0), "gone": np.full(n, np.nan), "z": rng.standard_normal(n)}
    base = DriftBaseline.from_profile(profile_chunks([ref]))
    same = {"k": np.full(500, 2.0), "gone": np.full(500, np.nan), "z": rng.standard_normal(500)}
    assert _verdict(base, same)["drift"] is False
    moved = dict(same, k=np.full(500, 2.5))
    assert _verdict(base, moved)["columns"] == ["k"]
    # one odd value among 500 is no evidence against a rate of a few in 3,000; fifty are
    one = dict(same, k=np.where(np.arange(500) == 0, 7.0, 2.0))
    assert _verdict(base, one)["drift"] is False
    fifty = dict(same, k=np.where(np.arange(500) < 50, 7.0, 2.0))
    assert ("constant", "k") in _tests(_verdict(base, fifty))
    filled = dict(same, gone=rng.standard_normal(500))
    verdict = _verdict(base, filled)
    assert verdict["columns"] == ["gone"] and _tests(verdict) == {("missing", "gone")}


def test_sparse_pixels_neither_false_alarm_nor_hide_a_change() -> None:
    # digits: 64 pixel columns, many non-zero once in a hundred rows (kurtosis ~100); their means and
    # correlations are not near normal on a few hundred rows, so only their bins are tested.
    from sklearn.datasets import load_digits

    x = load_digits().data
    clean = brightened = 0
    for seed in range(10):
        order = np.random.default_rng(seed).permutation(len(x))
        a, b = x[order[:1_250]], x[order[1_250:]]

        def table(rows: np.ndarray) -> Chunk:
            return {f"p{j}": rows[:, j].astype(float) for j in range(64)}

        base = DriftBaseline.from_profile(profile_chunks([table(a)]))
        clean += bool(_verdict(base, table(b))["drift"])
        brightened += bool(_verdict(base, table(np.where(b > 0, np.minimum(b + 2, 16), b)))["drift"])
    assert clean <= 2 and brightened == 10


def test_bh_adjust_matches_the_definition() -> None:
    from scipy.stats import false_discovery_control

    p = np.array([0.01, 0.04, 0.03, 0.5])
    np.testing.assert_allclose(t.bh_adjust(p), [0.04, 0.16 / 3, 0.16 / 3, 0.5])
    q = np.random.default_rng(0).random(50) ** 3
    np.testing.assert_allclose(t.bh_adjust(q), false_discovery_control(q))
    assert t.bh_adjust(np.array([0.9])).tolist() == [0.9]


def test_small_counts_are_pooled() -> None:
    ref = np.array([900.0, 95.0, 3.0, 2.0, 0.0, 0.0, 0.0])
    cur = np.array([90.0, 9.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    _stat, df, p, tv = t.categorical_chi2(ref, cur)
    assert df >= 1 and p > 0.05 and tv < 0.05


def test_bad_windows_get_one_line_errors(baseline: DriftBaseline) -> None:
    chunk = _rows(WINDOW, 7)
    del chunk["b"]
    with pytest.raises(InputError, match=r"missing column.*'b'"):
        WindowStats(baseline).update(chunk, where="w.csv")
    chunk = _rows(WINDOW, 7)
    chunk["a"] = np.array(["x"] * WINDOW, dtype=object)
    with pytest.raises(InputError, match=r"'a' should be numeric.*'x'"):
        WindowStats(baseline).update(chunk, where="w.csv")
    with pytest.raises(InputError, match="no data rows"):
        evaluate(WindowStats(baseline), window="empty.csv")
    small = WindowStats(baseline)
    small.update({k: v[:5] for k, v in _rows(10, 1).items()})
    with pytest.raises(InputError, match="5 rows; a drift test needs at least"):
        evaluate(small, window="w")
    with pytest.raises(ConfigError, match="alpha"):
        evaluate(small, window="w", alpha=0.9)


def _observations(n_requests: int, seed: int, drift: str, rows: int = 50) -> list[Observation]:
    out = []
    for i in range(n_requests):
        chunk = _rows(rows, seed * 1000 + i, drift=drift)
        x = np.column_stack([chunk[c] for c in NUMERIC])
        p = np.full((rows, 2), 0.5)
        out.append(Observation(time=float(i), principal=f"p{i % 3}", model="m", inputs=x, outputs=p))
    return out


def test_detector_alerts_once_per_drift_and_restores(profile: DataProfile) -> None:
    numeric_only = profile_chunks([{c: _rows(REF_ROWS, 1)[c] for c in NUMERIC}])
    det = DriftDetector(model_name="m", baseline=numeric_only.model_dump(mode="json"), window=2_000, step=500)
    assert isinstance(det, Detector) and det.name == "drift"
    clean = [a for o in _observations(80, 1, "none") for a in det.observe(o)]
    assert clean == []
    saved = json.loads(json.dumps(det.state()))
    drifted = [a for o in _observations(80, 2, "mean") for a in det.observe(o)]
    assert drifted and all(a.kind == "drift" and a.principal == "" and a.model == "m" for a in drifted)
    assert "a" in drifted[0].evidence["columns"]
    assert len(drifted) <= 2  # 4,000 drifted rows: at most one alert per non-overlapping window
    twin = DriftDetector(
        model_name="m", baseline=numeric_only.model_dump(mode="json"), window=2_000, step=500
    )
    twin.restore(saved)
    again = [a for o in _observations(80, 2, "mean") for a in twin.observe(o)]
    assert [a.evidence for a in again] == [a.evidence for a in drifted]
    # odd input is skipped, never raised
    assert det.observe(Observation(time=0, principal="x", model="m", inputs=np.zeros((2, 3)))) == []


def test_detector_takes_reference_rows_and_refuses_bad_options() -> None:
    x = np.random.default_rng(0).standard_normal((3_000, 3))
    det = DriftDetector(model_name="m", baseline={"X": x.tolist()}, window=1_000, step=1_000)
    moved = x[:1_000] + np.array([0.5, 0.0, 0.0])
    alerts = det.observe(Observation(time=1.0, principal="u", model="m", inputs=moved))
    assert len(alerts) == 1 and alerts[0].evidence["columns"] == ["f0"]
    with pytest.raises(ConfigError, match="unknown option"):
        DriftDetector(model_name="m", baseline=None, windw=10)
    with pytest.raises(ConfigError, match="step"):
        DriftDetector(model_name="m", baseline=None, window=100, step=200)
    with pytest.raises(ConfigError, match="alpha must be a number"):
        DriftDetector(model_name="m", baseline=None, alpha="often")
    with pytest.raises(ConfigError, match="reference_accuracy must be in"):
        DriftDetector(model_name="m", baseline=None, reference_accuracy=1.5)
    with pytest.raises(ConfigError, match="not a data profile"):
        DriftDetector(model_name="m", baseline={"columns": 3})


def test_feedback_flags_an_accuracy_drop_and_not_a_calibrated_model() -> None:
    rng = np.random.default_rng(1)
    det = DriftDetector(model_name="m", baseline=None, feedback_window=500)
    conf = rng.uniform(0.6, 1.0, 500)
    probs = np.column_stack([conf, 1 - conf])
    false_alarms = 0
    for _ in range(20):  # a model right as often as it is sure: at most 1 % of windows flagged
        honest = (rng.random(500) >= conf).astype(int)
        false_alarms += len(record_feedback(det, labels=honest, outputs=probs, time=1.0))
    assert false_alarms <= 1
    wrong = np.where(rng.random(500) < 0.3, 1, honest)  # 30 % more mistakes
    alerts = record_feedback(det, labels=wrong, outputs=probs, time=2.0)
    assert len(alerts) == 1 and alerts[0].kind == "performance" and alerts[0].principal == ""
    assert alerts[0].evidence["accuracy"] < alerts[0].evidence["expected"] - 0.1
    with pytest.raises(InputError, match="class indices"):
        record_feedback(det, labels=[5] * 10, outputs=probs[:10], time=3.0)
    with pytest.raises(InputError, match="labels for"):
        record_feedback(det, labels=[0] * 3, outputs=probs[:10], time=3.0)


def test_calibrated_estimate_tracks_actual_accuracy() -> None:
    rng = np.random.default_rng(2)
    raw = rng.uniform(0.5, 1.0, 4_000)  # an over-confident model: right with probability raw - 0.15
    right = rng.random(4_000) < raw - 0.15
    probs = np.column_stack([raw, 1 - raw])
    labels = np.where(right, 0, 1)
    cal = fit_calibration(probs[:2_000], labels[:2_000])
    plain, calibrated = PerformanceStats(), PerformanceStats()
    plain.add_outputs(probs[2_000:])
    calibrated.add_outputs(probs[2_000:], cal)
    actual = right[2_000:].mean()
    assert abs(calibrated.summary()["estimated_accuracy"] - actual) < 0.03
    assert plain.summary()["estimated_accuracy"] - actual > 0.1


def test_one_row_requests_give_the_same_alerts_as_batches(profile: DataProfile) -> None:
    """The detector gathers one-row requests into blocks: the alerts (when, and their evidence) are
    those of adding the same rows in 50-row requests, and a state taken mid-block loses no row."""
    numeric_only = profile_chunks([{c: _rows(REF_ROWS, 1)[c] for c in NUMERIC}]).model_dump(mode="json")
    batched = DriftDetector(model_name="m", baseline=numeric_only, window=2_000, step=500)
    single = DriftDetector(model_name="m", baseline=numeric_only, window=2_000, step=500)
    stream = _observations(40, 1, "none") + _observations(40, 2, "mean")
    by_batch = [(o.time, a.evidence) for o in stream for a in batched.observe(o)]
    by_row = []
    for o in stream:
        for r in range(len(o.inputs)):
            one = Observation(
                time=o.time,
                principal=o.principal,
                model="m",
                inputs=o.inputs[r : r + 1],
                outputs=None if o.outputs is None else o.outputs[r : r + 1],
            )
            by_row += [(o.time, a.evidence) for a in single.observe(one)]
        if o.time == 7.0:  # mid-block: the state includes the gathered rows
            assert single.state()["current_rows"] == 8 * 50 % 500
    assert by_batch and by_row == by_batch
