"""Query-attack benchmark: the query_attack detector and the adversarial_input screen.

Run from the repository root with the project's own environment (no extra packages)::

    nice -n 10 .venv/bin/python benchmarks/monitor/query_attacks/run.py [--seeds 5] [--quick]

Results go to ``benchmarks/results/monitor-query-attacks.{json,md}``.

Part 1, the stateful detector. Three served models (logistic regression behind a standard scaler) on
scikit-learn's digits (64 features, also attacked as 1x8x8 images), breast cancer (30 features in
raw units) and a 20-feature, 5-class synthetic tabular set. Each attacker principal runs our own
``mlsecops.assess`` HopSkipJump (L2, decision-based) or Square (L-inf, score-based) on correctly
classified inputs one after another (a campaign, until it has sent ``CAMPAIGN_ROWS`` queries), in
[0, 1]-normalised units that a recording adapter maps back to raw units and logs; the log is replayed
through the detector one request per query. Reported per attacker: the query at which it was flagged,
and how many adversarial examples it had finished before that. Benign principals send natural rows of
the held-out half (2,000 queries each; one row in ten retried 2-5 times in a row), one row per request
and in batches of 25. An *adaptive* attacker adds uniform noise to every query (a share of each
feature's range) to break near-duplicates: reported are the detection and what the noise costs the
attack. Per-query cost is the CPU and wall time of ``observe`` per one-row request (p50/p99), also on
784-feature rows (MNIST-sized). NES attackers (Gaussian probes of 1, 5 and 10% of each feature's
range) test the concentration signal, narrow benign clients (one class; the 80 natural rows of a class
nearest one member) and the extraction benchmark's benign kinds its false alarms. A fourth data set mixes 10 continuous columns with one-hot and sparse
binary ones, whose natural rows agree on most columns. A benign client that re-sends every natural row
five times with small noise shows the detector's known false-positive class.

Part 2, the single-input screen. An MLP on digits trained with Gaussian noise (sigma 0.25, the
screen's sigma) and one trained without; adversarial inputs from our own PGD and APGD; detection rate
on successful adversarial inputs, false-positive rate on clean held-out rows, and an adaptive attacker
who knows the screen: PGD on the expectation over the screen's noise (EOT, 16 draws per step), which
wins when the model is fooled and the screen does not flag.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer, load_digits, make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mlsecops.assess.attack import make_attack
from mlsecops.models import SklearnModel, TorchModel
from mlsecops.monitor.adversarial_screen import SAMPLES, SIGMA, screen
from mlsecops.monitor.interface import Observation
from mlsecops.monitor.query_attacks import QueryAttackDetector

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[3]
RESULTS = ROOT / "benchmarks" / "results"
CAMPAIGN_ROWS = 300
"""Queries each attacker sends (attacking inputs one after another)."""
BENIGN_PRINCIPALS = 10
BENIGN_QUERIES = 2_000
FLAG_GOAL = 100
WORLD_CLIENTS = 10
"""Clients per benign kind of the extraction benchmark's world replayed through the detector."""


# ----------------------------------------------------------------------------------- served models
class Served:
    def __init__(self, name: str, x: np.ndarray, y: np.ndarray, image: tuple[int, ...] | None = None) -> None:
        order = np.random.default_rng(0).permutation(len(x))
        x, y = x[order], y[order]
        half = len(x) // 2
        self.name, self.image = name, image
        self.x_train, self.x_pool, self.y_pool = x[:half], x[half:], y[half:]
        pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x[:half], y[:half])
        self.model = SklearnModel(pipe)
        self.correct = np.flatnonzero(self.model.predict_proba(self.x_pool).argmax(axis=1) == self.y_pool)


def mixed_tabular(n: int) -> tuple[np.ndarray, np.ndarray]:
    """10 continuous columns, 4 one-hot categoricals of 10 levels (one level half the rows), 10 sparse flags."""
    rng = np.random.default_rng(0)
    cont = rng.normal(size=(n, 10))
    level = np.r_[0.5, np.full(9, 0.5 / 9)]
    cats = [np.eye(10)[rng.choice(10, n, p=level)] for _ in range(4)]
    flags = (rng.random((n, 10)) < 0.1).astype(np.float64)
    y = (cont[:, 0] + cont[:, 1] + cats[0][:, 0] > 0.5).astype(np.int64) + (cont[:, 2] > 0.8)
    return np.hstack([cont, *cats, flags]), y


def served_models() -> list[Served]:
    d = load_digits()
    c = load_breast_cancer()
    xt, yt = make_classification(4000, 20, n_informative=10, n_classes=5, random_state=0)
    xm, ym = mixed_tabular(4000)
    return [
        Served("digits", d.data.astype(np.float64), d.target, image=(1, 8, 8)),
        Served("breast-cancer", c.data, c.target),
        Served("tabular-20", xt * 3.0 + 10.0, yt),
        Served("mixed one-hot", xm, ym),
    ]


