"""Write a synthetic e-commerce ratings stream with a coordinated fake-account campaign.

    python examples/generate_ratings.py ratings.csv --fake 537      # 5,000 genuine users, 537 fake accounts
    mlsecops data poison ratings.csv --quarantine quarantine/       # find the campaign, split its rows off

Items have Zipf popularity; genuine users rate near each item's hidden quality; the campaign's accounts
act within a few days, give five stars to a handful of little-known, low-quality items and rate some
popular items plausibly as camouflage. The ground truth (fake account ids, pushed items) goes to
``<output>.truth.json`` so detections can be scored.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mlsecops.data import generate_ratings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="CSV file to write (user,item,rating,time)")
    parser.add_argument("--users", type=int, default=5_000, help="genuine accounts")
    parser.add_argument("--items", type=int, default=2_000, help="catalogue size")
    parser.add_argument("--fake", type=int, default=537, help="campaign accounts (0: clean data)")
    parser.add_argument("--targets", type=int, default=5, help="items the campaign pushes")
    parser.add_argument("--campaign-days", type=float, default=4.0, help="length of the campaign window")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data = generate_ratings(
        n_users=args.users,
        n_items=args.items,
        n_fake=args.fake,
        n_targets=args.targets,
        campaign_days=args.campaign_days,
        seed=args.seed,
    )
    data.write_csv(args.output)
    truth = {"fake_users": data.fake_users.tolist(), "target_items": data.target_items.tolist()}
    args.output.with_suffix(".truth.json").write_text(json.dumps(truth))
    print(f"wrote {len(data)} ratings ({args.fake} fake accounts) to {args.output}")


if __name__ == "__main__":
    main()
