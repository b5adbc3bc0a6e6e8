"""``assess.explain_integrity``: planted scaffolded models (Slack et al. 2020) are flagged, honest ones not.

The scaffolds decide on the sensitive column on real rows and on an unrelated column on the inputs
LIME and SHAP generate (``assess._scaffold``). Honest models: logistic regression and gradient boosting
trained on the labels, and a rule that decides on the sensitive column for every input (unfair, and
caught by the fairness audit, but not hiding anything: not flagged here).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tests import _fairness_data

from mlsecops.assess._scaffold import ScaffoldedClassifier, rule_classifier
from mlsecops.assess.explain_integrity import (
    HIDE_RATIO,
    MIN_ROWS,
    SWAP_RATIO,
    SWAP_RATIO_OWN,
    SWAP_RATIO_SEVERAL,
    SWAP_SHARE_GAP,
    SWAP_SHARE_GAP_SEVERAL,
    DependenceResult,
    IntegrityResult,
    assess_integrity,
    find_proxies,
    integrity_report,
)
from mlsecops.core.errors import InputError
from mlsecops.models import SklearnModel

Data = tuple[np.ndarray, np.ndarray, list[str]]


def _synthetic(seed: int, n: int = 1200) -> Data:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    x[:, 0] = rng.random(n) < 0.4  # the sensitive column
    x[:, 5] = np.round(rng.uniform(18, 80, size=n))  # age: the innocuous column the scaffold shows
    y = (x[:, 1] + 0.5 * x[:, 2] + 0.4 * rng.normal(size=n) > 0).astype(int)
    return x, y, ["group", "a", "b", "c", "d", "age"]


def _adapter(est: object, x: np.ndarray) -> SklearnModel:
    return SklearnModel(est, input_shape=(x.shape[1],), n_classes=2)


def _largest_tree_or_net(g: DependenceResult, fam: str) -> float:
    """The largest own swap effect of the tree and network twins (what the own-effect falls use)."""
    return max(g.flip_expected[fam], g.flip_expected_net[fam], g.flip_expected_net_other[fam])


def _deep_mlp_on_biased_arrests(column: str, seed: int) -> IntegrityResult:
    """The benchmark's ``mlp-deep-biased`` on arrests: positives of ``column``'s group turned negative
    with probability 0.6, a two-layer MLP, checked with the same seed."""
    from sklearn.neural_network import MLPClassifier

    x, y, names = _fairness_data.arrests()
    c = names.index(column)
    rng = np.random.default_rng(seed)
    biased = np.where((x[:, c] > 0.5) & (y == 1) & (rng.random(len(y)) < 0.6), 0, y)
    mlp = make_pipeline(
        StandardScaler(), MLPClassifier(hidden_layer_sizes=(64, 64), max_iter=300, random_state=seed)
    ).fit(x, biased)
    return assess_integrity(_adapter(mlp, x), x, sensitive=[c], feature_names=names, seed=seed)


def _scaffold(x: np.ndarray, names: list[str], sensitive: str, seed: int) -> ScaffoldedClassifier:
    return ScaffoldedClassifier(
        sensitive=names.index(sensitive), innocuous=names.index("age"), n_estimators=50, seed=seed
    ).fit(x)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scaffold_flagged_on_synthetic_data(seed: int) -> None:
    x, _, names = _synthetic(seed)
    scaffold = _scaffold(x, names, "group", seed)
    assert scaffold.biased_share(x) > 0.9  # the attack works: biased on real rows...
    result = assess_integrity(
        _adapter(scaffold, x), x, sensitive=[0], feature_names=names, max_rows=800, seed=seed
    )
    assert result.flagged
    group = next(g for g in result.groups if g.group == "group")
    assert group.in_distribution > 0.2
    assert "lime-gaussian" in group.hidden_from  # ...and hidden from LIME's perturbations
    report = integrity_report(result, subject="scaffold")
    assert report.verdict == "scaffolded" and report.metrics["scaffold_flagged"] == 1.0
    assert report.findings[0].location["feature"] == "group"


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("kind", ["logreg", "gbm", "rule-on-sensitive"])
def test_honest_models_not_flagged_on_synthetic_data(kind: str, seed: int) -> None:
    x, y, names = _synthetic(seed)
    est: object
    if kind == "logreg":
        est = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)
    elif kind == "gbm":
        est = GradientBoostingClassifier(random_state=seed).fit(x, y)
    else:
        est = rule_classifier(x, 0)
    result = assess_integrity(
        _adapter(est, x), x, sensitive=[0], feature_names=names, max_rows=800, seed=seed
    )
    assert not result.flagged, result.groups
    if kind == "rule-on-sensitive":  # it does decide on the group, openly, on both distributions
        g = result.groups[0]
        assert g.in_distribution > 0.2 and min(g.perturbed.values()) > 0.2
    assert integrity_report(result, subject=kind).verdict == "consistent"


def test_bias_moved_into_a_proxy_is_still_flagged() -> None:
    x, _, names = _synthetic(4)
    rng = np.random.default_rng(4)
    x[:, 3] = x[:, 0] * 2.0 + 0.3 * rng.normal(size=len(x))  # "c" tracks the group closely
    assert 3 in find_proxies(x, [0])
    scaffold = ScaffoldedClassifier(sensitive=3, innocuous=5, n_estimators=50, seed=4).fit(x)  # decides on c
    result = assess_integrity(
        _adapter(scaffold, x), x, sensitive=[0], feature_names=names, max_rows=800, seed=4
    )
    assert "c" in result.proxies
    assert result.flagged
    assert any(g.hidden_from for g in result.groups if "c" in g.group)


@pytest.mark.timeout(240)
@pytest.mark.parametrize(
    ("dataset", "sensitive", "seed"),
    [("arrests", "colour", 0), ("arrests", "sex", 1), ("flchain", "female", 2)],
)
def test_scaffold_and_honest_models_on_real_data(dataset: str, sensitive: str, seed: int) -> None:
    load: Callable[[], Data] = getattr(_fairness_data, dataset)
    x, y, names = load()
    s = names.index(sensitive)
    scaffold = _scaffold(x, names, sensitive, seed)
    flagged = assess_integrity(
        _adapter(scaffold, x), x, sensitive=[s], feature_names=names, max_rows=800, seed=seed
    )
    assert flagged.flagged
    honest = GradientBoostingClassifier(n_estimators=50, random_state=seed).fit(x, y)
    clean = assess_integrity(
        _adapter(honest, x), x, sensitive=[s], feature_names=names, max_rows=800, seed=seed
    )
    assert not clean.flagged, clean.groups


def test_bad_input_is_a_clear_error() -> None:
    x, y, _ = _synthetic(0, n=300)
    model = _adapter(LogisticRegression().fit(x, y), x)
    with pytest.raises(InputError, match=f"at least {MIN_ROWS} rows"):
        assess_integrity(model, x[: MIN_ROWS - 1], sensitive=[0])
    with pytest.raises(InputError, match="not among the 6 features"):
        assess_integrity(model, x, sensitive=[9])
    with pytest.raises(InputError, match="at least one sensitive"):
        assess_integrity(model, x, sensitive=[])


class _MixedRule:
    """Honest twin of a scaffold: decides on the sensitive column and on age, for every input."""

    def __init__(self, x: np.ndarray, s: int, age: int) -> None:
        self.s, self.age = s, age
        self.ts, self.ta = 0.5, float(np.quantile(x[:, age], 0.75))
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = x.shape[1]

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        pos = ((x[:, self.s] > self.ts) | (x[:, self.age] > self.ta)).astype(np.float64)
        return np.stack([1.0 - pos, pos], axis=1)


@pytest.mark.timeout(240)
def test_scaffold_that_only_demotes_a_small_group_is_flagged_and_its_honest_twin_is_not() -> None:
    # The one scaffold the first benchmark missed (arrests, sex, seed 0, detector trained on SHAP's
    # samplers): women are 8% of the rows and its detector takes only 75% of real rows for real, so
    # its dependence on sex barely drops under perturbation (0.074 -> 0.056 at worst); it fools SHAP
    # by letting age dominate the explainer's points. Its share of the dependence collapses there.
    x, _, names = _fairness_data.arrests()
    s, age = names.index("sex"), names.index("age")
    scaffold = ScaffoldedClassifier(
        sensitive=s, innocuous=age, families=("shap-coalition", "shap-kmeans"), seed=0
    ).fit(x)
    result = assess_integrity(_adapter(scaffold, x), x, sensitive=[s], feature_names=names, seed=0)
    g = next(g for g in result.groups if g.group == "sex")
    assert g.hidden_from and result.flagged
    shap_families = ("shap-coalition", "shap-kmeans")
    assert set(shap_families) & set(g.hidden_from)  # hidden where its detector was trained...
    # ...and relatively: sex's share of the swap effects there falls below the honest twin's
    assert any(
        g.flip[f] / (g.flip[f] + g.flip_rest[f])
        < g.flip_expected[f] / (g.flip_expected[f] + g.flip_rest_expected[f]) - SWAP_SHARE_GAP_SEVERAL
        for f in shap_families
    )
    twin = assess_integrity(_adapter(_MixedRule(x, s, age), x), x, sensitive=[s], feature_names=names, seed=0)
    assert not twin.flagged, twin.groups
    assert twin.groups[0].in_distribution > 0.05  # it does use sex: judged, and consistent


@pytest.mark.timeout(240)
def test_scaffold_behind_a_nearest_neighbour_detector_is_flagged() -> None:
    # The detector knows no sampler: a row is real when its 5th nearest real row is as close as real
    # rows' are. It still tells LIME's Gaussian samples apart, and that is where the bias is hidden.
    x, _, names = _fairness_data.arrests()
    s, age = names.index("colour"), names.index("age")
    scaffold = ScaffoldedClassifier(sensitive=s, innocuous=age, detector="knn", seed=5).fit(x)
    assert scaffold.biased_share(x) > 0.9
    result = assess_integrity(
        _adapter(scaffold, x), x, sensitive=[s], feature_names=names, max_rows=800, seed=5
    )
    assert result.flagged and "lime-gaussian" in result.groups[0].hidden_from, result.groups


@pytest.mark.timeout(240)
def test_scaffold_that_hides_only_on_some_points_is_flagged_against_its_honest_twin() -> None:
    # The detector knows no sampler (distance to the 5th nearest real row) and on this data catches
    # only about half of LIME's Gaussian points: the group's share of the decisions' dependence there
    # falls from 1.0 to about 0.4, short of the test against the model itself on real rows. Against the
    # honest twin (the model's in-distribution behaviour, learnt from real rows, on the same points) the
    # swaps of the group change far fewer decisions than they should.
    x, _, names = _synthetic(0)
    scaffold = ScaffoldedClassifier(sensitive=0, innocuous=5, detector="knn", seed=0).fit(x)
    assert scaffold.biased_share(x) > 0.9
    result = assess_integrity(_adapter(scaffold, x), x, sensitive=[0], feature_names=names, seed=0)
    g = result.groups[0]
    assert min(g.share_perturbed.values()) > HIDE_RATIO * g.share_in_distribution  # partial hiding
    assert result.flagged and "lime-gaussian" in g.hidden_from, result.groups
    fam = "lime-gaussian"
    own = g.flip[fam] / (g.flip[fam] + g.flip_rest[fam])
    twin = g.flip_expected[fam] / (g.flip_expected[fam] + g.flip_rest_expected[fam])
    assert twin - own >= SWAP_SHARE_GAP


@pytest.mark.timeout(240)
def test_honest_model_whose_use_of_a_group_falls_on_spread_out_points_is_not_flagged() -> None:
    # Decides on sex or age (top quartile) for every input. LIME's Gaussian points double age's
    # spread, so age decides more of them and sex's share of the dependence falls from about 0.3 to
    # 0.05: against the model's own in-distribution share that looks like hiding (the one honest model
    # the previous held-out run flagged). The honest twin falls the same way on the same points.
    x, _, names = _fairness_data.arrests()
    s, age = names.index("sex"), names.index("age")
    result = assess_integrity(
        _adapter(_MixedRule(x, s, age), x), x, sensitive=[s], feature_names=names, seed=1
    )
    g = result.groups[0]
    fam = "lime-gaussian"
    assert g.in_distribution > 0.05  # it does use sex: judged
    assert g.share_perturbed[fam] <= HIDE_RATIO * g.share_in_distribution  # the fall...
    assert abs(g.share_perturbed[fam] - g.share_expected[fam]) < 0.05  # ...is the twin's too
    assert abs(g.flip[fam] - g.flip_expected[fam]) < 0.05
    assert not result.flagged, result.groups


@pytest.mark.timeout(240)
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # as the benchmark trains it
def test_honest_network_on_biased_labels_with_a_continuous_proxy_is_not_flagged() -> None:
    # The held-out false positive of seeds 5-6: an MLP trained on labels with a planted disparity, on
    # the arrests data with a noisy continuous proxy of colour. Far from the data it leans more on the
    # other columns than the tree twin does, so the proxy's share of the swap effects falls on several
    # families; but it keeps most of the proxy's own effect, which a scaffold's detector removes.
    from sklearn.neural_network import MLPClassifier

    x, y, names = _fairness_data.arrests()
    c = names.index("colour")
    rng = np.random.default_rng(1006)
    col = x[:, c].astype(np.float64)
    proxy = (col - col.mean()) / col.std() + rng.normal(0.0, 0.9, size=len(col))
    x = np.column_stack([x, proxy]).astype(np.float32)
    names = [*names, "colour_proxy"]
    p = len(names) - 1
    biased = np.where(
        (x[:, p] > np.median(x[:, p])) & (y == 1) & (np.random.default_rng(6).random(len(y)) < 0.6), 0, y
    )
    mlp = make_pipeline(
        StandardScaler(), MLPClassifier(hidden_layer_sizes=(32,), max_iter=300, random_state=6)
    ).fit(x, biased)
    result = assess_integrity(_adapter(mlp, x), x, sensitive=[c], feature_names=names, seed=6)
    g = next(g for g in result.groups if g.group == "colour_proxy")
    assert g.in_distribution > 0.05  # judged
    falls = [
        f
        for f in g.flip
        if g.flip_expected[f] / (g.flip_expected[f] + g.flip_rest_expected[f])
        - g.flip[f] / (g.flip[f] + g.flip_rest[f])
        >= SWAP_SHARE_GAP_SEVERAL
    ]
    assert len(falls) >= 2  # the share falls on several families against the tree twin...
    kept = [g.flip[f] / max(g.flip_expected[f], g.flip_expected_net[f]) for f in falls]
    assert min(kept) > SWAP_RATIO_SEVERAL  # ...but the proxy's own effect stays
    assert not result.flagged, result.groups


@pytest.mark.timeout(240)
def test_honest_rbf_svm_that_fades_far_from_its_data_is_not_flagged() -> None:
    # An RBF SVM on labels with a planted disparity against women: on LIME's Gaussian points (twice the
    # data's spread) its kernel terms vanish and it answers almost always one way, so its decisions
    # depend on sex far less than the twins' (which stay flat, sloped or bent). It hides nothing in
    # particular there: it depends on nothing much at all, and its own swaps of sex still change over
    # half of what the twins' do.
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import SVC

    x, y, names = _fairness_data.arrests()
    s = names.index("sex")
    women = x[:, s] > 0.5
    biased = np.where(women & (y == 1) & (np.random.default_rng(7).random(len(y)) < 0.6), 0, y)
    svm = make_pipeline(StandardScaler(), CalibratedClassifierCV(SVC(), ensemble=False)).fit(x, biased)
    result = assess_integrity(_adapter(svm, x), x, sensitive=[s], feature_names=names, seed=7)
    g = result.groups[0]
    fam = "lime-gaussian"
    assert g.in_distribution > 0.05  # judged
    assert g.perturbed[fam] < 0.35 * g.expected[fam]  # the fall the dependence test once took for hiding
    assert fam not in g.share_perturbed  # ...on points where its decisions depend on almost nothing
    assert not result.flagged, result.groups


@pytest.mark.timeout(240)
def test_scaffold_that_answers_one_class_on_perturbations_is_flagged() -> None:
    # No innocuous rule: wherever its nearest-neighbour detector sees a perturbation it answers
    # "positive", so explainers see a model that decides on nothing there.
    x, _, names = _fairness_data.arrests()
    s, age = names.index("colour"), names.index("age")
    scaffold = ScaffoldedClassifier(sensitive=s, innocuous=age, detector="knn", seed=7, constant=1).fit(x)
    assert scaffold.biased_share(x) > 0.9
    result = assess_integrity(_adapter(scaffold, x), x, sensitive=[s], feature_names=names, seed=7)
    assert result.flagged and "lime-gaussian" in result.groups[0].hidden_from, result.groups


@pytest.mark.timeout(240)
def test_constant_scaffold_that_hides_about_half_of_one_family_is_flagged() -> None:
    # The miss of held-out seeds 11-12: on six synthetic features the nearest-neighbour detector takes
    # about half of LIME's Gaussian points for real, so the group's own swap effect keeps about 56% of
    # the twins' and its share of the swap effects falls by about 0.2; other families show nothing.
    # Both falls at once, moderate, on one family: partial hiding.
    x, _, names = _synthetic(0, n=3000)  # the benchmark's synthetic data
    scaffold = ScaffoldedClassifier(sensitive=0, innocuous=5, detector="knn", seed=8, constant=1).fit(x)
    assert scaffold.biased_share(x) > 0.9
    result = assess_integrity(_adapter(scaffold, x), x, sensitive=[0], feature_names=names, seed=8)
    g = result.groups[0]
    fam = "lime-gaussian"
    assert g.flip[fam] <= SWAP_RATIO_OWN * _largest_tree_or_net(g, fam)
    assert g.flip[fam] > 0.5 * _largest_tree_or_net(g, fam)  # not the absolute test
    own = g.flip[fam] / (g.flip[fam] + g.flip_rest[fam])
    assert g.flip_expected[fam] / (g.flip_expected[fam] + g.flip_rest_expected[fam]) - own < SWAP_SHARE_GAP
    assert result.flagged and fam in g.hidden_from, result.groups


@pytest.mark.timeout(240)
def test_constant_scaffold_at_the_edge_of_partial_hiding_is_flagged() -> None:
    # The miss of held-out seeds 21-22: the same scaffold on seed 22 keeps 63% of the largest twin's
    # effect on LIME's Gaussian points and its share falls 0.163, 0.139 and 0.259 below the tree,
    # network and smooth twins': 0.001 short of the first threshold (0.14). Honest models keeping at most
    # 66% fell 0.114 at most (seeds 5-22).
    x, _, names = _synthetic(0, n=3000)
    scaffold = ScaffoldedClassifier(sensitive=0, innocuous=5, detector="knn", seed=22, constant=1).fit(x)
    result = assess_integrity(_adapter(scaffold, x), x, sensitive=[0], feature_names=names, seed=22)
    g = result.groups[0]
    assert g.flip["lime-gaussian"] <= SWAP_RATIO_OWN * _largest_tree_or_net(g, "lime-gaussian")
    assert result.flagged and g.hidden_from == ("lime-gaussian",), result.groups


@pytest.mark.timeout(240)
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # as the benchmark trains it
def test_honest_deep_network_whose_share_falls_but_keeps_its_effect_is_not_flagged() -> None:
    # A two-layer MLP on arrests labels with a planted disparity against Black people (seed 8 of the
    # benchmark): far from the data it leans on the other columns more than the twins do, so colour's
    # share of the swap effects falls by about 0.16 on LIME's Gaussian points, but it keeps about 70% of
    # colour's own effect there: not the partial hiding of a detector.
    result = _deep_mlp_on_biased_arrests("colour", 8)
    g = result.groups[0]
    fam = "lime-gaussian"
    assert g.in_distribution > 0.05  # judged
    assert g.flip[fam] > SWAP_RATIO_OWN * _largest_tree_or_net(g, fam)
    assert not result.flagged, result.groups


@pytest.mark.timeout(240)
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # as the benchmark trains it
def test_honest_deep_network_the_surrogates_alone_read_as_hiding_is_not_flagged() -> None:
    # Held-out seed 16: on LIME's Gaussian points the surrogates put sex's share of this MLP's
    # dependence at about 0.16 against the twin's 0.84, while the paired swaps of sex kept about 75% of
    # the twins' effect (and a share of 0.59 against 0.67-0.81). The surrogates, fitted on 500 points
    # each, are the noisier reading: they judge a family only where the swaps show a clear fall.
    result = _deep_mlp_on_biased_arrests("sex", 16)
    g = result.groups[0]
    fam = "lime-gaussian"
    assert g.in_distribution > 0.05  # judged
    assert g.share_perturbed[fam] <= HIDE_RATIO * g.share_expected[fam]  # what the surrogates read
    assert g.flip[fam] > SWAP_RATIO_OWN * _largest_tree_or_net(g, fam)
    assert not result.flagged, result.groups


@pytest.mark.timeout(240)
def test_honest_rbf_svm_whose_swaps_fade_to_half_the_twins_is_not_flagged() -> None:
    # Held-out seed 18: on LIME's Gaussian points this SVM's swaps of sex change about half of what the
    # closest twin's change (it fades to its intercept there), which the absolute swap test once took
    # for hiding. A scaffold that hides the group on most of a family's points keeps a tenth or less.
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import SVC

    x, y, names = _fairness_data.arrests()
    s = names.index("sex")
    biased = np.where((x[:, s] > 0.5) & (y == 1) & (np.random.default_rng(18).random(len(y)) < 0.6), 0, y)
    svm = make_pipeline(StandardScaler(), CalibratedClassifierCV(SVC(), ensemble=False)).fit(x, biased)
    result = assess_integrity(_adapter(svm, x), x, sensitive=[s], feature_names=names, seed=18)
    g = result.groups[0]
    fam = "lime-gaussian"
    closest = min(g.flip_expected[fam], g.flip_expected_net[fam], g.flip_expected_smooth[fam])
    assert SWAP_RATIO < g.flip[fam] / closest <= 0.5  # the fall 0.5 once flagged
    assert not result.flagged, result.groups