class Recording:
    """Adapter logging every query in raw units; the attacker works in [0, 1] units (optionally an image)."""

    def __init__(self, s: Served, *, image: bool = False, noise: float = 0.0, seed: int = 0) -> None:
        self.s = s
        self.lo, self.hi = s.x_train.min(axis=0), s.x_train.max(axis=0)
        self.shape = s.image if image and s.image else (s.x_train.shape[1],)
        self.noise, self.rng = noise, np.random.default_rng(seed + 99)
        self.log: list[np.ndarray] = []

    @property
    def n_classes(self) -> int:
        return self.s.model.n_classes

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.shape

    def normalise(self, x: np.ndarray) -> np.ndarray:
        span = np.where(self.hi > self.lo, self.hi - self.lo, 1.0)
        return np.clip((x - self.lo) / span, 0, 1).astype(np.float32).reshape(len(x), *self.shape)

    def predict_proba(self, z: np.ndarray) -> np.ndarray:
        flat = np.asarray(z, dtype=np.float64).reshape(len(z), -1)
        if self.noise:  # the adaptive attacker blurs each query it sends
            flat = np.clip(flat + self.rng.uniform(-self.noise, self.noise, flat.shape), 0, 1)
        raw = self.lo + flat * (self.hi - self.lo)
        self.log.extend(raw)
        return self.s.model.predict_proba(raw)


def campaign(s: Served, attack: str, seed: int, *, image: bool = False, noise: float = 0.0) -> dict[str, Any]:
    """One attacker: attack inputs in turn until CAMPAIGN_ROWS queries; per example, its end and success."""
    rec = Recording(s, image=image, noise=noise, seed=seed)
    picks = np.random.default_rng(seed).permutation(s.correct)
    if attack == "square":
        att, eps = make_attack("square", max_queries=500, p_init=0.05), 0.05
    else:
        att, eps = make_attack("hopskipjump", norm="l2", max_queries=500, stop_at_eps=False), 0.5
    ends, fooled = [], []
    for i in picks:
        if len(rec.log) >= CAMPAIGN_ROWS:
            break
        x0 = rec.normalise(s.x_pool[i : i + 1])
        res = att.generate(rec, x0, s.y_pool[i : i + 1], eps=eps, seed=seed)
        ends.append(len(rec.log))
        if noise:  # did the adversarial input (sent without noise) fool the model within eps?
            raw = rec.lo + res.x_adv.reshape(1, -1).astype(np.float64) * (rec.hi - rec.lo)
            fooled.append(bool(s.model.predict_proba(raw).argmax() != s.y_pool[i]))
        else:
            fooled.append(bool(res.fooled[0]))
    return {"rows": np.asarray(rec.log), "ends": ends, "fooled": fooled}


SIGNALS: dict[str, str] = {}
"""Principal -> the signal of its first alert (``near_duplicates`` or ``concentration``)."""


def replay(
    det: QueryAttackDetector,
    rows: np.ndarray,
    principal: str,
    *,
    batch: int = 1,
    cpu: list[float] | None = None,
    model: Any = None,
) -> tuple[int | None, list[float]]:
    """Send the rows with the model's answers (as the guard and the replay do); the first flagged query
    (rows sent so far) and the wall time per request (seconds); the CPU time of the thread per request
    is appended to ``cpu`` and the first alert's signal recorded in ``SIGNALS``."""
    flagged, costs = None, []
    outputs = None if model is None else model.predict_proba(rows)
    for n, start in enumerate(range(0, len(rows), batch), 1):
        obs = Observation(
            time=float(n),
            principal=principal,
            model="m",
            inputs=rows[start : start + batch],
            outputs=None if outputs is None else outputs[start : start + batch],
            query_index=n,
        )
        t0, c0 = time.perf_counter(), time.thread_time()
        alerts = det.observe(obs)
        costs.append(time.perf_counter() - t0)
        if cpu is not None:
            cpu.append(time.thread_time() - c0)
        if alerts and flagged is None:
            flagged = min(len(rows), start + batch)
            SIGNALS[principal] = str(alerts[0].evidence.get("signal"))
    return flagged, costs


