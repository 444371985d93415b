#!/usr/bin/env python3
"""Writes the read benchmark's input: N rows (default 1 M) of a Feast-like batch source, two
entity keys (a string and an int64), ten features (int32, int64, float, double, bool, string)
and a UTC event timestamp, as pyarrow writes it by default (dictionary where it pays, snappy).

usage: ~/.cache/sluice/feast-0.67.0-py3.11/bin/python make_big.py OUT.parquet [ROWS] [--csv OUT.csv]
"""
import sys

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq


def main():
    out = sys.argv[1]
    rows = int(sys.argv[2]) if len(sys.argv) > 2 and not sys.argv[2].startswith("--") else 1_000_000
    rng = np.random.default_rng(1)
    t0 = np.datetime64("2026-12-01T00:00:00", "us")
    cards = np.array([f"card-{i:07d}" for i in range(200_000)])
    table = pa.table({
        "card_id": pa.array(cards[rng.integers(0, len(cards), rows)]),
        "merchant_id": pa.array(rng.integers(1, 50_000, rows), pa.int64()),
        "velocity_last_24h": pa.array(rng.integers(0, 200, rows).astype(np.int32)),
        "cardholder_age": pa.array(rng.integers(18, 95, rows).astype(np.int32)),
        "txn_count_30d": pa.array(rng.integers(0, 10_000, rows), pa.int64()),
        "avg_amount_30d": pa.array(rng.gamma(2.0, 40.0, rows)),
        "max_amount_30d": pa.array(rng.gamma(3.0, 90.0, rows)),
        "fraud_score": pa.array(rng.random(rows).astype(np.float32)),
        "distance_km": pa.array(rng.exponential(20.0, rows).astype(np.float32)),
        "is_premium": pa.array(rng.random(rows) < 0.2),
        "home_country": pa.array(np.array(["DE", "FR", "US", "GB", "NL", "ES"])[
            rng.integers(0, 6, rows)]),
        "merchant_category": pa.array(rng.integers(1, 30, rows).astype(np.int32)),
        "event_timestamp": pa.array(t0 + rng.integers(0, 6 * 86400 * 10**6, rows).astype(
            "timedelta64[us]"), pa.timestamp("us", tz="UTC")),
    })
    pq.write_table(table, out)
    if "--csv" in sys.argv:
        pacsv.write_csv(table, sys.argv[sys.argv.index("--csv") + 1])


if __name__ == "__main__":
    main()
