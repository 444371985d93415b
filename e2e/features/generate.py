#!/usr/bin/env python3
"""Writes the fraud FeatureViews' batch sources with event timestamps just before now:

  card_features.parquet   card_id, velocity_last_24h, cardholder_age, avg_amount_30d, event_timestamp
  merchant_features.csv   merchant_id, merchant_category, merchant_fraud_rate_30d, event_timestamp

usage: generate.py OUT_DIR [--cards N] [--merchants N]

Cards are card-0000 .. card-NNNN, merchants 1000 .. 1000+N. Every entity has two rows, an older
one and the current one, so materialization's latest-row-per-entity is exercised; values are a
deterministic function of the entity, so tests can predict them: for card i, velocity_last_24h =
i % 23, cardholder_age = 18 + i % 60, avg_amount_30d = 10 + i * 0.5; for merchant 1000+j,
merchant_category = j % 12, merchant_fraud_rate_30d = 0.001 * (j % 9). The older row of each
entity holds other values (which must not win). The timestamps are within the views' ttl (24h and
72h) of now, so a run now serves them.
"""
import argparse
import datetime as dt
import os

import pandas as pd


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--cards", type=int, default=200)
    p.add_argument("--merchants", type=int, default=50)
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    recent = now - dt.timedelta(minutes=5)
    older = now - dt.timedelta(hours=3)

    cards = [f"card-{i:04d}" for i in range(a.cards)]
    card = pd.DataFrame({
        "card_id": cards * 2,
        "velocity_last_24h": pd.array([i % 23 for i in range(a.cards)] + [99] * a.cards, dtype="int32"),
        "cardholder_age": pd.array([18 + i % 60 for i in range(a.cards)] + [1] * a.cards, dtype="int32"),
        "avg_amount_30d": [10 + i * 0.5 for i in range(a.cards)] + [-1.0] * a.cards,
        "event_timestamp": [recent] * a.cards + [older] * a.cards,
    })
    card.to_parquet(os.path.join(a.out, "card_features.parquet"), index=False)

    # Here the older rows come first, for cards last: order in the file must not matter.
    merchants = [1000 + j for j in range(a.merchants)]
    merchant = pd.DataFrame({
        "merchant_id": pd.array(merchants * 2, dtype="int64"),
        "merchant_category": pd.array([77] * a.merchants + [j % 12 for j in range(a.merchants)],
                                      dtype="int32"),
        "merchant_fraud_rate_30d": [0.5] * a.merchants + [0.001 * (j % 9) for j in range(a.merchants)],
        "event_timestamp": [older] * a.merchants + [recent] * a.merchants,
    })
    merchant.to_csv(os.path.join(a.out, "merchant_features.csv"), index=False)


if __name__ == "__main__":
    main()