def nes_campaign(
    s: Served, sigma: float, seed: int, *, eps: float = 0.1, probes: int = 25, budget: int = 1_000
) -> dict[str, Any]:
    """An NES attacker (Ilyas et al. 2018; score-based): per iterate ``probes`` antithetic Gaussian probes
    of ``sigma`` x each feature's range, a signed step of 0.01 on the estimated gradient of the true
    class's probability, projected on the L-inf ball of ``eps``; up to ``budget`` queries per input,
    inputs in turn until ``CAMPAIGN_ROWS`` (the first input runs to its end: success is measured on
    whole attacks, the detector sees the first ``CAMPAIGN_ROWS`` queries). Success: the iterate
    misclassified within ``eps``."""
    rec = Recording(s, seed=seed)
    rng = np.random.default_rng(seed)
    ends, fooled = [], []
    for i in rng.permutation(s.correct):
        if len(rec.log) >= CAMPAIGN_ROWS:
            break
        x0 = rec.normalise(s.x_pool[i : i + 1]).reshape(-1).astype(np.float64)
        x, y, won = x0.copy(), int(s.y_pool[i]), False
        start = len(rec.log)
        while len(rec.log) - start < budget and not won:
            u = rng.normal(size=(probes, len(x)))
            score = rec.predict_proba(np.clip(np.vstack([x + sigma * u, x - sigma * u]), 0, 1))[:, y]
            grad = ((score[:probes] - score[probes:])[:, None] * u).sum(axis=0)
            x = np.clip(np.clip(x - 0.01 * np.sign(grad), x0 - eps, x0 + eps), 0, 1)
            raw = rec.lo + x[None] * (rec.hi - rec.lo)
            won = bool(s.model.predict_proba(raw).argmax() != y)  # the attacker's own check, not logged
        ends.append(len(rec.log))
        fooled.append(won)
    return {"rows": np.asarray(rec.log)[:CAMPAIGN_ROWS], "ends": ends, "fooled": fooled}


def nes_interleaved(s: Served, sigma: float, seed: int, *, half_natural: bool) -> dict[str, Any]:
    """The adaptive NES attacker who read the detector: its probes alternate between two attacked inputs
    (two campaigns), or with random natural rows of the pool (one for one)."""
    a = nes_campaign(s, sigma, seed)
    if half_natural:
        rng = np.random.default_rng(seed + 500)
        other = s.x_pool[rng.integers(len(s.x_pool), size=len(a["rows"]))]
        ends, fooled = [2 * e for e in a["ends"]], a["fooled"]
    else:
        b = nes_campaign(s, sigma, seed + 100)
        other = b["rows"]
        ends, fooled = [2 * e for e in a["ends"]] + [2 * e for e in b["ends"]], a["fooled"] + b["fooled"]
    n = min(len(a["rows"]), len(other))
    rows = np.stack([a["rows"][:n], other[:n]], axis=1).reshape(2 * n, -1)[:CAMPAIGN_ROWS]
    return {"rows": rows, "ends": sorted(ends), "fooled": fooled}


def narrow_rows(s: Served, rng: np.random.Generator, nearest: int | None) -> np.ndarray:
    """A benign client of one predicted class (``nearest``: only the natural rows of the class nearest one
    random member, in range-normalised units), ``BENIGN_QUERIES`` rows drawn with repeats."""
    classes = s.model.predict_proba(s.x_pool).argmax(axis=1)
    members = np.flatnonzero(classes == rng.choice(np.unique(classes)))
    if nearest is not None:
        lo, hi = s.x_train.min(axis=0), s.x_train.max(axis=0)
        z = (s.x_pool[members] - lo) / np.where(hi > lo, hi - lo, 1.0)
        members = members[np.argsort(((z - z[rng.integers(len(z))]) ** 2).sum(axis=1))[:nearest]]
    rows: np.ndarray = s.x_pool[rng.choice(members, BENIGN_QUERIES)]
    return rows


def lowest_spread(
    det: QueryAttackDetector, principal: str, rows: np.ndarray, model: Any
) -> tuple[int | None, float, int]:
    """Replay one row per request; the first flagged query, the lowest spread ratio of any full window
    and the most crowded queries any window held."""
    outputs, low, flagged, crowded = model.predict_proba(rows), math.inf, None, 0
    for n in range(len(rows)):
        obs = Observation(
            time=float(n), principal=principal, model="m", inputs=rows[n : n + 1], outputs=outputs[n : n + 1]
        )
        if det.observe(obs) and flagged is None:
            flagged = n + 1
        p = det._principals[principal]
        crowded = max(crowded, p.crowd_count)
        ring, classes = p.spread_rows, p.spread_classes
        full = ring is not None and classes is not None and ring.filled == det.spread_window
        if full and det.spread_ is not None and ring is not None and classes is not None:
            low = min(low, det.spread_.ratio(ring.rows(), classes.rows()[:, 0]))
    return flagged, low, crowded


