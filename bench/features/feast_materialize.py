#!/usr/bin/env python3
"""`feast materialize` of the benchmark's batch source (make_big.py) into Redis, timed.

usage: feast_materialize.py SOURCE.parquet REDIS_HOST:PORT WORKDIR
Prints one line: feast_materialize_seconds=<s> entities=<n>.
The view is the one bench/features/run.sh hands sluice-materialize: entity card (card_id), the
ten features of make_big.py, no ttl, window 2026-11-30 .. 2026-12-07.
"""
import datetime as dt
import os
import sys
import time
import warnings

warnings.filterwarnings("ignore")

from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType, types

FEATURES = [("velocity_last_24h", types.Int32), ("cardholder_age", types.Int32),
            ("txn_count_30d", types.Int64), ("avg_amount_30d", types.Float64),
            ("max_amount_30d", types.Float64), ("fraud_score", types.Float32),
            ("distance_km", types.Float32), ("is_premium", types.Bool),
            ("home_country", types.String), ("merchant_category", types.Int32)]


def main():
    source, redis, work = sys.argv[1:4]
    os.makedirs(work, exist_ok=True)
    with open(os.path.join(work, "feature_store.yaml"), "w") as f:
        f.write(f"""project: bench
registry: {work}/registry.db
provider: local
online_store:
  type: redis
  connection_string: "{redis}"
offline_store:
  type: file
entity_key_serialization_version: 3
""")
    fs = FeatureStore(repo_path=work)
    card = Entity(name="card", join_keys=["card_id"], value_type=ValueType.STRING)
    view = FeatureView(name="bench-cards", entities=[card], ttl=dt.timedelta(0),
                       schema=[Field(name=n, dtype=t) for n, t in FEATURES],
                       source=FileSource(path=source, timestamp_field="event_timestamp"),
                       online=True)
    fs.apply([card, view])
    start = time.monotonic()
    fs.materialize(start_date=dt.datetime(2026, 11, 30, tzinfo=dt.timezone.utc),
                   end_date=dt.datetime(2026, 12, 7, tzinfo=dt.timezone.utc), feature_views=["bench-cards"])
    print(f"feast_materialize_seconds={time.monotonic() - start:.2f}")


if __name__ == "__main__":
    main()
