#!/usr/bin/env python3
"""Writes the materialization benchmark's input: ROWS rows of one int64 entity (driver_id, drawn
from ENTITIES values) with ten features (3 float, 3 double, 2 int64, int32, string) and a UTC
event timestamp in microseconds within one day, as pyarrow writes Parquet by default (snappy).

usage: ~/.cache/sluice/feast-0.67.0-py3.11/bin/python make_source.py OUT.parquet ROWS ENTITIES
"""
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def main():
    out, rows, entities = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rng = np.random.default_rng(7)
    base = np.datetime64("2026-12-06T00:00:00", "us")
    cols = {
        "driver_id": pa.array(rng.integers(0, entities, rows, dtype=np.int64) + 1000),
        "event_timestamp": pa.array(base + rng.integers(0, 86_400_000_000, rows).astype("timedelta64[us]"),
                                    pa.timestamp("us", tz="UTC")),
    }
    for i in range(3):
        cols[f"f_float_{i}"] = pa.array(rng.random(rows, dtype=np.float32))
    for i in range(3):
        cols[f"f_double_{i}"] = pa.array(rng.random(rows))
    for i in range(2):
        cols[f"f_int64_{i}"] = pa.array(rng.integers(0, 1 << 40, rows, dtype=np.int64))
    cols["f_int32_0"] = pa.array(rng.integers(0, 1 << 30, rows, dtype=np.int32))
    cols["f_string_0"] = pa.array([f"city-{x}" for x in rng.integers(0, 1000, rows)])
    pq.write_table(pa.table(cols), out, row_group_size=131072)


if __name__ == "__main__":
    main()