def default_set(s: Served, rows: np.ndarray) -> dict[str, Any] | None:
    """The first alert of the guard's default detector set (extraction, query_attack, drift) on the rows,
    one per request with the model's answers: what a deployment sees when this detector alone misses."""
    from mlsecops.monitor.detectors import build_detectors
    from mlsecops.runtime.policy import MonitorPolicy

    dets = build_detectors(MonitorPolicy(), s.model, baseline={"X": s.x_train}, model_name="m")
    outputs = s.model.predict_proba(rows)
    for n in range(len(rows)):
        obs = Observation(
            time=float(n),
            principal="p",
            model="m",
            inputs=rows[n : n + 1],
            outputs=outputs[n : n + 1],
            query_index=n + 1,
        )
        for d in dets:
            alerts = d.observe(obs)
            if alerts:
                return {"kind": alerts[0].kind, "at": n + 1}
    return None


def benign_rows(s: Served, rng: np.random.Generator) -> np.ndarray:
    rows: list[np.ndarray] = []
    while len(rows) < BENIGN_QUERIES:
        row = s.x_pool[rng.integers(len(s.x_pool))]
        rows += [row] * (1 if rng.random() > 0.1 else int(rng.integers(2, 6)))
    return np.asarray(rows[:BENIGN_QUERIES])


def part_detector(seeds: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "attackers": [],
        "benign": [],
        "narrow": [],
        "world_benign": [],
        "resend": [],
        "adaptive": [],
        "cost_us": {},
    }
    all_costs: list[float] = []
    all_cpu: list[float] = []
    for s in served_models():
        det = QueryAttackDetector(model_name=s.name, baseline={"X": s.x_train}, model=s.model)
        variants: list[tuple[str, Any]] = [("hopskipjump", False), ("square", False)]
        variants += [("square", True)] if s.image else []
        variants += [("nes", sigma) for sigma in (0.01, 0.05, 0.1)]
        variants += [("nes-two", 0.05), ("nes-half", 0.05), ("nes-two", 0.1)]
        for attack, image in variants:
            for seed in range(seeds):
                if attack == "nes":
                    c = nes_campaign(s, image, seed)
                    name = f"nes sigma={image}"
                elif attack.startswith("nes-"):
                    c = nes_interleaved(s, image, seed, half_natural=attack == "nes-half")
                    name = f"nes sigma={image}, " + (
                        "half natural rows" if attack == "nes-half" else "two inputs interleaved"
                    )
                else:
                    c = campaign(s, attack, seed, image=image)
                    name = attack + (" (image)" if image else "")
                principal = f"{s.name}:{name}-{seed}"
                flagged, costs = replay(det, c["rows"], principal, cpu=all_cpu, model=s.model)
                all_costs += costs
                before = sum(
                    1
                    for e, f in zip(c["ends"], c["fooled"], strict=True)
                    if f and (flagged is None or e < flagged)
                )
                out["attackers"].append(
                    {
                        "data": s.name,
                        "attack": name,
                        "seed": seed,
                        "queries": len(c["rows"]),
                        "flagged_at": flagged,
                        "signal": SIGNALS.get(principal),
                        "first_example_queries": c["ends"][0],
                        "adversarial_before_flag": before,
                        "success_rate": float(np.mean(c["fooled"])),
                    }
                )
                if flagged is None or flagged > FLAG_GOAL:
                    out["attackers"][-1]["default_set"] = default_set(s, c["rows"])
                print(out["attackers"][-1], flush=True)
        rng = np.random.default_rng(123)
        for b in range(BENIGN_PRINCIPALS):
            for batch in (1, 25):
                flagged, costs = replay(
                    det,
                    benign_rows(s, rng),
                    f"benign-{b}-{batch}",
                    batch=batch,
                    cpu=all_cpu if batch == 1 else None,
                    model=s.model,
                )
                if batch == 1:
                    all_costs += costs
                out["benign"].append({"data": s.name, "principal": b, "batch": batch, "flagged_at": flagged})
        print(
            s.name,
            "benign flagged",
            sum(r["flagged_at"] is not None for r in out["benign"] if r["data"] == s.name),
            flush=True,
        )
        # benign clients of one class, or of the 80 natural rows of a class nearest one of its members:
        # the concentration signal's hardest natural traffic; and the lowest spread ratio any window had
        narrow = (
            ("natural", 0),
            ("one class", None),
            ("80 nearest of a class", 80),
            ("40 nearest of a class", 40),
        )
        for kind, nearest in narrow:
            for b in range(5):
                rows = benign_rows(s, rng) if nearest == 0 else narrow_rows(s, rng, nearest)
                flagged, low, crowded = lowest_spread(det, f"{kind}-{b}", rows, s.model)
                out["narrow"].append(
                    {
                        "data": s.name,
                        "kind": kind,
                        "principal": b,
                        "flagged_at": flagged,
                        "lowest_spread": low,
                        "most_crowded": crowded,
                    }
                )
        # a known limitation: a benign client that re-sends each natural row several times with small
        # changes (re-encoding, sensor noise of 1% of the range) looks like a probing attacker
        span = s.x_train.max(axis=0) - s.x_train.min(axis=0)
        for b in range(3):
            natural = benign_rows(s, rng)[:400]
            resend = np.repeat(natural, 5, axis=0) + rng.normal(0, 0.01, (2000, natural.shape[1])) * span
            flagged, _ = replay(det, resend, f"resend-{b}", model=s.model)
            out["resend"].append({"data": s.name, "principal": b, "flagged_at": flagged})
        # the adaptive attacker: uniform noise on every query, a share of each feature's range
        for noise in (0.05, 0.1, 0.2):
            for attack in ("hopskipjump", "square"):
                for seed in range(min(seeds, 3)):
                    fresh = QueryAttackDetector(model_name=s.name, baseline={"X": s.x_train}, model=s.model)
                    c = campaign(s, attack, seed, noise=noise)
                    principal = f"{s.name}:adaptive-{attack}-{noise}-{seed}"
                    flagged, _ = replay(fresh, c["rows"], principal, model=s.model)
                    out["adaptive"].append(
                        {
                            "data": s.name,
                            "attack": attack,
                            "noise": noise,
                            "seed": seed,
                            "flagged_at": flagged,
                            "signal": SIGNALS.get(principal),
                            "success_rate": float(np.mean(c["fooled"])),
                            "examples": len(c["fooled"]),
                        }
                    )
                    print(out["adaptive"][-1], flush=True)
    out["cost_us"]["replayed"] = _cost(np.asarray(all_costs) * 1e6, np.asarray(all_cpu) * 1e6)
    # cost on 784-feature rows: a benign stream of random natural-looking rows and a near-duplicate stream
    rng = np.random.default_rng(5)
    base = rng.random((2000, 784))
    labels = (base @ rng.normal(size=784) > 0).astype(int) + (base[:, 0] > 0.5)
    wide_model = SklearnModel(LogisticRegression(max_iter=500).fit(base, labels))
    det = QueryAttackDetector(model_name="wide", baseline={"X": base}, model=wide_model)
    x0 = rng.random(784)
    near = np.clip(x0 + rng.normal(0, 0.005, (1000, 784)), 0, 1)
    wide_cpu: list[float] = []
    _, c1 = replay(det, base[:1000], "wide-benign", cpu=wide_cpu, model=wide_model)
    _, c2 = replay(det, near, "wide-attack", cpu=wide_cpu, model=wide_model)
    out["cost_us"]["784 features"] = _cost(np.asarray(c1 + c2) * 1e6, np.asarray(wide_cpu) * 1e6)
    # the extraction benchmark's benign kinds (tabular world: an MLP victim, 20 features, 5 classes)
    from mlsecops.monitor._thieves import BENIGN_KINDS, HARD_KIND, benign_stream, make_world

    world = make_world("tabular", seed=0)
    wdet = QueryAttackDetector(model_name="tabular", baseline={"X": world.x_train}, model=world.model)
    for kind in (*BENIGN_KINDS, HARD_KIND):
        for client in range(WORLD_CLIENTS):
            reqs = benign_stream(world, kind, BENIGN_QUERIES, seed=60_000 + client)
            rows = np.concatenate([r for _, r in reqs])
            flagged, low, crowded = lowest_spread(wdet, f"{kind}-{client}", rows, world.model)
            out["world_benign"].append(
                {
                    "kind": kind,
                    "client": client,
                    "flagged_at": flagged,
                    "lowest_spread": low,
                    "most_crowded": crowded,
                }
            )
        print(
            "world", kind, [r["lowest_spread"] for r in out["world_benign"] if r["kind"] == kind], flush=True
        )
    return out


