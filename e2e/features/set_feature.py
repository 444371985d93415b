#!/usr/bin/env python3
"""Writes one feature value of one entity into Redis the way Feast's Redis online store does, with
Feast's own key, field and value encoders (the Feast SDK's python, e2e/scripts/feast-venv.sh).

usage: set_feature.py --redis HOST:PORT --project P --view V --join-key K --entity VALUE
                      [--entity-type STRING|INT64|INT32] --feature NAME --type INT32|INT64|FLOAT|DOUBLE|BOOL
                      --value X [--age-seconds S]

The view's event timestamp (_ts:<view>) is set to now minus --age-seconds (default 3600), older
than a fresh materialization's rows, so a materialization afterwards overwrites the value again.
"""
import argparse
import time
import warnings

warnings.filterwarnings("ignore")

import redis
from google.protobuf.timestamp_pb2 import Timestamp
from feast.infra.online_stores.helpers import _mmh3, _redis_key
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value


def main():
    p = argparse.ArgumentParser()
    for a in ("--redis", "--project", "--view", "--join-key", "--entity", "--feature", "--type", "--value"):
        p.add_argument(a, required=True)
    p.add_argument("--entity-type", default="STRING")
    p.add_argument("--age-seconds", type=int, default=3600)
    a = p.parse_args()
    if a.entity_type == "STRING":
        ev = Value(string_val=a.entity)
    elif a.entity_type == "INT64":
        ev = Value(int64_val=int(a.entity))
    else:
        ev = Value(int32_val=int(a.entity))
    key = _redis_key(a.project, EntityKey(join_keys=[a.join_key], entity_values=[ev]), 3)
    conv = {"INT32": lambda x: Value(int32_val=int(x)), "INT64": lambda x: Value(int64_val=int(x)),
            "FLOAT": lambda x: Value(float_val=float(x)), "DOUBLE": lambda x: Value(double_val=float(x)),
            "BOOL": lambda x: Value(bool_val=x == "true")}
    ts = Timestamp()
    ts.FromSeconds(int(time.time()) - a.age_seconds)
    host, port = a.redis.rsplit(":", 1)
    r = redis.Redis(host=host, port=int(port))
    r.hset(key, mapping={_mmh3(f"{a.view}:{a.feature}"): conv[a.type](a.value).SerializeToString(),
                         f"_ts:{a.view}": ts.SerializeToString()})
    print(f"set {a.view}:{a.feature} of {a.join_key}={a.entity} to {a.value}")


if __name__ == "__main__":
    main()
