#!/usr/bin/env python3
"""Snapshots or compares Redis hashes, byte for byte (the bench's check that sluice-materialize and
`feast materialize` wrote the same thing).

usage: compare_redis.py snapshot HOST:PORT OUT.pickle [N]   # N random keys with all their fields
       compare_redis.py compare HOST:PORT IN.pickle         # exits 1 on the first difference
"""
import pickle
import random
import sys

import redis


def main():
    cmd, address, path = sys.argv[1:4]
    host, port = address.rsplit(":", 1)
    r = redis.Redis(host=host, port=int(port))
    if cmd == "snapshot":
        n = int(sys.argv[4]) if len(sys.argv) > 4 else 2000
        keys = [r.randomkey() for _ in range(n)]
        snap = {k: r.hgetall(k) for k in set(keys) if k is not None}
        pickle.dump({"dbsize": r.dbsize(), "hashes": snap}, open(path, "wb"))
        print(f"snapshot: {len(snap)} keys of {r.dbsize()}")
        return 0
    snap = pickle.load(open(path, "rb"))
    if r.dbsize() != snap["dbsize"]:
        print(f"differ: {r.dbsize()} keys here, {snap['dbsize']} in the snapshot")
        return 1
    for k, fields in snap["hashes"].items():
        have = r.hgetall(k)
        if have != fields:
            print(f"differ: key {k!r}: {have!r} != {fields!r}")
            return 1
    print(f"identical: {snap['dbsize']} keys; {len(snap['hashes'])} compared byte for byte")
    return 0


if __name__ == "__main__":
    sys.exit(main())