def _cost(wall: np.ndarray, cpu: np.ndarray) -> dict[str, float]:
    return {
        "cpu_p50": float(np.median(cpu)),
        "cpu_p99": float(np.quantile(cpu, 0.99)),
        "wall_p50": float(np.median(wall)),
        "wall_p99": float(np.quantile(wall, 0.99)),
        "n": len(wall),
    }


# ----------------------------------------------------------------------------------------- screen
def _digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    d = load_digits()
    x, y = (d.data / 16.0).astype(np.float32), d.target
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    return x[:1400], y[:1400], x[1400:], y[1400:]


def _mlp(x: np.ndarray, y: np.ndarray, sigma: float) -> TorchModel:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    gen = torch.Generator().manual_seed(0)
    for _ in range(400):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(
            net(xt + sigma * torch.randn(xt.shape, generator=gen)), yt
        ).backward()
        opt.step()
    return TorchModel(net.eval(), input_shape=(64,))


def eot_pgd(
    model: TorchModel, x: np.ndarray, y: np.ndarray, eps: float, *, steps: int = 100, draws: int = 16
) -> np.ndarray:
    """PGD (L-inf) on the expected log-probability under the screen's noise: robust to the screen's sampling."""
    gen = torch.Generator().manual_seed(1)
    x0 = torch.from_numpy(x)
    yt = torch.from_numpy(y.astype(np.int64))
    adv = x0.clone()
    step = 2.5 * eps / steps
    for _ in range(steps):
        adv.requires_grad_(True)
        reps = adv.repeat_interleave(draws, dim=0)
        noisy = reps + SIGMA * torch.randn(reps.shape, generator=gen)
        probs = torch.softmax(model.logits(noisy), dim=1).view(len(adv), draws, -1).mean(dim=1)
        loss = -torch.log(probs.gather(1, yt[:, None]).clamp_min(1e-12)).sum()
        (grad,) = torch.autograd.grad(loss, adv)
        adv = (adv.detach() + step * grad.sign()).clamp(x0 - eps, x0 + eps).clamp(0, 1)
    return adv.detach().numpy()


