#!/usr/bin/env python3
"""Writes the feature source reader's test fixtures with the real pyarrow and pandas.

Each fixture NAME.parquet / NAME.csv has NAME.expected.json beside it: the columns the test
requests (name and FeatureView type), the rows of each chunk, and every value after conversion
(timestamps as int64 nanoseconds since the epoch, bytes as hex, null as null). The outputs are
committed, so the C++ tests run without Python.

usage: ~/.cache/sluice/feast-0.67.0-py3.11/bin/python make_fixtures.py [OUT_DIR]
"""
import base64
import datetime as dt
import json
import math
import os
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "fixtures")
UTC = dt.timezone.utc
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)

N = 23  # rows per table; row groups of 10 make three groups, the last one short


def ns(t):
    """int64 nanoseconds of a datetime (naive = UTC)."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    d = t - EPOCH
    return (d.days * 86400 + d.seconds) * 10**9 + d.microseconds * 1000


def base_table():
    rng = np.random.default_rng(7)
    t0 = dt.datetime(2026, 12, 6, 10, 0, 0, tzinfo=UTC)
    rows = []
    for i in range(N):
        null = i % 5 == 3
        rows.append({
            "card_id": f"card-{i % 7:03d}",  # repeats: dictionary-friendly
            "merchant_id": 1000 + i,
            "i32": None if null else int(rng.integers(-2**31, 2**31 - 1)),
            "i64": None if null else int(rng.integers(-2**62, 2**62)),
            "small": i % 4,
            "f32": None if null else float(np.float32(rng.normal())),
            "f64": None if null else float(rng.normal() * 1e6),
            "flag": None if null else bool(i % 2),
            "name": None if null else ["ä, \"quoted\"", "", "line\nbreak", "plain"][i % 4] + str(i % 3),
            "blob": None if null else bytes([i, 0, 255, i % 3]),
            "event_timestamp": t0 + dt.timedelta(minutes=17 * i, microseconds=123 * i),
        })
    schema = pa.schema([
        ("card_id", pa.string()), ("merchant_id", pa.int64()), ("i32", pa.int32()),
        ("i64", pa.int64()), ("small", pa.int8()), ("f32", pa.float32()), ("f64", pa.float64()),
        ("flag", pa.bool_()), ("name", pa.string()), ("blob", pa.binary()),
        ("event_timestamp", pa.timestamp("us", tz="UTC")),
    ])
    return pa.Table.from_pylist(rows, schema=schema), rows


# (column, requested type, how to turn the Python value into the expected JSON value)
def ident(v):
    return v


def as_float(v):
    return None if v is None else float(np.float32(v))


def as_double(v):
    return None if v is None else float(v)


def as_hex(v):
    return None if v is None else v.hex()


def as_ns(v):
    return None if v is None else ns(v)


def as_bool(v):
    return None if v is None else int(v)


BASE_REQUESTS = [
    ("card_id", "STRING", ident), ("merchant_id", "INT64", ident), ("i32", "INT32", ident),
    ("i64", "INT64", ident), ("small", "INT32", ident), ("f32", "FLOAT", as_float),
    ("f64", "DOUBLE", as_double), ("flag", "BOOL", as_bool), ("name", "STRING", ident),
    ("blob", "BYTES", as_hex), ("event_timestamp", "UNIX_TIMESTAMP", as_ns),
    # conversions: widening, int to double, float to double, string as bytes
    ("i32", "INT64", ident), ("merchant_id", "DOUBLE", as_double), ("f32", "DOUBLE", as_double),
    ("small", "FLOAT", as_float), ("card_id", "BYTES", lambda v: v.encode().hex()),
]


def write_expected(name, requests, rows, chunks):
    cols = []
    for col, typ, conv in requests:
        cols.append({"name": col, "type": typ, "values": [conv(r[col]) for r in rows]})
    with open(os.path.join(OUT, name + ".expected.json"), "w") as f:
        json.dump({"file": name, "chunks": chunks, "columns": cols}, f, indent=1,
                  ensure_ascii=False)
        f.write("\n")


def parquet_fixture(name, table, rows, requests, row_group_size=10, **kw):
    pq.write_table(table, os.path.join(OUT, name), row_group_size=row_group_size, **kw)
    chunks = [min(row_group_size, len(rows) - i) for i in range(0, len(rows), row_group_size)]
    write_expected(name, requests, rows, chunks)


def main():
    os.makedirs(OUT, exist_ok=True)
    table, rows = base_table()
    parquet_fixture("plain_none_v1.parquet", table, rows, BASE_REQUESTS, use_dictionary=False,
                    compression="none", data_page_version="1.0")
    parquet_fixture("dict_snappy_v1.parquet", table, rows, BASE_REQUESTS, use_dictionary=True,
                    compression="snappy", data_page_version="1.0")
    parquet_fixture("plain_gzip_v2.parquet", table, rows, BASE_REQUESTS, use_dictionary=False,
                    compression="gzip", data_page_version="2.0")
    parquet_fixture("dict_zstd_v2.parquet", table, rows, BASE_REQUESTS, use_dictionary=True,
                    compression="zstd", data_page_version="2.0")
    # Small pages: several data pages per column chunk, one row group.
    parquet_fixture("pages_snappy_v1.parquet", table, rows, BASE_REQUESTS, row_group_size=N,
                    use_dictionary=["card_id"], compression="snappy", data_page_size=64,
                    write_batch_size=4)

    # Timestamps in every unit, with and without a time zone, and dates.
    t0 = dt.datetime(2026, 12, 6, 10, 0, 0, 123456)
    ts_rows = []
    for i in range(N):
        t = t0 + dt.timedelta(hours=5 * i, microseconds=7 * i)
        t_ms = t.replace(microsecond=(t.microsecond // 1000) * 1000)
        ts_rows.append({
            "ts_ms": t_ms, "ts_ms_utc": t_ms.replace(tzinfo=UTC),
            "ts_us": t, "ts_us_utc": t.replace(tzinfo=UTC),
            "ts_ns": t, "ts_ns_utc": None if i % 6 == 2 else t.replace(tzinfo=UTC),
            "day": t.date(),
            "old": dt.datetime(1901, 1, 1, 0, 0, 1) + dt.timedelta(days=i * 1000),
        })
    ts_schema = pa.schema([
        ("ts_ms", pa.timestamp("ms")), ("ts_ms_utc", pa.timestamp("ms", tz="UTC")),
        ("ts_us", pa.timestamp("us")), ("ts_us_utc", pa.timestamp("us", tz="UTC")),
        ("ts_ns", pa.timestamp("ns")), ("ts_ns_utc", pa.timestamp("ns", tz="UTC")),
        ("day", pa.date32()), ("old", pa.timestamp("us")),
    ])
    ts_table = pa.Table.from_pylist(ts_rows, schema=ts_schema)
    day_ns = lambda d: None if d is None else ns(dt.datetime(d.year, d.month, d.day))
    ts_requests = [(c, "UNIX_TIMESTAMP", as_ns) for c in
                   ("ts_ms", "ts_ms_utc", "ts_us", "ts_us_utc", "ts_ns", "ts_ns_utc", "old")]
    ts_requests.append(("day", "UNIX_TIMESTAMP", day_ns))
    parquet_fixture("timestamps.parquet", ts_table, ts_rows, ts_requests,
                    coerce_timestamps=None, compression="snappy")
    # Legacy INT96 timestamps, as Spark and Hive write them.
    int96_rows = [{"event_timestamp": r["ts_us_utc"], "v": i} for i, r in enumerate(ts_rows)]
    int96_table = pa.Table.from_pylist(int96_rows, schema=pa.schema([
        ("event_timestamp", pa.timestamp("us", tz="UTC")), ("v", pa.int64())]))
    parquet_fixture("int96.parquet", int96_table, int96_rows,
                    [("event_timestamp", "UNIX_TIMESTAMP", as_ns), ("v", "INT64", ident)],
                    use_deprecated_int96_timestamps=True, compression="none")

    # A nested column next to flat ones: the flat ones read, the nested one refused by name.
    nested = pa.table({
        "id": pa.array([1, 2, 3], pa.int64()),
        "tags": pa.array([["a"], [], ["b", "c"]], pa.list_(pa.string())),
        "point": pa.array([{"x": 1, "y": 2}, None, {"x": 3, "y": 4}],
                          pa.struct([("x", pa.int32()), ("y", pa.int32())])),
        "score": pa.array([0.5, None, 1.5], pa.float64()),
    })
    parquet_fixture("nested.parquet", nested, nested.to_pylist(),
                    [("id", "INT64", ident), ("score", "DOUBLE", as_double)])

    # Out-of-range narrowing: one int64 value that does not fit INT32 (row 2).
    wide = pa.table({"v": pa.array([1, -5, 3_000_000_000, 4], pa.int64())})
    pq.write_table(wide, os.path.join(OUT, "wide_int.parquet"))

    # Delta encoding, which the reader refuses with a clear error.
    delta = pa.table({"v": pa.array(list(range(100)), pa.int64())})
    pq.write_table(delta, os.path.join(OUT, "delta.parquet"), use_dictionary=False,
                   column_encoding={"v": "DELTA_BINARY_PACKED"})

    # CSV as pandas writes it: quotes, commas, line breaks, NaN, ISO timestamps with an offset.
    df = pd.DataFrame({
        "card_id": [r["card_id"] for r in rows],
        "merchant_id": [r["merchant_id"] for r in rows],
        "i32": pd.array([r["i32"] for r in rows], dtype="Int32"),
        "i64_as_float": [float("nan") if r["i64"] is None else float(r["i64"] >> 20) for r in rows],
        "f64": [float("nan") if r["f64"] is None else r["f64"] for r in rows],
        "flag": pd.array([r["flag"] for r in rows], dtype="boolean"),
        "name": [r["name"] for r in rows],
        "blob": [None if r["blob"] is None else base64.b64encode(r["blob"]).decode() for r in rows],
        "event_timestamp": pd.to_datetime([r["event_timestamp"] for r in rows], utc=True),
    })
    df.to_csv(os.path.join(OUT, "pandas.csv"), index=False)
    csv_rows = []
    for r in rows:
        c = dict(r)
        c["i64_as_float"] = None if r["i64"] is None else float(r["i64"] >> 20)
        c["name"] = r["name"] if r["name"] else None  # pandas writes "" and None alike: null
        csv_rows.append(c)
    csv_requests = [
        ("card_id", "STRING", ident), ("merchant_id", "INT64", ident), ("i32", "INT32", ident),
        ("i64_as_float", "DOUBLE", as_double), ("f64", "DOUBLE", as_double),
        ("flag", "BOOL", as_bool), ("name", "STRING", ident), ("blob", "BYTES", as_hex),
        ("event_timestamp", "UNIX_TIMESTAMP", as_ns), ("f64", "FLOAT", as_float),
        ("merchant_id", "INT32", ident),
    ]
    write_expected("pandas.csv", csv_requests, csv_rows, [10, 10, 3])

    # Hand-written CSV: the other timestamp spellings, epoch seconds, bool spellings, CRLF.
    lines = [
        "id,ts,ok,note",
        "1,2026-12-06T10:00:00Z,true,a",
        "2,2026-12-06 10:00:00.123456+00:00,False,\"x,\"\"y\"\"\"",
        "3,2026-12-06T12:00:00+02:00,1,",
        "4,2026-12-06T10:00:00,0,\"multi\r\nline\"",
        "5,1796551200,TRUE,z",
        "6,2026-12-06,false,",
        "7,,,\"\"",
    ]
    with open(os.path.join(OUT, "spellings.csv"), "w", newline="") as f:
        f.write("\r\n".join(lines) + "\r\n")
    base = ns(dt.datetime(2026, 12, 6, 10, 0, 0))
    sp_rows = [
        {"id": 1, "ts": base, "ok": 1, "note": "a"},
        {"id": 2, "ts": base + 123456000, "ok": 0, "note": "x,\"y\""},
        {"id": 3, "ts": base, "ok": 1, "note": None},
        {"id": 4, "ts": base, "ok": 0, "note": "multi\r\nline"},
        {"id": 5, "ts": 1796551200 * 10**9, "ok": 1, "note": "z"},
        {"id": 6, "ts": base - 10 * 3600 * 10**9, "ok": 0, "note": None},
        {"id": 7, "ts": None, "ok": None, "note": None},
    ]
    write_expected("spellings.csv",
                   [("id", "INT64", ident), ("ts", "UNIX_TIMESTAMP", ident),
                    ("ok", "BOOL", ident), ("note", "STRING", ident)], sp_rows, [3, 3, 1])


if __name__ == "__main__":
    main()
