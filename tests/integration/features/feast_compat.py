#!/usr/bin/env python3
"""The Feast side of the Feast compatibility tests, run with the real Feast SDK.

  feast_compat.py write --redis HOST:PORT --expected OUT.json
      Registers the test views in a throwaway Feast repo and writes rows with Feast's own
      write_to_online_store; OUT.json says what each entity's features must decode to.
  feast_compat.py read --redis HOST:PORT --expected IN.json
      Reads every entity of IN.json with Feast's get_online_features and exits 1 on the first
      value that differs (written by Sluice's materializer from the same rows).
  feast_compat.py source --out PATH.parquet|PATH.csv --expected OUT.json
      Writes the rows as a batch source (Parquet with pyarrow, or CSV) and OUT.json as `write`.

Every value type a FeatureView allows is covered, with missing values (None) for each.
"""
import argparse
import base64
import datetime as dt
import json
import math
import os
import sys
import tempfile
import warnings

warnings.filterwarnings("ignore")

PROJECT = "compat"
VIEW = "typed-features"
NOW = dt.datetime(2026, 12, 6, 12, 0, 0, tzinfo=dt.timezone.utc)

# (feature, Feast dtype name, values for entities 0..3; None = missing)
COLUMNS = [
    ("f_int32", "Int32", [7, -2147483648, None, 0]),
    ("f_int64", "Int64", [1 << 40, -1, 0, None]),
    ("f_float", "Float32", [1.5, -0.25, None, 3.0]),
    ("f_double", "Float64", [0.002, None, -1e300, 2.5]),
    ("f_string", "String", ["merchant é", "", None, "x,y\"z"]),
    ("f_bytes", "Bytes", [b"\x00\x01\xff", None, b"", b"abc"]),
    ("f_bool", "Bool", [True, False, None, True]),
    ("f_ts", "UnixTimestamp", [dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc), None,
                               dt.datetime(1970, 1, 1, 0, 0, 1, tzinfo=dt.timezone.utc),
                               dt.datetime(2030, 6, 1, tzinfo=dt.timezone.utc)]),
]
ENTITIES = ["card-0", "card-1", "card-2", "card-3"]
EVENT_TIMES = [NOW - dt.timedelta(minutes=m) for m in (1, 2, 3, 4)]


def expected_json():
    """Each entity's values as Sluice reports them: typed JSON, bytes base64, timestamps seconds."""
    rows = []
    for i, card in enumerate(ENTITIES):
        values = {}
        for name, dtype, vals in COLUMNS:
            v = vals[i]
            if v is None:
                values[name] = None
            elif dtype == "Bytes":
                values[name] = {"BYTES": base64.b64encode(v).decode()}
            elif dtype == "UnixTimestamp":
                values[name] = {"UNIX_TIMESTAMP": int(v.timestamp())}
            elif dtype == "Float32":
                values[name] = {"FLOAT": v}
            elif dtype == "Float64":
                values[name] = {"DOUBLE": v}
            else:
                values[name] = {dtype.upper(): v}
        rows.append({"card_id": card, "event_timestamp": int(EVENT_TIMES[i].timestamp()),
                     "values": values})
    return {"project": PROJECT, "view": VIEW, "entity": "card_id",
            "features": [{"name": n, "type": t} for n, t, _ in COLUMNS], "rows": rows}


def dataframe():
    import pandas as pd
    data = {"card_id": ENTITIES, "event_timestamp": EVENT_TIMES}
    for name, dtype, vals in COLUMNS:
        if dtype in ("Int32", "Int64"):
            data[name] = pd.array(vals, dtype="Int32" if dtype == "Int32" else "Int64")
        elif dtype == "Float32":
            data[name] = pd.array(vals, dtype="Float32")
        elif dtype == "Bool":
            data[name] = pd.array(vals, dtype="boolean")
        else:
            data[name] = pd.Series(vals, dtype="object")
    return pd.DataFrame(data)