def part_screen() -> dict[str, Any]:
    xtr, ytr, xte, yte = _digits()
    out: dict[str, Any] = {"sigma": SIGMA, "samples": SAMPLES, "models": []}
    for train_sigma in (SIGMA, 0.0):
        model = _mlp(xtr, ytr, train_sigma)
        row: dict[str, Any] = {"train_sigma": train_sigma}
        row["clean_accuracy"] = float((model.predict_proba(xte).argmax(axis=1) == yte).mean())
        t0 = time.perf_counter()
        clean = screen(model, xte, seed=1)
        row["screen_ms_per_row"] = (time.perf_counter() - t0) / len(xte) * 1e3
        row["false_positive_rate"] = float(clean.flagged.mean())
        attacks = []
        for name, params, eps in (
            ("pgd", {"norm": "linf"}, 0.1),
            ("pgd", {"norm": "linf"}, 0.2),
            ("apgd", {"norm": "linf"}, 0.1),
            ("apgd", {"norm": "linf"}, 0.2),
            ("pgd", {"norm": "l2"}, 1.0),
        ):
            res = make_attack(name, **params).generate(model, xte, yte, eps=eps, seed=0)
            ok = res.fooled & res.clean_correct
            dec = screen(model, res.x_adv[ok], seed=2)
            attacks.append(
                {
                    "attack": f"{name} {params['norm']} eps={eps}",
                    "success_rate": float(ok.mean()),
                    "detection_rate": float(dec.flagged.mean()) if ok.any() else None,
                    "evasion_rate": float((ok.sum() - dec.flagged.sum()) / len(xte)),
                }
            )
            print(train_sigma, attacks[-1], flush=True)
        for eps in (0.1, 0.2, 0.3):
            adv = eot_pgd(model, xte, yte, eps)
            fooled = model.predict_proba(adv).argmax(axis=1) != yte
            correct = model.predict_proba(xte).argmax(axis=1) == yte
            ok = fooled & correct
            dec = screen(model, adv, seed=3)
            attacks.append(
                {
                    "attack": f"adaptive EOT-PGD linf eps={eps}",
                    "success_rate": float(ok.mean()),
                    "detection_rate": float(dec.flagged[ok].mean()) if ok.any() else None,
                    "evasion_rate": float((ok & ~dec.flagged).mean()),
                }
            )
            print(train_sigma, attacks[-1], flush=True)
        row["attacks"] = attacks
        out["models"].append(row)
    return out


# ----------------------------------------------------------------------------------------- report
def _fmt(v: float | None, pct: bool = False) -> str:
    if v is None:
        return "-"
    return f"{100 * v:.0f}%" if pct else f"{v:.0f}"


def _signals(rows: list[dict[str, Any]]) -> str:
    short = {"near_duplicates": "near-dup", "concentration": "conc", "crowding": "crowd"}
    counts: dict[str, int] = {}
    for r in rows:
        if r.get("signal"):
            key = short.get(r["signal"], r["signal"])
            counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "-"


