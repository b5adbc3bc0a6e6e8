"""The drift benchmark's data: a 25-column table (20 numeric, 5 categorical) and its drifted windows.

The columns are correlated through three latent factors. Twelve numeric columns are normal with
different means and scales, four lognormal (skewed), two integer-valued (ties), two normal with a
large offset; the five categorical columns (3 to 8 levels, unequal frequencies) are cut from latent
values, so they depend on the numeric ones. Drift scenarios (applied to 5,000-row windows):

- ``none``: fresh rows from the reference distribution;
- ``mean_<d>``: +d standard deviations on 3 of the 25 columns (two normal, one lognormal);
- ``variance_1.2``: variance x1.2 on 3 columns (two normal, one lognormal);
- ``categorical_tv_0.1``: one categorical column's distribution moved by total variation 0.1;
- ``covariance``: two pairs of normal columns share a new common component (weight 0.1): their
  correlation rises by about 0.1 while every marginal stays exactly the same.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

N_NUMERIC = 20
N_CATEGORICAL = 5
MEAN_COLUMNS = (2, 8, 13)
VARIANCE_COLUMNS = (3, 9, 14)
TV_COLUMN = 1
COVARIANCE_PAIRS = ((4, 6), (5, 7))
COVARIANCE_WEIGHT = 0.1

_STRUCTURE_SEED = 12345


def _structure() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(_STRUCTURE_SEED)
    loadings = np.zeros((N_NUMERIC, 3))
    for j in range(N_NUMERIC):
        k = rng.choice(3, size=rng.integers(1, 3), replace=False)
        loadings[j, k] = rng.uniform(0.3, 0.6, size=k.size) * rng.choice([-1, 1], size=k.size)
    scale = np.sqrt(np.minimum(1.0, 0.6 / (loadings**2).sum(axis=1)))
    loadings *= scale[:, None]
    return {
        "loadings": loadings,
        "mu": rng.uniform(-5, 5, N_NUMERIC),
        "sigma": rng.uniform(0.5, 20, N_NUMERIC),
        "levels": rng.integers(3, 9, N_CATEGORICAL),
        "source": rng.choice(N_NUMERIC, N_CATEGORICAL, replace=False),
    }


_S = _structure()


def _latent(n: int, rng: np.random.Generator, scenario: str) -> np.ndarray:
    loadings = _S["loadings"]
    f = rng.standard_normal((n, 3))
    noise = np.sqrt(1 - (loadings**2).sum(axis=1))
    z = f @ loadings.T + rng.standard_normal((n, N_NUMERIC)) * noise
    if scenario == "covariance":
        c = COVARIANCE_WEIGHT
        for a, b in COVARIANCE_PAIRS:
            shared = rng.standard_normal(n)
            z[:, a] = np.sqrt(1 - c) * z[:, a] + np.sqrt(c) * shared
            z[:, b] = np.sqrt(1 - c) * z[:, b] + np.sqrt(c) * shared
    return z


def _numeric(z: np.ndarray) -> np.ndarray:
    x = np.empty_like(z)
    mu, sigma = _S["mu"], _S["sigma"]
    for j in range(N_NUMERIC):
        if 12 <= j < 16:
            x[:, j] = np.exp(0.5 * z[:, j])
        elif 16 <= j < 18:
            x[:, j] = np.round(2 * z[:, j] + 10)
        elif j >= 18:
            x[:, j] = 1e4 + 500 * z[:, j]
        else:
            x[:, j] = mu[j] + sigma[j] * z[:, j]
    return x


def _population_moments() -> tuple[np.ndarray, np.ndarray]:
    """Exact means and standard deviations of the numeric columns (lognormal ones analytically)."""
    mean = np.empty(N_NUMERIC)
    sd = np.empty(N_NUMERIC)
    for j in range(N_NUMERIC):
        if 12 <= j < 16:
            s2 = 0.25
            mean[j] = np.exp(s2 / 2)
            sd[j] = np.sqrt((np.exp(s2) - 1) * np.exp(s2))
        elif 16 <= j < 18:
            mean[j], sd[j] = 10.0, 2.0  # rounding adds ~1/12 variance; close enough for the shift size
        elif j >= 18:
            mean[j], sd[j] = 1e4, 500.0
        else:
            mean[j], sd[j] = _S["mu"][j], _S["sigma"][j]
    return mean, sd


def _categorical(z: np.ndarray, rng: np.random.Generator, scenario: str) -> list[np.ndarray]:
    out = []
    for c in range(N_CATEGORICAL):
        k = int(_S["levels"][c])
        latent = 0.6 * z[:, _S["source"][c]] + 0.8 * rng.standard_normal(z.shape[0])
        # unequal frequencies: cut points at the quantiles of a geometric-like split
        weights = 0.6 ** np.arange(k)
        cuts = np.cumsum(weights / weights.sum())[:-1]
        from scipy.stats import norm

        idx = np.searchsorted(norm.ppf(cuts), latent)
        if scenario == "categorical_tv_0.1" and c == TV_COLUMN:
            probs = weights / weights.sum()
            move = rng.random(idx.size) < 0.1 / probs[0]
            top = (idx == 0) & move
            others = probs[1:] / probs[1:].sum()
            idx[top] = 1 + rng.choice(k - 1, size=int(top.sum()), p=others)
        out.append(np.array([f"c{c}_{v}" for v in range(k)], dtype=object)[idx])
    return out


def make_frame(n: int, seed: int, scenario: str = "none") -> pd.DataFrame:
    """``n`` rows of the benchmark table under ``scenario``."""
    rng = np.random.default_rng(seed)
    z = _latent(n, rng, scenario)
    x = _numeric(z)
    mean, sd = _population_moments()
    if scenario.startswith("mean_"):
        d = float(scenario.split("_", 1)[1])
        for j in MEAN_COLUMNS:
            x[:, j] += d * sd[j]
    elif scenario == "variance_1.2":
        for j in VARIANCE_COLUMNS:
            x[:, j] = mean[j] + np.sqrt(1.2) * (x[:, j] - mean[j])
    cats = _categorical(z, rng, scenario)
    frame = {f"x{j}": x[:, j] for j in range(N_NUMERIC)}
    frame.update({f"cat{c}": cats[c] for c in range(N_CATEGORICAL)})
    return pd.DataFrame(frame)


SCENARIOS = ("none", "mean_0.05", "mean_0.1", "mean_0.2", "variance_1.2", "categorical_tv_0.1", "covariance")