def store(redis_address, source_path):
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
    from feast import types
    repo = tempfile.mkdtemp(prefix="sluice-feast-")
    with open(os.path.join(repo, "feature_store.yaml"), "w") as f:
        f.write(f"""project: {PROJECT}
registry: {repo}/registry.db
provider: local
online_store:
  type: redis
  connection_string: "{redis_address}"
offline_store:
  type: file
entity_key_serialization_version: 3
""")
    fs = FeatureStore(repo_path=repo)
    card = Entity(name="card", join_keys=["card_id"], value_type=ValueType.STRING)
    view = FeatureView(
        name=VIEW, entities=[card], ttl=dt.timedelta(0),
        schema=[Field(name=n, dtype=getattr(types, t)) for n, t, _ in COLUMNS],
        source=FileSource(path=source_path, timestamp_field="event_timestamp"),
        online=True)
    fs.apply([card, view])
    return fs


def typed(name, dtype, v):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if dtype == "Bytes":
        return {"BYTES": base64.b64encode(v).decode()}
    if dtype == "UnixTimestamp":
        if isinstance(v, dt.datetime):
            return {"UNIX_TIMESTAMP": int(v.timestamp())}
        return {"UNIX_TIMESTAMP": int(v)}
    if dtype == "Float32":
        return {"FLOAT": v}
    if dtype == "Float64":
        return {"DOUBLE": v}
    return {dtype.upper(): v}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("command", choices=["write", "read", "source"])
    p.add_argument("--redis")
    p.add_argument("--expected", required=True)
    p.add_argument("--out")
    a = p.parse_args()
    if a.command == "source":
        df = dataframe()
        if a.out.endswith(".parquet"):
            df.to_parquet(a.out, index=False)
        else:
            # CSV has no bytes type: BYTES columns are base64, as the CSV reader reads them.
            for name, dtype, _ in COLUMNS:
                if dtype == "Bytes":
                    df[name] = df[name].map(
                        lambda b: None if b is None else base64.b64encode(b).decode())
            df.to_csv(a.out, index=False)
        expected = expected_json()
        if not a.out.endswith(".parquet"):
            # An empty field is CSV's only null, so an empty string or bytes value reads back
            # missing (pandas' read_csv says NaN too).
            for row in expected["rows"]:
                for name, v in row["values"].items():
                    if v in ({"STRING": ""}, {"BYTES": ""}):
                        row["values"][name] = None
        with open(a.expected, "w") as f:
            json.dump(expected, f, indent=1)
        return 0
    if a.command == "write":
        src = tempfile.mktemp(suffix=".parquet")
        dataframe().to_parquet(src, index=False)
        fs = store(a.redis, src)
        fs.write_to_online_store(VIEW, dataframe())
        with open(a.expected, "w") as f:
            json.dump(expected_json(), f, indent=1)
        return 0
    # read
    with open(a.expected) as f:
        exp = json.load(f)
    src = tempfile.mktemp(suffix=".parquet")
    dataframe().to_parquet(src, index=False)
    fs = store(a.redis, src)
    feats = [f"{VIEW}:{n}" for n, _, _ in COLUMNS]
    got = fs.get_online_features(features=feats,
                                 entity_rows=[{"card_id": r["card_id"]} for r in exp["rows"]]
                                 ).to_dict()
    bad = 0
    for i, row in enumerate(exp["rows"]):
        for name, dtype, _ in COLUMNS:
            have = typed(name, dtype, got[name][i])
            want = row["values"][name]
            if dtype == "Float32" and have is not None and want is not None:
                same = abs(have["FLOAT"] - want["FLOAT"]) <= 1e-7 * max(1.0, abs(want["FLOAT"]))
            else:
                same = have == want
            if not same:
                print(f"{row['card_id']} {name}: Feast read {have!r}, expected {want!r}")
                bad += 1
    print(f"feast read {len(exp['rows'])} entities x {len(COLUMNS)} features, {bad} differ")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