def markdown(res: dict[str, Any]) -> str:
    det = res["detector"]
    lines = [
        "# Query attacks: stateful detection and the single-input screen",
        "",
        f"Command: `{res['command']}` ({res['machine']}, {res['date']}).",
        "",
        "## query_attack detector (defaults: quant_step 0.1, 32 keys x 6 features, match 16, "
        "10 near-duplicates in 50 queries; concentration: spread of the last 40 distinct queries along 5 "
        "principal components under 0.1 of natural within-class spread; crowding: 16 of the last 50 "
        "distinct queries with their 10th nearest remembered query nearer than 0.1 of their 10th nearest "
        "baseline row, squared, along the same components)",
        "",
        "Each attacker attacks correctly classified inputs one after another until it has sent "
        f"{CAMPAIGN_ROWS} queries; the detector gets every query with the model's answer, as in the guard "
        "and `monitor replay`. *Flagged at*: the query (rows sent) at which the alert came; *signals*: the "
        "signal of each attacker's first alert (`near-dup`: near-duplicates, `conc`: concentration, `crowd`: "
        "crowding); *adv. "
        "before flag*: adversarial examples the attacker had finished before that; *success*: share of the "
        "attacked inputs it fooled. `nes sigma=s`: NES (Ilyas et al. 2018), 25 antithetic Gaussian probes "
        "of s x each feature's range per step, L-inf 0.1, at most 1,000 queries per input: not seen by the "
        "detector's design before this run (sigma 0.05 and 0.1 went unflagged by the near-duplicate signal "
        "alone). The adaptive NES attacker who read the detector alternates its probes between two attacked "
        "inputs (*two inputs interleaved*: the window spread then holds both) or with random natural rows "
        "(*half natural rows*); the crowding signal was added for it.",
        "",
        "| data | attack | attackers | flagged | within 100 | flagged at (median, max) | signals | queries of 1st example (median) | adv. before flag (total) | success |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for a in det["attackers"]:
        groups.setdefault((a["data"], a["attack"]), []).append(a)
    for (data, attack), rows in groups.items():
        at = [r["flagged_at"] for r in rows if r["flagged_at"] is not None]
        wins = [r["success_rate"] for r in rows if "success_rate" in r]
        lines.append(
            f"| {data} | {attack} | {len(rows)} | {len(at)} | {sum(1 for v in at if v <= FLAG_GOAL)} | "
            f"{_fmt(float(np.median(at)) if at else None)}, {_fmt(max(at) if at else None)} | "
            f"{_signals(rows)} | "
            f"{_fmt(float(np.median([r['first_example_queries'] for r in rows])))} | "
            f"{sum(r['adversarial_before_flag'] for r in rows)} | "
            f"{_fmt(float(np.mean(wins)) if wins else None, True)} |"
        )
    missed: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for a in det["attackers"]:
        if "default_set" in a:
            missed.setdefault((a["data"], a["attack"]), []).append(a)
    if missed:
        lines += [
            "",
            f"Attackers this detector did not flag within {FLAG_GOAL} queries, replayed through the guard's "
            "default detector set (extraction, query_attack, drift; the extraction detector sees the noisy "
            "probes leave the data's distribution on the tabular sets):",
            "",
            "| data | attack | missed | flagged by the default set | first alert at (median, max) |",
            "|---|---|---|---|---|",
        ]
        for (data, attack), rows in missed.items():
            hits = [r["default_set"] for r in rows if r["default_set"]]
            kinds: dict[str, int] = {}
            for h in hits:
                kinds[h["kind"]] = kinds.get(h["kind"], 0) + 1
            at = [h["at"] for h in hits]
            lines.append(
                f"| {data} | {attack} | {len(rows)} | {len(hits)} ("
                + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
                + f") | {_fmt(float(np.median(at)) if at else None)}, {_fmt(max(at) if at else None)} |"
            )
    lines += [
        "",
        "| data | benign principals (x2,000 queries; one row / 25 rows per request) | flagged |",
        "|---|---|---|",
    ]
    bgroups: dict[str, list[dict[str, Any]]] = {}
    for b in det["benign"]:
        bgroups.setdefault(b["data"], []).append(b)
    for data, rows in bgroups.items():
        lines.append(f"| {data} | {len(rows)} | {sum(r['flagged_at'] is not None for r in rows)} |")
    lines += [
        "",
        "Narrow benign clients, the concentration and crowding signals' hardest natural traffic: natural "
        "rows of one "
        "predicted class, or only the 80 or 40 natural rows of a class nearest one of its members (2,000 "
        "queries each, with repeats). *Lowest spread*: the smallest ratio any full window of the client "
        "reached (the alert needs it under 0.1 and the window narrower than half the natural rows around "
        "it); *most crowded*: the most crowded queries any window of 50 held "
        "(the alert is at 16 of 50).",
        "",
        "| data | client | principals | flagged | lowest spread | most crowded |",
        "|---|---|---|---|---|---|",
    ]
    ngroups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in det.get("narrow", []):
        ngroups.setdefault((r["data"], r["kind"]), []).append(r)
    for (data, kind), rows in ngroups.items():
        lines.append(
            f"| {data} | {kind} | {len(rows)} | {sum(r['flagged_at'] is not None for r in rows)} | "
            f"{min(r['lowest_spread'] for r in rows):.3f} | {max(r.get('most_crowded', 0) for r in rows)} |"
        )
    wgroups: dict[str, list[dict[str, Any]]] = {}
    for r in det.get("world_benign", []):
        wgroups.setdefault(r["kind"], []).append(r)
    if wgroups:
        lines += [
            "",
            "The extraction benchmark's benign clients (its tabular world: an MLP on 20 features, 5 classes; "
            "2,000 queries each, seeds 60,000+) through this detector:",
            "",
            "| benign kind | principals | flagged | lowest spread | most crowded |",
            "|---|---|---|---|---|",
        ]
        for kind, rows in wgroups.items():
            lines.append(
                f"| {kind} | {len(rows)} | {sum(r['flagged_at'] is not None for r in rows)} | "
                f"{min(r['lowest_spread'] for r in rows):.3f} | {max(r.get('most_crowded', 0) for r in rows)} |"
            )
    lines += [
        "",
        "Adaptive attacker: uniform noise of +-`noise` x range added to every query it sends (the final "
        "adversarial input is sent clean).",
        "",
        "| data | attack | noise | attackers | flagged | flagged at (median) | signals | attack success |",
        "|---|---|---|---|---|---|---|---|",
    ]
    agroups: dict[tuple[str, str, float], list[dict[str, Any]]] = {}
    for a in det["adaptive"]:
        agroups.setdefault((a["data"], a["attack"], a["noise"]), []).append(a)
    for (data, attack, noise), rows in agroups.items():
        at = [r["flagged_at"] for r in rows if r["flagged_at"] is not None]
        succ = float(np.mean([r["success_rate"] for r in rows]))
        lines.append(
            f"| {data} | {attack} | {noise} | {len(rows)} | {len(at)} | {_fmt(float(np.median(at)) if at else None)} | "
            f"{_signals(rows)} | {_fmt(succ, True)} |"
        )
    lines += [
        "",
        "Known limitation, shown: a benign client that re-sends each natural row 5 times with small changes "
        "(noise of 1% of each feature's range, like re-encoding or sensor noise) is a near-duplicate stream.",
        "",
        "| data | re-sending benign clients | flagged |",
        "|---|---|---|",
    ]
    rgroups: dict[str, list[dict[str, Any]]] = {}
    for r in det["resend"]:
        rgroups.setdefault(r["data"], []).append(r)
    for data, rows in rgroups.items():
        lines.append(f"| {data} | {len(rows)} | {sum(r['flagged_at'] is not None for r in rows)} |")
    lines += [
        "",
        "Per-query cost of `observe` on one-row requests: CPU time of the thread, and wall time (the wall-time "
        "p99 includes waits for a CPU: a 2-core machine; this run shared it with one or two other benchmark processes).",
        "",
        "| rows | CPU p50 (us) | CPU p99 (us) | wall p50 (us) | wall p99 (us) | requests |",
        "|---|---|---|---|---|---|",
    ]
    for k, v in det["cost_us"].items():
        lines.append(
            f"| {k} | {v['cpu_p50']:.0f} | {v['cpu_p99']:.0f} | {v['wall_p50']:.0f} | {v['wall_p99']:.0f} | {v['n']} |"
        )
    scr = res["screen"]
    lines += [
        "",
        f"## adversarial_input screen (sigma {scr['sigma']}, {scr['samples']} samples, alpha 0.05), digits MLP",
        "",
        "*Detection*: share of successful adversarial inputs flagged. *Evasion*: share of all test inputs that "
        "end up misclassified and unflagged (the attacker's real success).",
        "",
    ]
    for m in scr["models"]:
        lines += [
            f"Model trained with noise sigma {m['train_sigma']}: clean accuracy {100 * m['clean_accuracy']:.1f}%, "
            f"false-positive rate on clean rows {100 * m['false_positive_rate']:.1f}%, "
            f"{m['screen_ms_per_row']:.2f} ms per row.",
            "",
            "| attack | success | detection | evasion |",
            "|---|---|---|---|",
        ]
        for a in m["attacks"]:
            lines.append(
                f"| {a['attack']} | {_fmt(a['success_rate'], True)} | {_fmt(a['detection_rate'], True)} | {_fmt(a['evasion_rate'], True)} |"
            )
        lines.append("")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="2 seeds, no files written")
    args = parser.parse_args()
    seeds = 2 if args.quick else args.seeds
    started = time.time()
    res: dict[str, Any] = {
        "command": "nice -n 10 .venv/bin/python benchmarks/monitor/query_attacks/run.py"
        + ("" if seeds == 5 else f" --seeds {seeds}"),
        "machine": f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}, torch 1 thread",
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "detector": part_detector(seeds),
        "screen": part_screen(),
    }
    res["seconds"] = round(time.time() - started, 1)
    text = markdown(res)
    print(text)
    if not args.quick:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "monitor-query-attacks.json").write_text(json.dumps(res, indent=1, default=float))
        (RESULTS / "monitor-query-attacks.md").write_text(text)


if __name__ == "__main__":
    sys.exit(main())
