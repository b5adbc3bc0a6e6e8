"""Peer membership-inference tools on one target, run in benchmarks/.venvs/privacy-audit.

Usage: _peers.py WORKDIR TARGET K SEED -> prints one JSON line: {tool: {"scores": [...], "seconds": s}}
with scores on the members then the non-members (higher = member), so run.py computes every tool's
metrics with one definition.

- ART ``MembershipInferenceBlackBoxRuleBased``: member when the prediction is correct.
- ART ``MembershipInferenceBlackBox`` (prediction input, random-forest attack model; its loss input
  needs a loss the scikit-learn wrapper does not offer), trained on half of the
  audited records with their membership and scored on the other half, both ways round (2-fold).
- ART ``ShadowModels`` + ``MembershipInferenceBlackBox`` (prediction input): K shadow models cloned
  from the target, trained on the reference pool; the attack model learns from them.
- ML Privacy Meter ``ReferenceMetric`` (loss signal, linear-interpolation threshold): K reference
  models cloned from the target and trained on the pool; per-record thresholds at 201 FPR tolerances;
  the score is the share of tolerances at which the record is called a member (its ROC is their sweep).
"""

from __future__ import annotations

import json
import pickle
import shutil
import sys
import time
import types
from pathlib import Path

import numpy as np
from sklearn.base import clone


def _placeholders() -> None:
    # privacy-meter's model module imports these at the top; its scikit-learn path uses none of them
    for name in ("tensorflow", "torch", "opacus"):
        mod = types.ModuleType(name)
        mod.GradSampleModule = object  # type: ignore[attr-defined]
        sys.modules.setdefault(name, mod)


def _ce(est, x, y):  # per-record cross-entropy
    p = est.predict_proba(x)
    return -np.log(np.clip(p[np.arange(len(y)), y], 1e-12, 1.0))


def art_rule(est, xm, ym, xn, yn, k, seed):
    from art.attacks.inference.membership_inference import MembershipInferenceBlackBoxRuleBased
    from art.estimators.classification import SklearnClassifier

    clf = SklearnClassifier(est)
    att = MembershipInferenceBlackBoxRuleBased(clf)
    x, y = np.concatenate([xm, xn]), np.concatenate([ym, yn])
    return att.infer(x, y).astype(float).reshape(-1)


def art_blackbox(est, xm, ym, xn, yn, k, seed):
    from art.attacks.inference.membership_inference import MembershipInferenceBlackBox
    from art.estimators.classification import SklearnClassifier

    clf = SklearnClassifier(est)

    def onehot(v):
        return np.eye(est.classes_.size)[v]

    rng = np.random.default_rng(seed)
    pm, pn = rng.permutation(len(xm)), rng.permutation(len(xn))
    halves_m, halves_n = np.array_split(pm, 2), np.array_split(pn, 2)
    sm, sn = np.zeros(len(xm)), np.zeros(len(xn))
    for a, b in ((0, 1), (1, 0)):
        att = MembershipInferenceBlackBox(clf, input_type="prediction", attack_model_type="rf")
        att.fit(xm[halves_m[a]], onehot(ym[halves_m[a]]), xn[halves_n[a]], onehot(yn[halves_n[a]]))
        sm[halves_m[b]] = att.infer(xm[halves_m[b]], onehot(ym[halves_m[b]]), probabilities=True).reshape(-1)
        sn[halves_n[b]] = att.infer(xn[halves_n[b]], onehot(yn[halves_n[b]]), probabilities=True).reshape(-1)
    return np.concatenate([sm, sn])


def art_shadow(est, xm, ym, xn, yn, xp, yp, k, seed):
    from art.attacks.inference.membership_inference import MembershipInferenceBlackBox, ShadowModels
    from art.estimators.classification import SklearnClassifier

    clf = SklearnClassifier(est)
    # the template must say its classes: fitted once on the pool, then cloned and refitted per shadow
    shadows = ShadowModels(SklearnClassifier(clone(est).fit(xp, yp)), num_shadow_models=k, random_state=seed)
    (mx, my, mp), (nx, ny, np_) = shadows.generate_shadow_dataset(xp, np.eye(est.classes_.size)[yp])
    att = MembershipInferenceBlackBox(clf, input_type="prediction", attack_model_type="rf")
    att.fit(mx, my, nx, ny, mp, np_)
    x, y = np.concatenate([xm, xn]), np.concatenate([ym, yn])
    return att.infer(x, np.eye(est.classes_.size)[y], probabilities=True).reshape(-1)


def privacy_meter_reference(est, xm, ym, xn, yn, xp, yp, k, seed, workdir, name):
    _placeholders()
    from privacy_meter.dataset import Dataset
    from privacy_meter.hypothesis_test import linear_itp_threshold_func
    from privacy_meter.information_source import InformationSource
    from privacy_meter.information_source_signal import ModelLoss
    from privacy_meter.metric import ReferenceMetric
    from privacy_meter.model import Model

    class Proba(Model):  # their Sklearn_Model reads column -1 only (binary); this gives every class
        def get_logits(self, batch_samples):
            return self.model_obj.predict_proba(batch_samples)

        def get_loss(self, batch_samples, batch_labels, per_point=True):
            return _ce(self.model_obj, np.asarray(batch_samples), np.asarray(batch_labels))

        def get_grad(self, batch_samples, batch_labels):
            return None

        def get_intermediate_outputs(self, layers, batch_samples, forward_pass=True):
            return None

    rng = np.random.default_rng(seed)
    size = min(len(xm), len(xp) // 2 or 1)
    refs = []
    for i in range(k):
        idx = rng.choice(len(xp), size=size, replace=False)
        m = clone(est)
        if "random_state" in m.get_params():
            m.set_params(random_state=seed + i)
        refs.append(Proba(m.fit(xp[idx], yp[idx]), None))
    data = Dataset(
        {"train": {"x": xm, "y": ym}, "test": {"x": xn, "y": yn}}, default_input="x", default_output="y"
    )
    target = InformationSource(models=[Proba(est, None)], datasets=[data])
    reference = InformationSource(models=refs, datasets=[data])
    logs = Path(workdir) / f"pm-{name}-{seed}"  # it caches signals here: one folder per target, fresh
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    metric = ReferenceMetric(
        target,
        reference,
        signals=[ModelLoss()],
        hypothesis_test_func=linear_itp_threshold_func,
        logs_dirname=str(logs),
    )
    metric.prepare_metric()
    res = metric.run_metric(fpr_tolerance_rate_list=np.linspace(0.0, 1.0, 201))
    res = res[0] if isinstance(res, list) else res
    preds = np.asarray(res.predicted_labels, dtype=float)  # (tolerances, records)
    return preds.mean(axis=0)


def main() -> None:
    workdir, name, k, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    d = np.load(Path(workdir) / f"{name}.npz")
    est = pickle.loads((Path(workdir) / f"{name}.pkl").read_bytes())
    xm, ym, xn, yn, xp, yp = (d[a] for a in ("xm", "ym", "xn", "yn", "xp", "yp"))
    out = {}
    runs = {
        "art_rule_based": lambda: art_rule(est, xm, ym, xn, yn, k, seed),
        "art_black_box": lambda: art_blackbox(est, xm, ym, xn, yn, k, seed),
        "art_shadow_models": lambda: art_shadow(est, xm, ym, xn, yn, xp, yp, k, seed),
        "privacy_meter_reference": lambda: privacy_meter_reference(
            est, xm, ym, xn, yn, xp, yp, k, seed, workdir, name
        ),
    }
    for tool, fn in runs.items():
        t = time.perf_counter()
        try:
            scores = np.asarray(fn(), dtype=float)
            out[tool] = {"scores": scores.tolist(), "seconds": time.perf_counter() - t}
        except Exception as err:  # a peer that fails is reported, not hidden
            out[tool] = {"error": f"{type(err).__name__}: {err}", "seconds": time.perf_counter() - t}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
